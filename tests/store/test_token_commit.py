"""New tokens are stored without waiting for the WAL flush (PostgreSQL), everything else waits.
The protocol tests (issue, introspect, rotate, revoke) run through the issuing engine as well."""

from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa

from idp.services.tokens import INSERT_TOKEN, NEW_ROW_COLUMNS, TOKENS
from idp.store.db import build_engine


@pytest.fixture
def postgres_only(backend):
    if backend != "postgres":
        pytest.skip("synchronous_commit is PostgreSQL's")


def _synchronous_commit(engine: sa.Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(sa.text("SHOW synchronous_commit")).scalar())


def test_only_the_issuing_engine_skips_the_flush_wait(postgres_only, settings):
    issuing = build_engine(settings.database_url, wait_for_flush=False)
    shared = build_engine(settings.database_url)
    try:
        assert _synchronous_commit(issuing) == "off"
        assert _synchronous_commit(shared) == "on"
    finally:
        issuing.dispose()
        shared.dispose()


@pytest.mark.parametrize(("waits", "expected"), [(False, "off"), (True, "on")])
def test_the_setting_chooses_how_new_tokens_commit(postgres_only, settings, waits, expected):
    from idp.app import build_services

    built = build_services(dataclasses.replace(settings, token_synchronous_commit=waits))
    try:
        assert _synchronous_commit(built.tokens._issuing) == expected
        # revocations and every other write go through the shared engine, which always waits
        assert _synchronous_commit(built.tokens.engine()) == "on"
    finally:
        built.audit.close()
        built.tokens.dispose()


def test_the_issuing_engine_runs_each_statement_on_its_own(postgres_only, settings, services):
    """TokenService sends it single statements and never commits; were the engine not in
    autocommit, closing the connection would roll each of them back."""
    issuing = build_engine(settings.database_url, wait_for_flush=False)
    row = {name: None for name in NEW_ROW_COLUMNS}
    row |= {"digest": "d" * 64, "kind": "access", "client_id": "c1", "scope": "", "grant_id": "g1"}
    row |= {"issued_at": 1, "expires_at": 2}
    try:
        with issuing.connect() as conn:
            conn.execute(INSERT_TOKEN, row)  # no commit
        with services.tokens.engine().connect() as other:  # another pool, another connection
            stored = other.execute(sa.select(TOKENS.c.grant_id).where(TOKENS.c.digest == "d" * 64))
            assert stored.scalar_one() == "g1"
    finally:
        issuing.dispose()
