"""patient metrics summary

Revision ID: e4585ffdd730
Revises: 23d9a3421d4b
Create Date: 2026-11-21 07:49:17.143244+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "e4585ffdd730"
down_revision: str | None = "23d9a3421d4b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "patient_metrics_summary",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("window_end", sa.BigInteger(), nullable=False),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("data_version", sa.Integer(), nullable=False),
        sa.Column("preset", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("target_low", sa.Integer(), nullable=False),
        sa.Column("target_high", sa.Integer(), nullable=False),
        sa.Column("n_readings", sa.Integer(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("sd", sa.Float(), nullable=True),
        sa.Column("cv", sa.Float(), nullable=True),
        sa.Column("gmi", sa.Float(), nullable=True),
        sa.Column("gmi_sufficient", sa.Boolean(), nullable=False),
        sa.Column("pct_below_54", sa.Float(), nullable=True),
        sa.Column("pct_54_69", sa.Float(), nullable=True),
        sa.Column("pct_70_180", sa.Float(), nullable=True),
        sa.Column("pct_181_250", sa.Float(), nullable=True),
        sa.Column("pct_above_250", sa.Float(), nullable=True),
        sa.Column("pct_below_target", sa.Float(), nullable=True),
        sa.Column("pct_in_target", sa.Float(), nullable=True),
        sa.Column("pct_above_target", sa.Float(), nullable=True),
        sa.Column("active_percent", sa.Float(), nullable=True),
        sa.Column("days_with_data", sa.Integer(), nullable=False),
        sa.Column("gri", sa.Float(), nullable=True),
        sa.Column("gri_zone", sqlmodel.sql.sqltypes.AutoString(length=1), nullable=True),
        sa.Column("hypo_l1_episodes", sa.Integer(), nullable=False),
        sa.Column("hypo_l2_episodes", sa.Integer(), nullable=False),
        sa.Column("last_reading_time", sa.BigInteger(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("patient_id", "period_days"),
    )
    op.create_index(
        "ix_patient_metrics_summary_stale", "patient_metrics_summary", ["stale"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_patient_metrics_summary_stale", table_name="patient_metrics_summary")
    op.drop_table("patient_metrics_summary")
