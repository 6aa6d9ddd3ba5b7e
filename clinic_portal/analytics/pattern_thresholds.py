"""Named thresholds for pump metrics and clinical pattern detection.

Every number the pattern engine uses lives here with the reason for its value, so that a clinic can
see (and later configure) what a finding means. Times of day are seconds after local midnight;
durations are seconds; glucose is mg/dL; insulin is U.

Sources cited below:

* Battelino 2019: International Consensus on Time in Range, Diabetes Care 2019;42:1593,
  doi:10.2337/dci19-0028 (glucose bands, AGP overnight period).
* Battelino 2023: CGM metrics for clinical trials, Lancet Diabetes Endocrinol 2023;11:42,
  doi:10.1016/S2213-8587(22)00319-9 (episode rules; used through ``analytics.api.episodes``).
* ADA Standards of Care, "Glycemic targets" table: peak postprandial capillary glucose < 180 mg/dL,
  measured 1–2 h after the beginning of the meal.
* Monnier L et al., Diabetes Care 2013;36:4057, doi:10.2337/dc12-2127: dawn phenomenon = increment
  from the nocturnal nadir (00:00–06:00) to the pre-breakfast value; present when ≥ 20 mg/dL.
* Acciaroli G et al., J Diabetes Sci Technol 2022;16:677, doi:10.1177/1932296820982584: rebound
  hyperglycaemia = glucose > 180 mg/dL starting within 2 h of a value < 70 mg/dL.
* Medtronic CareLink Episode Summary (CareLink Report Reference Guide; Petrovski & Zivkovic,
  JDST 2017, doi:10.1177/1932296817726553; summarised in shared/reference/features.md b.1): the
  contributing-event vocabulary, nocturnal and dawn windows, "pump suspends > 60 min".
* Walsh J, Roberts R, Heinemann L, JDST 2014;8:170, doi:10.1177/1932296813514320: bolus-calculator
  insulin action times shorter than ~4 h under-count insulin on board and hide stacking.
"""

from __future__ import annotations

from dataclasses import dataclass

from clinic_portal.records import DeviceEventKind

HOUR_S = 3600
MINUTE_S = 60
DAY_S = 86400

# Pump bolus delivery increments are 0.05 U (Medtronic, Omnipod; Tandem 0.01 U), so a programmed
# dose within 0.05 U of the calculator's suggestion is the pump rounding the suggestion, not the
# patient overriding it. Tidepool compares programmed (not delivered) with recommended
# (viz src/utils/bolus.js isOverride/isUnderride), so a bolus interrupted by an occlusion or a
# cancel is not counted as an override; we do the same.
WIZARD_OVERRIDE_TOLERANCE_U = 0.05

# Rewind, prime (tubing fill) and cannula fill of one site change arrive as separate events within
# minutes; events of the chosen kind closer than this are one change.
SITE_CHANGE_MERGE_S = 2 * HOUR_S

# Which device event marks a site change depends on the pump (Tidepool getSiteChangeSource, see
# shared/reference/metrics.md §5). We use the first kind of this list present in the data: an
# explicit site change, then cartridge/reservoir change, then rewind (Medtronic), then prime.
SITE_CHANGE_EVENT_PRIORITY: tuple[DeviceEventKind, ...] = (
    DeviceEventKind.SITE_CHANGE,
    DeviceEventKind.CARTRIDGE_CHANGE,
    DeviceEventKind.REWIND,
    DeviceEventKind.PRIME,
)

# A basal segment recorded with duration 0 ("start only") runs until the next segment starts, but
# never longer than this: a missing record must not turn into days of invented insulin.
MAX_INFERRED_BASAL_S = 24 * HOUR_S


