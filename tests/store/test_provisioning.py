"""`provision FILE.json`: clients and persons from one document, idempotent, clear errors, nothing half-written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from sqlalchemy import func, select

from idp.cli import provision_document
from idp.store.models import ClientRow, PersonRow

ROOT = Path(__file__).resolve().parents[2]


def count(services, model):
    with services.tokens.engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_demo_seed_provisions_and_is_idempotent(services):
    document = json.loads((ROOT / "demo" / "seed.json").read_text(encoding="utf-8"))
    first = provision_document(services, document)
    second = provision_document(services, document)
    assert first == second  # the seed supplies every secret, so nothing is generated
    assert count(services, ClientRow) == len(document["clients"])
    assert count(services, PersonRow) == len(document["persons"])
    person = services.persons.authenticate("410105198503121235", "Zhangsan#2026")
    assert person is not None and person.id_number_masked == "410105********1235"


def test_identity_number_is_encrypted_at_rest(services):
    services.persons.upsert(
        {"username": "wangwu", "password": "long enough pw", "id_number": "440305199207182464"}
    )
    with services.tokens.engine().connect() as conn:
        row = conn.execute(select(PersonRow)).one()
    assert b"440305199207182464" not in (row.id_number_enc or b"")
    assert "440305199207182464" not in str(row.id_number_index)


def test_generated_secret_is_shown_once_and_not_regenerated(services):
    document = {
        "clients": [
            {"client_id": "svc", "grant_types": ["client_credentials"], "response_types": [], "scope": "a"}
        ]
    }
    lines = provision_document(services, document)
    assert lines[0].startswith("client svc secret=") and len(lines[0].split("secret=")[1]) >= 43
    assert provision_document(services, document) == ["client svc"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "JSON object"),
        ({"clients": [{"client_id": "x", "redirect_uris": ["ftp://x"]}]}, "redirect_uris"),
        ({"clients": [{"client_id": "x", "redirect_uris": ["http://evil.example/cb"]}]}, "https"),
        ({"clients": [{"client_id": "x", "redirect_uris": ["https://a.example/cb#frag"]}]}, "fragment"),
        (
            {
                "clients": [
                    {"client_id": "x", "redirect_uris": ["https://a.example/cb"], "client_secret": "short"}
                ]
            },
            "32",
        ),
        (
            {
                "clients": [
                    {
                        "client_id": "x",
                        "token_endpoint_auth_method": "none",
                        "grant_types": ["client_credentials"],
                    }
                ]
            },
            "public",
        ),
        (
            {
                "clients": [
                    {
                        "client_id": "x",
                        "redirect_uris": ["https://a.example/cb"],
                        "access_token_format": "xml",
                    }
                ]
            },
            "jwt",
        ),
        (
            {"persons": [{"username": "a", "password": "long enough pw", "id_number": "410105198503121234"}]},
            "id_number",
        ),
        ({"persons": [{"username": "b", "password": "short"}]}, "at least"),
        ({"persons": [{"username": "13800000009", "password": "long enough pw"}]}, "number"),
        ({"people": []}, "unknown top-level"),
    ],
)
def test_bad_documents_get_clear_errors(services, document, message):
    with pytest.raises(click.ClickException, match=message):
        provision_document(services, document)


def test_a_bad_entry_means_nothing_is_written(services):
    good = {"client_id": "good", "redirect_uris": ["https://a.example/cb"]}
    bad = {"client_id": "bad", "redirect_uris": ["http://evil.example/cb"]}
    with pytest.raises(click.ClickException, match=r"clients\[1\]"):
        provision_document(
            services, {"clients": [good, bad], "persons": [{"username": "a", "password": "long enough pw"}]}
        )
    assert count(services, ClientRow) == 0 and count(services, PersonRow) == 0


def test_cli_provision_reports_bad_json_without_a_traceback(tmp_path, settings):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    env = {**os.environ, "IDP_DATABASE_URL": settings.database_url, "IDP_KEY_DIR": settings.key_dir}
    env.pop("IDP_REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "idp", "provision", str(bad)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode != 0
    assert "not valid JSON" in result.stderr and "Traceback" not in result.stderr


def test_other_identity_documents_by_type_code(services):
    person = services.persons.upsert(
        {
            "username": "visitor",
            "password": "long enough pw",
            "document_type": "passport",
            "id_number": "e12345678",
        }
    )
    assert person.id_number_masked == "E1*****78" and person.verified
    with services.tokens.engine().connect() as conn:
        row = conn.execute(select(PersonRow.document_type, PersonRow.id_number_enc)).one()
    assert row.document_type == "passport" and b"E12345678" not in row.id_number_enc
    with pytest.raises(click.ClickException, match="unknown_document_type|Unknown document type"):
        provision_document(
            services,
            {
                "persons": [
                    {"username": "x", "password": "long enough pw", "document_type": "card", "id_number": "1"}
                ]
            },
        )


def test_provisioning_grants_admin_roles(services):
    document = json.loads((ROOT / "demo" / "seed.json").read_text(encoding="utf-8"))
    provision_document(services, document)
    admin = services.persons.authenticate("admin", "Admin#2026-demo")
    auditor = services.persons.authenticate("auditor", "Auditor#2026-demo")
    assert services.admin.roles_of(admin.id) == {"super_admin"}
    assert services.admin.roles_of(auditor.id) == {"auditor"}


@pytest.mark.parametrize(
    "roles",
    [["auditor", "super_admin"], ["root"], "super_admin"],
    ids=["separation", "unknown", "not-a-list"],
)
def test_provisioning_refuses_bad_admin_roles_before_writing_anything(services, roles):
    person = {"username": "newadmin", "password": "long enough pw", "admin_roles": roles}
    with pytest.raises(click.ClickException, match="admin_roles"):
        provision_document(services, {"persons": [person]})
    assert count(services, PersonRow) == 0
