"""The patient-metrics summary cache table: each patient's latest CGM metrics per period.

Only the table: the logic that fills it is ``analytics/summaries.py``. Importing this module
(Alembic, the CLI) loads no compute code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel


class PatientMetricsSummary(SQLModel, table=True):
    """Cached CGM metrics of one patient over the ``period_days`` before ``window_end``.

    Glucose values are mg/dL, percentages are % of readings (0-100); a metric without data is
    NULL. ``extra`` holds the metrics the roster does not sort by (LBGI, HBGI, MAGE, hyper and
    extended episodes, GRI components).
    """

    __tablename__ = "patient_metrics_summary"
    __table_args__ = (sa.Index("ix_patient_metrics_summary_stale", "stale"),)

    patient_id: int = Field(foreign_key="patient.id", primary_key=True, ondelete="CASCADE")
    period_days: int = Field(primary_key=True)
    window_start: int = Field(sa_type=sa.BigInteger)  # epoch s UTC, inclusive
    window_end: int = Field(sa_type=sa.BigInteger)  # epoch s UTC, exclusive
    computed_at: datetime | None = None
    stale: bool = True
    # Bumped by every ingest; a refresh clears ``stale`` only if it saw the current version.
    data_version: int = 0
    preset: str = Field(max_length=24)
    target_low: int  # mg/dL, the preset's target range (inclusive)
    target_high: int
    n_readings: int = 0
    mean: float | None = None
    sd: float | None = None
    cv: float | None = None
    gmi: float | None = None
    gmi_sufficient: bool = False
    pct_below_54: float | None = None
    pct_54_69: float | None = None
    pct_70_180: float | None = None
    pct_181_250: float | None = None
    pct_above_250: float | None = None
    pct_below_target: float | None = None
    pct_in_target: float | None = None
    pct_above_target: float | None = None
    active_percent: float | None = None
    days_with_data: int = 0
    gri: float | None = None
    gri_zone: str | None = Field(default=None, max_length=1)
    hypo_l1_episodes: int = 0
    hypo_l2_episodes: int = 0
    last_reading_time: int | None = Field(default=None, sa_type=sa.BigInteger)
    extra: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))

    @property
    def pct_below_70(self) -> float | None:
        if self.pct_below_54 is None or self.pct_54_69 is None:
            return None
        return self.pct_below_54 + self.pct_54_69
