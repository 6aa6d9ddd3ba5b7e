"""Settings from the environment (prefix ``CLINIC_PORTAL_``) with safe development defaults.

A production start (``CLINIC_PORTAL_ENV=production``) refuses to run with the development secret
key, with SQLite outside an explicit opt-in, or without secure cookies.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

PREFIX = "CLINIC_PORTAL_"
DEV_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - refused in production, see check_production


class ConfigError(RuntimeError):
    """The configuration is unsafe or incomplete."""


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(PREFIX + name, default)


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}{name} must be a whole number, got {raw!r}") from exc


def load_config(instance_path: Path) -> dict[str, Any]:
    """Read every setting from the environment; returns a dict for ``app.config``."""
    env = (_env("ENV", "development") or "development").lower()
    production = env == "production"
    default_db = f"sqlite:///{instance_path / 'clinic_portal.sqlite'}"
    return {
        "ENV_NAME": env,
        "SECRET_KEY": _env("SECRET_KEY", DEV_SECRET_KEY),
        "DATABASE_URL": _env("DATABASE_URL", default_db),
        "SQL_ECHO": _env_bool("SQL_ECHO", False),
        # Sessions: HttpOnly always; Secure in production (HTTPS), SameSite=Lax against CSRF.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _env_bool("SECURE_COOKIES", production),
        "SESSION_COOKIE_NAME": "clinic_portal_session",
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SECURE": _env_bool("SECURE_COOKIES", production),
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": _env_int("SESSION_MINUTES", 8 * 60) * 60,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "WTF_CSRF_HEADERS": ["X-CSRFToken"],
        "UPLOAD_MAX_BYTES": _env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024),
        "MAX_CONTENT_LENGTH": _env_int("UPLOAD_MAX_BYTES", 50 * 1024 * 1024) + 1024 * 1024,
        "ROSTER_PAGE_SIZE": _env_int("ROSTER_PAGE_SIZE", 25),
        "DEFAULT_TIME_ZONE": _env("DEFAULT_TIME_ZONE", "Europe/Berlin"),
        "MAIL_SERVER": _env("MAIL_SERVER"),
        "MAIL_PORT": _env_int("MAIL_PORT", 587),
        "MAIL_USE_TLS": _env_bool("MAIL_USE_TLS", True),
        "MAIL_USERNAME": _env("MAIL_USERNAME"),
        "MAIL_PASSWORD": _env("MAIL_PASSWORD"),
        "MAIL_FROM": _env("MAIL_FROM", "clinic-portal@localhost"),
        "ALLOW_SQLITE_IN_PRODUCTION": _env_bool("ALLOW_SQLITE_IN_PRODUCTION", False),
    }


def check_production(config: dict[str, Any]) -> None:
    """Refuse an unsafe production configuration.

    Raises:
        ConfigError: with the reason, naming the environment variable to set.
    """
    if config.get("ENV_NAME") != "production":
        return
    secret = config.get("SECRET_KEY") or ""
    if secret == DEV_SECRET_KEY or len(secret) < 32:
        raise ConfigError(
            f"{PREFIX}SECRET_KEY must be set to a random value of at least 32 characters in "
            "production (e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if not config.get("SESSION_COOKIE_SECURE"):
        raise ConfigError(f"{PREFIX}SECURE_COOKIES must not be off in production")
    if str(config.get("DATABASE_URL", "")).startswith("sqlite") and not config.get(
        "ALLOW_SQLITE_IN_PRODUCTION"
    ):
        raise ConfigError(
            f"production uses PostgreSQL: set {PREFIX}DATABASE_URL "
            f"(or {PREFIX}ALLOW_SQLITE_IN_PRODUCTION=1 for a single-user install)"
        )
