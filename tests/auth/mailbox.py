"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for mail tests.

Import the fixtures into a test module: ``from tests.auth.mailbox import mailbox, mail_app``.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """Collects every message the server accepts (aiosmtpd handler protocol)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = 0

    async def handle_DATA(self, _server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages sent to ``address``, oldest first."""
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def last_body(self, address: str) -> str:
        found = self.to(address)
        assert found, f"no mail to {address}; got {[str(m['To']) for m in self.messages]}"
        body = found[-1].get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())

    def code(self, address: str) -> str:
        """The 6-digit sign-in code in the latest mail to ``address``."""
        match = re.search(r"^\s+(\d{6})\s*$", self.last_body(address), re.MULTILINE)
        assert match, self.last_body(address)
        return match.group(1)

    def link(self, address: str) -> str:
        """The first link in the latest mail to ``address``."""
        match = re.search(r"https?://\S+", self.last_body(address))
        assert match, self.last_body(address)
        return match.group(0)


def start(handler: Mailbox, **kwargs: Any) -> Controller:
    handler.port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port, **kwargs)
    controller.start()
    return controller


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A plain SMTP server on 127.0.0.1 (no TLS, no login)."""
    box = Mailbox()
    controller = start(box)
    yield box
    controller.stop()


@pytest.fixture
def mail_app(app: Flask, mailbox: Mailbox) -> Flask:
    """The test app sending its mail to :func:`mailbox`."""
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=mailbox.port, MAIL_USE_TLS=False)
    # tests.conftest.login reads sign-in codes from here when mail goes to this server.
    app.extensions["test_mailbox"] = mailbox
    return app


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
