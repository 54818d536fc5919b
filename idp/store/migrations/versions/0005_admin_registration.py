"""admin roles, initial access tokens, registration access tokens

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('admin_roles',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('granted_by', sa.String(length=128), nullable=False),
    sa.Column('granted_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_roles')),
    sa.UniqueConstraint('person_id', 'role', name=op.f('uq_admin_roles_person_id'))
    )
    with op.batch_alter_table('admin_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_roles_person_id'), ['person_id'], unique=False)

    op.create_table('initial_access_tokens',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('max_uses', sa.Integer(), nullable=False),
    sa.Column('uses', sa.Integer(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_initial_access_tokens')),
    sa.UniqueConstraint('digest', name=op.f('uq_initial_access_tokens_digest'))
    )
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('registration_token_digest', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('registered_by', sa.String(length=128), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_clients_registration_token_digest'), ['registration_token_digest'])



def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_clients_registration_token_digest'), type_='unique')
        batch_op.drop_column('registered_by')
        batch_op.drop_column('registration_token_digest')

    op.drop_table('initial_access_tokens')
    with op.batch_alter_table('admin_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_roles_person_id'))

    op.drop_table('admin_roles')
