"""The participant forms (Flask-WTF: every POST form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional


class ParticipantForm(FlaskForm):
    postcode = StringField("Postcode", validators=[DataRequired(), Length(max=8)])
    house_number = StringField("House number", validators=[Optional(), Length(max=10)])
    email = StringField("E-mail", validators=[Optional(), Length(max=254)])
    language = SelectField(
        "Language", choices=[SelectChoice("nl", "Nederlands"), SelectChoice("en", "English")]
    )
    channel_voice = BooleanField("Voice call")
    channel_sms = BooleanField("SMS")
    channel_email = BooleanField("E-mail")
    inquiry_opt_in = BooleanField("Inquiry opt-in")
    night_alerts = BooleanField("Alerts at night too")


class ImportForm(FlaskForm):
    file = FileField("CSV file")
    skip_bad = BooleanField("Import the good rows even when some are bad")
