"""console sign-in codes

Revision ID: 0005_console_sign_in
Revises: 0004_bootstrap_keys
Create Date: 2026-12-20
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0005_console_sign_in'
down_revision: str | None = '0004_bootstrap_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('console_sign_in_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=100), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('code_hash')
    )
    with op.batch_alter_table('console_sign_in_code', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_console_sign_in_code_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('console_sign_in_code', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_console_sign_in_code_user_id'))
    op.drop_table('console_sign_in_code')
