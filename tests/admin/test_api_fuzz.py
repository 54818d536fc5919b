"""Property-based fuzzing of the admin API from its own OpenAPI document (schemathesis 4.x).

Every operation is called with generated valid (positive) and invalid (negative) input against the
WSGI app, authenticated as a service account holding every role but auditor; the audit operations
again as an auditor. No input may cause a server error, and every answer must be one the document
promises (status code, content type, response schema).

(schemathesis' lazy `from_fixture(...).parametrize()` does not run under pytest 9, so each operation
is a pytest parameter and its cases are drawn with `operation.as_strategy()`.)"""

from __future__ import annotations

import pytest
import schemathesis
from admin_helpers import service_account_token
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from admin.openapi import build_document

API = "/admin/api/v1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 10  # per operation and generation mode (20 cases per operation)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)
OPERATIONS = [(path, method) for path, ops in build_document()["paths"].items() for method in ops]
AUDIT = [(path, method) for path, method in OPERATIONS if path.startswith("/audit")]


def fuzz(app, headers: dict[str, str], path: str, method: str) -> None:
    schema = schemathesis.openapi.from_wsgi(f"{API}/openapi.json", app)
    operation = schema[path][method.upper()]
    statuses: list[int] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode))
        def run(case) -> None:
            statuses.append(case.call_and_validate(headers=headers, checks=CHECKS).status_code)

        try:
            run()
        except Unsatisfiable:
            # nothing to make invalid: no parameters and no body
            assert mode is GenerationMode.NEGATIVE and not operation.body and not operation.query
    assert statuses and any(status != 401 for status in statuses), "the token was accepted"


def account(client, services, scope: str, client_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {service_account_token(client, services, scope, client_id=client_id)}"}


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m.upper()} {p}" for p, m in OPERATIONS])
def test_no_input_is_a_server_error(app, client, services, admins, path: str, method: str):
    headers = account(client, services, "admin:super_admin admin:platform_admin admin:entity_admin", "fuzz")
    fuzz(app, headers, path, method)


@pytest.mark.parametrize(("path", "method"), AUDIT, ids=[f"{m.upper()} {p}" for p, m in AUDIT])
def test_the_audit_operations_as_an_auditor(app, client, services, admins, path: str, method: str):
    headers = account(client, services, "admin:auditor", "fuzz-auditor")
    services.audit.record("fuzz.seed", actor="test", details={"x": 1})
    assert services.audit.flush()
    fuzz(app, headers, path, method)
