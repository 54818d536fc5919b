"""Run Alembic migrations programmatically (no alembic.ini needed)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import OperationalError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


# Alembic is imported only by the commands that migrate: importing it costs a worker ~11 MiB of RSS.


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    from alembic import command

    if database_url.startswith("sqlite:///"):
        Path(database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)


def create_revision(database_url: str, message: str) -> None:
    from alembic import command

    command.revision(alembic_config(database_url), message=message, autogenerate=True)


class SchemaNotCurrent(RuntimeError):
    """The database lacks migrations this code needs: the operator runs `python -m idp migrate`."""


def check_schema(engine: Engine) -> None:
    """Refuse to serve a database that is empty or behind this code's migrations, with the command
    that fixes it (the first query would otherwise fail with a traceback about a missing table). A
    revision this code does not know is newer code's: a rolling upgrade migrated first, so the older
    nodes still serve (the migrations only add)."""
    heads, known = revisions()
    try:
        with engine.connect() as conn:
            current = (
                set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
                if inspect(conn).has_table("alembic_version")
                else set()
            )
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
def revisions() -> tuple[frozenset[str], frozenset[str]]:
    """This code's migration heads and every revision it knows, read from the `revision` and
    `down_revision` assignments of the version files (tests/store/test_migrations.py checks that
    Alembic reads the same)."""
    known: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target = node.targets[0]
            if not isinstance(target, ast.Name) or target.id not in {"revision", "down_revision"}:
                continue
            value = ast.literal_eval(node.value)
            names = {value} if isinstance(value, str) else set(value or ())
            (known if target.id == "revision" else parents).update(names)
    return frozenset(known - parents), frozenset(known)
