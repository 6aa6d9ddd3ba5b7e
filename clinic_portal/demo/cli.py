"""``flask demo seed``: a demo clinic with deterministic, plausible patients and device data."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import click
from flask.cli import AppGroup

from clinic_portal.db import job_session

demo_cli = AppGroup("demo", help="Demo data for trying the portal.")


@demo_cli.command("seed")
@click.option(
    "--patients", "n_patients", default=60, show_default=True, type=click.IntRange(1, 20000)
)
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 365))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already has clinics.")
def seed(n_patients: int, days: int, seed: int, if_empty: bool) -> None:
    """Create the demo clinic, its users and N patients with D days of data each."""
    # Imported here: the generator pulls in numpy, which the web app does not need at start.
    from clinic_portal.demo.seed import clinic_is_empty, seed_demo_clinic

    with job_session() as session:
        if if_empty and not clinic_is_empty(session):
            click.echo("The database already has data; demo seeding skipped.")
            _print_logins()
            return
    # Data ends now (on the 5-minute grid) so that a fresh demo always looks recent.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    end = now - timedelta(minutes=now.minute % 5)
    started = time.perf_counter()
    with (
        click.progressbar(length=n_patients, label="Seeding demo patients") as bar,
        job_session() as session,
    ):
        summary = seed_demo_clinic(
            session,
            n_patients=n_patients,
            days=days,
            seed=seed,
            end=end,
            progress=lambda: bar.update(1),
        )
    click.echo(
        f"Demo clinic {summary.clinic_name!r}: {summary.patients} patients, "
        f"{summary.records:,} records in {time.perf_counter() - started:.1f} s."
    )
    _print_logins()


def _print_logins() -> None:
    from clinic_portal.demo.seed import DEMO_LOGINS

    click.echo("Demo logins (e-mail, password):")
    for email, password, role in DEMO_LOGINS:
        click.echo(f"  {role:<13} {email:<32} {password}")
