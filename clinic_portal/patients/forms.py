"""The add/edit patient form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional

from clinic_portal.patients.models import DiabetesType, GlucoseUnits, Sex, TargetPreset
from clinic_portal.patients.services import PatientDetails


class PatientForm(FlaskForm):
    first_name = StringField("First name", validators=[DataRequired(), Length(max=100)])
    last_name = StringField("Last name", validators=[DataRequired(), Length(max=100)])
    date_of_birth = DateField("Date of birth", validators=[InputRequired()])
    mrn = StringField("MRN", validators=[Optional(), Length(max=64)])
    sex = SelectField("Sex", choices=[SelectChoice(s.value, s.value.capitalize()) for s in Sex])
    diabetes_type = SelectField(
        "Diabetes type", choices=[SelectChoice(d.value, d.label) for d in DiabetesType]
    )
    time_zone = StringField("Time zone (IANA)", validators=[DataRequired(), Length(max=64)])
    glucose_units = SelectField(
        "Glucose units", choices=[SelectChoice(u.value, u.value) for u in GlucoseUnits]
    )
    target_preset = SelectField(
        "Glycemic targets", choices=[SelectChoice(t.value, t.label) for t in TargetPreset]
    )
    email = EmailField("E-mail", validators=[Optional(), Email(), Length(max=254)])
    tags = StringField("Tags (comma-separated)", validators=[Optional(), Length(max=600)])

    def details(self) -> PatientDetails:
        assert self.date_of_birth.data is not None
        return PatientDetails(
            first_name=self.first_name.data or "",
            last_name=self.last_name.data or "",
            date_of_birth=self.date_of_birth.data,
            mrn=self.mrn.data or None,
            sex=Sex(self.sex.data),
            diabetes_type=DiabetesType(self.diabetes_type.data),
            time_zone=(self.time_zone.data or "").strip(),
            glucose_units=GlucoseUnits(self.glucose_units.data),
            target_preset=TargetPreset(self.target_preset.data),
            email=self.email.data or None,
            tags=[t for t in (self.tags.data or "").split(",") if t.strip()],
        )
