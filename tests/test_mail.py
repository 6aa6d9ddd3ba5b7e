"""Outgoing mail against a real SMTP server on loopback (aiosmtpd), and the development fallback."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from pathlib import Path

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask

from clinic_portal.mail import MailError, send_mail
from tests.auth.mailbox import Mailbox, free_port, mail_app, mailbox, start, tls_context

__all__ = ["mail_app", "mailbox"]


def test_mail_goes_to_the_smtp_server(mail_app: Flask, mailbox: Mailbox) -> None:
    with mail_app.app_context():
        send_mail("ada@example.org", "Your code", "Hello\n\n    123456\n")
    [message] = mailbox.to("ada@example.org")
    assert message["Subject"] == "Your code"
    assert message["From"] == mail_app.config["MAIL_FROM"]
    assert mailbox.code("ada@example.org") == "123456"


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_starttls_and_login(app: Flask, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    seen: list[tuple[str, str]] = []

    def authenticate(_server, _session, _envelope, _mechanism, auth_data) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        seen.append((auth_data.login.decode(), auth_data.password.decode()))
        # handled=False: let aiosmtpd answer 535 itself (it stays silent otherwise).
        return AuthResult(success=auth_data.password == b"mail-secret", handled=False)

    box = Mailbox()
    controller = start(
        box,
        tls_context=tls_context(cert, key),
        require_starttls=True,
        authenticator=authenticate,
        auth_require_tls=True,
    )
    try:
        app.config.update(
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=box.port,
            MAIL_USE_TLS=True,
            MAIL_CA_FILE=cert,
            MAIL_USERNAME="portal",
            MAIL_PASSWORD="mail-secret",
        )
        with app.app_context():
            send_mail("bob@example.org", "Reset", "link\n")
        assert seen == [("portal", "mail-secret")]
        assert box.to("bob@example.org")
        app.config["MAIL_PASSWORD"] = "wrong"
        with app.app_context(), pytest.raises(MailError):
            send_mail("bob@example.org", "Reset", "link\n")
        # A server whose certificate the portal does not trust is refused, not used in clear.
        app.config.update(MAIL_PASSWORD="mail-secret", MAIL_CA_FILE=None)
        with app.app_context(), pytest.raises(MailError):
            send_mail("bob@example.org", "Reset", "link\n")
        assert len(box.to("bob@example.org")) == 1
    finally:
        controller.stop()


def test_unreachable_server_raises_mail_error(app: Flask) -> None:
    app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port(), MAIL_USE_TLS=False)
    with app.app_context(), pytest.raises(MailError, match="could not be sent"):
        send_mail("ada@example.org", "Hi", "body\n")


def test_without_server_mail_is_written_to_a_file(
    app: Flask, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app.config.update(MAIL_SERVER=None, MAIL_DIR=str(tmp_path / "mail"))
    with app.app_context(), caplog.at_level(logging.WARNING):
        send_mail("ada@example.org", "Your code", "Hello\n\n    654321\n")
    [path] = list((tmp_path / "mail").glob("*.eml"))
    text = path.read_text()
    assert "To: ada@example.org" in text and "654321" in text
    assert f"written to {path}" in caplog.text
