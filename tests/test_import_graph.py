"""The package's dependencies point one way (tests/import_graph.py states the rules)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests import import_graph as graph


def test_no_module_imports_itself_through_others() -> None:
    assert graph.find_cycle(graph.import_edges()) is None


def test_no_cycle_between_packages_and_layers() -> None:
    cycle = graph.find_cycle(graph.node_edges(graph.import_edges()))
    assert cycle is None, " -> ".join(map(str, cycle or []))


def test_no_arrow_points_the_wrong_way() -> None:
    assert graph.violations(graph.import_edges()) == []


def test_imports_inside_functions_count(tmp_path: Path) -> None:
    # An import hidden in a function body (the old way of dodging a cycle) is still an arrow.
    package = tmp_path / "clinic_portal"
    (package / "patients").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "patients" / "__init__.py").write_text("")
    (package / "patients" / "views.py").write_text("")
    (package / "patients" / "services.py").write_text(
        textwrap.dedent(
            """
            def hidden():
                from clinic_portal.patients import views
                return views
            """
        )
    )
    edges = graph.import_edges(tmp_path)
    assert edges["clinic_portal.patients.services"] == {"clinic_portal.patients.views"}
    assert graph.violations(edges) == [
        "clinic_portal.patients.services (patients:services) imports "
        "clinic_portal.patients.views (patients:web): points up a layer"
    ]


def test_the_checker_catches_a_cycle_and_an_upward_arrow() -> None:
    edges = {
        "clinic_portal.auth.models": {"clinic_portal.auth.services"},
        "clinic_portal.auth.services": {"clinic_portal.auth.models"},
        "clinic_portal.patients.services": {"clinic_portal.upload_station.views"},
        "clinic_portal.patients.models": {"clinic_portal.analytics.api"},
        "clinic_portal.patients.views": {"clinic_portal.upload_station.views"},
    }
    assert graph.find_cycle(edges) is not None
    problems = "\n".join(graph.violations(edges))
    assert "auth.models (auth:models) imports clinic_portal.auth.services" in problems
    assert "patients.services (patients:services) imports" in problems
    assert "a model imports compute" in problems
    assert "patients.views imports clinic_portal.upload_station.views" in problems


def test_layers_of_some_modules() -> None:
    assert str(graph.classify("clinic_portal.analytics.api")) == "analytics:compute"
    assert str(graph.classify("clinic_portal.analytics.summaries")) == "analytics:services"
    assert str(graph.classify("clinic_portal.sharing.models")) == "sharing:models"
    assert str(graph.classify("clinic_portal.upload_station.importers.carelink")) == (
        "upload_station:compute"
    )
    assert str(graph.classify("clinic_portal.web.loading")) == "web:web"
    assert str(graph.classify("clinic_portal.timeutil")) == "core:foundation"
    assert str(graph.classify("clinic_portal")) == "core:app"


def test_importing_the_models_loads_no_compute_code() -> None:
    # Alembic and the command line import every table; they must not pay for numba.
    code = (
        "import sys, clinic_portal.models, clinic_portal.cli; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'llvmlite')); "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == ""


def test_the_architecture_document_shows_the_current_graph() -> None:
    # docs/ARCHITECTURE.md embeds the generated diagram: `python -m tests.import_graph` updates it.
    assert graph.documented_graph() == graph.mermaid(graph.import_edges())
