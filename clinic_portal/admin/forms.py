"""Forms of the clinic admin pages: users and clinic settings (WTForms, CSRF via flask-wtf)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, Length, Optional

from clinic_portal.auth.models import Role

STAFF_ROLES = [SelectChoice(r.value, r.label) for r in Role if r != Role.PATIENT]


class NewUserForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("E-mail", validators=[DataRequired(), Email(), Length(max=254)])
    role = SelectField("Role", choices=STAFF_ROLES)
    password = PasswordField("Initial password", validators=[DataRequired(), Length(max=200)])


class EditUserForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    role = SelectField("Role", choices=STAFF_ROLES)
    active = BooleanField("Account active")
    new_password = PasswordField("New password (leave empty to keep)", validators=[Optional()])


class ClinicSettingsForm(FlaskForm):
    name = StringField("Clinic name", validators=[DataRequired(), Length(max=200)])
    time_zone = StringField("Time zone (IANA)", validators=[DataRequired(), Length(max=64)])
    mrn_required = BooleanField("An MRN is required for every patient")
    mrn_unique = BooleanField("MRNs must be unique within the clinic")
    staff_two_factor = BooleanField("Staff sign in with a code sent by e-mail as well")
    share_terms = TextAreaField(
        "Terms patients agree to when they share their data",
        validators=[Optional(), Length(max=4000)],
    )
