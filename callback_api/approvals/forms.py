"""The approval forms (Flask-WTF: a CSRF token on every POST)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length

from burgernet.approvals import REASON_MAX_CHARS


class RefuseForm(FlaskForm):
    reason = TextAreaField(
        "Reason (the requester reads it)", validators=[DataRequired(), Length(max=REASON_MAX_CHARS)]
    )
