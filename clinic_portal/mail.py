"""Outgoing e-mail: SMTP when a server is configured, files under ``instance/mail/`` otherwise.

Settings (``CLINIC_PORTAL_`` prefix): ``MAIL_SERVER``, ``MAIL_PORT`` (587), ``MAIL_USE_TLS``
(STARTTLS, on by default), ``MAIL_USERNAME``/``MAIL_PASSWORD``, ``MAIL_FROM``, ``MAIL_CA_FILE``
(a CA bundle for a private mail server), ``MAIL_DIR`` (where development mail is written).
"""

from __future__ import annotations

import smtplib
import ssl
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from flask import current_app

SMTP_TIMEOUT_SECONDS = 15


class MailError(RuntimeError):
    """The mail could not be handed to the SMTP server."""


def build_message(to: str, subject: str, body: str, *, sender: str) -> EmailMessage:
    """A plain-text message (no HTML: codes and links read the same in every mail client)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
    message.set_content(body)
    return message


def send_mail(to: str, subject: str, body: str) -> None:
    """Send one plain-text mail to ``to`` with the app's mail settings.

    Raises:
        MailError: the SMTP server refused the mail or could not be reached.
    """
    config = current_app.config
    message = build_message(to, subject, body, sender=config.get("MAIL_FROM") or "portal@localhost")
    server = config.get("MAIL_SERVER")
    if not server:
        _write_to_directory(message)
        return
    try:
        with smtplib.SMTP(
            server, int(config.get("MAIL_PORT") or 25), timeout=SMTP_TIMEOUT_SECONDS
        ) as smtp:
            if config.get("MAIL_USE_TLS"):
                context = ssl.create_default_context(cafile=config.get("MAIL_CA_FILE") or None)
                smtp.starttls(context=context)
            if config.get("MAIL_USERNAME"):
                smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        current_app.logger.error("mail to %s not sent: %s", to, exc)
        raise MailError("The e-mail could not be sent. Please try again in a few minutes.") from exc


def _write_to_directory(message: EmailMessage) -> Path:
    directory = Path(current_app.config.get("MAIL_DIR") or Path(current_app.instance_path) / "mail")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.eml"
    path.write_bytes(message.as_bytes())
    # Development: no SMTP server, so say where the mail went (the console shows warnings).
    current_app.logger.warning(
        "mail to %s (%s) written to %s", message["To"], message["Subject"], path
    )
    return path


def external_url(endpoint: str, **values: Any) -> str:
    """An absolute link for a mail: under ``PUBLIC_URL`` when set, else the request's host."""
    from flask import url_for

    base = current_app.config.get("PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)
