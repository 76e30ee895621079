"""Participant administration for the panel: search, edit, opt-out, erase on request, a copy of
one person's data (GDPR art. 15), CSV import and export.

Every change is audited with the panel user as actor, and so is every read of personal data
(search, export). Audit details never repeat the personal data itself (a phone number in the
audit log would outlive its erasure).
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import func, select

from burgernet.db import session_scope
from burgernet.domain import Language
from burgernet.imports import PARTICIPANT_COLUMNS, ImportFileError, ImportReport, import_participants
from burgernet.models import Participant, PostcodeArea, Region
from burgernet.participants import erase_participant, export_participant, phone_reference, set_opted_out
from burgernet.phone import InvalidPhoneNumber, normalise
from burgernet.postcode import InvalidPostcode, is_pc4, normalise_postcode
from burgernet.repositories import record_audit
from burgernet.services import Services
from callback_api.errors import InputInvalid, NotFound

SEARCH_LIMIT = 50


class ParticipantError(InputInvalid):
    """The change cannot be made; the message says why and nothing was changed."""

    code: ClassVar[str] = "participant.invalid"


class ParticipantNotFound(ParticipantError, NotFound):
    code: ClassVar[str] = "participant.not_found"
    status: ClassVar[int] = 404


class ImportRefused(InputInvalid):
    """The CSV file as a whole cannot be read (bad rows are reported, not raised)."""

    code: ClassVar[str] = "import.invalid"


@dataclass(frozen=True)
class ParticipantRow:
    id: int
    phone_e164: str
    postcode: str
    house_number: str | None
    email: str | None
    language: str
    channel_voice: bool
    channel_sms: bool
    channel_email: bool
    inquiry_opt_in: bool
    opted_out: bool
    region_code: str | None
    lat: float
    lon: float
    created_at: datetime
    night_alerts: bool = False  # alerts in the quiet hours too (burgernet.night_rules)


@dataclass(frozen=True)
class ParticipantEdit:
    postcode: str
    house_number: str | None
    email: str | None
    language: str
    channel_voice: bool
    channel_sms: bool
    channel_email: bool
    inquiry_opt_in: bool
    night_alerts: bool = False


@dataclass(frozen=True)
class ErasureReport:
    participant_id: int
    erased_fields: tuple[str, ...]
    deliveries_deleted: int
    inquiry_links_deleted: int
    statements_deleted: int
    calls_unlinked: int
    call_numbers_removed: int
    tips_kept: int
    tip_numbers_removed: int
    live_keys_deleted: int
    notes: tuple[str, ...] = field(default=())


def _row(participant: Participant, region_code: str | None) -> ParticipantRow:
    return ParticipantRow(
        id=participant.id,
        phone_e164=participant.phone_e164,
        postcode=participant.postcode,
        house_number=participant.house_number,
        email=participant.email,
        language=participant.language,
        channel_voice=participant.channel_voice,
        channel_sms=participant.channel_sms,
        channel_email=participant.channel_email,
        inquiry_opt_in=participant.inquiry_opt_in,
        opted_out=participant.opted_out,
        region_code=region_code,
        lat=participant.lat,
        lon=participant.lon,
        created_at=participant.created_at,
        night_alerts=participant.night_alerts,
    )


ERASED_FIELDS = (
    "phone number",
    "postcode",
    "house number",
    "e-mail address",
    "location (lat/lon)",
    "language",
    "channels",
    "inquiry opt-in",
    "opt-out status",
)


class PeopleService:
    def __init__(self, services: Services) -> None:
        self._sessions = services.sessions
        self._live = services.live
        self._secret_key = services.settings.web.secret_key

    def search(self, query: str, *, actor: str, source: str) -> list[ParticipantRow]:
        """By phone number (any notation, exact) or postcode (PC4 prefix or full PC6).

        An audited read: who searched, for what and how many were found, never the results. A
        phone number is recorded as a keyed pseudonym (:func:`phone_reference`), so the audit
        log does not keep a number after its owner's erasure, yet shows who looked them up.
        """
        text = query.strip()
        if not text:
            return []
        statement = select(Participant, Region.code).outerjoin(Region, Region.id == Participant.region_id)
        try:
            postcode = normalise_postcode(text)
        except InvalidPostcode:
            try:
                phone = normalise(text)
            except InvalidPhoneNumber:
                raise ParticipantError(
                    f"{text!r} is neither a phone number nor a postcode (1234 or 1234 AB)"
                ) from None
            statement = statement.where(Participant.phone_e164 == phone)
            searched = {"by": "phone", "phone_ref": phone_reference(self._secret_key, phone)}
        else:
            searched = {"by": "postcode", "postcode": postcode}
            if is_pc4(postcode):
                # A range, not LIKE: SQLite's case-insensitive LIKE cannot use the postcode index.
                statement = statement.where(Participant.postcode.between(postcode, f"{postcode}ZZ"))
            else:
                statement = statement.where(Participant.postcode == postcode)
        with session_scope(self._sessions) as session:
            rows = session.execute(
                statement.order_by(Participant.postcode, Participant.id).limit(SEARCH_LIMIT)
            ).all()
            record_audit(
                session,
                actor=actor,
                verb="read",
                entity="participants",
                entity_id=None,
                detail={"what": "search", **searched, "found": len(rows)},
                source=source,
            )
            return [_row(participant, code) for participant, code in rows]

    def get(self, participant_id: int) -> ParticipantRow:
        with session_scope(self._sessions) as session:
            row = session.execute(
                select(Participant, Region.code)
                .outerjoin(Region, Region.id == Participant.region_id)
                .where(Participant.id == participant_id)
            ).first()
            if row is None:
                raise ParticipantNotFound(f"no participant {participant_id}")
            return _row(row[0], row[1])

    def edit(
        self, participant_id: int, change: ParticipantEdit, *, actor: str, source: str
    ) -> ParticipantRow:
        try:
            postcode = normalise_postcode(change.postcode)
        except InvalidPostcode as exc:
            raise ParticipantError(str(exc)) from None
        if is_pc4(postcode):
            raise ParticipantError("a full postcode (1234 AB) is required")
        if change.language not in {lang.value for lang in Language}:
            raise ParticipantError(f"language must be nl or en, not {change.language!r}")
        email = (change.email or "").strip() or None
        if email is not None and ("@" not in email or " " in email or len(email) > 254):
            raise ParticipantError(f"not an e-mail address: {email!r}")
        if change.channel_email and email is None:
            raise ParticipantError("the e-mail channel needs an e-mail address")
        with session_scope(self._sessions) as session:
            participant = session.get(Participant, participant_id)
            if participant is None:
                raise ParticipantNotFound(f"no participant {participant_id}")
            changed: list[str] = []
            if postcode[:4] != participant.postcode[:4]:
                # A new PC4 area moves the participant (and their region) to that area's centre.
                place = session.get(PostcodeArea, postcode[:4])
                if place is None:
                    raise ParticipantError(f"postcode area {postcode[:4]} is unknown")
                participant.lat, participant.lon, participant.region_id = (
                    place.lat,
                    place.lon,
                    place.region_id,
                )
                changed.append("location")
            values = {
                "postcode": postcode,
                "house_number": (change.house_number or "").strip() or None,
                "email": email,
                "language": change.language,
                "channel_voice": change.channel_voice,
                "channel_sms": change.channel_sms,
                "channel_email": change.channel_email,
                "inquiry_opt_in": change.inquiry_opt_in,
                "night_alerts": change.night_alerts,
            }
            for name, value in values.items():
                if getattr(participant, name) != value:
                    setattr(participant, name, value)
                    changed.append(name)
            if changed:
                record_audit(
                    session,
                    actor=actor,
                    verb="edit",
                    entity="participant",
                    entity_id=participant.id,
                    detail={"fields": sorted(changed)},
                    source=source,
                )
            region_code = session.scalar(select(Region.code).where(Region.id == participant.region_id))
            return _row(participant, region_code)

    def set_opt_out(self, participant_id: int, opted_out: bool, *, actor: str, source: str) -> None:
        """Opt a participant out of alerts (or back in) on their request."""
        if not set_opted_out(
            self._sessions, participant_id=participant_id, opted_out=opted_out, source=source, actor=actor
        ):
            raise ParticipantNotFound(f"no participant {participant_id}")

    def erase(self, participant_id: int, *, actor: str, source: str) -> ErasureReport:
        """Delete a participant on their request and say exactly what went.

        Their deliveries, personal inquiry links and the statements given through them are
        deleted with them; calls and tips stay as police records of the action, unlinked and
        without their number (see :func:`burgernet.participants.erase_participant`), and the
        "recently alerted" marker in Redis is removed.
        """
        erasure = erase_participant(self._sessions, participant_id, actor=actor, source=source)
        if erasure is None:
            raise ParticipantNotFound(f"no participant {participant_id}")
        live_deleted = int(self._live.client.delete(self._live.keys.alerted(erasure.phone_e164)))
        return ErasureReport(
            participant_id=participant_id,
            erased_fields=ERASED_FIELDS,
            deliveries_deleted=erasure.deliveries_deleted,
            inquiry_links_deleted=erasure.inquiry_links_deleted,
            statements_deleted=erasure.statements_deleted,
            calls_unlinked=erasure.calls_unlinked,
            call_numbers_removed=erasure.call_numbers_removed,
            tips_kept=erasure.tips_kept,
            tip_numbers_removed=erasure.tip_numbers_removed,
            live_keys_deleted=live_deleted,
        )

    def export_json(self, participant_id: int, *, actor: str, source: str) -> dict[str, Any]:
        """Everything stored about one participant (GDPR art. 15); the read is audited."""
        document = export_participant(
            self._sessions, participant_id, actor=actor, source=source, secret_key=self._secret_key
        )
        if document is None:
            raise ParticipantNotFound(f"no participant {participant_id}")
        return document

    def import_file(
        self, write: Callable[[Path], object], name: str, *, skip_bad: bool, actor: str, source: str
    ) -> ImportReport:
        """Import participants from an uploaded CSV that ``write`` saves under ``name``.

        The file lives in a temporary folder for the import only; a file that cannot be read as a
        whole raises :class:`ImportRefused` naming it as the user did, not by its server path.
        """
        with tempfile.TemporaryDirectory(prefix="bn-import-") as folder:
            path = Path(folder) / name
            write(path)
            try:
                with session_scope(self._sessions) as session:
                    return import_participants(session, path, skip_bad=skip_bad, actor=actor, source=source)
            except ImportFileError as exc:
                raise ImportRefused(str(exc).replace(str(path), name)) from None

    def export_csv(self, *, actor: str, source: str) -> Iterator[str]:
        """Participants who did not opt out, in the import format (re-importable), streamed.

        The export itself is audited before the first row leaves: it is a bulk copy of personal data.
        """
        with session_scope(self._sessions) as session:
            total = session.scalar(
                select(func.count()).select_from(Participant).where(Participant.opted_out.is_(False))
            )
            record_audit(
                session,
                actor=actor,
                verb="read",
                entity="participants",
                entity_id=None,
                detail={"what": "export-csv", "rows": total},
                source=source,
            )

        def rows() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(PARTICIPANT_COLUMNS)
            with session_scope(self._sessions) as session:
                result = session.execute(
                    select(Participant).where(Participant.opted_out.is_(False)).order_by(Participant.id),
                    execution_options={"yield_per": 5000},
                ).scalars()
                for number, p in enumerate(result, start=1):
                    channels = ";".join(
                        name
                        for name, on in (
                            ("voice", p.channel_voice),
                            ("sms", p.channel_sms),
                            ("email", p.channel_email),
                        )
                        if on
                    )
                    writer.writerow(
                        [
                            p.phone_e164,
                            p.postcode,
                            p.house_number or "",
                            p.email or "",
                            p.language,
                            channels,
                            "yes" if p.inquiry_opt_in else "no",
                            f"{p.lat:.6f}",
                            f"{p.lon:.6f}",
                            "yes" if p.night_alerts else "no",
                        ]
                    )
                    if number % 1000 == 0:
                        yield buffer.getvalue()
                        buffer.seek(0)
                        buffer.truncate()
            yield buffer.getvalue()

        return rows()
