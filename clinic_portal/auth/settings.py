"""Account-security settings, read from the environment like every other setting.

They are added to ``app.config`` when the auth blueprint is registered (``setdefault``), so values
passed to ``create_app(config)`` win over the environment, and the environment over the defaults.
The numbers follow the issue and CareLink Personal's documented account flows: a 6-digit code
valid 15 minutes, a 15-minute lockout after 5 failed sign-ins, an expiring single-use reset link.
"""

from __future__ import annotations

from typing import Any

from clinic_portal.config import _env, _env_int

DEFAULTS: dict[str, tuple[str, int | None]] = {
    # name in app.config: (environment variable without prefix, default)
    "LOGIN_MAX_FAILURES": ("LOGIN_MAX_FAILURES", 5),
    "LOCKOUT_MINUTES": ("LOCKOUT_MINUTES", 15),
    # Per client address: failed sign-ins allowed within the window, across all accounts. A
    # whole clinic often shares one NAT address, so this is well above one person's typos.
    "LOGIN_RATE_LIMIT": ("LOGIN_RATE_LIMIT", 30),
    "LOGIN_RATE_WINDOW_MINUTES": ("LOGIN_RATE_WINDOW_MINUTES", 15),
    "CODE_MINUTES": ("CODE_MINUTES", 15),
    "CODE_MAX_ATTEMPTS": ("CODE_MAX_ATTEMPTS", 5),
    "CODE_RESEND_SECONDS": ("CODE_RESEND_SECONDS", 60),
    "RESET_LINK_MINUTES": ("RESET_LINK_MINUTES", 60),
    "SHARE_REQUEST_DAYS": ("SHARE_REQUEST_DAYS", 14),
    "KIOSK_IDLE_SECONDS": ("KIOSK_IDLE_SECONDS", 180),
}


def apply_defaults(config: dict[str, Any]) -> None:
    """Fill the account-security settings into ``config`` where they are not set already."""
    for key, (env_name, default) in DEFAULTS.items():
        if key not in config:
            config[key] = _env_int(env_name, default or 0)
    # Links in e-mails point here (e.g. https://portal.example.org). Without it the request's
    # host is used, which a forged Host header could change: set it in production.
    config.setdefault("PUBLIC_URL", _env("PUBLIC_URL"))
    config.setdefault("MAIL_DIR", _env("MAIL_DIR"))
    config.setdefault("MAIL_CA_FILE", _env("MAIL_CA_FILE"))
