"""The roster: live search (name, MRN, date of birth), tag filter, sort, paging, fragments."""

from __future__ import annotations

from datetime import date

import pytest

from clinic_portal.auth.models import Role
from clinic_portal.patients.services import search_patients
from tests.conftest import login

FRAGMENT = {"HX-Request": "true", "HX-Target": "roster-results"}


@pytest.fixture
def roster(client, make_clinic, make_user, make_patient):
    clinic = make_clinic()
    make_patient(
        clinic, "Grace", "Hopper", mrn="MRN-100", date_of_birth=date(1966, 12, 9), tags=("pump",)
    )
    make_patient(clinic, "Alan", "Turing", mrn="MRN-200", date_of_birth=date(1954, 6, 23))
    make_patient(
        clinic,
        "Ada",
        "Lovelace",
        mrn="X-300",
        date_of_birth=date(1985, 12, 10),
        tags=("pump", "research"),
    )
    make_patient(clinic, "Zoë", "Müller", mrn="MRN-400", date_of_birth=date(2001, 2, 3))
    login(client, make_user(clinic, Role.STAFF))
    return clinic


def names(html: str) -> list[str]:
    results = html.split('id="roster-results"', 1)[-1]
    return [n for n in ("Hopper", "Turing", "Lovelace", "Müller") if n in results]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("hop", ["Hopper"]),
        ("GRACE", ["Hopper"]),
        ("mrn-2", ["Turing"]),
        ("1985-12-10", ["Lovelace"]),
        ("10.12.1985", ["Lovelace"]),
        ("müll", ["Müller"]),
        ("100%", []),  # LIKE wildcards are literal
        ("", ["Hopper", "Turing", "Lovelace", "Müller"]),
    ],
)
def test_search(client, roster, query, expected) -> None:
    html = client.get("/patients/", query_string={"q": query}).get_data(as_text=True)
    assert names(html) == sorted(expected, key=["Hopper", "Turing", "Lovelace", "Müller"].index)


def test_search_fragment_is_only_the_results(client, roster) -> None:
    response = client.get("/patients/?q=hop", headers=FRAGMENT)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="roster-results"')
    assert "<html" not in html and "Hopper" in html and "Turing" not in html


def test_boosted_navigation_gets_the_whole_page(client, roster) -> None:
    html = client.get("/patients/", headers={"HX-Request": "true", "HX-Boosted": "true"}).get_data(
        as_text=True
    )
    assert "<html" in html


def test_tag_filter(client, roster) -> None:
    html = client.get("/patients/?tag=pump").get_data(as_text=True)
    assert set(names(html)) == {"Hopper", "Lovelace"}
    html = client.get("/patients/?tag=research").get_data(as_text=True)
    assert names(html) == ["Lovelace"]


def test_sort_by_date_of_birth_both_ways(client, roster) -> None:
    html = client.get("/patients/?sort=dob").get_data(as_text=True).split("roster-results")[-1]
    order = sorted(names(html), key=html.index)
    assert order == ["Turing", "Hopper", "Lovelace", "Müller"]
    html = client.get("/patients/?sort=-dob").get_data(as_text=True).split("roster-results")[-1]
    assert sorted(names(html), key=html.index) == ["Müller", "Lovelace", "Hopper", "Turing"]


def test_unknown_sort_and_bad_page_fall_back(client, roster) -> None:
    assert client.get("/patients/?sort=drop table&page=-4").status_code == 200
    assert client.get("/patients/?page=abc").status_code == 200


def test_paging(app, db, make_clinic, make_patient) -> None:
    clinic = make_clinic()
    for i in range(30):
        make_patient(clinic, "P", f"Name{i:02d}")
    first = search_patients(db, clinic_id=clinic.id, page=1, page_size=25)
    last = search_patients(db, clinic_id=clinic.id, page=2, page_size=25)
    beyond = search_patients(db, clinic_id=clinic.id, page=99, page_size=25)
    assert (first.total, first.pages, len(first.patients), len(last.patients)) == (30, 2, 25, 5)
    assert beyond.page == 2
    assert {p.id for p in first.patients}.isdisjoint({p.id for p in last.patients})


def test_roster_never_lists_another_clinics_patients(db, make_clinic, make_patient) -> None:
    a, b = make_clinic("A"), make_clinic("B")
    make_patient(a, "Only", "InA")
    make_patient(b, "Only", "InB")
    result = search_patients(db, clinic_id=b.id, query="only")
    assert [p.last_name for p in result.patients] == ["InB"]


def test_paging_links_work_without_javascript(client, make_clinic, make_user, make_patient):
    clinic = make_clinic()
    for i in range(30):
        make_patient(clinic, "P", f"Name{i:02d}")
    login(client, make_user(clinic, Role.CLINICIAN))
    html = client.get("/patients/").get_data(as_text=True)
    assert 'href="/patients/?page=2"' in html
    assert "Name29" in client.get("/patients/?page=2").get_data(as_text=True)
