"""bootstrap keys applied once (a deleted bootstrap key is not re-created at the next start)

Revision ID: 0004_bootstrap_keys
Revises: 0003_autopilot
Create Date: 2026-12-20
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.types

revision: str = '0004_bootstrap_keys'
down_revision: str | None = '0003_autopilot'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'bootstrap_key',
        sa.Column('secure_value', sa.String(length=300), nullable=False),
        sa.Column('created_at', db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('secure_value'),
    )
    # Keys bootstrapped before this table existed count as applied: deleting one later is final.
    op.execute(
        "INSERT INTO bootstrap_key (secure_value, created_at) "
        "SELECT secure_value, created_at FROM personal_api_key WHERE label = 'bootstrap'"
    )


def downgrade() -> None:
    op.drop_table('bootstrap_key')