@dataclass(frozen=True, slots=True)
class PatternThresholds:
    """Thresholds of the pattern engine (`analytics.patterns`). Defaults cite their source."""

    # --- glucose bands (Battelino 2019) -----------------------------------------------------------
    low_mgdl: float = 70.0  # level-1 hypoglycaemia threshold
    very_low_mgdl: float = 54.0  # level-2: a finding with a value below it is high severity
    high_mgdl: float = 180.0  # level-1 hyperglycaemia threshold; also the ADA peak post-meal goal
    very_high_mgdl: float = 250.0  # level-2 hyperglycaemia

    # --- time-of-day windows ----------------------------------------------------------------------
    # Overnight/nocturnal = 00:00–06:00 local, the AGP report's "sleep" convention (Battelino
    # 2019). CareLink's Episode Summary uses 23:00–05:00; we keep one overnight period portal-wide.
    overnight_start_s: int = 0
    overnight_end_s: int = 6 * HOUR_S
    # Dawn period 03:00–07:00 as in CareLink's Episode Summary ("dawn phenomenon (03:00–07:00)").
    dawn_start_s: int = 3 * HOUR_S
    dawn_end_s: int = 7 * HOUR_S

    # --- recurring time-of-day patterns -----------------------------------------------------------
    # Same 2-hour window on ≥ 3 distinct days (CareLink TMD: "the same period containing episodes
    # on ≥ N distinct days"; N = 3 and the 2-h width are our choice: three is the smallest count
    # that is a pattern rather than a coincidence, and 2 h is the resolution of a basal change).
    recurring_window_s: int = 2 * HOUR_S
    recurring_step_s: int = 1 * HOUR_S  # candidate windows start on whole hours
    recurring_min_days: int = 3
    # Overnight lows on ≥ 2 nights (suggestion, no published threshold): a single night is shown in
    # the episode list; a second night makes it something to act on.
    overnight_lows_min_nights: int = 2

    # --- meals ------------------------------------------------------------------------------------
    # Entries under 10 g are not meals (suggestion; hypo treatments are excluded separately).
    min_meal_carbs_g: float = 10.0
    # A meal is "covered" by a user bolus from 30 min before to 30 min after the carb entry
    # (suggestion: pre-bolusing 10–20 min before eating is usual advice, plus margin).
    meal_bolus_before_s: int = 30 * MINUTE_S
    meal_bolus_after_s: int = 30 * MINUTE_S
    # Post-meal window 1–2 h after the start of the meal, where ADA times the peak postprandial
    # check (goal < 180 mg/dL = high_mgdl).
    post_meal_start_s: int = 1 * HOUR_S
    post_meal_end_s: int = 2 * HOUR_S
    # A meal bolus 15 min or more after the carbs is "late" (suggestion; see meal_bolus_before_s).
    late_bolus_s: int = 15 * MINUTE_S
    # Carbs entered during a low or up to 30 min after it are a hypo treatment, not a meal
    # (suggestion: the "rule of 15" re-checks after 15 min, then treats again).
    hypo_treatment_after_s: int = 30 * MINUTE_S

    # --- rises and dawn ---------------------------------------------------------------------------
    # A high counts as "a rise with no bolus" when glucose climbed ≥ 50 mg/dL within the 2 h before
    # the high began and no user bolus came in that time (suggestion; CareLink "rising SG without
    # bolus" publishes no number).
    rise_min_mgdl: float = 50.0
    rise_lookback_s: int = 2 * HOUR_S
    # Dawn rise: nocturnal nadir (overnight window) to pre-breakfast ≥ 20 mg/dL (Monnier 2013),
    # reported only when the morning value ends above high_mgdl, i.e. when it costs time in range.
    dawn_rise_min_mgdl: float = 20.0
    dawn_prebreakfast_latest_s: int = 8 * HOUR_S  # pre-breakfast value taken no later than 08:00
    dawn_prebreakfast_earliest_s: int = 5 * HOUR_S  # ...and no earlier than 05:00
    dawn_average_s: int = 15 * MINUTE_S  # pre-breakfast value = mean of the last 15 min of CGM

    # --- rebounds ---------------------------------------------------------------------------------
    # High starting within 2 h of a low (Acciaroli 2022).
    rebound_window_s: int = 2 * HOUR_S

    # --- insulin ----------------------------------------------------------------------------------
    # Insulin action time when no pump settings snapshot gives one: 4 h (Walsh 2014: shorter
    # settings under-count insulin on board). The patient's own setting is used when known.
    default_active_insulin_time_s: int = 4 * HOUR_S
    # Basal changes up to 3 h before an episode are listed as contributing (CareLink looks back
    # 2–4 h; rapid-acting insulin delivered as basal acts within that time).
    basal_lookback_s: int = 3 * HOUR_S
    # Glucose trend: "falling" at ≥ 1 mg/dL/min, "rapidly falling" at ≥ 2 mg/dL/min, the one- and
    # two-arrow thresholds of Medtronic/Dexcom trend arrows, over the last 15 min of CGM.
    falling_mgdl_per_min: float = 1.0
    rapid_fall_mgdl_per_min: float = 2.0
    trend_span_s: int = 15 * MINUTE_S
    rapid_fall_lookback_s: int = 30 * MINUTE_S  # trend measured over the 30 min before a low starts

    # --- pump use ---------------------------------------------------------------------------------
    # Long suspend ≥ 60 min (CareLink Episode Summary hyper cause "pump suspends > 60 min").
    long_suspend_s: int = 60 * MINUTE_S
    # A suspend starting up to 30 min before a low, or during it, is "suspend before low"
    # (SmartGuard suspends when a low is predicted within 30 min).
    suspend_before_low_s: int = 30 * MINUTE_S
    # A high starting up to 3 h after a long suspend ended is "followed by a high" (suggestion,
    # same horizon as basal_lookback_s).
    after_suspend_s: int = 3 * HOUR_S
    # Site change overdue after 3.5 days: infusion-set labels say every 2–3 days (Omnipod pods
    # 72 h); 3.5 d is the flag the CareLink Adherence report uses (features.md b.1, [2nd]).
    # Raise it per patient for 7-day extended-wear sets.
    overdue_site_change_s: int = int(3.5 * DAY_S)

    # --- reporting --------------------------------------------------------------------------------
    # Event findings (stacked corrections, long suspends, overdue site changes, missed meal
    # boluses, rebounds) are reported from their first occurrence: each one is actionable.
    min_event_occurrences: int = 1


DEFAULT_PATTERN_THRESHOLDS = PatternThresholds()
