"""Password hashing with argon2id (argon2-cffi's recommended defaults) and the password policy.

Policy (NIST SP 800-63B §5.1.1.2: a length floor and a check against known weak passwords rather
than composition rules): at least :data:`MIN_PASSWORD_LENGTH` characters, not a common password
from the list shipped with the project (``common_passwords.txt``, with simple variations folded
away), and not the account's own e-mail name.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

# Verifying against this keeps the time of a login for an unknown e-mail address the same as for
# a known one, so response times do not reveal which addresses have accounts.
_DUMMY_HASH = _hasher.hash("not-a-real-password-only-for-timing")

MIN_PASSWORD_LENGTH = 12


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; always spends one argon2 verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
# Letter-for-digit swaps people use to "strengthen" a word (p4ssw0rd, s3cr3t).
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_EDGES = re.compile(r"^[\W\d_]+|[\W\d_]+$")
_SEPARATORS = re.compile(r"[\W_]+")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords (lower case; ``#`` lines are comments)."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _unit(text: str) -> str:
    """The repeated unit of ``text`` ("abcabcabc" -> "abc"), or ``text`` itself."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return text[:size]
    return text


def _variants(password: str) -> set[str]:
    lowered = password.lower()
    joined = _SEPARATORS.sub("", lowered)
    core = _EDGES.sub("", lowered)
    out = {lowered, joined, core, _SEPARATORS.sub("", core)}
    out |= {v.translate(_LEET) for v in list(out)}
    out |= {_EDGES.sub("", v) for v in list(out)}
    out |= {_unit(v) for v in list(out)}
    return {v for v in out if v}


def is_common_password(password: str) -> bool:
    """True when ``password`` or a simple variation of it is on the common-password list.

    Variations: case, leading/trailing digits and symbols (``Password2024!``), separators,
    letter-for-digit swaps (``p4ssw0rd``) and repeats (``passwordpassword``). A password made
    only of digits or only of one repeated character also counts as common.
    """
    common = common_passwords()
    variants = _variants(password)
    if any(v in common for v in variants):
        return True
    return password.isdigit() or len(_unit(password)) == 1


def password_problem(password: str, *, email: str | None = None) -> str | None:
    """Why ``password`` is not acceptable, or ``None`` when it is.

    Args:
        password: the new password as typed.
        email: the account's address; its name part may not be the password.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(set(password)) < 4:
        return "Use more different characters."
    if is_common_password(password):
        return "This password is too common and easy to guess. Choose a less predictable one."
    local = (email or "").partition("@")[0].lower()
    if len(local) >= 4 and _SEPARATORS.sub("", local) in _variants(password):
        return "Do not use your e-mail address as the password."
    return None
