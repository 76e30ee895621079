"""Every tip has a row, even one left while FastAGI was down.

A real Asterisk with nothing on the FastAGI port and nobody on duty: a SIPp caller from inside an
active action's area speaks a tip on the dialplan's failure path. No ``burgernet serve`` runs;
the tip sweep alone gives the recording its call and its action, once; the panel plays it on
the action's page; retention removes row and file when the period is over.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from asterisk_conf.render import AsteriskPlan
from asterisk_conf.sandbox import AsteriskInstall
from burgernet.calls import TipRecordings
from burgernet.db import session_scope
from burgernet.models import Call, Tip
from burgernet.tip_inbox import EMPTY_WAV_BYTES, SETTLE_SECONDS, TipInbox
from callback_api.app import create_app
from callback_api.auth.services import create_user
from composition.context import Context
from recordings.paths import tips_dir
from recordings.retention import purge_expired
from testbed.ports import free_port
from testbed.sipp import Sipp
from testbed.waiting import wait_for
from tests.asterisk.conftest import StartAsterisk, asterisk_settings, centralist, start_asterisk
from tests.panel.conftest import PASSWORD, login
from tests.recordings.test_tip_sweep import UTRECHT, add_participant, start_action

pytestmark = pytest.mark.asterisk

__all__ = ["start_asterisk"]  # the fixture, used by name below

CALLER = "0612345678"  # the participant's +31612345678, as the trunk delivers it


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Sipp]:
    runner = Sipp(asterisk_port=0, workdir=tmp_path / "sipp")
    runner.workdir.mkdir()
    yield runner
    runner.cleanup()


def _closed_wav(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > EMPTY_WAV_BYTES and int.from_bytes(data[4:8], "little") == len(data) - 8


def test_a_tip_left_while_fastagi_is_down_gets_its_row_its_action_and_its_retention(
    tmp_path: Path,
    bn_context: Context,
    asterisk_install: AsteriskInstall,
    start_asterisk: StartAsterisk,
    sipp: Sipp,
) -> None:
    action_id = start_action(bn_context, "Vermist meisje", UTRECHT)
    add_participant(bn_context, "+31612345678", UTRECHT)
    # Asterisk records where the panel and the sweep look: the same data folder.
    settings = asterisk_settings(bn_context.settings.data_dir, asterisk_install)
    # Nobody on duty in the fallback region: the failure path goes straight to the tip.
    start_asterisk(AsteriskPlan((centralist("c-mn-1", on_duty=False),), "MN"), settings=settings)
    sipp.asterisk_port = settings.asterisk.sip_port

    call = sipp.call(
        CALLER,
        settings.asterisk.free_number,
        local_port=free_port(),
        media_port=free_port(),
        hold_ms=6000,
        speak_at_ms=1000,
    )

    assert (call.successful, call.failed) == (1, 0), call.output
    recordings = sorted((tips_dir(settings).resolve() / "unassigned").glob("*.wav"))
    assert len(recordings) == 1, recordings
    recording = recordings[0]
    unique_id, _, number = recording.stem.partition("_")
    assert number == CALLER, recording.name  # the dialplan put the caller in the name
    # SIPp is done once its BYE is answered; Asterisk closes the recording a moment later,
    # and only then writes the sizes into the WAV header (until then its RIFF size is 0).
    wait_for(lambda: _closed_wav(recording), 10, f"Asterisk closes {recording.name}")
    with wave.open(str(recording)) as spoken:
        assert spoken.getnframes() > 0

    # No serve: the sweep alone files the tip, under the action whose area holds the caller.
    inbox = TipInbox(bn_context.sessions, tips_dir(settings).resolve(), alerted_window_seconds=3600)
    settled = datetime.now(UTC) + timedelta(seconds=SETTLE_SECONDS)
    report = inbox.sweep(now=settled)
    assert (len(report.filed), report.failed) == (1, []), report
    tip_id = report.filed[0]
    assert report.linked == {tip_id: action_id}
    with session_scope(bn_context.sessions) as session:
        row = session.execute(
            select(Call.unique_id, Call.caller_number, Call.outcome, Tip.recording_path)
            .join(Tip, Tip.call_id == Call.id)
            .where(Tip.id == tip_id)
        ).one()
    assert tuple(row) == (unique_id, "+31612345678", "tip_left", str(recording))
    again = inbox.sweep(now=settled)
    assert (again.filed, again.already_filed) == ([], 1)

    # The panel: on the action's page, playable, for an operator.
    create_user(bn_context.sessions, username="op", role="operator", password=PASSWORD, actor="t", source="t")
    app = create_app(bn_context.settings, context=bn_context, config={"TESTING": True})
    client = app.test_client()
    assert login(client, "op") == 302
    page = client.get(f"/actions/{action_id}").get_data(as_text=True)
    assert f"/tips/{tip_id}/audio" in page and "+31612345678" in page
    played = client.get(f"/tips/{tip_id}/audio")
    assert (played.status_code, played.data[:4]) == (200, b"RIFF")

    # Retention: once the period is over, row and file go together.
    days = bn_context.settings.audio.recording_retention_days
    purged = purge_expired(
        datetime.now(UTC) + timedelta(days=days + 1),
        days,
        TipRecordings(bn_context.sessions),
        root=settings.recordings_dir.resolve(),
    )
    assert (purged.deleted, purged.failed) == ([tip_id], [])
    assert not recording.exists()
    with session_scope(bn_context.sessions) as session:
        assert session.get(Tip, tip_id) is None
