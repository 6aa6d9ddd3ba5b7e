"""Domain events: one package announces, another reacts, without importing each other.

Senders pass their database session as the signal's sender, so a receiver works inside the
sender's transaction (a rolled-back request leaves no trace of the reaction either). Receivers
are connected in ``create_app`` (``clinic_portal/__init__.py``), never at import time, so that
importing a module has no side effects and the connections are visible in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blinker import Namespace

events = Namespace()

#: A batch of device records was stored (before commit). Keyword arguments: ``patient_id``,
#: ``upload``. The summary cache marks the patient's metrics stale.
records_ingested = events.signal("records-ingested")

#: An account proved that it owns its e-mail address (a sign-in code or a reset link reached
#: it). Keyword argument: ``account``. Sharing attaches invitations sent to that address.
account_verified = events.signal("account-verified")

#: A patient account was created through the sign-up page. Keyword arguments: ``account`` and
#: ``invitation`` (the invitation token the person followed, or ``None``). Sharing links the
#: invitation to the new account.
account_registered = events.signal("account-registered")

#: Asked by the sign-up page when someone follows an invitation link. Keyword argument:
#: ``token``. A receiver that knows a waiting invitation for it returns an
#: :class:`InvitationInfo`; the page pre-fills the address and names the clinic.
invitation_lookup = events.signal("invitation-lookup")


@dataclass(frozen=True, slots=True)
class InvitationInfo:
    """What the sign-up page shows about an invitation: the invited address and the clinic."""

    email: str | None
    clinic_name: str


def look_up_invitation(session: Any, token: str) -> InvitationInfo | None:
    """The first answer of an :data:`invitation_lookup` receiver, or ``None``."""
    for _receiver, answer in invitation_lookup.send(session, token=token):
        if isinstance(answer, InvitationInfo):
            return answer
    return None
