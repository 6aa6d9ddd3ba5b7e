"""Forms of the upload pages (WTForms, CSRF via flask-wtf). Patient choices are filled in by
the views, from the clinic's roster or the patient's own records."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField

# The empty choice: "match by device serial" on the kiosk (unknown devices go to the inbox).
NO_PATIENT = ""


class UploadForm(FlaskForm):
    file = FileField("Export file", validators=[FileRequired("Choose a file to upload.")])
    # Optional on the kiosk: "" (or no value at all) means "match by device serial".
    patient_id = SelectField("Patient", choices=[], default=NO_PATIENT, validate_choice=True)


class StoreForm(FlaskForm):
    patient_id = SelectField(
        "Store the data for", choices=[], default=NO_PATIENT, validate_choice=True
    )


class AssignForm(FlaskForm):
    patient_id = SelectField("Patient", choices=[], validate_choice=True)
