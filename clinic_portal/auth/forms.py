"""Forms for signing in and for managing clinic users (WTForms, CSRF via flask-wtf)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from clinic_portal.auth.models import Role

STAFF_ROLES = [SelectChoice(r.value, r.label) for r in Role if r != Role.PATIENT]


class LoginForm(FlaskForm):
    # A user name is accepted too (patients may have one), so not an <input type="email">.
    email = StringField(
        "E-mail or user name",
        validators=[DataRequired(), Length(max=254)],
        render_kw={"autocomplete": "username", "autocapitalize": "none"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )


class CodeForm(FlaskForm):
    code = StringField(
        "6-digit code",
        validators=[DataRequired(), Length(min=6, max=12)],
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )


class RegisterForm(FlaskForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("E-mail", validators=[DataRequired(), Email(), Length(max=254)])
    username = StringField(
        "User name (optional)",
        validators=[Optional(), Length(min=3, max=32)],
        render_kw={"autocapitalize": "none"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=200)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Password again",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )
    invite = HiddenField()


class ForgotPasswordForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Email(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(max=200)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "New password again",
        validators=[DataRequired(), EqualTo("password", message="The passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class ShareRequestForm(FlaskForm):
    who = StringField(
        "Patient's e-mail address or user name", validators=[DataRequired(), Length(max=254)]
    )


class ConsentForm(FlaskForm):
    consent = BooleanField("I have read the clinic's terms and agree to share my data")


class ShareCodeForm(FlaskForm):
    code = StringField(
        "Clinic share code",
        validators=[DataRequired(), Length(max=20)],
        render_kw={"autocapitalize": "characters", "placeholder": "XXXX-XXXX-XXXX"},
    )
    step = HiddenField(default="find")
    first_name = StringField("First name", validators=[Optional(), Length(max=100)])
    last_name = StringField("Last name", validators=[Optional(), Length(max=100)])
    date_of_birth = DateField("Date of birth", validators=[Optional()])
    consent = BooleanField("I have read the clinic's terms and agree to share my data")


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
