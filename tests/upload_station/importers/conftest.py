"""Fixtures for the importer tests: sample files in tests/fixtures and in shared/samples."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from clinic_portal.records import RecordBatch
from clinic_portal.upload_station.importers import parse_file

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# The repository root's parent holds shared/ (overridable with CLINIC_PORTAL_SHARED).
SHARED = Path(
    os.environ.get("CLINIC_PORTAL_SHARED", Path(__file__).resolve().parents[3] / ".." / "shared")
)
SAMPLES = SHARED / "samples"
# A fixed "now" after every sample so that results do not depend on the day the tests run.
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def fixture_bytes(folder: str, name: str) -> bytes:
    """Bytes of a file in tests/fixtures/<folder>/."""
    return (FIXTURES / folder / name).read_bytes()


def sample_bytes(folder: str, name: str) -> bytes:
    """Bytes of a shared sample; skips the test when shared/ is not checked out."""
    path = SAMPLES / folder / name
    if not path.exists():
        pytest.skip(f"shared samples not available ({path})")
    return path.read_bytes()


@pytest.fixture
def parse() -> Callable[..., RecordBatch]:
    """``parse(data, tz=...)`` with the fixed test ``now``."""

    def run(data: bytes, tz: str = "Europe/Brussels", **kwargs: object) -> RecordBatch:
        return parse_file(data, tz=tz, now=NOW, **kwargs)  # type: ignore[arg-type]

    return run
