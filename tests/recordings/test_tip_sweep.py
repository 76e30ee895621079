"""The tip sweep: every tip recording on disk gets a row, once, linked where the caller can be placed.

On the real SQLite database of the shared fixtures (regions, centralists, PC4 areas), with WAV
files named the way the dialplan names them; the Asterisk side is tests/faults/test_failure_tips.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from burgernet.actions import AreaSpec
from burgernet.calls import CallLog, TipRecordings
from burgernet.db import session_scope
from burgernet.domain import AreaKind
from burgernet.models import AuditEvent, Broadcast, Call, Delivery, Participant, Region, Tip
from burgernet.tip_inbox import PeriodicTipSweep, TipInbox, parse_tip_file
from composition.context import Context
from recordings import cli as recordings_cli
from recordings.paths import tips_dir

UTRECHT = (5.1214, 52.0907)  # lon, lat
AMSTERDAM = (4.9041, 52.3676)
CALLER = "+31612345678"


def write_tip(path: Path, *, age_seconds: float = 60.0, seconds: float = 0.5) -> Path:
    """A spoken tip as Asterisk's Record() leaves it (8 kHz mono), last written ``age_seconds`` ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x10\x00" * int(8000 * seconds))
    moment = datetime.now(UTC).timestamp() - age_seconds
    os.utime(path, (moment, moment))
    return path


def add_participant(context: Context, phone: str, where: tuple[float, float], region: str = "MN") -> int:
    with session_scope(context.sessions) as session:
        participant = Participant(
            region_id=session.scalar(select(Region.id).where(Region.code == region)),
            phone_e164=phone,
            postcode="3511AB",
            lat=where[1],
            lon=where[0],
            language="nl",
            created_at=datetime.now(UTC) - timedelta(days=30),
        )
        session.add(participant)
        session.flush()
        return participant.id


def start_action(context: Context, title: str, where: tuple[float, float], region: str = "MN") -> int:
    view = context.actions.create(
        action_type="missing_child",
        title=title,
        region_code=region,
        area=AreaSpec(AreaKind.CIRCLE, centre=where, radius_m=3000),
        team=[],
        actor="test",
    )
    context.actions.start(view.id, actor="test", broadcast=False)
    return view.id


@pytest.fixture
def inbox(bn_context: Context) -> TipInbox:
    return TipInbox(bn_context.sessions, tips_dir(bn_context.settings), alerted_window_seconds=3600)


def tip_rows(context: Context) -> list[Tip]:
    with session_scope(context.sessions) as session:
        rows = list(session.scalars(select(Tip).order_by(Tip.id)))
        session.expunge_all()
        return rows


def test_a_failure_path_tip_gets_its_call_and_the_action_covering_the_caller(
    bn_context: Context, inbox: TipInbox
) -> None:
    action_id = start_action(bn_context, "Vermist meisje", UTRECHT)
    participant_id = add_participant(bn_context, CALLER, UTRECHT)
    recording = write_tip(inbox.tips_root / "unassigned" / f"1700000100.5_{CALLER}.wav")
    recorded_at = datetime.fromtimestamp(recording.stat().st_mtime, UTC)

    report = inbox.sweep()

    assert (len(report.filed), report.failed) == (1, [])
    tip_id = report.filed[0]
    assert report.linked == {tip_id: action_id}
    with session_scope(bn_context.sessions) as session:
        tip = session.get(Tip, tip_id)
        assert tip is not None
        call = session.get(Call, tip.call_id)
        assert call is not None
        assert (tip.action_id, tip.recording_path, tip.callback_number) == (action_id, str(recording), CALLER)
        assert (call.unique_id, call.kind, call.caller_number, call.outcome) == (
            "1700000100.5",
            "inbound",
            CALLER,
            "tip_left",
        )
        assert (call.participant_id, call.action_id, call.region_code) == (participant_id, action_id, "MN")
        # Retention counts from the recording, not from the sweep.
        assert abs(tip.created_at.replace(tzinfo=UTC) - recorded_at) < timedelta(seconds=1)
        assert abs(call.started_at.replace(tzinfo=UTC) - recorded_at) < timedelta(seconds=1)
        audited = session.scalars(
            select(AuditEvent.verb).where(AuditEvent.entity == "tip", AuditEvent.entity_id == str(tip_id))
        ).all()
        assert audited == ["register"]
        timeline = session.scalars(
            select(AuditEvent.verb).where(
                AuditEvent.entity == "action", AuditEvent.entity_id == str(action_id)
            )
        ).all()
        assert "tip-filed" in timeline

    again = inbox.sweep()
    assert (again.filed, again.already_filed) == ([], 1)
    assert len(tip_rows(bn_context)) == 1


