"""The audit chain on both backends: it verifies after concurrent writes, and every tampering is caught."""

from __future__ import annotations

import csv
import json
import secrets
import threading
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.orm import sessionmaker

from idp.cli import cli
from idp.services.audit import AuditService
from idp.store.audit import event_hash


@pytest.fixture
def audit(services):
    yield services.audit
    services.audit.close()


@pytest.fixture
def engine(settings):
    built = sa.create_engine(settings.database_url)
    yield built
    built.dispose()


def record_many(audit: AuditService, subject: str, count: int) -> list[int]:
    """Record `count` data reads about `subject`; returns their ids in chain order."""
    for n in range(count):
        audit.record("data.read", actor="portal", subject=subject, client_id="portal", purpose=f"openid p{n}")
    assert audit.flush(10)
    return sorted(row["id"] for row in audit_rows(audit, subject))


def audit_rows(audit: AuditService, subject: str) -> list[dict]:
    rows = [json.loads(line) for line in audit.export("jsonl", event="data.read")]
    return [row for row in rows if row["subject"] == subject]


def execute(engine: sa.Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(statement), params)


def fetch_row(engine: sa.Engine, event_id: int) -> dict:
    with engine.connect() as conn:
        return dict(
            conn.execute(sa.text("SELECT * FROM audit_events WHERE id = :id"), {"id": event_id})
            .mappings()
            .one()
        )


def subject() -> str:
    return "p" + secrets.token_hex(8)


# -- an intact chain ---------------------------------------------------------------------------------


