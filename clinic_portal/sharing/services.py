"""Share requests: how a patient account's data becomes visible to a clinic, and stops being.

The rule every clinical page follows (:func:`data_access`):

* a roster record that never had an accepted share stays open to its clinic: a *custodial*
  record (no account, such as a patient who only uploads at the kiosk), and a record the clinic
  linked to an account itself (the demo seed does; :func:`adopt_clinic_links` turns such a link
  into an accepted share the patient sees and can stop);
* once a record has had an accepted share, it is open only while a share is ``accepted``: a
  revocation closes it at the next request, and a new pending request does not reopen it.

``Patient.account_id`` is set exactly while the link is live (uploads from home land in the
records it names) and cleared on revocation. Lifecycle and choices: docs/sharing.md.
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from clinic_portal import timeutil
from clinic_portal.audit.trail import record_audit
from clinic_portal.auth.models import Clinic, Role, User
from clinic_portal.auth.services import (
    AccountError,
    LoginPolicy,
    check_rate_limit,
    find_account,
)
from clinic_portal.auth.verification import token_hash
from clinic_portal.mail import external_url, send_mail
from clinic_portal.patients.models import Patient
from clinic_portal.sharing.models import ShareRequest, ShareState

# Tidepool's clinic share codes: 3 groups of 4 from an alphabet without 0/O, 1/I
# (tidepool-org/clinic clinics/sharecode.go, shared/reference/features.md a.2).
SHARE_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
SHARE_CODE_GROUPS = 3
SHARE_CODE_GROUP_LENGTH = 4
OPEN_STATES = (ShareState.PENDING, ShareState.ACCEPTED)


class ShareError(AccountError):
    """A share change was refused; the message is safe to show."""


@dataclasses.dataclass(frozen=True)
class DataAccess:
    """Whether a clinic may see a roster record's data, and the share deciding it."""

    open: bool
    share: ShareRequest | None
    linked: bool  # the record is or was linked to a patient account


# --- share codes -----------------------------------------------------------------------------
def new_share_code() -> str:
    """A random clinic share code such as ``K7QF-2MZP-X9AD``."""
    chars = [secrets.choice(SHARE_CODE_ALPHABET) for _ in range(12)]
    groups = [
        "".join(chars[i : i + SHARE_CODE_GROUP_LENGTH])
        for i in range(0, len(chars), SHARE_CODE_GROUP_LENGTH)
    ]
    return "-".join(groups)


def normalize_share_code(text: str) -> str | None:
    """The code as stored (upper case, dashes), or ``None`` when it cannot be one."""
    raw = "".join(ch for ch in text.upper() if ch.isalnum())
    if len(raw) != SHARE_CODE_GROUPS * SHARE_CODE_GROUP_LENGTH or any(
        ch not in SHARE_CODE_ALPHABET for ch in raw
    ):
        return None
    return "-".join(raw[i : i + SHARE_CODE_GROUP_LENGTH] for i in range(0, len(raw), 4))


def ensure_share_code(session: Session, clinic: Clinic) -> str:
    """The clinic's share code, made on first use."""
    if not clinic.share_code:
        clinic.share_code = new_share_code()
        session.flush()
    return clinic.share_code


def regenerate_share_code(session: Session, *, actor: User, clinic: Clinic) -> str:
    """Replace the clinic's share code (shares made with the old one stay)."""
    clinic.share_code = new_share_code()
    session.flush()
    record_audit(session, actor=actor, action="share.code_regenerated", clinic_id=clinic.id)
    return clinic.share_code


def find_clinic_by_code(
    session: Session, *, account: User, code: str, ip_address: str | None, policy: LoginPolicy
) -> Clinic:
    """The clinic a patient's share code names. Unknown codes count against the client address
    like failed sign-ins, so codes cannot be guessed.

    Raises:
        TooManyAttempts: the address entered too many wrong codes (or failed sign-ins).
        ShareError: no clinic has this code (audited as ``share.code_unknown``).
    """
    check_rate_limit(session, ip_address, policy=policy, action="share.code_rate_limited")
    clinic = clinic_for_code(session, code)
    if clinic is None:
        record_audit(session, actor=account, action="share.code_unknown", ip_address=ip_address)
        raise ShareError("No clinic has this share code. Check it with your clinic.")
    return clinic


