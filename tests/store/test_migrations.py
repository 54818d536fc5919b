"""Alembic: `upgrade head` produces exactly the schema the models describe."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from idp.store import models  # noqa: F401 - registers tables
from idp.store.db import Base


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
