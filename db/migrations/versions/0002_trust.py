"""trust: the row image each applied operation left, and create's Idempotency-Key

Revision ID: 0002_trust
Revises: 0001
Create Date: 2026-12-06
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002_trust'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('applied_operation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('image', JSON, nullable=True))
    with op.batch_alter_table('experiment_id_allocation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('request_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.create_index('ix_experiment_id_allocation_key', ['team_id', 'idempotency_key'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('experiment_id_allocation', schema=None) as batch_op:
        batch_op.drop_index('ix_experiment_id_allocation_key')
        batch_op.drop_column('request_hash')
        batch_op.drop_column('idempotency_key')
    with op.batch_alter_table('applied_operation', schema=None) as batch_op:
        batch_op.drop_column('image')