def clinic_for_code(session: Session, code: str) -> Clinic | None:
    """The clinic whose share code is ``code`` (any case, with or without dashes)."""
    normalized = normalize_share_code(code)
    if normalized is None:
        return None
    return session.exec(select(Clinic).where(Clinic.share_code == normalized)).first()


# --- the access rule -------------------------------------------------------------------------
def latest_shares(session: Session, patient_ids: list[int]) -> dict[int, ShareRequest]:
    """The newest share request of each roster record that has one."""
    if not patient_ids:
        return {}
    newest = (
        select(func.max(ShareRequest.id))
        .where(col(ShareRequest.patient_id).in_(patient_ids))
        .group_by(col(ShareRequest.patient_id))
    )
    rows = session.exec(select(ShareRequest).where(col(ShareRequest.id).in_(newest)))
    return {row.patient_id: row for row in rows}


def _governed(session: Session, patient_ids: list[int]) -> set[int]:
    """Records whose data depends on a share: they have an accepted or a revoked one."""
    if not patient_ids:
        return set()
    return set(
        session.exec(
            select(ShareRequest.patient_id)
            .where(
                col(ShareRequest.patient_id).in_(patient_ids),
                col(ShareRequest.state).in_([ShareState.ACCEPTED, ShareState.REVOKED]),
            )
            .distinct()
        )
    )


def data_open_clause(patient_id: Any) -> Any:
    """SQL twin of :func:`data_access`: true where the record's clinic may see its data now
    (no share ever governed it, or one is accepted). For queries that sort or filter on
    glucose numbers, so a patient who stopped sharing is never ordered by their numbers."""
    governed = sa.exists().where(
        col(ShareRequest.patient_id) == patient_id,
        col(ShareRequest.state).in_([ShareState.ACCEPTED, ShareState.REVOKED]),
    )
    accepted = sa.exists().where(
        col(ShareRequest.patient_id) == patient_id,
        col(ShareRequest.state) == ShareState.ACCEPTED,
    )
    return sa.or_(~governed, accepted)


def _accepted(session: Session, patient_ids: list[int]) -> dict[int, ShareRequest]:
    if not patient_ids:
        return {}
    rows = session.exec(
        select(ShareRequest).where(
            col(ShareRequest.patient_id).in_(patient_ids),
            ShareRequest.state == ShareState.ACCEPTED,
        )
    )
    return {row.patient_id: row for row in rows}


def data_access(session: Session, patient: Patient) -> DataAccess:
    """Whether the record's clinic may see its data now (see the module docstring)."""
    pid = patient.id or 0
    accepted = _accepted(session, [pid]).get(pid)
    governed = bool(_governed(session, [pid]))
    latest = accepted or latest_shares(session, [pid]).get(pid)
    return DataAccess(
        open=accepted is not None or not governed,
        share=latest,
        linked=governed or patient.account_id is not None,
    )


def closed_patient_ids(session: Session, patients: list[Patient]) -> set[int]:
    """The ids of ``patients`` whose data their clinic may not see now (for lists such as the
    roster or triage, which must not show numbers of a patient who stopped sharing)."""
    ids = [p.id for p in patients if p.id is not None]
    return _governed(session, ids) - set(_accepted(session, ids))


# --- the clinic's side -----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PatientSharing:
    """The clinic's sharing page of one roster record: its requests and the access rule."""

    shares: list[ShareRequest]
    access: DataAccess


def patient_sharing(session: Session, patient: Patient) -> PatientSharing:
    """Every share request of ``patient`` (newest first) and whether its data is open."""
    return PatientSharing(shares_of_patient(session, patient), data_access(session, patient))


