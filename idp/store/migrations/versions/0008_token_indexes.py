"""tokens: indexes for revoking a client's tokens and purging expired ones

Revision ID: 0008
Revises: 0007
"""

from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


INDEXES = (
    ("ix_tokens_client_id", "client_id"),
    ("ix_tokens_audience", "audience"),
    ("ix_tokens_expires_at", "expires_at"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # tokens is the busiest table: CONCURRENTLY keeps token issuance running while each index is
        # built (not possible inside a transaction). An interrupted build leaves an invalid index of
        # the same name: dropped first.
        with op.get_context().autocommit_block():
            for name, column in INDEXES:
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                op.create_index(name, "tokens", [column], postgresql_concurrently=True)
        return
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        for name, column in INDEXES:
            batch_op.create_index(name, [column], unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for name, _column in reversed(INDEXES):
                op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        return
    with op.batch_alter_table("tokens", schema=None) as batch_op:
        for name, _column in reversed(INDEXES):
            batch_op.drop_index(name)
