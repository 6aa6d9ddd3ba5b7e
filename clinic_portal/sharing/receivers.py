"""How sharing reacts to what ``clinic_portal.auth`` announces (connected in ``create_app``).

Auth never imports sharing: it announces that an account was registered or verified, and asks
whether an invitation token is known; the rules of invitations stay here.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from clinic_portal.auth.models import User
from clinic_portal.sharing.services import (
    attach_invitations,
    claim_invitation,
    invitation_for_token,
)
from clinic_portal.signals import InvitationInfo


def attach_invitations_on_verified(sender: Session, *, account: User, **_: Any) -> None:
    """An account proved its address: attach the invitations sent to it."""
    attach_invitations(sender, account)


def claim_invitation_on_registered(
    sender: Session, *, account: User, invitation: str | None = None, **_: Any
) -> None:
    """A patient signed up from an invitation link: the link proves the mail reached them."""
    if invitation:
        claim_invitation(sender, account=account, token=invitation)


def describe_invitation(sender: Session, *, token: str, **_: Any) -> InvitationInfo | None:
    """The invited address and the clinic behind an invitation token, while it waits."""
    found = invitation_for_token(sender, token)
    if found is None:
        return None
    share, clinic = found
    return InvitationInfo(email=share.invite_email, clinic_name=clinic.name)
