"""exchanged tokens (RFC 8693): audience and actor

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audience', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('actor', sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_column('actor')
        batch_op.drop_column('audience')
