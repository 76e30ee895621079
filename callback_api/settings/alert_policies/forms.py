"""The outcome policy form (Flask-WTF: CSRF token on every POST). The form checks the shape;
the rules (ranges, a failed call is never repeated) are the domain's, checked on save."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import FloatField, IntegerField, SelectChoice, SelectField
from wtforms.validators import InputRequired, NumberRange

from burgernet.alert_policies import MAX_ATTEMPTS, MAX_BACKOFF_SECONDS, MAX_MULTIPLIER


class OutcomePolicyForm(FlaskForm):
    attempts = IntegerField("Calls at most", validators=[InputRequired(), NumberRange(1, MAX_ATTEMPTS)])
    backoff_seconds = IntegerField(
        "Wait before the next call (seconds)",
        validators=[InputRequired(), NumberRange(0, MAX_BACKOFF_SECONDS)],
    )
    backoff_multiplier = FloatField(
        "Wait multiplier per call", validators=[InputRequired(), NumberRange(1.0, MAX_MULTIPLIER)]
    )
    then = SelectField(
        "After the last call",
        choices=[SelectChoice("fall_back", "Send the alert by SMS"), SelectChoice("done", "Stop")],
    )
