"""The domain model as SQLAlchemy 2.0 typed ORM classes.

Constraints live in the database as well as in Python, so bad rows are refused whichever
path writes them (CLI, panel, an operator with psql): unique normalised phone numbers,
known enum values, coordinates inside the Netherlands' bounding box, and an action's
status that only moves draft → active → closed (checked in Python by ``Action.move_to`` and
by the ``status`` validator; timestamps that must go with each status are CHECKed).

One module on purpose, over 500 lines: the whole schema in one place, as the migrations see it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from burgernet.domain import (
    DELIVERY_STATUSES,
    ActionStatus,
    ActionType,
    AreaKind,
    Channel,
    Language,
    OutcomeKind,
    Role,
    check_transition,
)

# Named constraints so Alembic migrations are stable on SQLite and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: list[str]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


# Generous box around the Netherlands (incl. the Wadden islands and south Limburg).
NL_BOUNDS = (3.0, 50.6, 7.5, 53.8)  # min lon, min lat, max lon, max lat
_ENDPOINT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
_IN_NL = "lat BETWEEN 50.6 AND 53.8 AND lon BETWEEN 3.0 AND 7.5"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Region(Base):
    __tablename__ = "regions"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(8), unique=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    # GeoJSON geometry (Polygon/MultiPolygon, WGS84) of the region's territory.
    boundary_geojson: Mapped[str | None] = mapped_column(Text)

    centralists: Mapped[list[Centralist]] = relationship(back_populates="region")


class Centralist(Base):
    __tablename__ = "centralists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    # PJSIP endpoint name; rendered into pjsip.conf and used in Dial(PJSIP/<endpoint>).
    sip_endpoint: Mapped[str] = mapped_column(String(40), unique=True)
    # The SIP password is never stored: only PJSIP's md5_cred, md5("endpoint:realm:password")
    # (burgernet.centralists.sip_digest). None: no password made yet, the phone cannot register.
    sip_md5_cred: Mapped[str | None] = mapped_column(String(32))
    # Optional fixed contact (sip:user@host:port) for phones that do not REGISTER.
    sip_contact: Mapped[str | None] = mapped_column(String(200))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"), index=True)
    on_duty: Mapped[bool] = mapped_column(Boolean, default=True)
    # Deactivated centralists stay for the call history (calls and action teams refer to them)
    # but lose their SIP account, leave the routing and cannot join new actions.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    region: Mapped[Region] = relationship(back_populates="centralists")

    @validates("sip_endpoint")
    def _validate_endpoint(self, _key: str, value: str) -> str:
        # The name is pasted into pjsip.conf and Dial(): keep it to a safe alphabet.
        if not _ENDPOINT_NAME.fullmatch(value):
            raise ValueError(f"SIP endpoint {value!r}: use 2-40 of a-z, 0-9 and '-'")
        return value


class PostcodeArea(Base):
    """A four-digit postcode area (PC4): what a caller can key in on the phone."""

    __tablename__ = "postcode_areas"

    pc4: Mapped[str] = mapped_column(String(4), primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"), index=True)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    boundary_geojson: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (CheckConstraint(_IN_NL, name="in_nl"),)


class Participant(Base):
    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_e164: Mapped[str] = mapped_column(String(20), unique=True)
    email: Mapped[str | None] = mapped_column(String(254))
    postcode: Mapped[str] = mapped_column(String(6), index=True)
    house_number: Mapped[str | None] = mapped_column(String(10))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id", ondelete="SET NULL"), index=True)
    language: Mapped[str] = mapped_column(String(2), default=Language.NL.value)
    channel_voice: Mapped[bool] = mapped_column(Boolean, default=True)
    channel_sms: Mapped[bool] = mapped_column(Boolean, default=True)
    channel_email: Mapped[bool] = mapped_column(Boolean, default=False)
    inquiry_opt_in: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Alerts in the quiet hours too (migration 0020, burgernet.night_rules): not held till morning.
    night_alerts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        CheckConstraint(_in("language", [lang.value for lang in Language]), name="language"),
        CheckConstraint("phone_e164 LIKE '+%'", name="phone_e164"),
        CheckConstraint(_IN_NL, name="in_nl"),
        CheckConstraint("(NOT opted_out) OR (opted_out_at IS NOT NULL)", name="opted_out_at"),
        # The spatial pre-filter for recipient selection (broadcasting.recipients): range scans
        # on (lat, lon) per latitude strip. It covers every column the selection reads, so
        # the scan never visits the table (an index-only scan on PostgreSQL).
        Index(
            "ix_participants_recipients",
            "lat",
            "lon",
            "opted_out",
            "channel_voice",
            "channel_sms",
            "channel_email",
            "id",
        ),
    )


class ActionCentralist(Base):
    """The centralists owning an action, in the order they are rung."""

    __tablename__ = "action_centralists"

    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True)
    centralist_id: Mapped[int] = mapped_column(
        ForeignKey("centralists.id", ondelete="RESTRICT"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)

    centralist: Mapped[Centralist] = relationship()


# How urgently an action's broadcasts go out: the broadcast queue's three levels, highest first.
URGENCIES = ("amber", "urgent", "information")
# All channels, as an action's ``channels`` column stores them (the default: every channel).
ALL_CHANNELS = ",".join(channel.value for channel in Channel)


def urgency_implied_by(action_type: str) -> str:
    """The urgency an action type had before actions recorded their own (and still has by default)."""
    if action_type == ActionType.AMBER_ALERT.value:
        return "amber"
    if action_type in (ActionType.MISSING_CHILD.value, ActionType.MISSING_PERSON.value):
        return "urgent"
    return "information"


def _implied_urgency(context: Any) -> str:
    # An Action inserted without an urgency (fixtures, older code) keeps its type's urgency.
    return urgency_implied_by(str(context.get_current_parameters().get("action_type", "")))


class Action(Base):
    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_type: Mapped[str] = mapped_column(String(20))
    # Short description spoken in menus ("missing boy, 8, red coat").
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    photo_path: Mapped[str | None] = mapped_column(String(300))
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="RESTRICT"), index=True)
    area_kind: Mapped[str] = mapped_column(String(10))
    # circle: centre + radius; polygon: GeoJSON geometry; postcodes: "1234,1235AB,..."
    center_lat: Mapped[float | None] = mapped_column(Float)
    center_lon: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[float | None] = mapped_column(Float)
    area_geojson: Mapped[str | None] = mapped_column(Text)
    postcodes: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=ActionStatus.DRAFT.value, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(200))  # the internal note on closing
    result_message: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(80))
    # One of OUTCOME_KINDS once closed (NULL before): what management counts. CHECKed on
    # PostgreSQL; SQLite would have to copy the whole table to add a CHECK (migration 0012).
    outcome_kind: Mapped[str | None] = mapped_column(String(20))
    # The channels its broadcasts use ("voice,sms,email", a subset in that order): a participant
    # who chose none of them is not sent this action's alert. Set from the type's template.
    channels: Mapped[str] = mapped_column(String(20), default=ALL_CHANNELS, server_default=ALL_CHANNELS)
    # One of URGENCIES: the priority of its broadcasts in the queue (broadcasting.store.priority_for).
    urgency: Mapped[str] = mapped_column(String(12), default=_implied_urgency, server_default="information")
    # The code a caller keys on the free number to reach this action ("4821": 4 digits, no
    # leading zero; burgernet/action_codes.py). Given when the action starts, kept after it
    # closes for the record; unique among actions not closed (the partial index below), so a
    # closed action's code may later go to another action.
    action_code: Mapped[str | None] = mapped_column(String(4))

    region: Mapped[Region] = relationship()
    team: Mapped[list[ActionCentralist]] = relationship(
        order_by="ActionCentralist.position", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint(_in("action_type", [t.value for t in ActionType]), name="action_type"),
        CheckConstraint(_in("status", [s.value for s in ActionStatus]), name="status"),
        CheckConstraint(_in("area_kind", [k.value for k in AreaKind]), name="area_kind"),
        CheckConstraint(
            "(area_kind != 'circle') OR (center_lat IS NOT NULL AND center_lon IS NOT NULL AND radius_m > 0)",
            name="circle_complete",
        ),
        CheckConstraint("(area_kind != 'polygon') OR (area_geojson IS NOT NULL)", name="polygon_complete"),
        CheckConstraint("(area_kind != 'postcodes') OR (postcodes IS NOT NULL)", name="postcodes_complete"),
        CheckConstraint(
            "(status = 'draft') OR (started_at IS NOT NULL) OR (closed_at IS NOT NULL)",
            name="started_when_live",
        ),
        CheckConstraint("(status != 'closed') OR (closed_at IS NOT NULL)", name="closed_has_time"),
        # One open action per code: two concurrent starts that drew the same code cannot both
        # commit (burgernet.action_codes retries the loser with another code).
        Index(
            "uq_actions_open_action_code",
            "action_code",
            unique=True,
            sqlite_where=text("status != 'closed'"),
            postgresql_where=text("status != 'closed'"),
        ),
    )

    @validates("status")
    def _validate_status(self, _key: str, value: str) -> str:
        target = ActionStatus(value)
        current = self.__dict__.get("status")
        if current is not None and current != target.value:
            check_transition(ActionStatus(current), target)
        return target.value

    @validates("action_code")
    def _validate_action_code(self, _key: str, value: str | None) -> str | None:
        # Four digits, the first not 0: what a caller can key and the app can dial after a pause.
        if value is not None and not (
            len(value) == 4 and value.isascii() and value.isdigit() and value[0] != "0"
        ):
            raise ValueError(f"an action code is four digits not starting with 0, not {value!r}")
        return value


# What a broadcast says: an action's alert, update and result message; a neighbourhood
# inquiry's invitation (each recipient's own link) and follow-up update.
# A "reply" is the centralist's question back to the device a sighting came from (one push).
BROADCAST_KINDS = ("alert", "update", "result", "inquiry", "inquiry_update", "reply")


class Broadcast(Base):
    """One message to many people, sent by the workers: for an action, or for an inquiry."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Exactly one of the two is set (CHECK one_owner).
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), index=True)
    inquiry_id: Mapped[int | None] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="alert")  # one of BROADCAST_KINDS
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Queue priority: 0 = AMBER Alert, 1 = urgent, 2 = information (lower goes first).
    priority: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    # Deliveries created when the broadcast was enqueued (the 100 % of the progress figures).
    total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The estimated time to 50/90/100 % made at the fan-out (migration 0020, burgernet.eta; JSON).
    estimate: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("priority IN (0, 1, 2)", name="priority"),
        CheckConstraint(_in("kind", list(BROADCAST_KINDS)), name="kind"),
        CheckConstraint(_in("status", ["pending", "running", "done", "cancelled"]), name="status"),
        CheckConstraint(
            "(action_id IS NOT NULL AND inquiry_id IS NULL)"
            " OR (action_id IS NULL AND inquiry_id IS NOT NULL)",
            name="one_owner",
        ),
    )


