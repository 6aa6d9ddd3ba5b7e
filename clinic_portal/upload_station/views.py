"""Upload pages: the kiosk, a patient's upload, the patient's own upload, the inbox, and each
upload's preview / progress / summary page.

URL map (clinic roles need ``UPLOAD``; patients ``PATIENT_SELF``):

=====================================  ==========================================
``/upload``                            kiosk: a file, optionally a patient
``/patients/<id>/upload``              upload for one patient (patient page)
``/me/upload``                         a patient's own upload at home
``/uploads/inbox``                     unassigned uploads; assign to a patient
``/uploads/<id>``                      preview → progress → summary of one upload
``/uploads/<id>/progress``             the polled progress fragment (286 when finished)
``/uploads/<id>/store`` (POST)         "Store this data"
``/uploads/<id>/discard`` (POST)       throw a preview away
``/uploads/<id>/assign`` (POST)        assign an inbox upload to a patient
``/me/uploads/<id>[/progress|/store|/discard]``  the same for the patient's own uploads
=====================================  ==========================================
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from jinja2_fragments.flask import render_block
from werkzeug.wrappers import Response

from clinic_portal.auth.access import Permission, client_address, requires
from clinic_portal.auth.models import Clinic
from clinic_portal.db import get_session
from clinic_portal.patients.models import Patient
from clinic_portal.upload_station.forms import NO_PATIENT, AssignForm, StoreForm, UploadForm
from clinic_portal.upload_station.models import Upload
from clinic_portal.upload_station.services import (
    COUNT_LABELS,
    UploadError,
    UploadPage,
    UploadStage,
    assign_upload,
    create_preview,
    discard_upload,
    inbox,
    inbox_count,
    own_patient_records,
    patient_choices,
    start_storing,
    upload_in_clinic,
    upload_of_account,
    upload_page,
)
from clinic_portal.web.loading import clinic_patient_or_404, current_clinic

bp = Blueprint("upload_station", __name__)

# htmx stops polling when a poll answers 286 (htmx docs, "Polling": "stop polling with 286").
STOP_POLLING = 286


def _label(patient: Patient) -> str:
    born = patient.date_of_birth.isoformat()
    return f"{patient.last_name}, {patient.first_name} (born {born}, MRN {patient.mrn or '—'})"


def _clinic_choices(*, optional: bool, query: str = "") -> list[tuple[str, str]]:
    choices = [
        (str(p.id), _label(p))
        for p in patient_choices(get_session(), current_user.clinic_id, query=query)
    ]
    if optional:
        choices.insert(0, (NO_PATIENT, "Match by device serial (unknown devices go to the inbox)"))
    return choices


def _own_choices(records: list[Patient]) -> list[tuple[str, str]]:
    return [(str(p.id), f"{p.first_name} {p.last_name} (record {p.id})") for p in records]


def _read_upload(form: UploadForm) -> tuple[bytes, str | None]:
    # Read one byte more than the limit so that a file over it is refused without reading
    # the rest of it into memory.
    storage = form.file.data
    return storage.read(current_app.config["UPLOAD_MAX_BYTES"] + 1), storage.filename


def _preview_or_error(
    form: UploadForm, *, clinic: Clinic, patient: Patient | None
) -> tuple[Any, str | None]:
    data, filename = _read_upload(form)
    try:
        result = create_preview(
            get_session(),
            data,
            filename=filename,
            clinic=clinic,
            actor=current_user,
            patient=patient,
            max_bytes=current_app.config["UPLOAD_MAX_BYTES"],
            ip_address=client_address(),
        )
    except UploadError as exc:
        return None, str(exc)
    return result, None


def _form_page(form: UploadForm, status: int = 200, **context: Any) -> tuple[str, int]:
    return render_template("upload_station/upload_form.html", form=form, **context), status


# --------------------------------------------------------------------------- clinic uploads


@bp.route("/upload", methods=["GET", "POST"])
@requires(Permission.UPLOAD)
def kiosk() -> Response | tuple[str, int]:
    """The upload station: a file, and a patient when staff know whose it is."""
    clinic = current_clinic()
    form = UploadForm()
    form.patient_id.choices = _clinic_choices(optional=True)
    context = {
        "heading": "Upload a file",
        "patient": None,
        "waiting": inbox_count(get_session(), current_user.clinic_id),
    }
    if form.validate_on_submit():
        patient = clinic_patient_or_404(int(form.patient_id.data)) if form.patient_id.data else None
        result, error = _preview_or_error(form, clinic=clinic, patient=patient)
        if error:
            form.file.errors = [error]
            return _form_page(form, 400, **context)
        return redirect(
            url_for(
                ".upload_detail",
                upload_id=result.upload.id,
                patient=patient.id if patient else None,
            ),
            303,
        )
    return _form_page(form, 400 if form.errors else 200, **context)


@bp.route("/patients/<int:patient_id>/upload", methods=["GET", "POST"])
@requires(Permission.UPLOAD)
def patient_upload(patient_id: int) -> Response | tuple[str, int]:
    """Upload a file for the patient whose page staff are on."""
    patient = clinic_patient_or_404(patient_id)
    form = UploadForm()
    del form.patient_id
    context = {"heading": f"Upload data for {patient.display_name}", "patient": patient}
    if form.validate_on_submit():
        result, error = _preview_or_error(form, clinic=current_clinic(), patient=patient)
        if error:
            form.file.errors = [error]
            return _form_page(form, 400, **context)
        return redirect(
            url_for(".upload_detail", upload_id=result.upload.id, patient=patient.id), 303
        )
    return _form_page(form, 400 if form.errors else 200, **context)


def _clinic_upload_or_404(upload_id: int) -> Upload:
    """The upload, if it belongs to the user's clinic (404 otherwise); an upload stored for a
    patient whose data is closed to the clinic (share revoked) answers 403 like every other
    page of that patient's data."""
    upload = upload_in_clinic(get_session(), current_user.clinic_id, upload_id)
    if upload is None:
        abort(404)
    if upload.patient_id is not None:
        clinic_patient_or_404(upload.patient_id)
    return upload


