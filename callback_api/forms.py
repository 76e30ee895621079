"""Forms more than one feature uses (Flask-WTF: every POST form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm


class ConfirmForm(FlaskForm):
    """A bare POST (start, erase, opt-out, on duty): only the CSRF token."""