class Delivery(Base):
    """One message to one recipient on one channel: a participant (voice, SMS, e-mail), a push
    subscription (Web Push) or, for an action's closing word only, a caller's number (voice,
    SMS); never two of them.

    Push keeps one row per subscription, like the other channels, so the log, the progress and
    the figures count the same way; the worker claims and records push rows in batches
    (``broadcasting.store.claim_push``), which is what makes 1.3 million of them affordable.
    A subscription deleted later (the push service said 410, or the device unsubscribed) leaves
    its rows with ``push_subscription_id`` NULL: the log keeps the outcome, not the endpoint.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    push_subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("push_subscriptions.id", ondelete="SET NULL"), index=True
    )
    # A reply push answers this sighting (the device shows the question with it).
    sighting_id: Mapped[int | None] = mapped_column(ForeignKey("sightings.id", ondelete="SET NULL"))
    # The closing word to someone who phoned about the action and is no participant (migration
    # 0021, burgernet.closing_word): their number, used for this delivery only, gone with the row.
    caller_e164: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_ref: Mapped[str | None] = mapped_column(String(80), index=True)
    last_error: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the current attempt was handed to the provider: a delivery left in "sending" by a
    # worker that died is reconciled with the provider from this moment on, never blindly re-sent.
    sending_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set once the delivery reached a final status (the progress figures' clock).
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An SMS sent because this participant's alert call did not reach them (migration 0018,
    # burgernet.alert_policies): the voice delivery it replaces.
    fallback_of: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL"), index=True
    )
    # Held by the night rules (migration 0020): not sent before this moment.
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # One delivery per person per channel per broadcast: the idempotency key.
        UniqueConstraint("broadcast_id", "participant_id", "channel", name="uq_deliveries_once"),
        # One push per subscription per broadcast (NULLs, the deleted ones, never collide).
        UniqueConstraint("broadcast_id", "push_subscription_id", name="uq_deliveries_push_once"),
        CheckConstraint(_in("channel", [c.value for c in Channel]), name="channel"),
        CheckConstraint(_in("status", list(DELIVERY_STATUSES)), name="status"),
        # One caller hears the closing word once per broadcast, on one channel.
        UniqueConstraint("broadcast_id", "caller_e164", name="uq_deliveries_caller_once"),
        CheckConstraint(
            "(channel = 'push' AND participant_id IS NULL AND caller_e164 IS NULL)"
            " OR (channel != 'push' AND participant_id IS NOT NULL AND push_subscription_id IS NULL"
            " AND caller_e164 IS NULL)"
            " OR (channel IN ('voice', 'sms') AND caller_e164 IS NOT NULL AND participant_id IS NULL"
            " AND push_subscription_id IS NULL)",
            name="one_recipient",
        ),
    )


class ProviderEvent(Base):
    """A provider webhook already handled (Twilio status callbacks are retried and may repeat).

    The unique key makes handling exactly-once across panel processes: the insert of the key and
    the delivery update share one transaction.
    """

    __tablename__ = "provider_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_key: Mapped[str] = mapped_column(String(160))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("provider", "event_key", name="uq_provider_events_once"),)


class Call(Base):
    """One call about an action: inbound to the free number or a key-press transfer."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    unique_id: Mapped[str] = mapped_column(String(64), unique=True)  # Asterisk UNIQUEID
    linked_id: Mapped[str | None] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(10), default="inbound")
    caller_number: Mapped[str | None] = mapped_column(String(32))
    participant_id: Mapped[int | None] = mapped_column(ForeignKey("participants.id", ondelete="SET NULL"))
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"), index=True)
    centralist_id: Mapped[int | None] = mapped_column(ForeignKey("centralists.id", ondelete="SET NULL"))
    region_code: Mapped[str | None] = mapped_column(String(8))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(12))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    route_reason: Mapped[str | None] = mapped_column(String(200))
    recording_path: Mapped[str | None] = mapped_column(String(300))

    __table_args__ = (
        CheckConstraint(_in("kind", ["inbound", "transfer", "callback"]), name="kind"),  # CALL_KINDS
        CheckConstraint(
            "outcome IS NULL OR "
            + _in(
                "outcome",
                ["connected", "overflowed", "tip_left", "abandoned", "failed", "no_action", "unobserved"],
            ),
            name="outcome",
        ),
    )


