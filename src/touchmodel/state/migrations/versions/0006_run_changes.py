"""run changes: what each daily run changed, so the latest run can be undone

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("row_key", sa.String(length=600), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_changes_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_changes")),
        sa.UniqueConstraint("run_id", "table_name", "row_key", name=op.f("uq_run_changes_run_id")),
    )


def downgrade() -> None:
    op.drop_table("run_changes")
