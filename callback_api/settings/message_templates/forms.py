"""The message template form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Optional


class TemplateForm(FlaskForm):
    subject = StringField("Subject", validators=[Optional()])
    body = TextAreaField("Text")