class Tip(Base):
    """A spoken tip left when nobody could answer, with the call-back request it creates."""

    __tablename__ = "tips"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"), unique=True)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"), index=True)
    recording_path: Mapped[str] = mapped_column(String(300))
    callback_number: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    callback_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Inquiry(Base):
    """A neighbourhood inquiry (online buurtonderzoek) for an incident in an area.

    The area is stored like an action's (circle, polygon or postcodes; never national: an
    inquiry asks a neighbourhood), so the same recipient selection applies to both.
    """

    __tablename__ = "inquiries"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    question: Mapped[str] = mapped_column(Text)
    area_kind: Mapped[str] = mapped_column(String(10), default="polygon", server_default="polygon")
    center_lat: Mapped[float | None] = mapped_column(Float)
    center_lon: Mapped[float | None] = mapped_column(Float)
    radius_m: Mapped[float | None] = mapped_column(Float)
    area_geojson: Mapped[str | None] = mapped_column(Text)
    postcodes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closes_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (
        CheckConstraint(_in("area_kind", ["circle", "polygon", "postcodes"]), name="area_kind"),
        CheckConstraint(
            "(area_kind != 'circle') OR (center_lat IS NOT NULL AND center_lon IS NOT NULL AND radius_m > 0)",
            name="circle_complete",
        ),
        CheckConstraint("(area_kind != 'polygon') OR (area_geojson IS NOT NULL)", name="polygon_complete"),
        CheckConstraint("(area_kind != 'postcodes') OR (postcodes IS NOT NULL)", name="postcodes_complete"),
    )


