"""identity model

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_authorisations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('entity_id', sa.String(length=32), nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('powers', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.BigInteger(), nullable=False),
    sa.Column('valid_until', sa.BigInteger(), nullable=True),
    sa.Column('granted_by', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_authorisations'))
    )
    with op.batch_alter_table('agent_authorisations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_authorisations_entity_id'), ['entity_id'], unique=False)
        batch_op.create_index('ix_agent_authorisations_person_entity', ['person_id', 'entity_id'], unique=False)

    op.create_table('legal_entities',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('uscc', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('entity_type', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('verified_at', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_entities')),
    sa.UniqueConstraint('uscc', name=op.f('uq_legal_entities_uscc'))
    )
    op.create_table('notifications',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('recipient', sa.String(length=254), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_recipient'), ['recipient'], unique=False)

    op.create_table('recovery_codes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('person_id', sa.String(length=32), nullable=False),
    sa.Column('code_digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('used_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
    sa.UniqueConstraint('code_digest', name=op.f('uq_recovery_codes_code_digest'))
    )
    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recovery_codes_person_id'), ['person_id'], unique=False)

    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.add_column(sa.Column('document_type', sa.String(length=32), nullable=False, server_default='resident_id'))
        batch_op.add_column(sa.Column('verified_at', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('verified_by', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('self_registered', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('totp_secret_enc', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('totp_enabled_at', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('password_changed_at', sa.BigInteger(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('persons', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('totp_enabled_at')
        batch_op.drop_column('totp_secret_enc')
        batch_op.drop_column('self_registered')
        batch_op.drop_column('verified_by')
        batch_op.drop_column('verified_at')
        batch_op.drop_column('document_type')

    with op.batch_alter_table('recovery_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recovery_codes_person_id'))

    op.drop_table('recovery_codes')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_recipient'))

    op.drop_table('notifications')
    op.drop_table('legal_entities')
    with op.batch_alter_table('agent_authorisations', schema=None) as batch_op:
        batch_op.drop_index('ix_agent_authorisations_person_entity')
        batch_op.drop_index(batch_op.f('ix_agent_authorisations_entity_id'))

    op.drop_table('agent_authorisations')
