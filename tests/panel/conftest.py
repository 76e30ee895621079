"""Panel fixtures: the Flask app on the shared real SQLite + Redis fixtures, one user per role."""

from __future__ import annotations

import io
import re
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from burgernet.actions import AreaSpec
from burgernet.calls import CallLog
from burgernet.db import session_scope
from burgernet.domain import AreaKind, Role
from burgernet.models import AuditEvent, Centralist, Participant, User
from callback_api.app import create_app
from callback_api.auth.services import create_user, issue_token
from composition.context import Context

PASSWORD = "correct horse battery"
UTRECHT = (5.1214, 52.0907)


@dataclass
class World:
    """What the tests act on: one draft (region RO) and one active action (region MN), a
    participant, a tip on the active action; users per role, the centralist linked to c-mn-1."""

    draft_id: int
    active_id: int
    participant_id: int
    tip_id: int
    tokens: dict[str, str]


@pytest.fixture
def app(bn_context: Context) -> Iterator[Flask]:
    application = create_app(bn_context.settings, context=bn_context, config={"TESTING": True})
    yield application


def wav_bytes(seconds: float = 0.2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * int(8000 * seconds))
    return buffer.getvalue()


@pytest.fixture
def world(bn_context: Context) -> World:
    tokens = {}
    for role in Role:
        create_user(
            bn_context.sessions,
            username=role.value,
            role=role.value,
            password=PASSWORD,
            actor="test",
            source="test",
        )
        tokens[role.value] = issue_token(bn_context.sessions, role.value, actor="test", source="test")
    # The centralist works region MN as c-mn-1, on the active action's team (need-to-know).
    with session_scope(bn_context.sessions) as session:
        centralist_id = session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == "c-mn-1"))
        session.execute(
            update(User).where(User.username == Role.CENTRALIST.value).values(centralist_id=centralist_id)
        )
    actions = bn_context.actions
    draft = actions.create(
        action_type="suspect",
        title="Verdachte overval",
        region_code="RO",
        area=AreaSpec(AreaKind.POSTCODES, postcodes=("3011",)),
        team=["c-ro-1"],
        actor="test",
        source="test",
    )
    active = actions.create(
        action_type="missing_child",
        title="Vermist meisje",
        region_code="MN",
        area=AreaSpec(AreaKind.CIRCLE, centre=UTRECHT, radius_m=3000),
        team=["c-mn-1", "c-mn-2"],
        actor="test",
        source="test",
    )
    actions.start(active.id, actor="test", source="test")
    with session_scope(bn_context.sessions) as session:
        participant = Participant(
            phone_e164="+31612345678",
            postcode="3511AB",
            lat=UTRECHT[1],
            lon=UTRECHT[0],
            language="nl",
            channel_voice=True,
            channel_sms=True,
            channel_email=False,
            inquiry_opt_in=False,
            opted_out=False,
            created_at=datetime.now(UTC),
        )
        session.add(participant)
        session.flush()
        participant_id = participant.id
    recording = bn_context.settings.recordings_dir / "tips" / str(active.id) / "1700000000.1.wav"
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(wav_bytes())
    log = CallLog(bn_context.sessions)
    log.open_call(
        "1700000000.1",
        caller_number="+31612345678",
        participant_id=participant_id,
        action_id=active.id,
        region_code="MN",
        reason="test",
    )
    tip_id = log.register_tip(
        "1700000000.1", action_id=active.id, recording_path=str(recording), callback_number="+31612345678"
    )
    return World(draft.id, active.id, participant_id, tip_id, tokens)


_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    html = client.get(path).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token on {path}"
    return match.group(1) or match.group(2)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> int:
    token = csrf_token(client)
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    return response.status_code


@pytest.fixture
def client_for(app: Flask, world: World) -> Callable[[str | None], FlaskClient]:
    def make(role: str | None) -> FlaskClient:
        client = app.test_client()
        if role is not None:
            assert login(client, role) == 302
        return client

    return make


def audit_count(context: Context, **where: str) -> int:
    with session_scope(context.sessions) as session:
        query = select(func.count()).select_from(AuditEvent)
        for column, value in where.items():
            query = query.where(getattr(AuditEvent, column) == value)
        return int(session.scalar(query) or 0)


def tmp_csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return path
