"""The forms of the action pages (Flask-WTF: every POST form carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from burgernet.action_types import URGENCIES
from burgernet.actions import UPDATE_MAX_CHARS
from burgernet.domain import (
    ACTION_TYPE_LABELS,
    OUTCOME_KIND_LABELS,
    ActionType,
    AreaKind,
    Channel,
    Language,
    OutcomeKind,
)


class ActionForm(FlaskForm):
    action_type = SelectField("Type", choices=[])
    title = StringField("Title", validators=[DataRequired(), Length(max=120)])
    description = TextAreaField("Description", validators=[Length(max=5000)])
    region = SelectField("Region", choices=[])
    area_kind = RadioField(
        "Area",
        choices=[SelectChoice(kind.value, kind.value) for kind in AreaKind],
        default=AreaKind.CIRCLE.value,
    )
    lon = StringField("Longitude", validators=[Optional()])
    lat = StringField("Latitude", validators=[Optional()])
    radius_m = StringField("Radius (metres)", validators=[Optional()])
    geojson = TextAreaField("GeoJSON polygon: paste it, or draw it on the map", validators=[Optional()])
    postcodes = StringField("Postcodes, separated by commas", validators=[Optional(), Length(max=5000)])
    team = StringField(
        "Team: centralist endpoints in ringing order", validators=[Optional(), Length(max=500)]
    )
    # Prefilled from the type's template; the alert goes only over the channels ticked, at
    # the urgency's priority (the template page's "Channels" and "Urgency").
    channels = SelectMultipleField(
        "Channels",
        choices=[
            SelectChoice(Channel.VOICE.value, "Voice call"),
            SelectChoice(Channel.SMS.value, "SMS"),
            SelectChoice(Channel.EMAIL.value, "E-mail"),
            SelectChoice(Channel.PUSH.value, "Push (app)"),
        ],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    # Not posted (a script, an older page): the template's. A wrong value: the service says so.
    urgency = SelectField(
        "Urgency", choices=[SelectChoice(level, level) for level in URGENCIES], validate_choice=False
    )
    photo = FileField("Photo (JPEG, PNG or WebP)")
    start_now = BooleanField("Start at once")

    def fill_choices(self, regions: list[tuple[str, str]], language: str) -> None:
        lang = Language(language)
        self.action_type.choices = [SelectChoice(t.value, ACTION_TYPE_LABELS[t][lang]) for t in ActionType]
        self.region.choices = [SelectChoice(code, label) for code, label in regions]


class CloseForm(FlaskForm):
    """How the action ended (a fixed list, no default: the operator chooses), an internal note
    and the public result message."""

    outcome_kind = SelectField(
        "Outcome",
        choices=[SelectChoice("", "")] + [SelectChoice(k.value, k.value) for k in OutcomeKind],
        validators=[DataRequired()],
    )
    outcome = StringField("Internal note", validators=[Optional(), Length(max=200)])
    result_message = TextAreaField("Result message to everyone alerted", validators=[Length(max=2000)])

    def fill_choices(self, language: str, choose: str) -> None:
        lang = Language(language)
        self.outcome_kind.choices = [SelectChoice("", choose)] + [
            SelectChoice(k.value, OUTCOME_KIND_LABELS[k][lang]) for k in OutcomeKind
        ]


class RecordingForm(FlaskForm):
    recording = FileField("Recorded alert message (wav, mp3, ogg, m4a)")
    lang = SelectField(
        "Language",
        choices=[
            SelectChoice("", "All languages"),
            SelectChoice("nl", "Nederlands"),
            SelectChoice("en", "English"),
        ],
        default="",
    )


class UpdateForm(FlaskForm):
    """An update about an active action, to everyone its alert reached."""

    message = TextAreaField(
        "Update to everyone the alert reached", validators=[DataRequired(), Length(max=UPDATE_MAX_CHARS)]
    )


class AssignTipForm(FlaskForm):
    """Put an unassigned tip under an action (choices: the actions the user may read)."""

    action_id = SelectField("Assign to action", coerce=int, choices=[], validators=[DataRequired()])
