"""The centralist form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import Length, Optional


class CentralistForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=120)])
    endpoint = StringField("SIP endpoint", validators=[Length(max=40)])
    region = SelectField("Region", choices=[])
    on_duty = BooleanField("On duty")
    contact = StringField("Fixed contact (sip:…, for phones that do not register)", validators=[Optional()])
