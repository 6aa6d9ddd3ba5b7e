"""The roster and the patient pages (clinic side)."""

from __future__ import annotations

from flask import (
    Blueprint,
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

from clinic_portal.auth.access import Permission, client_address, has_permission, requires
from clinic_portal.db import get_session
from clinic_portal.extensions import htmx
from clinic_portal.patients.forms import PatientForm
from clinic_portal.patients.models import Patient
from clinic_portal.patients.services import (
    CLINICAL_SORTS,
    SORTS,
    PatientError,
    create_patient,
    roster_view,
    tags_for,
    update_patient,
    view_patient,
)
from clinic_portal.web.loading import clinic_patient_or_404, current_clinic

bp = Blueprint("patients", __name__, url_prefix="/patients")


@bp.route("/")
@requires(Permission.VIEW_ROSTER)
def roster() -> str:
    query = request.args.get("q", "")
    tag = request.args.get("tag") or None
    # Staff see no glucose metrics (VIEW_CLINICAL), so neither the columns nor their sorts.
    clinical = has_permission(current_user, Permission.VIEW_CLINICAL)
    sort = request.args.get("sort", "name")
    if sort not in SORTS and not (clinical and sort in CLINICAL_SORTS):
        sort = "name"
    view = roster_view(
        get_session(),
        clinic_id=current_user.clinic_id,
        query=query,
        tag=tag,
        sort=sort,
        page=request.args.get("page", 1, type=int) or 1,
        page_size=current_app.config["ROSTER_PAGE_SIZE"],
        clinical=clinical,
    )
    context = {
        "result": view.result,
        "q": query,
        "tag": tag,
        "sort": sort,
        "clinical": clinical,
        "shares": view.shares,
        "closed": view.closed,
    }
    # Live search and paging swap only the results; hx-boost navigation gets the whole page.
    if htmx and htmx.target == "roster-results":
        return render_block("patients/roster.html", "results", **context)
    return render_template("patients/roster.html", tags=view.tags, **context)


def _form_page(form: PatientForm, patient: Patient | None, status: int = 200):
    return render_template("patients/form.html", form=form, patient=patient), status


@bp.route("/new", methods=["GET", "POST"])
@requires(Permission.EDIT_PATIENTS)
def new() -> Response | tuple[str, int]:
    clinic = current_clinic()
    form = PatientForm()
    if request.method == "GET":
        form.time_zone.data = clinic.time_zone
    if form.validate_on_submit():
        try:
            patient = create_patient(
                get_session(), actor=current_user, clinic=clinic, details=form.details()
            )
        except PatientError as exc:
            getattr(form, exc.field, form.first_name).errors = [str(exc)]
            return _form_page(form, None, 400)
        flash(f"{patient.display_name} added to the roster.")
        return redirect(url_for("patients.detail", patient_id=patient.id))
    return _form_page(form, None, 400 if form.errors else 200)


@bp.route("/<int:patient_id>/edit", methods=["GET", "POST"])
@requires(Permission.EDIT_PATIENTS)
def edit(patient_id: int) -> Response | tuple[str, int]:
    patient = clinic_patient_or_404(patient_id)
    db = get_session()
    form = PatientForm(obj=patient)
    if request.method == "GET":
        form.tags.data = ", ".join(tags_for(db, [patient_id])[patient_id])
    if form.validate_on_submit():
        try:
            update_patient(
                db,
                actor=current_user,
                clinic=current_clinic(),
                patient=patient,
                details=form.details(),
            )
        except PatientError as exc:
            getattr(form, exc.field, form.first_name).errors = [str(exc)]
            return _form_page(form, patient, 400)
        flash("Patient details saved.")
        return redirect(url_for("patients.detail", patient_id=patient.id))
    return _form_page(form, patient, 400 if form.errors else 200)


@bp.route("/<int:patient_id>")
@requires(Permission.VIEW_ROSTER)
def detail(patient_id: int) -> str:
    patient = clinic_patient_or_404(patient_id)
    overview = view_patient(
        get_session(),
        actor=current_user,
        patient=patient,
        clinical=has_permission(current_user, Permission.VIEW_CLINICAL),
        ip_address=client_address(),
    )
    return render_template("patients/detail.html", overview=overview, patient=patient)
