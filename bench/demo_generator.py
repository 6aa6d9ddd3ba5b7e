"""Demo generator benchmark: the `make run` seed (60 patients x 30 days) and a 10,000-person roster.

Run: ``.venv/bin/python bench/demo_generator.py [--patients N] [--days D] [--runs R]``.
Prints the median wall time of R runs and the record counts of the clinic (the target for the
60 x 30 seed is well under 10 s for generation alone; ingest is measured elsewhere).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from datetime import UTC, datetime

from clinic_portal.demo.generator import generate_clinic, generate_people

END = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--roster", type=int, default=10_000)
    args = parser.parse_args()

    clinic_times = []
    counts: Counter[str] = Counter()
    for _ in range(args.runs):
        started = time.perf_counter()
        patients = list(generate_clinic(args.patients, days=args.days, seed=1, end=END))
        clinic_times.append(time.perf_counter() - started)
        counts = Counter()
        for patient in patients:
            counts.update(patient.batch.counts())
    roster_times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        generate_people(args.roster, seed=1)
        roster_times.append(time.perf_counter() - started)

    total = sum(counts.values())
    print(
        f"generate_clinic({args.patients}, days={args.days}): "
        f"median {statistics.median(clinic_times):.2f} s of {args.runs} runs "
        f"({min(clinic_times):.2f}-{max(clinic_times):.2f} s), {total:,} records"
    )
    for key, value in sorted(counts.items()):
        print(f"  {key:<14} {value:>9,}")
    print(
        f"generate_people({args.roster}): median {statistics.median(roster_times):.2f} s "
        f"of {args.runs} runs"
    )


if __name__ == "__main__":
    main()
