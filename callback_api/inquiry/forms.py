"""The forms of the inquiry pages and of the residents' public form (Flask-WTF: every POST
form carries a CSRF token; "send links" is the shared bare :class:`callback_api.forms.ConfirmForm`)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import RadioField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from callback_api.inquiry.services import MAX_TEXT_CHARS, MAX_TITLE_CHARS

# The area radio's fourth choice: take the linked action's area.
SAME_AREA_AS_ACTION = "action"


class InquiryForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=MAX_TITLE_CHARS)])
    question = TextAreaField(
        "Question to the residents", validators=[DataRequired(), Length(max=MAX_TEXT_CHARS)]
    )
    action_id = SelectField("Linked action (optional)", choices=[], validate_choice=False)
    area_kind = RadioField(
        "Area",
        choices=[
            SelectChoice(value, value) for value in ("circle", "polygon", "postcodes", SAME_AREA_AS_ACTION)
        ],
        default="circle",
    )
    lon = StringField("Longitude", validators=[Optional()])
    lat = StringField("Latitude", validators=[Optional()])
    radius_m = StringField("Radius (metres)", validators=[Optional()])
    geojson = TextAreaField("GeoJSON polygon: paste it, or draw it on the map", validators=[Optional()])
    postcodes = StringField("Postcodes, separated by commas", validators=[Optional(), Length(max=5000)])
    closes_at = StringField("Closing date", validators=[DataRequired(), Length(max=40)])


class FollowUpForm(FlaskForm):
    message = TextAreaField(
        "Update to everyone who received a link",
        validators=[DataRequired(), Length(max=MAX_TEXT_CHARS)],
    )


class StatementForm(FlaskForm):
    text = TextAreaField("Your statement", validators=[DataRequired(), Length(max=MAX_TEXT_CHARS)])
    photo = FileField("Photo (optional; JPEG, PNG or WebP, at most 8 MB)")
