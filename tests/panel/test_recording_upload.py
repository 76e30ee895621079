"""A centralist's own recording of the alert message, through the panel and the API."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from composition.context import Context
from recordings.messages import recorded_message_path, resolve_alert_sound
from tests.panel.conftest import World, audit_count, csrf_token


def _tone(tmp_path: Path, name: str = "bericht.mp3") -> bytes:
    path = tmp_path / name
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3", str(path)],
        check=True,
    )
    return path.read_bytes()


def test_panel_upload_replaces_the_spoken_text(
    world: World, bn_context: Context, tmp_path: Path, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("centralist")
    page = f"/actions/{world.active_id}"
    response = client.post(
        f"{page}/recording",
        content_type="multipart/form-data",
        data={
            "csrf_token": csrf_token(client, page),
            "lang": "",
            "recording": (io.BytesIO(_tone(tmp_path)), "bericht.mp3"),
        },
    )
    assert response.status_code == 302
    stored = recorded_message_path(world.active_id, settings=bn_context.settings)
    assert stored.is_file()
    assert resolve_alert_sound(world.active_id, "nl", "tekst", settings=bn_context.settings) == str(
        stored.with_suffix("")
    )
    assert audit_count(bn_context, verb="upload-recording", entity_id=str(world.active_id)) == 1
    played = client.get(f"{page}/recording.wav")
    assert played.status_code == 200 and played.mimetype == "audio/wav"
    assert client_for("viewer").get(f"{page}/recording.wav").status_code == 403


def test_panel_refuses_a_corrupt_recording_and_keeps_nothing(
    world: World, bn_context: Context, client_for: Callable[[str | None], FlaskClient]
) -> None:
    client = client_for("operator")
    page = f"/actions/{world.active_id}"
    response = client.post(
        f"{page}/recording",
        content_type="multipart/form-data",
        data={
            "csrf_token": csrf_token(client, page),
            "lang": "nl",
            "recording": (io.BytesIO(b"\x00garbage" * 100), "bericht.wav"),
        },
    )
    assert response.status_code == 400
    assert "not stored" in response.get_data(as_text=True)
    assert not recorded_message_path(world.active_id, "nl", settings=bn_context.settings).exists()
    assert audit_count(bn_context, verb="upload-recording") == 0
    forged = client.post(
        f"{page}/recording",
        content_type="multipart/form-data",
        data={"recording": (io.BytesIO(b"x"), "x.wav")},
    )
    assert forged.status_code == 400  # no CSRF token


def test_api_upload(world: World, bn_context: Context, app: Flask, tmp_path: Path) -> None:
    client = app.test_client()
    url = f"/api/v1/actions/{world.active_id}/recording"
    ok = client.post(
        url,
        headers={"Authorization": f"Bearer {world.tokens['operator']}"},
        data={"lang": "en", "file": (io.BytesIO(_tone(tmp_path)), "message.mp3")},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 201 and 2.5 < ok.get_json()["seconds"] < 3.5
    assert recorded_message_path(world.active_id, "en", settings=bn_context.settings).is_file()
    bad = client.post(
        url,
        headers={"Authorization": f"Bearer {world.tokens['operator']}"},
        data={"file": (io.BytesIO(b""), "empty.wav")},
        content_type="multipart/form-data",
    )
    assert bad.status_code == 422 and bad.get_json()["error_id"] == "recording.invalid"
    viewer = client.post(
        url,
        headers={"Authorization": f"Bearer {world.tokens['viewer']}"},
        data={"file": (io.BytesIO(_tone(tmp_path, "b.mp3")), "b.mp3")},
        content_type="multipart/form-data",
    )
    assert viewer.status_code == 403
