"""The user forms: a new user, and a user's role and linked centralist."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import Length

from burgernet.domain import Role


class UserForm(FlaskForm):
    username = StringField("Username", validators=[Length(max=80)])
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value) for r in Role])
    password = PasswordField("Password", validators=[Length(max=200)])
    # Checked by the service ("no centralist with endpoint ..."); empty means none.
    centralist = SelectField("Centralist", choices=[], validate_choice=False)


class UserRoleForm(FlaskForm):
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value) for r in Role])
    # Checked by the service ("no centralist with endpoint ..."); empty means none.
    centralist = SelectField("Centralist", choices=[], validate_choice=False)
