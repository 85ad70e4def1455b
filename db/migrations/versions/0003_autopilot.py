"""autopilot: the evidence behind an audit-trail entry

Revision ID: 0003_autopilot
Revises: 0002_trust
Create Date: 2026-12-06
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003_autopilot'
down_revision: str | None = '0002_trust'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('experiment_activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('evidence', JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('experiment_activity', schema=None) as batch_op:
        batch_op.drop_column('evidence')