def shares_of_patient(session: Session, patient: Patient) -> list[ShareRequest]:
    """Every share request of a roster record, newest first."""
    return list(
        session.exec(
            select(ShareRequest)
            .where(ShareRequest.patient_id == patient.id)
            .order_by(col(ShareRequest.id).desc())
        )
    )


def _open_share(session: Session, patient: Patient, now: datetime) -> ShareRequest | None:
    for share in shares_of_patient(session, patient):
        if share.state_at(now) in OPEN_STATES:
            return share
    return None


def request_share(
    session: Session,
    *,
    actor: User,
    clinic: Clinic,
    patient: Patient,
    who: str,
    policy: LoginPolicy,
) -> ShareRequest:
    """Ask the patient with user name or e-mail address ``who`` to share with the clinic.

    With no account for an e-mail address, the mail invites the person to register from a
    link; the request then waits for the new account. A user name must belong to an account.

    Raises:
        ShareError: the record already shares or waits, the name is unknown, or the account
            already shares with this clinic through another record.
        clinic_portal.mail.MailError: the mail could not be sent.
    """
    if patient.clinic_id != clinic.id or actor.clinic_id != clinic.id:
        raise ShareError("That patient is not on this clinic's roster.")
    now = timeutil.utcnow()
    existing = _open_share(session, patient, now)
    if existing is not None:
        if existing.state == ShareState.ACCEPTED:
            raise ShareError("This patient already shares their data with the clinic.")
        raise ShareError("A request is already waiting for this patient: resend it instead.")
    who = who.strip()
    account = find_account(session, who)
    if account is not None and account.role != Role.PATIENT:
        raise ShareError("That is a clinic account, not a patient's. Check the address.")
    if account is None and "@" not in who:
        raise ShareError(
            "No patient account has that user name. Ask by e-mail address to send an invitation."
        )
    if account is not None:
        _refuse_second_record(session, clinic, account, patient)
    share = ShareRequest(
        clinic_id=clinic.id,
        patient_id=patient.id,  # type: ignore[arg-type]
        account_id=account.id if account else None,
        invite_email=None if account else who.lower(),
        created_by_id=actor.id,
        created_at=now,
    )
    session.add(share)
    _send(session, share, clinic, account, policy=policy, now=now)
    record_audit(
        session,
        actor=actor,
        action="share.request",
        clinic_id=clinic.id,
        patient_id=patient.id,
        detail={
            "share_id": share.id,
            "to": "account" if account else "invitation",
            "email": who.lower() if account is None else account.email,
        },
    )
    return share


def _refuse_second_record(session: Session, clinic: Clinic, account: User, patient: Patient):
    other = session.exec(
        select(ShareRequest).where(
            ShareRequest.clinic_id == clinic.id,
            ShareRequest.account_id == account.id,
            ShareRequest.state == ShareState.ACCEPTED,
            ShareRequest.patient_id != patient.id,
        )
    ).first()
    if other is not None:
        raise ShareError("This account already shares with the clinic through another record.")


def _send(
    session: Session,
    share: ShareRequest,
    clinic: Clinic,
    account: User | None,
    *,
    policy: LoginPolicy,
    now: datetime,
) -> None:
    share.state = ShareState.PENDING
    share.sent_at = now
    share.expires_at = now + policy.share_lifetime
    until = f"{share.expires_at:%Y-%m-%d}"
    if account is not None:
        share.token_hash = None
        session.flush()
        send_mail(
            account.email,
            f"{clinic.name} asks to see your diabetes data",
            f"Hello {account.name},\n\n"
            f"{clinic.name} asks to see the diabetes device data in your clinic_portal account. "
            "Sign in to read the clinic's terms and accept or decline:\n\n"
            f"    {external_url('my_shares.detail', share_id=share.id)}\n\n"
            f"The request is open until {until}. You can stop sharing at any time.\n",
        )
        return
    token = secrets.token_urlsafe(32)
    share.token_hash = token_hash(token)
    session.flush()
    send_mail(
        share.invite_email or "",
        f"{clinic.name} invites you to share your diabetes data",
        "Hello,\n\n"
        f"{clinic.name} uses clinic_portal to look at diabetes device data with their patients "
        "and invites you to share yours. Create your account with this link, then accept the "
        "clinic's request:\n\n"
        f"    {external_url('auth.register', invite=token)}\n\n"
        f"The invitation is open until {until}. If you were not expecting it, ignore this mail.\n",
    )


