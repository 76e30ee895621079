"""Plain data in and out of the routing core. Frozen, hashable, no behaviour that does I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from shapely.geometry.base import BaseGeometry


@dataclass(frozen=True, slots=True)
class Location:
    lon: float
    lat: float


# --- Areas an action covers -----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CircleArea:
    centre: Location
    radius_m: float


@dataclass(frozen=True, slots=True)
class PolygonArea:
    """A (multi)polygon in WGS84 lon/lat; points on the border count as inside."""

    geometry: BaseGeometry


@dataclass(frozen=True, slots=True)
class PostcodeArea:
    """PC4 (``1234``) and PC6 (``1234AB``) codes; a caller matches on their own postcode."""

    postcodes: frozenset[str]


@dataclass(frozen=True, slots=True)
class NationalArea:
    """A national AMBER Alert: every caller is inside."""


Area = CircleArea | PolygonArea | PostcodeArea | NationalArea


@dataclass(frozen=True, slots=True)
class ActiveAction:
    action_id: int
    title: str  # short description, spoken in a menu
    action_type: str
    priority: int  # higher first (burgernet.domain.ACTION_PRIORITY)
    region_code: str
    area: Area
    team: tuple[str, ...]  # owning centralists' SIP endpoints, in ringing order
    started_seq: int = 0  # larger = started later (an ordering, not a clock reading)
    # The action code a caller keys on the free number ("4821"); None for an action without one.
    code: str | None = None


# --- The caller ------------------------------------------------------------------------------
class CallerKind(enum.StrEnum):
    KNOWN = "known"  # a registered participant: location from their address
    UNKNOWN = "unknown"  # a number we do not know
    ANONYMOUS = "anonymous"  # caller ID withheld or unusable


@dataclass(frozen=True, slots=True)
class Caller:
    kind: CallerKind
    number: str | None = None  # E.164
    participant_id: int | None = None
    location: Location | None = None
    postcode: str | None = None  # PC6 or PC4 (keyed in)
    region_code: str | None = None
    language: str = "nl"
    opted_out: bool = False  # still routed: opting out of alerts is not opting out of help


# --- Centralist availability ------------------------------------------------------------------
class Presence(enum.StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"  # in a call (device state INUSE/BUSY/RINGING)
    OFFLINE = "offline"  # off duty or phone unreachable
    UNKNOWN = "unknown"  # no live state yet: ring them rather than drop them


@dataclass(frozen=True, slots=True)
class Centralist:
    endpoint: str
    region_code: str
    on_duty: bool = True


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    owner_ring_seconds: int = 15
    pool_ring_seconds: int = 20
    max_menu_items: int = 5


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    caller: Caller
    # Actions that alerted this caller's number recently, most recent first.
    alerted_by: tuple[int, ...] = ()
    # The menu digit's action, when the caller already chose.
    chosen_action_id: int | None = None
    # Unknown/anonymous caller who failed to key in a usable postcode: straight to a pool.
    postcode_given_up: bool = False
    # The digits the caller keyed during the welcome, when any: an action code. One that no
    # active action holds (wrong, or its action closed) is ignored by the rules.
    action_code: str | None = None


# --- The decision ----------------------------------------------------------------------------
class DecisionKind(enum.StrEnum):
    ROUTE = "route"  # ring the steps in order, then take a tip
    MENU = "menu"  # several actions: let the caller choose
    ASK_POSTCODE = "ask_postcode"  # we do not know where the caller is
    NO_ACTION = "no_action"  # nothing active for this caller
    TIP = "tip"  # an action, but nobody can answer now


class StepRole(enum.StrEnum):
    OWNER = "owner"
    POOL = "pool"


@dataclass(frozen=True, slots=True)
class RingStep:
    endpoints: tuple[str, ...]  # rung at the same time
    timeout_seconds: int
    role: StepRole


@dataclass(frozen=True, slots=True)
class MenuOption:
    digit: str
    action_id: int
    title: str


@dataclass(frozen=True, slots=True)
class Decision:
    kind: DecisionKind
    reason: str
    action_id: int | None = None
    region_code: str | None = None
    steps: tuple[RingStep, ...] = ()
    menu: tuple[MenuOption, ...] = field(default=())
    # True when the caller's action code chose the action (the flow says "unknown code" otherwise).
    by_code: bool = False

    def endpoints_in_order(self) -> tuple[str, ...]:
        return tuple(endpoint for step in self.steps for endpoint in step.endpoints)
