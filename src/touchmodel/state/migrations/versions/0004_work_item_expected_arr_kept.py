"""work items: expected ARR kept and over capacity (staffing the at-risk queue)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expected_arr_kept", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("over_capacity", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_column("over_capacity")
        batch_op.drop_column("expected_arr_kept")