def resend_share(
    session: Session, *, actor: User, share: ShareRequest, policy: LoginPolicy
) -> ShareRequest:
    """Send a waiting or expired request again, open for another full period.

    Raises:
        ShareError: the request was answered or cancelled.
        clinic_portal.mail.MailError: the mail could not be sent.
    """
    now = timeutil.utcnow()
    if share.clinic_id != actor.clinic_id:
        raise ShareError("That request belongs to another clinic.")
    if share.state_at(now) not in (ShareState.PENDING, ShareState.EXPIRED):
        raise ShareError("Only a waiting or expired request can be sent again.")
    clinic = session.get(Clinic, share.clinic_id)
    patient = session.get(Patient, share.patient_id)
    if clinic is None or patient is None:
        raise ShareError("That request belongs to another clinic.")
    other = _open_share(session, patient, now)
    if other is not None and other.id != share.id:
        raise ShareError("Another request for this patient is open.")
    account = session.get(User, share.account_id) if share.account_id else None
    _send(session, share, clinic, account, policy=policy, now=now)
    record_audit(
        session,
        actor=actor,
        action="share.resend",
        clinic_id=share.clinic_id,
        patient_id=share.patient_id,
        detail={"share_id": share.id},
    )
    return share


def cancel_share(session: Session, *, actor: User, share: ShareRequest) -> ShareRequest:
    """Withdraw a request the patient has not answered.

    Raises:
        ShareError: the request is not waiting any more.
    """
    now = timeutil.utcnow()
    if share.clinic_id != actor.clinic_id:
        raise ShareError("That request belongs to another clinic.")
    if share.state_at(now) not in (ShareState.PENDING, ShareState.EXPIRED):
        raise ShareError("Only a request the patient has not answered can be cancelled.")
    share.state = ShareState.CANCELLED
    share.cancelled_at = now
    share.token_hash = None
    session.flush()
    record_audit(
        session,
        actor=actor,
        action="share.cancel",
        clinic_id=share.clinic_id,
        patient_id=share.patient_id,
        detail={"share_id": share.id},
    )
    return share


# --- the patient's side ----------------------------------------------------------------------
def shares_of_account(session: Session, account: User) -> list[tuple[ShareRequest, Clinic]]:
    """The account's share requests (every clinic), newest first, with their clinics."""
    rows = session.exec(
        select(ShareRequest, Clinic)
        .join(Clinic, Clinic.id == ShareRequest.clinic_id)  # type: ignore[arg-type]
        .where(ShareRequest.account_id == account.id)
        .order_by(col(ShareRequest.id).desc())
    )
    return [(share, clinic) for share, clinic in rows]


def my_shares(session: Session, account: User) -> list[tuple[ShareRequest, Clinic]]:
    """The patient's sharing page: links a clinic made without a share become accepted shares
    first (:func:`adopt_clinic_links`), then every request with its clinic, newest first."""
    adopt_clinic_links(session, account)
    return shares_of_account(session, account)