def _render_upload(
    page: UploadPage,
    *,
    own: bool,
    store_form: StoreForm | None = None,
    status: int = 200,
    error: str | None = None,
) -> tuple[str, int]:
    context = _upload_context(page, own=own, store_form=store_form, error=error)
    return render_template("upload_station/upload.html", **context), status


def _upload_context(page: UploadPage, *, own: bool, **extra: Any) -> dict[str, Any]:
    # The same template serves the clinic's routes and the patient's own (/me/...) routes.
    prefix = "upload_station.my_" if own else "upload_station."
    return {"page": page, "own": own, "ep": prefix, **extra}


def _store_form(page: UploadPage, *, own: bool) -> StoreForm | None:
    if page.stage != UploadStage.PREVIEW:
        return None
    form = StoreForm(formdata=None)
    if own:
        form.patient_id.choices = _own_choices(own_patient_records(get_session(), current_user.id))
    else:
        form.patient_id.choices = _clinic_choices(optional=True)
    chosen = request.args.get("patient", NO_PATIENT)
    if any(value == chosen for value, _ in form.patient_id.choices):
        form.patient_id.data = chosen
    return form


@bp.route("/uploads/<int:upload_id>")
@requires(Permission.UPLOAD)
def upload_detail(upload_id: int) -> tuple[str, int]:
    """One upload: the preview with "Store this data", its progress, or its summary."""
    upload = _clinic_upload_or_404(upload_id)
    page = upload_page(get_session(), upload, actor=current_user, ip_address=client_address())
    return _render_upload(page, own=False, store_form=_store_form(page, own=False))