def test_chain_verifies_after_concurrent_records_from_threads_and_two_writers(services, settings, audit):
    # a second service on the same database stands for another process or node
    other_engine = sa.create_engine(settings.database_url)
    other = AuditService(sessionmaker(bind=other_engine))
    person = subject()

    def burst(target: AuditService) -> None:
        for n in range(40):
            target.record(
                "data.read", actor="portal", subject=person, client_id="portal", purpose=f"openid {n}"
            )

    threads = [threading.Thread(target=burst, args=(audit if i % 2 else other,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert audit.flush(20) and other.flush(20)
    other.close()
    other_engine.dispose()
    result = audit.verify()
    assert result.ok, result.reason
    assert len(audit_rows(audit, person)) == 240
    assert result.count >= 240 and len(result.head) == 64


def test_record_queues_without_touching_the_database(audit):
    person = subject()
    started = time.perf_counter()
    for n in range(200):
        audit.record("data.read", actor="portal", subject=person, purpose=str(n))
    assert time.perf_counter() - started < 1.0
    assert audit.flush(10) and len(audit_rows(audit, person)) == 200


def test_events_for_subject_names_the_platform_newest_first(services, audit):
    services.clients.register(
        {
            "client_id": "tax",
            "client_name": "电子税务局",
            "redirect_uris": ["https://tax.example/cb"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": "openid profile",
        }
    )
    person = subject()
    audit.record("token.issued", actor="tax", subject=person, client_id="tax", purpose="openid profile")
    audit.record("data.read", actor="tax", subject=person, client_id="tax", purpose="openid profile")
    audit.record("login.succeeded", actor=person, subject=person)
    audit.record("data.read", actor="x", subject=subject(), client_id="tax", purpose="openid")
    assert audit.flush(10)
    seen = audit.events_for_subject(person)
    assert [a.event for a in seen] in (["data.read", "token.issued"], ["token.issued", "data.read"])
    assert {a.client_name for a in seen} == {"电子税务局"} and {a.purpose for a in seen} == {"openid profile"}


# -- tampering ---------------------------------------------------------------------------------------


def test_a_changed_purpose_is_reported_at_that_event(audit, engine):
    ids = record_many(audit, subject(), 5)
    execute(engine, "UPDATE audit_events SET purpose = 'openid email phone' WHERE id = :id", id=ids[2])
    result = audit.verify()
    assert not result.ok and result.first_bad_id == ids[2] and result.reason.startswith("changed")


def test_a_change_with_a_recomputed_hash_is_reported_at_that_event(audit, engine):
    ids = record_many(audit, subject(), 5)
    row = fetch_row(engine, ids[2])
    row["purpose"] = "openid email"
    execute(
        engine,
        "UPDATE audit_events SET purpose = :purpose, hash = :hash WHERE id = :id",
        purpose=row["purpose"],
        hash=event_hash(row),
        id=ids[2],
    )
    result = audit.verify()
    assert not result.ok and result.first_bad_id == ids[2] and result.reason.startswith("changed")


def test_a_deleted_middle_event_is_reported(audit, engine):
    ids = record_many(audit, subject(), 5)
    execute(engine, "DELETE FROM audit_events WHERE id = :id", id=ids[2])
    result = audit.verify()
    assert not result.ok and result.first_bad_id == ids[2] and result.reason.startswith("deleted")


def test_a_deleted_and_relinked_event_is_still_reported(audit, engine):
    """Deleting an event and re-hashing its successor keeps the links, but leaves a gap in the ids."""
    ids = record_many(audit, subject(), 5)
    before = fetch_row(engine, ids[1])
    after = fetch_row(engine, ids[3])
    after["prev_hash"] = before["hash"]
    execute(engine, "DELETE FROM audit_events WHERE id = :id", id=ids[2])
    execute(
        engine,
        "UPDATE audit_events SET prev_hash = :prev, hash = :hash WHERE id = :id",
        prev=after["prev_hash"],
        hash=event_hash(after),
        id=ids[3],
    )
    result = audit.verify()
    assert not result.ok and result.first_bad_id == ids[2] and result.reason.startswith("deleted")


def test_a_forged_event_inserted_in_the_middle_is_reported(audit, engine):
    ids = record_many(audit, subject(), 5)
    with engine.connect() as conn:
        last = conn.execute(sa.text("SELECT max(id) FROM audit_events")).scalar_one()
    for event_id in range(last, ids[2] - 1, -1):  # make room: move the later events up by one
        execute(engine, "UPDATE audit_events SET id = id + 1 WHERE id = :id", id=event_id)
    predecessor = fetch_row(engine, ids[1])
    forged = {
        "id": ids[2],
        "at": predecessor["at"] + 1,
        "event": "data.read",
        "actor": "forger",
        "subject": predecessor["subject"],
        "client_id": "forger",
        "purpose": "openid",
        "address": None,
        "outcome": "success",
        "details": None,
        "prev_hash": predecessor["hash"],
    }
    forged["hash"] = event_hash(forged)  # a plausible hash of its own
    execute(
        engine,
        "INSERT INTO audit_events (id, at, event, actor, subject, client_id, purpose, address, outcome,"
        " details, prev_hash, hash) VALUES (:id, :at, :event, :actor, :subject, :client_id, :purpose,"
        " :address, :outcome, :details, :prev_hash, :hash)",
        **forged,
    )
    result = audit.verify()
    assert not result.ok and result.first_bad_id == ids[2] and result.reason.startswith("inserted")


# -- a failing or slow audit store -------------------------------------------------------------------


def test_a_failing_store_never_raises_to_the_caller(tmp_path):
    broken = AuditService(sessionmaker(bind=sa.create_engine(f"sqlite:///{tmp_path}/missing/dir/audit.db")))
    broken.record("login.failed", actor="anonymous", outcome="failure")
    assert broken.flush(0.3) is False  # kept in memory, retried
    broken.close(0.1)
    broken.record("login.failed", actor="anonymous")  # after close: dropped, still no exception
    assert broken.dropped == 1


# -- export and the command line ---------------------------------------------------------------------


def test_export_as_jsonl_and_csv_filtered_by_event(audit):
    person = subject()
    audit.record("login.succeeded", actor=person, subject=person, address="10.0.0.1", details={"amr": "pwd"})
    audit.record("data.read", actor="portal", subject=person, client_id="portal", purpose="openid, profile")
    assert audit.flush(10)
    lines = [json.loads(line) for line in audit.export("jsonl", event="login.succeeded")]
    mine = [line for line in lines if line["subject"] == person]
    assert len(mine) == 1 and json.loads(mine[0]["details"]) == {"amr": "pwd"}
    assert {line["event"] for line in lines} == {"login.succeeded"}
    rows = list(csv.DictReader(audit.export("csv", event="data.read")))
    assert any(row["subject"] == person and row["purpose"] == "openid, profile" for row in rows)
    with pytest.raises(ValueError):
        list(audit.export("xml"))


@pytest.fixture
def run(settings):
    env = {
        "IDP_ISSUER": settings.issuer,
        "IDP_DATABASE_URL": settings.database_url,
        "IDP_KEY_DIR": settings.key_dir,
        "IDP_REDIS_PREFIX": settings.redis_prefix,
    }
    if settings.redis_url:
        env["IDP_REDIS_URL"] = settings.redis_url

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def test_cli_verify_audit_reports_intact_then_the_first_bad_event(run, audit, engine):
    ids = record_many(audit, subject(), 3)
    intact = run("verify-audit")
    assert intact.exit_code == 0 and "audit chain intact: " in intact.output
    execute(engine, "UPDATE audit_events SET actor = 'someone else' WHERE id = :id", id=ids[1])
    broken = run("verify-audit")
    assert broken.exit_code == 1
    assert f"audit chain broken at event {ids[1]}: changed" in broken.output


def test_cli_export_audit(run, audit):
    person = subject()
    record_many(audit, person, 2)
    jsonl = run("export-audit", "--format", "jsonl", "--event", "data.read")
    assert jsonl.exit_code == 0
    assert sum(json.loads(line)["subject"] == person for line in jsonl.output.splitlines()) == 2
    as_csv = run("export-audit", "--format", "csv")
    assert as_csv.exit_code == 0 and as_csv.output.splitlines()[0].startswith("id,at,event,actor,subject")