def test_callers_who_cannot_be_placed_leave_unassigned_tips(bn_context: Context, inbox: TipInbox) -> None:
    utrecht = start_action(bn_context, "Vermist meisje", UTRECHT)
    start_action(bn_context, "Overval", UTRECHT)  # a second area over the same street
    add_participant(bn_context, CALLER, UTRECHT)  # inside both
    lonely = start_action(bn_context, "Verdachte", AMSTERDAM, region="AM")
    add_participant(bn_context, "+31687654321", AMSTERDAM, region="AM")  # inside one only
    root = inbox.tips_root
    write_tip(root / "unassigned" / "1700000200.1_.wav")  # withheld number
    write_tip(root / "unassigned" / "1700000200.2_0201234567.wav")  # no participant
    write_tip(root / "unassigned" / f"1700000200.3_{CALLER}.wav")  # two covering actions
    write_tip(root / "unassigned" / "1700000200.4.wav")  # tip.conf's fallback name: caller unknown
    write_tip(root / "unassigned" / "1700000200.5_0687654321.wav")  # national form, one action
    write_tip(root / str(utrecht) / "1700000200.6.wav")  # FastAGI chose the action, then died
    write_tip(root / "unassigned" / "1700000200.7_0687654321.wav", age_seconds=1)  # still recording
    empty = root / "unassigned" / "1700000200.8_0687654321.wav"
    empty.write_bytes(b"RIFF" + b"\x00" * 40)  # 44 bytes: hung up before saying anything

    report = inbox.sweep()

    assert (len(report.filed), report.settling, report.failed) == (6, 1, [])
    by_call = {
        unique_id: action
        for unique_id, action in _tips_by_call(bn_context).items()
        if unique_id.startswith("1700000200.")
    }
    assert by_call == {
        "1700000200.1": None,
        "1700000200.2": None,
        "1700000200.3": None,
        "1700000200.4": None,
        "1700000200.5": lonely,
        "1700000200.6": utrecht,
    }
    assert [tip.callback_number for tip in inbox.unassigned()] == [None, "+31201234567", CALLER, None]
    # The recording still being written is filed once it has settled.
    later = inbox.sweep(now=datetime.now(UTC) + timedelta(minutes=1))
    assert (len(later.filed), later.already_filed) == (1, 6)


def test_the_action_that_alerted_the_caller_wins_over_the_area(bn_context: Context, inbox: TipInbox) -> None:
    around_caller = start_action(bn_context, "Vermist meisje", UTRECHT)
    elsewhere = start_action(bn_context, "Verdachte", AMSTERDAM, region="AM")
    participant_id = add_participant(bn_context, CALLER, UTRECHT)
    with session_scope(bn_context.sessions) as session:
        broadcast = Broadcast(action_id=elsewhere, kind="alert", status="done", created_at=datetime.now(UTC))
        session.add(broadcast)
        session.flush()
        session.add(
            Delivery(
                broadcast_id=broadcast.id,
                participant_id=participant_id,
                channel="sms",
                status="delivered",
                updated_at=datetime.now(UTC) - timedelta(minutes=5),
            )
        )
    write_tip(inbox.tips_root / "unassigned" / f"1700000300.1_{CALLER}.wav")

    report = inbox.sweep()

    assert list(report.linked.values()) == [elsewhere] and around_caller != elsewhere