class InquiryLink(Base):
    """One participant's personal link; only the SHA-256 of its random token is stored."""

    __tablename__ = "inquiry_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # pending: not (yet) e-mailed, sent again with a fresh token by the next "send links";
    # sent: e-mailed (follow-ups go to these); failed: the mail server refused it for good.
    delivery: Mapped[str] = mapped_column(String(8), default="pending", server_default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(300))
    # Random, with the application's secret key it derives the token of each e-mail of this
    # link (burgernet.inquiries.personal_token); neither alone gives a token.
    token_salt: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        UniqueConstraint("inquiry_id", "participant_id", name="uq_inquiry_links_once"),
        CheckConstraint(_in("delivery", ["pending", "sent", "failed"]), name="delivery"),
        CheckConstraint("(delivery != 'sent') OR (sent_at IS NOT NULL)", name="sent_has_time"),
    )


class InquiryUpdate(Base):
    """A follow-up message e-mailed to everyone who received a link of the inquiry."""

    __tablename__ = "inquiry_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"), index=True)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(String(80))
    # Counted by the workers as the update's e-mails reach a final status.
    recipients: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The broadcast that carries the update to everyone whose link was sent.
    broadcast_id: Mapped[int | None] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="SET NULL"), unique=True
    )


class Statement(Base):
    __tablename__ = "statements"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"), index=True)
    # One statement per personal link.
    link_id: Mapped[int] = mapped_column(ForeignKey("inquiry_links.id", ondelete="CASCADE"), unique=True)
    text: Mapped[str] = mapped_column(Text)
    photo_path: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(12))
    centralist_id: Mapped[int | None] = mapped_column(ForeignKey("centralists.id", ondelete="SET NULL"))
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Part of every session cookie's user id: raising it (logout, new password, new role,
    # deactivation) makes every cookie issued before worthless, though it still carries a valid
    # signature (the cookie is client-side; the server can only refuse what it names).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # May approve another person's request to start an AMBER Alert or national action
    # (burgernet.approvals); on top of the role, set by an admin.
    approver: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (CheckConstraint(_in("role", [r.value for r in Role]), name="role"),)


