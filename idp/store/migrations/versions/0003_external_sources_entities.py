"""external sources and acting for entities

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_source', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_persons_external_source'), ['external_source', 'external_id'])

    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('entity_id', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_tokens_person_client', ['person_id', 'client_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_tokens_person_client')
        batch_op.drop_column('entity_id')

    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_persons_external_source'), type_='unique')
        batch_op.drop_column('external_id')
        batch_op.drop_column('external_source')