def _progress(page: UploadPage, own: bool) -> tuple[str, int]:
    context = _upload_context(page, own=own, store_form=None, error=None)
    body = render_block("upload_station/upload.html", "status", **context)
    return body, (200 if page.stage == UploadStage.STORING else STOP_POLLING)


@bp.route("/uploads/<int:upload_id>/progress")
@requires(Permission.UPLOAD)
def upload_progress(upload_id: int) -> tuple[str, int]:
    """The progress fragment htmx polls every 500 ms; 286 (stop polling) once finished."""
    upload = _clinic_upload_or_404(upload_id)
    page = upload_page(get_session(), upload, actor=current_user, ip_address=client_address())
    return _progress(page, own=False)


def _store(upload_id: int, *, own: bool) -> Response | tuple[str, int]:
    db = get_session()
    form = StoreForm()
    records: list[Patient] = []
    if own:
        upload = _own_upload_or_404(upload_id)
        records = [
            p for p in own_patient_records(db, current_user.id) if p.clinic_id == upload.clinic_id
        ]
        form.patient_id.choices = _own_choices(records)
    else:
        upload = _clinic_upload_or_404(upload_id)
        form.patient_id.choices = _clinic_choices(optional=True)
    if not form.validate_on_submit() or (own and not form.patient_id.data):
        page = upload_page(db, upload, actor=current_user, audit=False)
        return _render_upload(
            page, own=own, store_form=form, status=400, error="Choose whose data this is."
        )
    patient: Patient | None = None
    if own:
        patient = next(p for p in records if str(p.id) == form.patient_id.data)
    elif form.patient_id.data:
        patient = clinic_patient_or_404(int(form.patient_id.data))
    try:
        start_storing(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            upload,
            patient=patient,
            actor=current_user,
            ip_address=client_address(),
            background=current_app.config.get("UPLOAD_BACKGROUND", True),
        )
    except UploadError as exc:
        page = upload_page(db, upload, actor=current_user, audit=False)
        return _render_upload(page, own=own, status=409, error=str(exc))
    return redirect(
        url_for(".my_upload_detail" if own else ".upload_detail", upload_id=upload.id), 303
    )


@bp.route("/uploads/<int:upload_id>/store", methods=["POST"])
@requires(Permission.UPLOAD)
def store_upload(upload_id: int) -> Response | tuple[str, int]:
    """ "Store this data": the job starts and the page shows its progress."""
    return _store(upload_id, own=False)


def _discard(upload_id: int, *, own: bool) -> Response | tuple[str, int]:
    db = get_session()
    upload = _own_upload_or_404(upload_id) if own else _clinic_upload_or_404(upload_id)
    try:
        discard_upload(db, upload, actor=current_user, ip_address=client_address())
    except UploadError as exc:
        page = upload_page(db, upload, actor=current_user, audit=False)
        return _render_upload(page, own=own, status=409, error=str(exc))
    flash("The file was discarded; nothing was stored.")
    return redirect(url_for(".my_upload" if own else ".kiosk"), 303)


@bp.route("/uploads/<int:upload_id>/discard", methods=["POST"])
@requires(Permission.UPLOAD)
def discard(upload_id: int) -> Response | tuple[str, int]:
    """Throw a preview away without storing anything."""
    return _discard(upload_id, own=False)


# --------------------------------------------------------------------------- inbox


def _inbox_page(
    form: AssignForm | None = None,
    *,
    status: int = 200,
    error_for: int | None = None,
    error: str | None = None,
) -> tuple[str, int]:
    query = request.values.get("q", "")
    form = form or AssignForm(formdata=None)
    form.patient_id.choices = _clinic_choices(optional=False, query=query)
    items = inbox(get_session(), current_user.clinic_id)
    return render_template(
        "upload_station/inbox.html",
        items=items,
        form=form,
        q=query,
        error_for=error_for,
        error=error,
        zone=current_clinic().time_zone,
        labels=COUNT_LABELS,
    ), status


