"""tokens: indexes for revoking a client's tokens and purging expired ones

Revision ID: 0008
Revises: 0007
"""

from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.create_index('ix_tokens_client_id', ['client_id'], unique=False)
        batch_op.create_index('ix_tokens_audience', ['audience'], unique=False)
        batch_op.create_index('ix_tokens_expires_at', ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_tokens_expires_at')
        batch_op.drop_index('ix_tokens_audience')
        batch_op.drop_index('ix_tokens_client_id')
