"""persons: expression index on lower(email) for registration and password-reset lookups

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # On a live table of millions of persons a plain CREATE INDEX blocks every write to it until
        # the index is built; CONCURRENTLY does not (and cannot run inside a transaction). A build
        # that was interrupted leaves an invalid index of the same name: dropped first.
        with op.get_context().autocommit_block():
            op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_persons_email_lower")
            op.create_index(
                "ix_persons_email_lower", "persons", [sa.text("lower(email)")], postgresql_concurrently=True
            )
            # Statistics for the new expression: without them the planner may still prefer a seq scan.
            op.execute("ANALYZE persons")
        return
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.create_index("ix_persons_email_lower", [sa.text("lower(email)")], unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_persons_email_lower")
        return
    with op.batch_alter_table("persons", schema=None) as batch_op:
        batch_op.drop_index("ix_persons_email_lower")
