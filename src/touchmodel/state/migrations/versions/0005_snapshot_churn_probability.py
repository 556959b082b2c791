"""account snapshots: churn probability and expected ARR at risk (a fitted churn curve)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("churn_probability", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("arr_at_risk", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("account_snapshots", schema=None) as batch_op:
        batch_op.drop_column("arr_at_risk")
        batch_op.drop_column("churn_probability")
