"""The action type template form (Flask-WTF: CSRF token on every POST)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange
from wtforms.widgets import CheckboxInput, ListWidget

from burgernet.action_types import MAX_BLOCK, URGENCIES


class ActionTypeForm(FlaskForm):
    radius_m = IntegerField("Default radius (metres)", validators=[DataRequired(), NumberRange(1, 300_000)])
    channels = SelectMultipleField(
        "Channels",
        choices=[
            SelectChoice("voice", "Voice call"),
            SelectChoice("sms", "SMS"),
            SelectChoice("email", "E-mail"),
            SelectChoice("push", "Push (app)"),
        ],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    urgency = SelectField("Urgency", choices=[SelectChoice(u, u) for u in URGENCIES])
    title_block = StringField("Title to complete", validators=[Length(max=120)])
    description_block = TextAreaField("Description to complete", validators=[Length(max=MAX_BLOCK)])
    # Four-eyes start (burgernet.approvals); always on for an AMBER Alert, whatever is posted.
    needs_approval = BooleanField("Starting needs a second person's approval")
