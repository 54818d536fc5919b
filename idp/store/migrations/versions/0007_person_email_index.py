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
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.create_index('ix_persons_email_lower', [sa.text('lower(email)')], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        # Statistics for the new expression: without them the planner may still prefer a seq scan.
        op.execute('ANALYZE persons')


def downgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_index('ix_persons_email_lower')