class AuditEvent(Base):
    """Who changed what, when and from where. Append-only."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    actor: Mapped[str] = mapped_column(String(80))
    verb: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(String(80))  # cli, web 1.2.3.4, api, ivr

    # An action's timeline (and any entity's history) without scanning the whole log.
    __table_args__ = (Index("ix_audit_events_entity", "entity", "entity_id"),)


class MessageTemplate(Base):
    """The text sent to participants for one action type, message kind, channel and language
    (or for one of the neighbourhood inquiry's e-mails: action type "inquiry").

    Without a row the defaults in :mod:`burgernet.message_templates` apply. Placeholders such
    as ``{description}`` are checked when a template is saved (unknown ones are refused).
    """

    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    # An action type, or "inquiry" for the neighbourhood inquiry's e-mails.
    action_type: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))  # alert | update | result; invitation | follow_up
    channel: Mapped[str] = mapped_column(String(8))
    language: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str | None] = mapped_column(String(200))  # e-mail only
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (
        UniqueConstraint("action_type", "kind", "channel", "language", name="uq_message_templates_key"),
        CheckConstraint(_in("action_type", [*(t.value for t in ActionType), "inquiry"]), name="action_type"),
        CheckConstraint(_in("kind", ["alert", "update", "result", "invitation", "follow_up"]), name="kind"),
        CheckConstraint(_in("channel", [c.value for c in Channel]), name="channel"),
        CheckConstraint(_in("language", [lang.value for lang in Language]), name="language"),
    )


# --- Finding the place: addresses (BAG) and the action types' templates -------------------------
# Search keys hold only a-z and 0-9 (burgernet.addresses.search_key) and compare byte by byte:
# a prefix search is then an index range on both databases. PostgreSQL would otherwise compare
# them in the database's locale, where a range is not a prefix.
_SEARCH_KEY = String(80).with_variant(String(80, collation="C"), "postgresql")


class Address(Base):
    """One address from the BAG (Basisregistratie Adressen en Gebouwen), with its position:
    what the panel's search box finds (``burgernet import addresses``)."""

    __tablename__ = "addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    postcode: Mapped[str] = mapped_column(String(6))  # normalised, 1234AB
    house_number: Mapped[int] = mapped_column(Integer)
    house_letter: Mapped[str] = mapped_column(String(1), default="", server_default="")
    house_suffix: Mapped[str] = mapped_column(String(4), default="", server_default="")
    street: Mapped[str] = mapped_column(String(80))
    place: Mapped[str] = mapped_column(String(80))
    street_key: Mapped[str] = mapped_column(_SEARCH_KEY)
    place_key: Mapped[str] = mapped_column(_SEARCH_KEY)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        # One row per address; the unique index also answers "1234 AB 12" and "1234 AB".
        UniqueConstraint(
            "postcode", "house_number", "house_letter", "house_suffix", name="uq_addresses_number"
        ),
        # "Oudegracht 12 Utrecht": street, number and place straight from the index.
        Index("ix_addresses_street", "street_key", "house_number", "place_key"),
        CheckConstraint(_IN_NL, name="in_nl"),
        CheckConstraint("house_number > 0", name="house_number"),
    )


# What a search by name or postcode finds without touching the addresses: places, streets
# (one per place) and PC4 areas with the centre of their addresses, rebuilt after each import.
ADDRESS_NAME_KINDS = ("place", "street", "pc4")