@bp.route("/uploads/inbox")
@requires(Permission.UPLOAD)
def inbox_page() -> tuple[str, int]:
    """Uploads whose devices belong to no patient yet, waiting to be assigned."""
    return _inbox_page()


@bp.route("/uploads/<int:upload_id>/assign", methods=["POST"])
@requires(Permission.UPLOAD)
def assign(upload_id: int) -> Response | tuple[str, int]:
    """Store an inbox upload for the chosen patient; its serials are remembered."""
    upload = _clinic_upload_or_404(upload_id)
    form = AssignForm()
    form.patient_id.choices = _clinic_choices(optional=False, query=request.form.get("q", ""))
    if not form.validate_on_submit() or not form.patient_id.data:
        return _inbox_page(form, status=400, error_for=upload_id, error="Choose a patient.")
    patient = clinic_patient_or_404(int(form.patient_id.data))
    try:
        assign_upload(get_session(), upload, patient, current_user, ip_address=client_address())
    except UploadError as exc:
        return _inbox_page(form, status=400, error_for=upload_id, error=str(exc))
    flash(
        f"The upload was stored for {patient.display_name}; "
        "its devices are now linked to this patient."
    )
    return redirect(url_for(".upload_detail", upload_id=upload.id), 303)


# --------------------------------------------------------------------------- the patient's own


@bp.route("/me/upload", methods=["GET", "POST"])
@requires(Permission.PATIENT_SELF)
def my_upload() -> Response | tuple[str, int]:
    """A patient uploads an export of their own devices (for one of their clinic records)."""
    records = own_patient_records(get_session(), current_user.id)
    form = UploadForm()
    form.patient_id.choices = _own_choices(records)
    if len(records) == 1:
        form.patient_id.data = str(records[0].id)
    context = {"heading": "Upload a file", "patient": None, "own": True, "records": records}
    if not records:
        return _form_page(form, 400 if request.method == "POST" else 200, **context)
    if form.validate_on_submit():
        record = next(p for p in records if str(p.id) == form.patient_id.data)
        clinic = get_session().get(Clinic, record.clinic_id)
        assert clinic is not None
        result, error = _preview_or_error(form, clinic=clinic, patient=record)
        if error:
            form.file.errors = [error]
            return _form_page(form, 400, **context)
        return redirect(
            url_for(".my_upload_detail", upload_id=result.upload.id, patient=record.id), 303
        )
    return _form_page(form, 400 if form.errors else 200, **context)


def _own_upload_or_404(upload_id: int) -> Upload:
    upload = upload_of_account(get_session(), current_user.id, upload_id)
    if upload is None:
        abort(404)
    return upload


@bp.route("/me/uploads/<int:upload_id>")
@requires(Permission.PATIENT_SELF)
def my_upload_detail(upload_id: int) -> tuple[str, int]:
    """The patient's own upload: preview, progress or summary."""
    upload = _own_upload_or_404(upload_id)
    page = upload_page(get_session(), upload, actor=current_user, ip_address=client_address())
    return _render_upload(page, own=True, store_form=_store_form(page, own=True))


@bp.route("/me/uploads/<int:upload_id>/progress")
@requires(Permission.PATIENT_SELF)
def my_upload_progress(upload_id: int) -> tuple[str, int]:
    """The patient's progress fragment (286 once finished)."""
    upload = _own_upload_or_404(upload_id)
    page = upload_page(get_session(), upload, actor=current_user, ip_address=client_address())
    return _progress(page, own=True)


@bp.route("/me/uploads/<int:upload_id>/store", methods=["POST"])
@requires(Permission.PATIENT_SELF)
def my_store_upload(upload_id: int) -> Response | tuple[str, int]:
    """The patient's "Store this data"."""
    return _store(upload_id, own=True)


@bp.route("/me/uploads/<int:upload_id>/discard", methods=["POST"])
@requires(Permission.PATIENT_SELF)
def my_discard(upload_id: int) -> Response | tuple[str, int]:
    """The patient throws a preview away."""
    return _discard(upload_id, own=True)