def invitation_for_token(session: Session, token: str) -> tuple[ShareRequest, Clinic] | None:
    """The waiting invitation (and its clinic) behind a register link's token."""
    row = session.exec(
        select(ShareRequest, Clinic)
        .join(Clinic, Clinic.id == ShareRequest.clinic_id)  # type: ignore[arg-type]
        .where(ShareRequest.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    share, clinic = row
    if share.account_id is not None or share.state_at(timeutil.utcnow()) != ShareState.PENDING:
        return None
    return share, clinic


def adopt_clinic_links(session: Session, account: User) -> int:
    """Give every record a clinic linked to ``account`` without a share (the demo seed, older
    data) an accepted share, so that the patient sees the clinic and can stop sharing.

    Returns how many links were adopted.
    """
    linked = session.exec(select(Patient).where(Patient.account_id == account.id)).all()
    with_share = _governed(session, [p.id for p in linked if p.id is not None])
    now = timeutil.utcnow()
    adopted = 0
    for patient in linked:
        if patient.id in with_share:
            continue
        share = ShareRequest(
            clinic_id=patient.clinic_id,
            patient_id=patient.id,  # type: ignore[arg-type]
            account_id=account.id,
            via="clinic_link",
            state=ShareState.ACCEPTED,
            created_at=now,
            accepted_at=now,
        )
        session.add(share)
        session.flush()
        record_audit(
            session,
            actor=account,
            action="share.adopt_link",
            clinic_id=patient.clinic_id,
            patient_id=patient.id,
            detail={"share_id": share.id},
        )
        adopted += 1
    return adopted


def claim_invitation(session: Session, *, account: User, token: str) -> ShareRequest | None:
    """Attach the invitation behind a register link to the new ``account`` (the link proves the
    mail reached its owner); ``None`` when the token matches no waiting invitation."""
    found = invitation_for_token(session, token)
    if found is None:
        return None
    share = found[0]
    share.account_id = account.id
    session.flush()
    record_audit(
        session,
        actor=account,
        action="share.invitation_claimed",
        clinic_id=share.clinic_id,
        patient_id=share.patient_id,
        detail={"share_id": share.id},
    )
    return share


def attach_invitations(session: Session, account: User) -> int:
    """Attach invitations sent to the account's (now verified) e-mail address; returns how many."""
    if account.email_verified_at is None:
        return 0
    rows = list(
        session.exec(
            select(ShareRequest).where(
                ShareRequest.invite_email == account.email,
                col(ShareRequest.account_id).is_(None),
            )
        )
    )
    for share in rows:
        share.account_id = account.id
        record_audit(
            session,
            actor=account,
            action="share.invitation_claimed",
            clinic_id=share.clinic_id,
            patient_id=share.patient_id,
            detail={"share_id": share.id},
        )
    session.flush()
    return len(rows)


def _own(share: ShareRequest, account: User) -> None:
    if share.account_id is None or share.account_id != account.id:
        raise ShareError("That request is not for your account.")


def accept_share(
    session: Session, *, account: User, share: ShareRequest, consent: bool
) -> ShareRequest:
    """Accept a clinic's request with consent to its terms: the clinic sees the data from now.

    Raises:
        ShareError: no consent, not the account's request, or not waiting any more.
    """
    _own(share, account)
    now = timeutil.utcnow()
    state = share.state_at(now)
    if state != ShareState.PENDING:
        raise ShareError(f"This request cannot be accepted any more ({state.label.lower()}).")
    if not consent:
        raise ShareError("Tick the box to agree to the clinic's terms, or decline the request.")
    clinic = session.get(Clinic, share.clinic_id)
    patient = session.get(Patient, share.patient_id)
    if clinic is None or patient is None:
        raise ShareError("That request is not for your account.")
    _refuse_second_record(session, clinic, account, patient)
    if patient.account_id not in (None, account.id):
        raise ShareError("The clinic's record is linked to another account. Ask the clinic.")
    share.state = ShareState.ACCEPTED
    share.accepted_at = now
    share.consent_text = clinic.share_terms
    share.token_hash = None
    patient.account_id = account.id
    session.flush()
    record_audit(
        session,
        actor=account,
        action="share.accept",
        clinic_id=share.clinic_id,
        patient_id=share.patient_id,
        detail={"share_id": share.id, "via": share.via},
    )
    return share


def decline_share(session: Session, *, account: User, share: ShareRequest) -> ShareRequest:
    """Decline a clinic's waiting request.

    Raises:
        ShareError: not the account's request, or not waiting any more.
    """
    _own(share, account)
    now = timeutil.utcnow()
    if share.state_at(now) != ShareState.PENDING:
        raise ShareError("Only a waiting request can be declined.")
    share.state = ShareState.DECLINED
    share.declined_at = now
    share.token_hash = None
    session.flush()
    record_audit(
        session,
        actor=account,
        action="share.decline",
        clinic_id=share.clinic_id,
        patient_id=share.patient_id,
        detail={"share_id": share.id},
    )
    return share


def revoke_share(session: Session, *, account: User, share: ShareRequest) -> ShareRequest:
    """Stop sharing with a clinic: its next request for this patient's data is refused.

    Raises:
        ShareError: not the account's share, or not accepted.
    """
    _own(share, account)
    if share.state != ShareState.ACCEPTED:
        raise ShareError("Only an active share can be stopped.")
    share.state = ShareState.REVOKED
    share.revoked_at = timeutil.utcnow()
    patient = session.get(Patient, share.patient_id)
    if patient is not None and patient.account_id == account.id:
        # Uploads from home go to the records linked to the account: not to this one any more.
        patient.account_id = None
    session.flush()
    record_audit(
        session,
        actor=account,
        action="share.revoke",
        clinic_id=share.clinic_id,
        patient_id=share.patient_id,
        detail={"share_id": share.id},
    )
    return share


@dataclasses.dataclass(frozen=True)
class CodeShareDetails:
    """What a patient tells a clinic when sharing with its code (for the new roster record)."""

    first_name: str
    last_name: str
    date_of_birth: date


def share_by_code(
    session: Session,
    *,
    account: User,
    clinic: Clinic,
    details: CodeShareDetails,
    consent: bool,
) -> ShareRequest:
    """Share the account's data with ``clinic`` after entering its share code.

    A waiting request of that clinic to this account is accepted; otherwise a new roster
    record is created from ``details`` (without an MRN: staff add one) and linked.

    Raises:
        ShareError: no consent, the account already shares with the clinic, or bad details.
    """
    if account.role != Role.PATIENT:
        raise ShareError("Only patient accounts share their data with a clinic.")
    if not consent:
        raise ShareError("Tick the box to agree to the clinic's terms.")
    now = timeutil.utcnow()
    current = session.exec(
        select(ShareRequest).where(
            ShareRequest.clinic_id == clinic.id,
            ShareRequest.account_id == account.id,
            col(ShareRequest.state).in_([ShareState.PENDING, ShareState.ACCEPTED]),
        )
    ).all()
    for share in current:
        if share.state == ShareState.ACCEPTED:
            raise ShareError(f"You already share your data with {clinic.name}.")
    for share in current:
        if share.state_at(now) == ShareState.PENDING:
            return accept_share(session, account=account, share=share, consent=True)
    first, last = details.first_name.strip(), details.last_name.strip()
    if not first or not last:
        raise ShareError("Enter your first and last name as the clinic knows them.")
    if details.date_of_birth > now.date() or details.date_of_birth.year < 1900:
        raise ShareError("Enter your date of birth.")
    patient = Patient(
        clinic_id=clinic.id,  # type: ignore[arg-type]
        first_name=first,
        last_name=last,
        search_name=f"{first} {last}".lower(),
        date_of_birth=details.date_of_birth,
        time_zone=clinic.time_zone,
        email=account.email,
        account_id=account.id,
    )
    session.add(patient)
    session.flush()
    share = ShareRequest(
        clinic_id=clinic.id,  # type: ignore[arg-type]
        patient_id=patient.id,  # type: ignore[arg-type]
        account_id=account.id,
        via="share_code",
        state=ShareState.ACCEPTED,
        created_at=now,
        accepted_at=now,
        consent_text=clinic.share_terms,
    )
    session.add(share)
    session.flush()
    record_audit(
        session,
        actor=account,
        action="patient.create",
        clinic_id=clinic.id,
        patient_id=patient.id,
        detail={"via": "share_code"},
    )
    record_audit(
        session,
        actor=account,
        action="share.accept",
        clinic_id=clinic.id,
        patient_id=patient.id,
        detail={"share_id": share.id, "via": "share_code"},
    )
    return share
