"""Alembic: `upgrade head` produces exactly the schema the models describe."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from idp.store import models  # noqa: F401 - registers tables
from idp.store.db import Base, build_engine
from idp.store.migrate import SchemaNotCurrent, alembic_config, check_schema, upgrade_database


# SQLite cannot reflect expression indexes (lower(email)), so there they are skipped by the comparison
# with a warning, and checked by name below instead; PostgreSQL compares them.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_upgrade_head_matches_the_models(migrated_database_url):
    engine = sa.create_engine(migrated_database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == []


def test_every_model_table_exists_after_upgrade(migrated_database_url):
    engine = sa.create_engine(migrated_database_url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert {t.name for t in Base.metadata.sorted_tables} <= names


def test_expression_indexes_exist_after_upgrade(migrated_database_url):
    wanted = {
        index.name
        for table in Base.metadata.sorted_tables
        for index in table.indexes
        if any(not isinstance(e, sa.Column) for e in index.expressions)
    }
    assert "ix_persons_email_lower" in wanted
    engine = sa.create_engine(migrated_database_url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'index'"
        present = set(conn.execute(sa.text(query)).scalars())
    engine.dispose()
    assert wanted <= present


# -- a database that is not migrated is refused with the command that fixes it ----------------------


@pytest.fixture
def scratch_url(backend, tmp_path):
    """An empty database of the backend under test, for one test."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'scratch.sqlite3'}"
        return
    admin_url = os.environ.get("IDP_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    name = f"idp_scratch_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _check(url: str) -> None:
    engine = build_engine(url)
    try:
        check_schema(engine)
    finally:
        engine.dispose()


def test_an_empty_database_is_refused_with_the_migrate_command(scratch_url):
    with pytest.raises(SchemaNotCurrent, match=r"no schema yet: run `python -m idp migrate`"):
        _check(scratch_url)


def test_a_database_behind_the_code_is_refused_and_names_both_revisions(scratch_url):
    upgrade_database(scratch_url, "0007")
    with pytest.raises(SchemaNotCurrent, match=r"at 0007.*needs 0008.*python -m idp migrate"):
        _check(scratch_url)
    upgrade_database(scratch_url)
    _check(scratch_url)  # at head: served


def test_a_revision_of_newer_code_is_served_during_a_rolling_upgrade(scratch_url):
    upgrade_database(scratch_url)
    engine = sa.create_engine(scratch_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff_newer'"))
    engine.dispose()
    _check(scratch_url)


def test_starting_on_an_empty_database_prints_one_line_not_a_traceback(scratch_url, tmp_path):
    root = Path(__file__).resolve().parents[2]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IDP_")},
        "IDP_DATABASE_URL": scratch_url,
        "IDP_KEY_DIR": str(tmp_path / "keys"),
        "IDP_ISSUER": "http://127.0.0.1:5999",
    }
    served = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=root, env=env, capture_output=True, text=True
    )
    assert served.returncode == 3  # gunicorn: "worker failed to boot", the server stops
    assert "run `python -m idp migrate`" in served.stderr and "Traceback" not in served.stderr
    command = subprocess.run(
        [sys.executable, "-m", "idp", "provision", str(root / "bench" / "seed.json")],
        cwd=root, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert command.returncode == 1
    assert "Error: the database has no schema yet" in command.stderr and "Traceback" not in command.stderr


def test_the_startup_check_reads_the_same_revisions_as_alembic():
    from alembic.script import ScriptDirectory

    from idp.store.migrate import MIGRATIONS, revisions

    scripts = ScriptDirectory(str(MIGRATIONS))
    heads, known = revisions()
    assert heads == set(scripts.get_heads())
    assert known == {rev.revision for rev in scripts.walk_revisions()}


# -- indexes added to big live tables are built without blocking writes (PostgreSQL) ----------------

LATER_INDEXES = {
    "ix_persons_email_lower": "persons",
    "ix_tokens_client_id": "tokens",
    "ix_tokens_audience": "tokens",
    "ix_tokens_expires_at": "tokens",
}


def test_indexes_on_live_tables_are_built_concurrently_and_an_interrupted_build_is_redone(
    backend, scratch_url
):
    """Migrations 0007 and 0008 add indexes to persons and tokens, which hold millions of rows in
    production: CREATE INDEX CONCURRENTLY, so writes go on while they are built. An earlier run that
    was interrupted leaves an invalid index of the same name, which is dropped and built again."""
    if backend != "postgres":
        pytest.skip("CONCURRENTLY is PostgreSQL's; SQLite builds the index in its one transaction")
    upgrade_database(scratch_url, "0006")
    engine = sa.create_engine(scratch_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:  # an interrupted build: an INVALID index under the name 0007 uses
        conn.execute(sa.text("CREATE TABLE interrupted (v integer)"))
        conn.execute(sa.text("INSERT INTO interrupted VALUES (1), (1)"))
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.text("CREATE UNIQUE INDEX CONCURRENTLY ix_persons_email_lower ON interrupted (v)")
            )

    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        upgrade_database(scratch_url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)

    for name in LATER_INDEXES:
        assert any(s.startswith(f"CREATE INDEX CONCURRENTLY {name} ") for s in statements), name
    query = sa.text(
        "SELECT c.relname, t.relname, i.indisvalid, i.indisunique FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
        " WHERE c.relname = ANY(:names)"
    )
    with engine.connect() as conn:
        rows = conn.execute(query, {"names": list(LATER_INDEXES)}).all()
        built = {index: (table, valid, unique) for index, table, valid, unique in rows}
        assert built == {name: (table, True, False) for name, table in LATER_INDEXES.items()}

    command.downgrade(alembic_config(scratch_url), "0006")
    with engine.connect() as conn:
        assert conn.execute(query, {"names": list(LATER_INDEXES)}).all() == []
    upgrade_database(scratch_url)
    engine.dispose()
    _check(scratch_url)