class AddressName(Base):
    __tablename__ = "address_names"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(6))  # one of ADDRESS_NAME_KINDS
    key: Mapped[str] = mapped_column(_SEARCH_KEY, index=True)
    name: Mapped[str] = mapped_column(String(80))
    place: Mapped[str] = mapped_column(String(80), default="", server_default="")  # a street's place
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    addresses: Mapped[int] = mapped_column(Integer)

    __table_args__ = (CheckConstraint(_in("kind", list(ADDRESS_NAME_KINDS)), name="kind"),)


class ActionTypeTemplate(Base):
    """What a new action of one type starts with: radius, channels, urgency and text blocks.

    Without a row the defaults in :mod:`burgernet.action_types` apply. The words sent to
    participants stay in :class:`MessageTemplate`; the text blocks here prefill the form.
    """

    __tablename__ = "action_type_templates"

    action_type: Mapped[str] = mapped_column(String(20), primary_key=True)
    radius_m: Mapped[int] = mapped_column(Integer)
    # "voice,sms,email" (a subset): the channels the alert uses.
    channels: Mapped[str] = mapped_column(String(20))
    urgency: Mapped[str] = mapped_column(String(12))
    title_block: Mapped[str] = mapped_column(String(120), default="", server_default="")
    description_block: Mapped[str] = mapped_column(Text, default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str | None] = mapped_column(String(80))
    # Starting one needs a second person's approval (burgernet.approvals); always for AMBER.
    needs_approval: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        CheckConstraint(_in("action_type", [t.value for t in ActionType]), name="action_type"),
        CheckConstraint("radius_m > 0 AND radius_m <= 300000", name="radius_m"),
        CheckConstraint(_in("urgency", ["amber", "urgent", "information"]), name="urgency"),
    )


# --- Structured outcomes and facts that last ----------------------------------------
# Anonymous aggregates per action, written when things happen (burgernet.facts.ActionFacts) and
# kept forever: retention removes the personal rows they were counted from, never these.
_OUTCOME_KIND_VALUES = [kind.value for kind in OutcomeKind]
FACT_BROADCAST_KINDS = ("alert", "update", "result")


class ActionFact(Base):
    """One action's figures: who it reached, how fast, the calls, tips and call-backs it brought."""

    __tablename__ = "action_facts"

    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True)
    # Copied from the action, so reports group without a join.
    action_type: Mapped[str] = mapped_column(String(20))
    region_code: Mapped[str] = mapped_column(String(8))
    urgency: Mapped[str] = mapped_column(String(12))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome_kind: Mapped[str | None] = mapped_column(String(20))
    # The first alert delivery handed to a provider, and the first inbound call after it.
    first_alert_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_call_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Inbound calls about the action by Call.outcome ("overflowed" is a step, not an end).
    calls_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    calls_connected: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    calls_tip_left: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    calls_abandoned: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    calls_failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    calls_no_action: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    calls_unobserved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    calls_answered_within_20s: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    longest_wait_s: Mapped[float | None] = mapped_column(Float)
    tips: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    callbacks_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sightings: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    result_deliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set when retention first removed rows these figures were counted from: from then on a
    # refresh never lowers a figure (burgernet.facts).
    sources_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint(
            "outcome_kind IS NULL OR " + _in("outcome_kind", _OUTCOME_KIND_VALUES), name="outcome_kind"
        ),
    )


class ActionChannelFact(Base):
    """Per action, channel and broadcast kind: recipients, final statuses and delivery speed."""

    __tablename__ = "action_channel_facts"

    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)  # voice | sms | email | push
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # one of FACT_BROADCAST_KINDS
    recipients: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    delivered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    failed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    opted_out: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Seconds from the broadcast's started_at until 50/90/100 % of its recipients reached a
    # final status; NULL until reached.
    t50_s: Mapped[float | None] = mapped_column(Float)
    t90_s: Mapped[float | None] = mapped_column(Float)
    t100_s: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint(_in("kind", list(FACT_BROADCAST_KINDS)), name="kind"),)


# --- Sightings and the call-back worklist (migration 0013) -----------------------------
# Call.kind values: a call to the free number, a key press in an alert call, a centralist's
# click-to-call from the worklist (burgernet/callbacks.py).
CALL_KINDS = ("inbound", "transfer", "callback")
SIGHTING_RELIABILITIES = ("confirmed", "probable", "possible", "doubtful")
CALLBACK_REASONS = ("tip", "abandoned", "unanswered")  # why an item is on the worklist
CALLBACK_RESULTS = ("reached", "no_answer", "voicemail", "wrong_number")


