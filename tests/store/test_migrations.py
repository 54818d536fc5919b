"""Alembic: `upgrade head` produces exactly the schema the models describe."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from idp.store import models  # noqa: F401 - registers tables
from idp.store.db import Base


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
