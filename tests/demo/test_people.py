"""Demo demographics: fictional names, presets that match the patient, cheap and stable."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from clinic_portal.demo import people
from clinic_portal.demo.generator import ARCHETYPES, CLINIC_TIME_ZONE, generate_people

AS_OF = date(2025, 11, 20)


def age(born: date) -> int:
    return AS_OF.year - born.year - ((AS_OF.month, AS_OF.day) < (born.month, born.day))


def test_name_lists_are_long_enough_and_distinct() -> None:
    first = people.FEMALE_FIRST_NAMES + people.MALE_FIRST_NAMES + people.NEUTRAL_FIRST_NAMES
    assert len(set(first)) == len(first) >= 60
    assert len(set(people.LAST_NAMES)) == len(people.LAST_NAMES) >= 60


def test_people_are_deterministic_and_independent_of_n() -> None:
    assert generate_people(50, 4, as_of=AS_OF) == generate_people(50, 4, as_of=AS_OF)
    assert generate_people(20, 4, as_of=AS_OF) == generate_people(50, 4, as_of=AS_OF)[:20]
    assert generate_people(20, 4, as_of=AS_OF) != generate_people(20, 5, as_of=AS_OF)


def test_roster_fields_are_valid() -> None:
    roster = generate_people(500, 9, as_of=AS_OF)
    assert len({p.mrn for p in roster}) == 500
    assert roster[122].mrn == "MRN-000123"
    for p in roster:
        assert p.archetype in ARCHETYPES
        assert p.sex in {"female", "male", "other", "unknown"}
        assert p.diabetes_type in {"type1", "type2", "gestational", "other"}
        assert p.glucose_units in {"mg/dL", "mmol/L"}
        assert p.first_name in people.FEMALE_FIRST_NAMES + people.MALE_FIRST_NAMES + (
            people.NEUTRAL_FIRST_NAMES
        )
        assert p.last_name in people.LAST_NAMES
        ZoneInfo(p.time_zone)
        assert ("pump" in p.tags) != ("MDI" in p.tags)
        assert ("pediatric" in p.tags) == (age(p.date_of_birth) < 18)
        assert 5 <= age(p.date_of_birth) <= 90
    zones = [p.time_zone for p in roster]
    assert zones.count(CLINIC_TIME_ZONE) > 0.75 * len(zones)
    assert len(set(zones)) > 2
    assert {p.diabetes_type for p in roster} == {"type1", "type2", "gestational", "other"}
    assert "research" in {t for p in roster for t in p.tags}


def test_target_preset_matches_the_patient() -> None:
    roster = generate_people(300, 2, as_of=AS_OF)
    presets = set()
    for p in roster:
        presets.add(p.target_preset)
        if p.archetype == "pregnancy":
            assert p.sex == "female" and "pregnancy" in p.tags
            expected = "pregnancy_gdm_t2" if p.diabetes_type == "gestational" else "pregnancy_t1"
            assert p.target_preset == expected
        elif age(p.date_of_birth) >= 65:
            assert p.target_preset == "older_high_risk"
        else:
            assert p.target_preset == "standard"
    assert presets == {"standard", "older_high_risk", "pregnancy_t1", "pregnancy_gdm_t2"}