# Where a sighting came from: the panel (a centralist, or the API) or the participant app.
SIGHTING_SOURCES = ("panel", "app")


class Sighting(Base):
    """Where and when someone saw what an action is looking for: recorded by a centralist, or sent
    by a participant from the app (migration 0017).

    A sighting from the app may come without a place (the participant chose not to share it);
    one from the panel always has one. An app sighting can carry a photo (cleaned of metadata,
    under ``<data_dir>/photos/sightings/``) and a reply channel: the device's push subscription,
    through which a centralist can ask a question back. The channel goes when the subscription
    does (SET NULL) and when retention blanks the sighting.
    """

    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    # Compass direction of travel (N, NE, ..., NW) or NULL: standing still / not known.
    direction: Mapped[str | None] = mapped_column(String(2))
    description: Mapped[str] = mapped_column(Text, default="")
    reliability: Mapped[str] = mapped_column(String(10))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    # An inquiry statement's photo attached to the sighting (its file stays the statement's).
    statement_id: Mapped[int | None] = mapped_column(ForeignKey("statements.id", ondelete="SET NULL"))
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(8), default="panel", server_default="panel")
    photo_path: Mapped[str | None] = mapped_column(String(500))
    push_subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("push_subscriptions.id", ondelete="SET NULL"), index=True
    )

    __table_args__ = (
        # A CHECK passes on NULL: in_nl still holds every place given; the two below say when
        # a sighting may have none (from the app only, and never half a place).
        CheckConstraint(_IN_NL, name="in_nl"),
        CheckConstraint("(lat IS NULL) = (lon IS NULL)", name="whole_place"),
        CheckConstraint("source = 'app' OR lat IS NOT NULL", name="panel_has_place"),
        CheckConstraint(_in("source", list(SIGHTING_SOURCES)), name="source"),
        CheckConstraint(_in("reliability", list(SIGHTING_RELIABILITIES)), name="reliability"),
        CheckConstraint(
            "direction IS NULL OR " + _in("direction", ["N", "NE", "E", "SE", "S", "SW", "W", "NW"]),
            name="direction",
        ),
    )


class CallbackItem(Base):
    """One entry of the call-back worklist: a tip, or a call that has a number and reached nobody.

    ``claimed_by`` holds the item while ``claim_expires_at`` is in the future; only one user can
    take it (a conditional UPDATE, burgernet/callbacks.py). ``done_at`` with ``result`` ends it.
    """

    __tablename__ = "callback_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(10))
    tip_id: Mapped[int | None] = mapped_column(ForeignKey("tips.id", ondelete="CASCADE"), unique=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    action_id: Mapped[int | None] = mapped_column(ForeignKey("actions.id", ondelete="SET NULL"), index=True)
    # When the tip was left or the call made: the worklist's age.
    arrived_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claim_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last click-to-call made for this item (a Call of kind "callback").
    callback_call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    result: Mapped[str | None] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)
    done_by: Mapped[str | None] = mapped_column(String(80))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)

    __table_args__ = (
        CheckConstraint(_in("reason", list(CALLBACK_REASONS)), name="reason"),
        CheckConstraint("result IS NULL OR " + _in("result", list(CALLBACK_RESULTS)), name="result"),
        CheckConstraint("(tip_id IS NOT NULL) OR (call_id IS NOT NULL)", name="has_source"),
        CheckConstraint("(done_at IS NULL) = (result IS NULL)", name="done_has_result"),
    )


# --- Calls per UTC hour, for the reports (migration 0014) ---------------------------------------
# Anonymous and kept forever like action_facts: no caller, no call id, only counts per hour.
# Filled by burgernet.call_hours (the facts refresh each minute, and before each report).


class CallHourFact(Base):
    """Calls that started in one UTC hour, per region, action type, kind, outcome and answerer.

    ``action_type`` is NULL for calls without an action, ``centralist_id`` for calls nobody
    answered, ``outcome`` for calls still in progress. No foreign keys: a centralist removed
    later keeps their figures."""

    __tablename__ = "call_hour_facts"

    id: Mapped[int] = mapped_column(primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    region_code: Mapped[str | None] = mapped_column(String(8))
    action_type: Mapped[str | None] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str | None] = mapped_column(String(12))
    centralist_id: Mapped[int | None] = mapped_column(Integer)
    calls: Mapped[int] = mapped_column(Integer)
    answered_within_20s: Mapped[int] = mapped_column(Integer)
    # Seconds from start to answer (to the end when nobody answered), over the calls that ended.
    wait_seconds_sum: Mapped[float] = mapped_column(Float)
    wait_seconds_max: Mapped[float | None] = mapped_column(Float)


