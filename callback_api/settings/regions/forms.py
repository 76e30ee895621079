"""The region form."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField, TextAreaField
from wtforms.validators import Length, Optional


class RegionForm(FlaskForm):
    code = StringField("Code", validators=[Length(max=8)])
    name = StringField("Name", validators=[Length(max=80)])
    boundary = TextAreaField("Boundary (GeoJSON Polygon or MultiPolygon)", validators=[Optional()])
