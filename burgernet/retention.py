"""Retention: personal data is removed when its kind's time is up, by itself, audited with counts.

One setting per kind of personal data (``retention.*_days``, :class:`burgernet.settings.
RetentionSettings`); :meth:`Retention.run` removes what is older, kind by kind:

===============  ==============================================================================
kind             what goes (what stays)
===============  ==============================================================================
call_numbers     a call's caller number, participant link and recording path (the call stays:
                 time, action, centralist, outcome)
tips             tips (call-back number) with their recording files, of actions no longer
                 active; done call-back worklist notes (the counts stay in action_facts)
deliveries       delivery rows of finished broadcasts whose action is closed or inquiry ended:
                 who was sent what (a caller's number told the closing word too), provider
                 reference, error text (the counts stay)
inquiries        inquiry statements with their photos; the personal links of ended inquiries
sightings        a sighting's description and its links to the call and the statement; an app
                 sighting's photo file and reply channel (time, place, direction and
                 reliability stay)
audit            in audit events: details naming people (participant, call, tip, statement,
                 sighting events) and any phone number or e-mail address in other details;
                 a participant event's id (who did what, when, stays)
logs             files in ``<data_dir>/logs`` last written before the cutoff
===============  ==============================================================================

Before rows an action's figures were counted from are removed, the action's figures are
refreshed and marked (:meth:`burgernet.facts.ActionFacts.mark_sources_purged`): the
anonymous aggregates survive and never go down afterwards.

Files are removed in the order that never leaves a row pointing at a missing file nor a file
nobody knows about: rename to ``*.purging``, delete the row, unlink (a leftover trash file is
swept by the next run). A file outside its folder (recordings, the data directory) is never
deleted because a database value says so. Each kind's purge is audited with its counts, never
its contents. ``dry_run`` counts what would go and changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.domain import ActionStatus
from burgernet.facts import ActionFacts
from burgernet.models import (
    Action,
    AuditEvent,
    Broadcast,
    Call,
    CallbackItem,
    Delivery,
    Inquiry,
    InquiryLink,
    Sighting,
    Statement,
    Tip,
)
from burgernet.repositories import record_audit
from burgernet.settings import Settings

log = logging.getLogger(__name__)

KINDS = ("call_numbers", "tips", "deliveries", "inquiries", "sightings", "audit", "logs")
ACTOR = "retention"
TRASH_SUFFIX = ".purging"
CHUNK = 500
# Audit events about these are about people: their details go whole.
PERSONAL_AUDIT_ENTITIES = ("participant", "participants", "call", "tip", "statement", "sighting", "callback")
REDACTED = json.dumps({"redacted": "retention"})
# A phone number (international or Dutch, spaces and dashes allowed) or an e-mail address.
_PERSONAL_TEXT = re.compile(r"(\+|\b0)\d[\d \-]{6,}\d|[\w.+-]+@[\w-]+(\.[\w-]+)+")
_REMOVED = "[removed]"


@dataclass
class KindReport:
    kind: str
    days: int
    cutoff: datetime
    # What went (or would go, in a dry run): a few named counts per kind.
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return sum(self.counts.values())


@dataclass
class RetentionReport:
    now: datetime
    dry_run: bool
    kinds: list[KindReport] = field(default_factory=list)

    def kind(self, name: str) -> KindReport:
        return next(k for k in self.kinds if k.kind == name)


class Retention:
    def __init__(self, sessions: sessionmaker[Session], settings: Settings, facts: ActionFacts) -> None:
        self._sessions = sessions
        self._settings = settings
        self._facts = facts

    def days(self, kind: str) -> int:
        r = self._settings.retention
        return {
            "call_numbers": r.call_numbers_days,
            "tips": self._settings.tips_retention_days(),
            "deliveries": r.deliveries_days,
            "inquiries": r.inquiries_days,
            "sightings": r.sightings_days,
            "audit": r.audit_days,
            "logs": r.logs_days,
        }[kind]

    def run(
        self, now: datetime | None = None, *, dry_run: bool = False, kinds: Sequence[str] = KINDS
    ) -> RetentionReport:
        now = now or datetime.now(UTC)
        report = RetentionReport(now=now, dry_run=dry_run)
        steps: dict[str, Callable[[KindReport, bool], None]] = {
            "call_numbers": self._call_numbers,
            "tips": self._tips,
            "deliveries": self._deliveries,
            "inquiries": self._inquiries,
            "sightings": self._sightings,
            "audit": self._audit,
            "logs": self._logs,
        }
        for kind in kinds:
            days = self.days(kind)
            result = KindReport(kind, days, now - timedelta(days=days))
            try:
                steps[kind](result, dry_run)
            except Exception as exc:  # one kind's trouble must not keep the others' data forever
                log.exception("retention of %s failed; the next run tries again", kind)
                result.failed.append(f"{type(exc).__name__}: {exc}")
            report.kinds.append(result)
            if not dry_run:
                # Every run, even one that found nothing: the audit run reads its last cutoff here.
                self._audit_purge(result)
        return report

    # -- the kinds -----------------------------------------------------------------------------
    def _call_numbers(self, result: KindReport, dry_run: bool) -> None:
        personal = (
            Call.started_at < result.cutoff,
            or_(
                Call.caller_number.is_not(None),
                Call.participant_id.is_not(None),
                Call.recording_path.is_not(None),
            ),
        )
        with session_scope(self._sessions) as session:
            if dry_run:
                result.counts["calls"] = _count(session, select(func.count(Call.id)).where(*personal))
                return
            changed = session.execute(
                update(Call)
                .where(*personal)
                .values(caller_number=None, participant_id=None, recording_path=None)
            )
            result.counts["calls"] = int(changed.rowcount or 0)  # type: ignore[attr-defined]

    def _tips(self, result: KindReport, dry_run: bool) -> None:
        active = select(Action.id).where(Action.status == ActionStatus.ACTIVE.value)
        expired = (
            Tip.created_at < result.cutoff,
            or_(Tip.action_id.is_(None), Tip.action_id.not_in(active)),
        )
        notes = (CallbackItem.done_at < result.cutoff, CallbackItem.note.is_not(None))
        with session_scope(self._sessions) as session:
            tips = session.execute(select(Tip.id, Tip.action_id, Tip.recording_path).where(*expired)).all()
            note_count = _count(session, select(func.count(CallbackItem.id)).where(*notes))
        if dry_run:
            result.counts["tips"] = len(tips)
            result.counts["callback_notes"] = note_count
            return
        self._before_purge({action_id for _tip, action_id, _path in tips if action_id is not None})
        root = self._settings.recordings_dir
        _sweep_trash(root)

        def delete_tip(session: Session, tip_id: int) -> None:
            tip = session.get(Tip, tip_id)
            if tip is None:
                return
            if tip.call_id is not None:
                session.execute(update(Call).where(Call.id == tip.call_id).values(recording_path=None))
            session.delete(tip)

        removed, files = 0, 0
        for tip_id, _action_id, path in tips:
            outcome = self._remove_with_file(tip_id, path, root, delete_tip)
            if outcome is None:
                result.failed.append(f"tip {tip_id}: its recording could not be removed; kept")
                continue
            removed += 1
            files += outcome
        with session_scope(self._sessions) as session:
            notes_blanked = session.execute(update(CallbackItem).where(*notes).values(note=None))
        result.counts["tips"] = removed
        result.counts["recordings"] = files
        result.counts["callback_notes"] = int(notes_blanked.rowcount or 0)  # type: ignore[attr-defined]

    def _deliveries(self, result: KindReport, dry_run: bool) -> None:
        now = result.cutoff + timedelta(days=result.days)
        finished = Broadcast.status.in_(("done", "cancelled"))
        owner_over = or_(
            Broadcast.action_id.in_(select(Action.id).where(Action.status == ActionStatus.CLOSED.value)),
            Broadcast.inquiry_id.in_(select(Inquiry.id).where(Inquiry.closes_at < now)),
        )
        old = or_(
            Delivery.finished_at < result.cutoff,
            Delivery.finished_at.is_(None) & (Delivery.updated_at < result.cutoff),
        )
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(Delivery.broadcast_id, Broadcast.action_id, func.count(Delivery.id))
                .join(Broadcast, Broadcast.id == Delivery.broadcast_id)
                .where(finished, owner_over, old)
                .group_by(Delivery.broadcast_id, Broadcast.action_id)
            ).all()
        by_broadcast = {broadcast_id: int(number) for broadcast_id, _action_id, number in rows}
        result.counts["deliveries"] = sum(by_broadcast.values())
        if dry_run or not by_broadcast:
            return
        self._before_purge({action_id for _broadcast_id, action_id, _number in rows if action_id is not None})
        removed = 0
        for broadcast_id in by_broadcast:
            while True:  # in chunks: a national alert's million rows are not one transaction
                with session_scope(self._sessions) as session:
                    ids = list(
                        session.scalars(
                            select(Delivery.id)
                            .where(Delivery.broadcast_id == broadcast_id, old)
                            .limit(CHUNK * 10)
                        )
                    )
                    if not ids:
                        break
                    session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
                    removed += len(ids)
        result.counts["deliveries"] = removed

    def _inquiries(self, result: KindReport, dry_run: bool) -> None:
        ended = select(Inquiry.id).where(Inquiry.closes_at < result.cutoff)
        with session_scope(self._sessions) as session:
            statements = session.execute(
                select(Statement.id, Statement.photo_path).where(Statement.created_at < result.cutoff)
            ).all()
            links = _count(
                session, select(func.count(InquiryLink.id)).where(InquiryLink.inquiry_id.in_(ended))
            )
        if dry_run:
            result.counts["statements"] = len(statements)
            result.counts["links"] = links
            return
        root = self._settings.data_dir
        _sweep_trash(root / "photos")

        def delete_statement(session: Session, statement_id: int) -> None:
            session.execute(delete(Statement).where(Statement.id == statement_id))

        removed, files = 0, 0
        for statement_id, path in statements:
            outcome = self._remove_with_file(statement_id, path, root, delete_statement)
            if outcome is None:
                result.failed.append(f"statement {statement_id}: its photo could not be removed; kept")
                continue
            removed += 1
            files += outcome
        with session_scope(self._sessions) as session:
            # A link's own statement went above (or is younger: its link waits for it).
            gone = session.execute(
                delete(InquiryLink).where(
                    InquiryLink.inquiry_id.in_(ended),
                    InquiryLink.id.not_in(select(Statement.link_id)),
                )
            )
        result.counts["statements"] = removed
        result.counts["photos"] = files
        result.counts["links"] = int(gone.rowcount or 0)  # type: ignore[attr-defined]

    def _sightings(self, result: KindReport, dry_run: bool) -> None:
        # An app sighting's photo and reply channel (the device's push subscription) go too.
        personal = (
            Sighting.created_at < result.cutoff,
            or_(
                Sighting.description != "",
                Sighting.call_id.is_not(None),
                Sighting.statement_id.is_not(None),
                Sighting.photo_path.is_not(None),
                Sighting.push_subscription_id.is_not(None),
            ),
        )
        blank = {"description": "", "call_id": None, "statement_id": None, "push_subscription_id": None}
        with session_scope(self._sessions) as session:
            if dry_run:
                result.counts["sightings"] = _count(session, select(func.count(Sighting.id)).where(*personal))
                photos = _count(
                    session,
                    select(func.count(Sighting.id)).where(*personal, Sighting.photo_path.is_not(None)),
                )
                if photos:  # named only when there are any: a panel-only system reports as before
                    result.counts["sighting_photos"] = photos
                return
            with_photo = session.execute(
                select(Sighting.id, Sighting.photo_path).where(*personal, Sighting.photo_path.is_not(None))
            ).all()
        root = self._settings.data_dir
        _sweep_trash(root / "photos")

        def blank_sighting(session: Session, sighting_id: int) -> None:
            session.execute(
                update(Sighting).where(Sighting.id == sighting_id).values(photo_path=None, **blank)
            )

        blanked, files = 0, 0
        for sighting_id, path in with_photo:
            outcome = self._remove_with_file(sighting_id, path, root, blank_sighting)
            if outcome is None:
                result.failed.append(f"sighting {sighting_id}: its photo could not be removed; kept")
                continue
            blanked += 1
            files += outcome
        with session_scope(self._sessions) as session:
            # The photos that could not be removed keep their rows as they are (retried next run).
            changed = session.execute(
                update(Sighting).where(*personal, Sighting.photo_path.is_(None)).values(**blank)
            )
        result.counts["sightings"] = blanked + int(changed.rowcount or 0)  # type: ignore[attr-defined]
        if files:
            result.counts["sighting_photos"] = files

    def _audit(self, result: KindReport, dry_run: bool) -> None:
        # Only events not looked at by an earlier run: the last run's cutoff is in its own audit.
        with session_scope(self._sessions) as session:
            since = _last_cutoff(session, "audit")
            window: list[ColumnElement[bool]] = [
                AuditEvent.at < result.cutoff,
                AuditEvent.detail.is_not(None),
            ]
            if since is not None:
                window.append(AuditEvent.at >= since - timedelta(days=1))  # a day's overlap: clocks differ
            last_id = 0
            redacted = 0
            while True:
                rows = session.execute(
                    select(AuditEvent.id, AuditEvent.entity, AuditEvent.entity_id, AuditEvent.detail)
                    .where(*window, AuditEvent.id > last_id)
                    .order_by(AuditEvent.id)
                    .limit(CHUNK)
                ).all()
                if not rows:
                    break
                for event_id, entity, entity_id, detail in rows:
                    last_id = event_id
                    if detail is None or detail == REDACTED:
                        continue
                    if entity in PERSONAL_AUDIT_ENTITIES:
                        new_detail = REDACTED
                    else:
                        new_detail = _PERSONAL_TEXT.sub(_REMOVED, detail)
                        if new_detail == detail:
                            continue
                    redacted += 1
                    if not dry_run:
                        values: dict[str, Any] = {"detail": new_detail}
                        if entity == "participant" and entity_id is not None:
                            values["entity_id"] = None
                        session.execute(update(AuditEvent).where(AuditEvent.id == event_id).values(**values))
        result.counts["events"] = redacted

    def _logs(self, result: KindReport, dry_run: bool) -> None:
        folder = self._settings.data_dir / "logs"
        removed = 0
        for path in _old_files(folder, result.cutoff):
            if not dry_run:
                try:
                    path.unlink()
                except OSError as exc:
                    result.failed.append(f"{path.name}: {exc.strerror}")
                    continue
            removed += 1
        result.counts["files"] = removed

    # -- helpers -------------------------------------------------------------------------------
    def _before_purge(self, action_ids: set[int]) -> None:
        """Count first: the actions' figures are refreshed and frozen against going down."""
        if not action_ids:
            return
        self._facts.refresh_many(action_ids)
        with session_scope(self._sessions) as session:
            self._facts.mark_sources_purged(session, action_ids, datetime.now(UTC))

    def _remove_with_file(
        self, row_id: int, stored_path: str | None, root: Path, delete_row: Callable[[Session, int], None]
    ) -> int | None:
        """Delete a row and its file safely: 1 (file removed), 0 (no file), None (nothing changed)."""
        path = Path(stored_path) if stored_path else None
        if path is not None and not path.resolve().is_relative_to(root.resolve()):
            log.error("retention: %s lies outside %s; neither it nor its row is removed", path, root)
            return None
        trash = path.with_name(f"{path.name}.{row_id}{TRASH_SUFFIX}") if path is not None else None
        moved = False
        if path is not None and trash is not None:
            try:
                os.rename(path, trash)
                moved = True
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("retention: cannot remove %s: %s", path, exc)
                return None
        try:
            with session_scope(self._sessions) as session:
                delete_row(session, row_id)
        except Exception:
            if moved and path is not None and trash is not None:
                os.rename(trash, path)  # the row stays: so does its file
            log.exception("retention: row %s not deleted; its file is kept", row_id)
            return None
        if moved and trash is not None:
            try:
                trash.unlink()
            except OSError as exc:  # swept on the next run
                log.warning("retention: cannot remove %s: %s", trash, exc)
        return 1 if moved else 0

    def _audit_purge(self, result: KindReport) -> None:
        with session_scope(self._sessions) as session:
            record_audit(
                session,
                actor=ACTOR,
                verb="purge",
                entity="retention",
                entity_id=result.kind,
                detail={
                    "days": result.days,
                    "cutoff": result.cutoff.isoformat(),
                    **result.counts,
                    **({"failed": len(result.failed)} if result.failed else {}),
                },
                source="retention",
            )


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(query) or 0)


def _last_cutoff(session: Session, kind: str) -> datetime | None:
    detail = session.scalar(
        select(AuditEvent.detail)
        .where(AuditEvent.entity == "retention", AuditEvent.entity_id == kind, AuditEvent.verb == "purge")
        .order_by(AuditEvent.id.desc())
        .limit(1)
    )
    if not detail:
        return None
    try:
        cutoff = datetime.fromisoformat(json.loads(detail)["cutoff"])
    except (ValueError, KeyError, TypeError):
        return None
    return cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=UTC)


def _old_files(folder: Path, cutoff: datetime) -> Iterator[Path]:
    if not folder.is_dir():
        return
    limit = cutoff.timestamp()
    for path in sorted(folder.rglob("*")):
        try:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime < limit:
                yield path
        except OSError:
            continue


def _sweep_trash(root: Path) -> None:
    """Remove ``*.purging`` files an interrupted run left behind (their rows are gone)."""
    if not root.is_dir():
        return
    for trash in root.rglob(f"*{TRASH_SUFFIX}"):
        try:
            if trash.is_file():
                trash.unlink()
        except OSError as exc:
            log.warning("retention: cannot remove %s: %s", trash, exc)
