"""Forms of the sharing pages (WTForms, CSRF via flask-wtf)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, StringField
from wtforms.validators import DataRequired, Length, Optional


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