class CallHourTeamFact(Base):
    """Per UTC hour, region, action type and kind: the calls about actions that reached a team
    member's turn (``offered``, the team rings in order) and those they answered themselves."""

    __tablename__ = "call_hour_team_facts"

    id: Mapped[int] = mapped_column(primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    region_code: Mapped[str | None] = mapped_column(String(8))
    action_type: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(10))
    centralist_id: Mapped[int] = mapped_column(Integer)
    offered: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)


class CallHourRefresh(Base):
    """One row: how far ``call_hour_facts`` is up to date (the highest call id seen, and when).
    Its update is also the lock that keeps two refreshes from writing the same hours at once."""

    __tablename__ = "call_hour_refreshes"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_call_id: Mapped[int] = mapped_column(Integer)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# Which hours a refresh recomputes: calls still open, and those that ended since the last one.
Index("ix_calls_ended_at", Call.ended_at)


# --- Web Push subscriptions of the participant app (migration 0016) -------------------------
class PushSubscription(Base):
    """A device that asked for Burgernet's push messages: all the server knows of it.

    No account, no phone number, no place: the endpoint and keys the browser gave
    (``PushSubscription.toJSON()``), the language, and at most a coarse cell the device chose
    (a 4-character geohash, about 20 × 40 km) so that a local action is not pushed to the whole
    country. The device itself decides whether the action's area touches one of its places.
    """

    __tablename__ = "push_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The push service's URL for this device (unique: subscribing again updates the row).
    endpoint: Mapped[str] = mapped_column(String(1024), unique=True)
    # The device's P-256 public key (65 bytes) and auth secret (16 bytes), base64url.
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(40))
    cell: Mapped[str | None] = mapped_column(String(4), index=True)
    lang: Mapped[str] = mapped_column(String(2), default="nl")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Failed pushes since the last success (a 404/410 deletes the row at once instead).
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (CheckConstraint("lang IN ('nl', 'en')", name="lang"),)


# --- Four-eyes approval (burgernet.approvals) -------------------------------------------------------
APPROVAL_DECISIONS = ("approved", "refused", "expired")


class ActionApproval(Base):
    """A request to start an action that needs a second person, and what became of it.

    ``recipients`` (JSON: per channel and "people") and ``eta_seconds`` are what the alert would
    reach when the request was made: the approver decides on the same figures the requester saw.
    """

    __tablename__ = "action_approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    action_id: Mapped[int] = mapped_column(ForeignKey("actions.id", ondelete="CASCADE"), index=True)
    requested_by: Mapped[str] = mapped_column(String(80))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    recipients: Mapped[str] = mapped_column(Text)
    eta_seconds: Mapped[int | None] = mapped_column(Integer)
    # None while pending.
    decision: Mapped[str | None] = mapped_column(String(10), index=True)
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint("decision IS NULL OR " + _in("decision", list(APPROVAL_DECISIONS)), name="decision"),
    )


# --- Alert outcome policies (burgernet.alert_policies) ---------------------------------------------
class AlertOutcomePolicy(Base):
    """An admin's policy for one outcome of an alert call (busy, no answer, machine, failed).

    Without a row the default in the settings (``broadcast.policies``) applies.
    """

    __tablename__ = "alert_outcome_policies"

    outcome: Mapped[str] = mapped_column(String(12), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    backoff_seconds: Mapped[float] = mapped_column(Float)
    backoff_multiplier: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    # What follows the last call: "done", or "fall_back" (the alert goes out by SMS instead).
    when_exhausted: Mapped[str] = mapped_column(String(10))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (
        CheckConstraint(_in("outcome", ["busy", "no_answer", "machine", "failed"]), name="outcome"),
        CheckConstraint("attempts >= 1 AND attempts <= 10", name="attempts"),
        CheckConstraint("backoff_seconds >= 0 AND backoff_seconds <= 21600", name="backoff_seconds"),
        CheckConstraint("backoff_multiplier >= 1 AND backoff_multiplier <= 10", name="backoff_multiplier"),
        CheckConstraint(_in("when_exhausted", ["done", "fall_back"]), name="when_exhausted"),
    )
