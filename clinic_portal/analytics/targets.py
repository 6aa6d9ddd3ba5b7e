"""Glycemic target presets: which range counts as "target" and which goals the report shows.

The four presets are those of the International Consensus on Time in Range (Battelino et al.,
Diabetes Care 2019;42:1593, doi:10.2337/dci19-0028, Table 2 and its reproduction in Diabetes
Spectrum 2021;34(2):109), as offered per patient by Tidepool's AGP report
(viz ``src/modules/print/utils/AGPConstants.js``; see shared/reference/metrics.md §1.1 and
features.md a.5). The patient model stores the preset's string value.

The five consensus ranges (<54, 54-69, 70-180, 181-250, >250 mg/dL) are always computed; a preset
adds its own target range (63-140 mg/dL in pregnancy) and the goals printed next to each number.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class TargetPreset(enum.StrEnum):
    """The patient's glycemic target preset (stored as this string on the patient)."""

    STANDARD = "standard"
    OLDER_HIGH_RISK = "older_high_risk"
    PREGNANCY_T1 = "pregnancy_t1"
    PREGNANCY_GDM_T2 = "pregnancy_gdm_t2"

    @property
    def label(self) -> str:
        """The preset's name as the forms and reports show it."""
        return TARGETS[self].label


@dataclass(frozen=True, slots=True)
class Goal:
    """One report goal: ``metric`` compared with ``limit`` (percent, mg/dL or %CV).

    ``metric`` names a field of :class:`clinic_portal.analytics.api.CgmMetrics`; ``comparison``
    is ``"<"`` or ``">"``; ``label`` is what the report prints.
    """

    metric: str
    comparison: str
    limit: float
    label: str

    def met(self, value: float) -> bool:
        """Whether ``value`` (same unit as ``limit``) meets the goal; NaN never does."""
        if value != value:  # NaN: no data, goal not met
            return False
        return bool(value < self.limit if self.comparison == "<" else value > self.limit)


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """Target range (inclusive integer mg/dL bounds after rounding) and the goals of a preset."""

    preset: TargetPreset
    label: str
    target_low: int  # lowest mg/dL counted as in target
    target_high: int  # highest mg/dL counted as in target
    goals: tuple[Goal, ...]


# Shared by every preset: %CV <= 36 % is "stable" (Battelino 2019), which the AGP prints as a
# goal; mean < 154 mg/dL and GMI < 7 % are the AGP report goals (Tidepool AGPConstants.js).
_CV_GOAL = Goal("cv", "<", 36.0001, "CV ≤ 36 %")

TARGETS: dict[TargetPreset, TargetSpec] = {
    # Battelino 2019, T1D/T2D adults: TIR 70-180 > 70 %, TBR < 70 < 4 %, < 54 < 1 %,
    # TAR > 180 < 25 %, > 250 < 5 %.
    TargetPreset.STANDARD: TargetSpec(
        TargetPreset.STANDARD,
        "Standard (type 1 / type 2)",
        70,
        180,
        (
            Goal("pct_in_target", ">", 70.0, "70–180 mg/dL > 70 %"),
            Goal("pct_below_70", "<", 4.0, "< 70 mg/dL < 4 %"),
            Goal("pct_below_54", "<", 1.0, "< 54 mg/dL < 1 %"),
            Goal("pct_above_180", "<", 25.0, "> 180 mg/dL < 25 %"),
            Goal("pct_above_250", "<", 5.0, "> 250 mg/dL < 5 %"),
            Goal("mean", "<", 154.0, "mean < 154 mg/dL"),
            Goal("gmi", "<", 7.0, "GMI < 7 %"),
            _CV_GOAL,
        ),
    ),
    # Battelino 2019, older / high-risk: TIR > 50 %, TBR < 70 < 1 %, TAR > 250 < 10 %
    # (Tidepool also prints > 180 < 50 %).
    TargetPreset.OLDER_HIGH_RISK: TargetSpec(
        TargetPreset.OLDER_HIGH_RISK,
        "Older / high risk",
        70,
        180,
        (
            Goal("pct_in_target", ">", 50.0, "70–180 mg/dL > 50 %"),
            Goal("pct_below_70", "<", 1.0, "< 70 mg/dL < 1 %"),
            Goal("pct_above_180", "<", 50.0, "> 180 mg/dL < 50 %"),
            Goal("pct_above_250", "<", 10.0, "> 250 mg/dL < 10 %"),
            _CV_GOAL,
        ),
    ),
    # Battelino 2019, pregnancy with type 1: 63-140 > 70 %, < 63 < 4 %, < 54 < 1 %, > 140 < 25 %.
    TargetPreset.PREGNANCY_T1: TargetSpec(
        TargetPreset.PREGNANCY_T1,
        "Pregnancy, type 1",
        63,
        140,
        (
            Goal("pct_in_target", ">", 70.0, "63–140 mg/dL > 70 %"),
            Goal("pct_below_target", "<", 4.0, "< 63 mg/dL < 4 %"),
            Goal("pct_below_54", "<", 1.0, "< 54 mg/dL < 1 %"),
            Goal("pct_above_target", "<", 25.0, "> 140 mg/dL < 25 %"),
            _CV_GOAL,
        ),
    ),
    # Battelino 2019 uses the same 63-140 range for gestational / type 2 pregnancy but gives no
    # percentage goals for it ("very limited evidence", footnote of its targets table).
    TargetPreset.PREGNANCY_GDM_T2: TargetSpec(
        TargetPreset.PREGNANCY_GDM_T2,
        "Pregnancy, gestational / type 2",
        63,
        140,
        (_CV_GOAL,),
    ),
}


def target_spec(preset: TargetPreset | str) -> TargetSpec:
    """The :class:`TargetSpec` of a preset given as enum or stored string.

    Raises:
        ValueError: ``preset`` is not one of the four preset values.
    """
    return TARGETS[TargetPreset(preset)]
