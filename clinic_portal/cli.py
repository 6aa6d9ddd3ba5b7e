"""``flask db``: Alembic migrations as an explicit step (the app never migrates on start)."""

from __future__ import annotations

import click
from alembic import command
from alembic.config import Config
from flask import current_app
from flask.cli import AppGroup

from clinic_portal import ROOT

db_cli = AppGroup("db", help="Database migrations (Alembic).")


def alembic_config(url: str | None = None) -> Config:
    """Alembic settings for this project; ``url`` defaults to the app's database."""
    config = Config()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    # Dated file names keep the history readable in a directory listing.
    config.set_main_option(
        "file_template",
        "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s",
    )
    config.set_main_option("timezone", "UTC")
    db_url = url or current_app.config["DATABASE_URL"]
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    return config


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    command.upgrade(alembic_config(), revision)


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Migrate the database down to REVISION (``base`` empties it)."""
    command.downgrade(alembic_config(), revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
@click.option("--autogenerate/--empty", default=True)
def revision(message: str, autogenerate: bool) -> None:
    """Write a new migration, compared against the models when --autogenerate."""
    command.revision(alembic_config(), message=message, autogenerate=autogenerate)


@db_cli.command("check")
def check() -> None:
    """Fail when the models have changes that no migration covers."""
    command.check(alembic_config())


@db_cli.command("current")
def current() -> None:
    """Show the database's revision."""
    command.current(alembic_config())
