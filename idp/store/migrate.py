"""Run Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)


def create_revision(database_url: str, message: str) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=True)


class SchemaNotCurrent(RuntimeError):
    """The database lacks migrations this code needs: the operator runs `python -m idp migrate`."""


def check_schema(engine: Engine) -> None:
    """Refuse to serve a database that is empty or behind this code's migrations, with the command
    that fixes it (the first query would otherwise fail with a traceback about a missing table). A
    revision this code does not know is newer code's: a rolling upgrade migrated first, so the older
    nodes still serve (the migrations only add)."""
    heads, known = _revisions()
    try:
        with engine.connect() as conn:
            quiet = logging.getLogger("alembic.runtime.migration")
            level = quiet.level
            quiet.setLevel(logging.WARNING)  # not "Context impl ..." at every start
            try:
                current = set(MigrationContext.configure(conn).get_current_heads())
            finally:
                quiet.setLevel(level)
    except OperationalError as exc:
        raise SchemaNotCurrent(
            f"cannot read the schema version of the database ({type(exc.orig).__name__}); "
            "is it running and is IDP_DATABASE_URL right?"
        ) from None
    if current == heads:
        return
    if not current:
        raise SchemaNotCurrent("the database has no schema yet: run `python -m idp migrate` first")
    if current <= known:
        raise SchemaNotCurrent(
            f"the database schema is at {', '.join(sorted(current))}, this code needs "
            f"{', '.join(sorted(heads))}: run `python -m idp migrate`"
        )


@functools.cache
def _revisions() -> tuple[frozenset[str], frozenset[str]]:
    """This code's migration heads and every revision it knows."""
    scripts = ScriptDirectory(str(MIGRATIONS))
    return frozenset(scripts.get_heads()), frozenset(rev.revision for rev in scripts.walk_revisions())
