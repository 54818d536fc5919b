"""`provision FILE.json`: clients and persons from one document, idempotent, clear errors, nothing half-written."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from sqlalchemy import func, select

from idp.cli import provision_document
from idp.domain.entities import EntityStatus, Role
from idp.services.audit import AuditFilter
from idp.store.models import AgentAuthorisationRow, ClientRow, LegalEntityRow, PersonRow

ROOT = Path(__file__).resolve().parents[2]


def count(services, model):
    with services.tokens.engine().connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def test_demo_seed_provisions_and_is_idempotent(services):
    document = json.loads((ROOT / "demo" / "seed.json").read_text(encoding="utf-8"))
    first = provision_document(services, document)
    second = provision_document(services, document)
    third = provision_document(services, document)
    assert second == third  # the seed supplies every secret, so nothing is generated
    assert [line.split(" ")[:2] for line in first] == [line.split(" ")[:2] for line in second]
    assert first[-1].endswith("verified by the operator (no enterprise register configured)")
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


# -- legal entities ----------------------------------------------------------------------------------------

COMPANY = "91350100M000100Y43"  # in the reference enterprise register, 张三 its legal representative
ZHANGSAN = {
    "username": "zhangsan",
    "password": "long enough pw",
    "name": "张三",
    "id_number": "410105198503121235",
}
LISI = {"username": "lisi", "password": "long enough pw", "name": "李四", "id_number": "440305199207182464"}


def company(**changes):
    entity = {
        "uscc": COMPANY,
        "name": "示例科技有限公司",
        "entity_type": "enterprise",
        "representative": "zhangsan",
        "agents": [
            {
                "person": "lisi",
                "role": "agent",
                "powers": ["cases:apply", "certificates:read"],
                "valid_days": 365,
            }
        ],
    }
    entity.update(changes)
    return entity


def entity_document(**changes):
    return {"persons": [ZHANGSAN, LISI], "legal_entities": [company(**changes)]}


def person_id(services, username):
    return next(p for p in services.persons.search(username) if p.username == username).id


def test_entities_without_a_register_are_verified_by_the_operator_and_provisioned_once(services):
    first = provision_document(services, entity_document())
    assert (
        first[-1]
        == f"entity {COMPANY} recorded as verified by the operator (no enterprise register configured)"
    )
    assert provision_document(services, entity_document())[-1] == f"entity {COMPANY}"
    entity = services.entities.find_entity_by_uscc(COMPANY)
    assert entity.status is EntityStatus.VERIFIED and entity.verified_at
    held = {a.person_id: a for a in services.entities.authorisations_of_entity(entity.id)}
    assert count(services, AgentAuthorisationRow) == 2  # the second run granted nothing again
    representative = held[person_id(services, "zhangsan")]
    agent = held[person_id(services, "lisi")]
    assert representative.role is Role.LEGAL_REPRESENTATIVE and representative.granted_by == "provision"
    assert agent.role is Role.AGENT and agent.powers == ("cases:apply", "certificates:read")
    assert agent.granted_by == "admin:provision" and agent.valid_until - agent.valid_from == 365 * 86400
    [option] = services.entities.acting_options(person_id(services, "lisi"))
    assert option.uscc == COMPANY and option.powers == ("cases:apply", "certificates:read")
    assert services.audit.flush()
    events = services.audit.search(AuditFilter(event="admin.entity.", actor="provision"))
    assert sorted(e["event"] for e in events) == [
        "admin.entity.agent_granted",
        "admin.entity.created",
        "admin.entity.representative_set",
        "admin.entity.verified",
    ]
    assert '"by":"provision"' in next(e["details"] for e in events if e["event"] == "admin.entity.verified")


def test_changed_powers_replace_the_grant(services):
    provision_document(services, entity_document())
    agents = [{"person": "lisi", "powers": ["cases:apply"]}]
    provision_document(services, entity_document(agents=agents))
    entity = services.entities.find_entity_by_uscc(COMPANY)
    active = services.entities.authorisations_of_entity(entity.id, active_only=True)
    lisi = [a for a in active if a.person_id == person_id(services, "lisi")]
    assert [(a.powers, a.valid_until) for a in lisi] == [(("cases:apply",), None)]


@pytest.fixture
def services_with_register(settings, services, reference_registers):
    from idp.app import build_services

    built = build_services(dataclasses.replace(settings, enterprise_register_url=reference_registers))
    yield built
    built.audit.close()
    built.tokens.dispose()


def test_entities_are_verified_against_the_enterprise_register_when_there_is_one(services_with_register):
    services = services_with_register
    lines = provision_document(services, entity_document())
    assert lines[-1] == f"entity {COMPANY} verified against the enterprise register"
    assert provision_document(services, entity_document())[-1] == f"entity {COMPANY}"
    entity = services.entities.find_entity_by_uscc(COMPANY)
    [representative] = [
        a
        for a in services.entities.authorisations_of_entity(entity.id)
        if a.role is Role.LEGAL_REPRESENTATIVE
    ]
    assert (
        representative.person_id == person_id(services, "zhangsan")
        and representative.granted_by == "register"
    )


def test_the_register_decides_who_the_representative_is(services_with_register):
    document = entity_document(uscc="91110108MA01C2D3EG", name="北京示例商贸有限公司")  # 王五 represents it
    with pytest.raises(click.ClickException, match="does not name zhangsan"):
        provision_document(services_with_register, document)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"uscc": "91350100M000100Y44"}, "uscc|check"),
        ({"uscc": 91350100}, "uscc must be a string"),
        ({"name": " "}, "name must be"),
        ({"entity_type": "company"}, "entity type"),
        ({"representative": "nobody"}, "no person nobody"),
        ({"representative": None}, "representative must be a username"),
        ({"agents": [{"person": "zhangsan", "powers": ["cases:apply"]}]}, "legal representative"),
        ({"agents": [{"person": "lisi", "powers": ["Cases Apply"]}]}, "power"),
        ({"agents": [{"person": "lisi", "powers": []}]}, "at least one power"),
        ({"agents": [{"person": "lisi", "powers": "cases:apply"}]}, "list of strings"),
        ({"agents": [{"person": "lisi", "powers": ["cases:apply"], "valid_days": 0}]}, "valid_days"),
        ({"agents": [{"person": "lisi", "powers": ["cases:apply"], "valid_days": True}]}, "valid_days"),
        ({"agents": [{"person": "lisi", "powers": ["x"], "role": "legal_representative"}]}, "role"),
        ({"agents": [{"person": "lisi", "powers": ["x"], "until": "2030"}]}, "unknown keys"),
        ({"agents": [{"person": "lisi", "powers": ["x"]}, {"person": "lisi", "powers": ["y"]}]}, "twice"),
        ({"agents": {"person": "lisi"}}, "agents must be a list"),
        ({"representatives": ["zhangsan"]}, "unknown keys"),
    ],
)
def test_a_bad_entity_entry_writes_nothing(services, changes, message):
    document = {
        "clients": [{"client_id": "good", "redirect_uris": ["https://a.example/cb"]}],
        **entity_document(**changes),
    }
    with pytest.raises(click.ClickException, match=rf"legal_entities\[0\]: .*({message})"):
        provision_document(services, document)
    assert count(services, ClientRow) == count(services, PersonRow) == count(services, LegalEntityRow) == 0


def test_only_real_name_verified_persons_can_be_authorised(services):
    unverified = {k: v for k, v in LISI.items() if k != "id_number"}
    with pytest.raises(click.ClickException, match="lisi must be real-name verified"):
        provision_document(services, {"persons": [ZHANGSAN, unverified], "legal_entities": [company()]})
    assert count(services, PersonRow) == 0
    provision_document(services, {"persons": [ZHANGSAN, LISI]})  # known already: no need to list them again
    assert provision_document(services, {"legal_entities": [company()]})[-1].startswith(f"entity {COMPANY}")


def test_an_entity_listed_twice_or_under_another_name_is_refused(services):
    twice = {"persons": [ZHANGSAN, LISI], "legal_entities": [company(), company()]}
    with pytest.raises(click.ClickException, match=r"legal_entities\[1\]: .*listed twice"):
        provision_document(services, twice)
    assert count(services, LegalEntityRow) == 0
    provision_document(services, entity_document())
    with pytest.raises(click.ClickException, match="registered here as 示例科技有限公司"):
        provision_document(services, entity_document(name="另一家公司"))


def test_a_suspended_entity_is_not_provisioned_again(services):
    provision_document(services, entity_document())
    services.entities.suspend(services.entities.find_entity_by_uscc(COMPANY).id)
    with pytest.raises(click.ClickException, match="suspended"):
        provision_document(services, entity_document())
