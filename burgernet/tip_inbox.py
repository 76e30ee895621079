"""Every tip has a row: recordings nobody filed get their call, their tip and, when the caller
can still be placed, their action; the panel's unassigned tips are assigned from here.

A tip is normally filed by the tip AGI the moment the caller hangs up (``CallLog.register_tip``).
When FastAGI is down, which is exactly when the dialplan's failure path records a tip, nothing
writes a row, and a tip without a row is seen by nobody and never purged. The sweep closes that
gap from the files themselves. The dialplan names them so a row can be made without FastAGI:

``<tips dir>/unassigned/<UNIQUEID>_<caller number>.wav``  the failure path (dialplans/failure.conf);
                                                         the number is digits and ``+``, empty when
                                                         withheld
``<tips dir>/unassigned/<UNIQUEID>.wav``                  tip.conf's own fallback, caller unknown
``<tips dir>/<action id>/<UNIQUEID>.wav``                 FastAGI chose the action, then died

The sweep is idempotent: a file is filed once however often it runs and whether the AGI files
it at the same moment. A tip is found by its call (``tips.call_id`` is unique, ``calls.unique_id``
is unique) and by its recording path, and an insert that loses a race to the other writer is
rolled back to its savepoint and counted as already filed.

The caller is matched to an action the way the free number would have routed them, from the
database alone (Redis may be what is down): an action that alerted this participant within the
alert window before the recording, else the actions whose area holds the participant, among
those active when the tip was recorded or active now. Exactly one → linked; none or several →
unassigned, for a supervisor to assign in the panel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from burgernet import channel_vars as cv
from burgernet import repositories
from burgernet.calls import OUTCOME_RANK
from burgernet.db import session_scope
from burgernet.domain import ActionStatus
from burgernet.models import Action, ActionCentralist, Broadcast, Call, Delivery, Tip
from burgernet.phone import caller_id_to_e164
from routing import ActiveAction
from routing.areas import covering_by_scan

log = logging.getLogger(__name__)

# The folder of tips recorded without an action (mirrors recordings.paths.UNASSIGNED_TIPS and
# the dialplans' ${BN_TIP_DIR}/unassigned/).
UNASSIGNED_FOLDER: Final = "unassigned"
# A WAV of 44 bytes is only its header: the caller hung up before saying anything (tip.conf).
EMPTY_WAV_BYTES: Final = 44
# A file written to less than this long ago may still be recording, or about to be filed by the
# tip AGI: it waits for the next sweep.
SETTLE_SECONDS: Final = 10.0
# Deliveries that mean the alert reached the participant (what makes them call about it).
_REACHED = ("sent", "delivered", "answered")
_NAME = re.compile(r"^(?P<unique_id>[0-9A-Za-z][0-9A-Za-z.-]{0,63})(?:_(?P<caller>\+?[0-9]{0,30}))?\.wav$")
SOURCE: Final = "tip-sweep"


@dataclass(frozen=True)
class TipFile:
    """A tip recording as the dialplan named it."""

    path: Path
    unique_id: str
    caller_number: str | None  # E.164, None when withheld or not in the name
    action_id: int | None  # from the action folder; None under unassigned/
    recorded_at: datetime  # the file's last write: when the caller stopped speaking
    size: int


def parse_tip_file(path: Path, tips_root: Path) -> TipFile | None:
    """The :class:`TipFile` for ``path`` under ``tips_root``, or None when it is no tip recording."""
    try:
        folder = path.relative_to(tips_root).parent
    except ValueError:
        return None
    if len(folder.parts) != 1:
        return None
    name = _NAME.match(path.name)
    if name is None:
        return None
    if folder.name == UNASSIGNED_FOLDER:
        action_id = None
    elif folder.name.isdigit() and int(folder.name) > 0:
        action_id = int(folder.name)
    else:
        return None
    try:
        stat = path.stat()
    except OSError:
        return None
    return TipFile(
        path=path,
        unique_id=name["unique_id"],
        caller_number=caller_id_to_e164(name["caller"]) if name["caller"] else None,
        action_id=action_id,
        recorded_at=datetime.fromtimestamp(stat.st_mtime, UTC),
        size=stat.st_size,
    )


def find_tip_files(tips_root: Path) -> Iterator[TipFile]:
    """Every spoken tip under ``tips_root`` (unassigned/ and the action folders); empty ones left out."""
    if not tips_root.is_dir():
        return
    for folder in sorted(tips_root.iterdir()):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.wav")):
            found = parse_tip_file(path, tips_root)
            if found is not None and found.size > EMPTY_WAV_BYTES:
                yield found


@dataclass
class SweepReport:
    # Tip ids made by this sweep, and of those the ones linked to an action.
    filed: list[int] = field(default_factory=list)
    linked: dict[int, int] = field(default_factory=dict)  # tip id → action id
    already_filed: int = 0
    settling: int = 0  # written to too recently: next sweep
    failed: list[tuple[Path, str]] = field(default_factory=list)


@dataclass(frozen=True)
class UnassignedTip:
    id: int
    call_unique_id: str | None
    callback_number: str | None
    region_code: str | None
    recording_path: str
    created_at: datetime


class TipNotFound(LookupError):
    pass


class TipAssignError(ValueError):
    pass


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class TipInbox:
    """Files unfiled tip recordings (:meth:`sweep`) and assigns unassigned tips (:meth:`assign`)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        tips_root: Path,
        alerted_window_seconds: int,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self._sessions = sessions
        self.tips_root = tips_root
        self._alerted_window = timedelta(seconds=alerted_window_seconds)
        self._settle = timedelta(seconds=settle_seconds)

    # -- the sweep ------------------------------------------------------------------------------
    def sweep(self, now: datetime | None = None) -> SweepReport:
        """Give every tip recording a row; safe to run any number of times, from any process."""
        now = now or datetime.now(UTC)
        report = SweepReport()
        # One query for the files already filed (nearly all of them, nearly always); the rest
        # are checked again one by one inside their own transaction.
        known = self._known_recordings()
        for found in find_tip_files(self.tips_root):
            if str(found.path) in known or os.path.realpath(found.path) in known:
                report.already_filed += 1
                continue
            if now - found.recorded_at < self._settle:
                report.settling += 1
                continue
            try:
                filed = self._file(found)
            except Exception as exc:  # one bad file must not keep the others from their rows
                log.exception("tip sweep: cannot file %s", found.path)
                report.failed.append((found.path, str(exc)))
                continue
            if filed is None:
                report.already_filed += 1
                continue
            tip_id, action_id = filed
            report.filed.append(tip_id)
            if action_id is not None:
                report.linked[tip_id] = action_id
        if report.filed or report.failed:
            log.info(
                "tip sweep: %s filed (%s linked to an action), %s failed",
                len(report.filed),
                len(report.linked),
                len(report.failed),
            )
        return report

    def _known_recordings(self) -> set[str]:
        with session_scope(self._sessions) as session:
            known = set(session.scalars(select(Tip.recording_path)))
        return known | {os.path.realpath(path) for path in known}

    def _file(self, found: TipFile) -> tuple[int, int | None] | None:
        """(tip id, action id) of the row made for ``found``; None when it already had one."""
        recording = str(found.path)
        with session_scope(self._sessions) as session:
            if session.scalar(
                select(Tip.id).where(
                    or_(Tip.recording_path == recording, Tip.recording_path == str(found.path.resolve()))
                )
            ):
                return None
            call = session.scalar(select(Call).where(Call.unique_id == found.unique_id))
            if call is not None and session.scalar(select(Tip.id).where(Tip.call_id == call.id)):
                return None
            participant = (
                repositories.participant_by_phone(session, found.caller_number)
                if found.caller_number
                else None
            )
            action_id, reason = self._match(session, found, participant)
            try:
                with session.begin_nested():
                    if call is None:
                        # serve was down for the whole call: the call log has nothing of it.
                        call = Call(
                            unique_id=found.unique_id,
                            kind=cv.CALL_KIND_INBOUND,
                            caller_number=found.caller_number,
                            participant_id=participant.id if participant else None,
                            region_code=participant.region_code if participant else None,
                            started_at=found.recorded_at,
                            ended_at=found.recorded_at,
                        )
                        session.add(call)
                    call.caller_number = call.caller_number or found.caller_number
                    if call.action_id is None:
                        call.action_id = action_id
                    call.recording_path = recording
                    call.route_reason = call.route_reason or f"tip sweep: {reason}"[:200]
                    # The call log's order of outcomes: a tip beats "abandoned", not "connected".
                    if OUTCOME_RANK.get(call.outcome or "", -1) < OUTCOME_RANK[cv.OUTCOME_TIP_LEFT]:
                        call.outcome = cv.OUTCOME_TIP_LEFT
                    session.flush()
                    tip = Tip(
                        call_id=call.id,
                        action_id=call.action_id,
                        recording_path=recording,
                        callback_number=found.caller_number or call.caller_number,
                        # Retention counts from the recording, not from when it was found.
                        created_at=found.recorded_at,
                    )
                    session.add(tip)
                    session.flush()
            except IntegrityError:
                # The tip AGI (or another sweep) filed it between our look-up and insert.
                return None
            repositories.record_audit(
                session,
                actor=SOURCE,
                verb="register",
                entity="tip",
                entity_id=tip.id,
                detail={"action_id": tip.action_id, "call": found.unique_id, "why": reason},
                source=SOURCE,
            )
            if tip.action_id is not None:
                repositories.record_audit(
                    session,
                    actor=SOURCE,
                    verb="tip-filed",
                    entity="action",
                    entity_id=tip.action_id,
                    detail={"tip": tip.id, "why": reason},
                    source=SOURCE,
                )
            return tip.id, tip.action_id

    def _match(
        self, session: Session, found: TipFile, participant: repositories.ParticipantInfo | None
    ) -> tuple[int | None, str]:
        """The action the tip belongs to, and why (or why none)."""
        if found.action_id is not None:
            if session.get(Action, found.action_id) is not None:
                return found.action_id, f"recorded in the folder of action {found.action_id}"
            return None, f"folder of action {found.action_id}, which does not exist"
        if found.caller_number is None:
            return None, "caller number withheld"
        if participant is None:
            return None, "caller is no participant"
        active = self._active_at(session, found.recorded_at)
        if not active:
            return None, "no action was active"
        alerted = self._alerted_by(session, participant.id, found.recorded_at, set(active))
        if alerted is not None:
            return alerted, f"action {alerted} alerted this caller"
        covering = covering_by_scan(active.values(), participant.as_caller())
        if len(covering) == 1:
            return covering[0].action_id, f"caller inside the area of action {covering[0].action_id}"
        if not covering:
            return None, "no active action covers the caller"
        return None, f"{len(covering)} actions cover the caller"

    @staticmethod
    def _active_at(session: Session, moment: datetime) -> dict[int, ActiveAction]:
        """The actions active when the tip was recorded (started before, not closed before), and
        those active now: an action is often started because of the first calls about it."""
        rows = session.scalars(
            select(Action)
            .where(Action.status != ActionStatus.DRAFT.value)
            .options(
                selectinload(Action.region),
                selectinload(Action.team).selectinload(ActionCentralist.centralist),
            )
        )
        found: dict[int, ActiveAction] = {}
        for action in rows:
            started = action.started_at or action.created_at
            active_now = action.status == ActionStatus.ACTIVE.value
            active_then = _aware(started) <= moment and (
                action.closed_at is None or _aware(action.closed_at) >= moment
            )
            if active_now or active_then:
                found[action.id] = repositories.to_active_action(action)
        return found

    def _alerted_by(
        self, session: Session, participant_id: int, moment: datetime, actions: set[int]
    ) -> int | None:
        """The most recent of ``actions`` whose alert reached the participant within the window."""
        rows = session.execute(
            select(Broadcast.action_id, Delivery.updated_at)
            .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
            .where(
                Delivery.participant_id == participant_id,
                Delivery.status.in_(_REACHED),
                Broadcast.kind == "alert",
                Broadcast.action_id.in_(actions),
            )
        ).all()
        since = moment - self._alerted_window
        recent = [(_aware(at), action_id) for action_id, at in rows if since <= _aware(at) <= moment]
        return max(recent)[1] if recent else None

    # -- the panel ------------------------------------------------------------------------------
    def unassigned(self) -> list[UnassignedTip]:
        """Tips without an action, oldest first."""
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Tip, Call.unique_id, Call.region_code)
                .outerjoin(Call, Call.id == Tip.call_id)
                .where(Tip.action_id.is_(None))
                .order_by(Tip.created_at, Tip.id)
            ).all()
            return [
                UnassignedTip(
                    tip.id, unique_id, tip.callback_number, region, tip.recording_path, tip.created_at
                )
                for tip, unique_id, region in rows
            ]

    def assign(self, tip_id: int, action_id: int, *, actor: str, source: str) -> None:
        """Put an unassigned tip under an action (and its call with it), audited on both."""
        with session_scope(self._sessions) as session:
            tip = session.get(Tip, tip_id)
            if tip is None:
                raise TipNotFound(f"no tip {tip_id}")
            if tip.action_id is not None:
                raise TipAssignError(f"tip {tip_id} already belongs to action {tip.action_id}")
            action = session.get(Action, action_id)
            if action is None:
                raise TipAssignError(f"no action {action_id}")
            if action.status == ActionStatus.DRAFT.value:
                raise TipAssignError(f"action {action_id} has not started")
            tip.action_id = action_id
            if tip.call_id is not None:
                call = session.get(Call, tip.call_id)
                if call is not None and call.action_id is None:
                    call.action_id = action_id
            repositories.record_audit(
                session,
                actor=actor,
                verb="assign",
                entity="tip",
                entity_id=tip_id,
                detail={"action_id": action_id},
                source=source,
            )
            repositories.record_audit(
                session,
                actor=actor,
                verb="tip-assigned",
                entity="action",
                entity_id=action_id,
                detail={"tip": tip_id},
                source=source,
            )


class PeriodicTipSweep:
    """The sweep in the serve process: once at start, then every ``every_seconds``.

    The database work runs in a worker thread (``executor``, else asyncio's default); a failing
    sweep is logged and tried again next time, never taking the event loop (and the calls on
    it) down.
    """

    def __init__(self, inbox: TipInbox, every_seconds: float, executor: Executor | None = None) -> None:
        self.inbox = inbox
        self.every_seconds = every_seconds
        # The serve process passes its call-log writer thread: sweeps and call-log writes then
        # take turns instead of competing for the database (SQLite has one writer at a time).
        self._executor = executor
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tip-sweep")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self.inbox.sweep)
            except Exception:
                log.exception("tip sweep failed; trying again in %s s", self.every_seconds)
            await asyncio.sleep(self.every_seconds)