def test_the_tip_agi_and_the_sweep_never_make_two_rows(bn_context: Context, inbox: TipInbox) -> None:
    log = CallLog(bn_context.sessions)
    # The AGI first (serve came back in time), then the sweep.
    first = write_tip(inbox.tips_root / "unassigned" / f"1700000400.1_{CALLER}.wav")
    tip_id = log.register_tip(
        "1700000400.1", action_id=None, recording_path=str(first), callback_number=CALLER
    )
    assert inbox.sweep().filed == []
    # The sweep first, then a late AGI report of the same call: the same row.
    second = write_tip(inbox.tips_root / "unassigned" / f"1700000400.2_{CALLER}.wav")
    swept = inbox.sweep().filed
    late = log.register_tip(
        "1700000400.2", action_id=None, recording_path=str(second), callback_number=CALLER
    )
    assert swept == [late] and late != tip_id
    assert len(tip_rows(bn_context)) == 2


def test_file_names_that_could_walk_out_or_are_no_tips_are_ignored(tmp_path: Path) -> None:
    root = tmp_path / "tips"
    for name in (
        "unassigned/x.wav.purging",
        "unassigned/../1.wav",
        "0/1.1.wav",
        "abc/1.1.wav",
        "a/b/1.1.wav",
    ):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
        assert parse_tip_file(path, root) is None, name
    good = root / "unassigned" / "1700000000.1_+31612345678.wav"
    good.write_bytes(b"x" * 100)
    parsed = parse_tip_file(good, root)
    assert parsed is not None and (parsed.unique_id, parsed.caller_number) == ("1700000000.1", CALLER)


def test_retention_files_the_unfiled_tips_first_then_purges_them_with_their_rows(
    bn_context: Context, inbox: TipInbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = bn_context.settings.audio.recording_retention_days
    old = write_tip(
        inbox.tips_root / "unassigned" / f"1700000500.1_{CALLER}.wav", age_seconds=(days + 1) * 86400
    )
    recent = write_tip(inbox.tips_root / "unassigned" / f"1700000500.2_{CALLER}.wav")

    @contextmanager
    def repository(context: Context) -> Iterator[TipRecordings]:
        yield TipRecordings(context.sessions)

    monkeypatch.setattr(recordings_cli, "_repository_factory", repository)
    result = CliRunner().invoke(recordings_cli.recordings, ["purge"], obj=bn_context)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (summary["swept"]["filed"], summary["deleted"]) == (2, 1)
    assert not old.exists() and recent.exists()
    assert [tip.recording_path for tip in tip_rows(bn_context)] == [str(recent)]
    with session_scope(bn_context.sessions) as session:
        assert (
            session.scalar(select(func.count()).select_from(Call).where(Call.unique_id == "1700000500.1"))
            == 1
        )
        purged = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.verb == "purge")
        )
        assert purged == 1


def _tips_by_call(context: Context) -> dict[str, int | None]:
    with session_scope(context.sessions) as session:
        rows = session.execute(select(Call.unique_id, Tip.action_id).join(Tip, Tip.call_id == Call.id)).all()
        return {unique_id: action_id for unique_id, action_id in rows}


def test_serve_sweeps_at_start_and_then_every_few_seconds(bn_context: Context, inbox: TipInbox) -> None:
    write_tip(inbox.tips_root / "unassigned" / f"1700000600.1_{CALLER}.wav")

    async def run() -> list[int]:
        sweep = PeriodicTipSweep(inbox, every_seconds=0.2)
        await sweep.start()
        seen: list[int] = []
        for _ in range(100):  # the first sweep runs at start; give it up to 10 s
            seen = [tip.id for tip in tip_rows(bn_context)]
            if seen:
                break
            await asyncio.sleep(0.1)
        # A tip left while serve runs is filed by a later round.
        write_tip(inbox.tips_root / "unassigned" / f"1700000600.2_{CALLER}.wav")
        for _ in range(100):
            seen = [tip.id for tip in tip_rows(bn_context)]
            if len(seen) == 2:
                break
            await asyncio.sleep(0.1)
        await sweep.stop()
        return seen

    assert len(asyncio.run(run())) == 2
