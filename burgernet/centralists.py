"""Centralists (control-room operators) and their SIP endpoints, audited.

Their endpoints feed the Asterisk configuration (``burgernet asterisk reload``) and the
routing snapshot (invalidated here on every change).

Every value that ends up in ``pjsip.conf`` is checked here (name, endpoint, contact) and
again by the renderer (:mod:`asterisk_conf.render`), with the same rules: a line break, a ``;``
or a reserved section name could otherwise add configuration of its own. SIP passwords are
made here, shown once, and kept only as PJSIP's ``md5_cred`` digest.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from burgernet.db import session_scope
from burgernet.errors import DomainError, NotFoundError
from burgernet.models import Centralist, Region
from burgernet.repositories import record_audit


class CentralistError(DomainError):
    """The change cannot be made; the message says why and nothing was changed."""

    code: ClassVar[str] = "centralist.invalid"


class CentralistNotFound(CentralistError, NotFoundError):
    code: ClassVar[str] = "centralist.not_found"


# Section names pjsip.conf (and the other rendered files) use for themselves: an endpoint with
# one of these names would merge into, or shadow, our own configuration.
RESERVED_NAMES = frozenset(
    {
        "trunk",
        "trunk-auth",
        "trunk-registration",
        "transport-udp",
        "transport-tls",
        "acl",
        "centralist-networks",
        "general",
        "global",
        "globals",
        "system",
        "options",
        "directories",
        "modules",
        "logfiles",
        # What carriers put in From for a withheld number: an endpoint of that name would take
        # (and challenge, so drop) every anonymous call to the free number.
        "anonymous",
        "unknown",
        "restricted",
        "unavailable",
        "private",
    }
)
_ENDPOINT = re.compile(r"[a-z0-9][a-z0-9-]{1,39}")
# A display name goes into callerid = "<name>" <endpoint>: letters (any script), digits, spaces
# and a little punctuation; never a quote, '<', '>', ';' (a comment in Asterisk's files) or a
# control character (a line break would start a new line of configuration).
_DISPLAY_NAME = re.compile(r"[^\W_](?:[\w .,'()&/+-]{0,118}[\w.)])?")
_CONTACT = re.compile(
    r"sip:(?:[A-Za-z0-9._-]{1,64}@)?[A-Za-z0-9.-]{1,120}(?::[0-9]{1,5})?(?:;transport=(?:udp|tcp|tls))?"
)
_MD5_HEX = re.compile(r"[0-9a-f]{32}")
# 24 characters from a 64-letter alphabet: 144 bits, and easy to type into a phone.
_PASSWORD_BYTES = 18


def check_endpoint(endpoint: str) -> str:
    if not _ENDPOINT.fullmatch(endpoint or ""):
        raise CentralistError(f"SIP endpoint {endpoint!r}: use 2-40 of a-z, 0-9 and '-'")
    if endpoint in RESERVED_NAMES or endpoint.startswith(("trunk", "transport")):
        raise CentralistError(f"SIP endpoint {endpoint!r} is a name Burgernet uses itself")
    if not any(ch.isalpha() for ch in endpoint):
        # Endpoints are found by the From user before the trunk by its address: a name of
        # digits alone could be a citizen's number and catch their calls to the free number.
        raise CentralistError(f"SIP endpoint {endpoint!r}: include a letter (a number could be a caller's)")
    return endpoint


def check_name(name: str) -> str:
    if not name or len(name) > 120:
        raise CentralistError("a name of 1 to 120 characters is required")
    if not _DISPLAY_NAME.fullmatch(name):
        raise CentralistError(
            f"name {name!r}: use letters, digits, spaces and . , ' ( ) & / + - "
            "(no quotes, ';' or line breaks)"
        )
    return name


def check_contact(contact: str) -> str:
    if not contact.startswith("sip:"):
        raise CentralistError("a contact is a SIP URI, e.g. sip:c-mn-4@10.0.0.12:5060")
    if not _CONTACT.fullmatch(contact):
        raise CentralistError(f"contact {contact!r}: use sip:user@host:port (letters, digits, . - _ only)")
    return contact


def check_md5_cred(digest: str) -> str:
    if not _MD5_HEX.fullmatch(digest or ""):
        raise CentralistError("a SIP credential is 32 lower-case hex digits")
    return digest


def sip_digest(endpoint: str, realm: str, password: str) -> str:
    """PJSIP's ``md5_cred``: md5 of ``username:realm:password`` (RFC 2617's HA1)."""
    return hashlib.md5(f"{endpoint}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()


def new_sip_password() -> str:
    return secrets.token_urlsafe(_PASSWORD_BYTES)


@dataclass(frozen=True)
class CentralistView:
    endpoint: str
    name: str
    region_code: str
    on_duty: bool
    contact: str | None
    # The SIP password, only right after it was made (add, rename, rotate): shown once, never stored.
    password: str | None = None


class CentralistService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        on_change: Callable[[], object] = lambda: None,
        realm: str = "burgernet",
    ) -> None:
        self._sessions = sessions
        self._on_change = on_change
        self._realm = realm

    def add(
        self,
        *,
        endpoint: str,
        name: str,
        region_code: str,
        contact: str | None,
        actor: str,
        source: str = "cli",
    ) -> CentralistView:
        """Add a centralist with a new, generated SIP password (in the view, shown once)."""
        check_endpoint(endpoint)
        check_name(name)
        if contact is not None:
            check_contact(contact)
        password = new_sip_password()
        with session_scope(self._sessions) as session:
            region_id = session.scalar(select(Region.id).where(Region.code == region_code))
            if region_id is None:
                raise CentralistError(f"unknown region {region_code!r}")
            if session.scalar(select(Centralist.id).where(Centralist.sip_endpoint == endpoint)) is not None:
                raise CentralistError(f"endpoint {endpoint!r} already exists")
            try:
                centralist = Centralist(
                    name=name,
                    sip_endpoint=endpoint,
                    sip_md5_cred=sip_digest(endpoint, self._realm, password),
                    sip_contact=contact,
                    region_id=region_id,
                    on_duty=True,
                )
            except ValueError as exc:
                raise CentralistError(str(exc)) from None
            session.add(centralist)
            session.flush()
            record_audit(
                session,
                actor=actor,
                verb="create",
                entity="centralist",
                entity_id=endpoint,
                detail={"name": name, "region": region_code, "contact": contact},
                source=source,
            )
        self._on_change()
        return CentralistView(endpoint, name, region_code, True, contact, password)

    def rotate_password(self, endpoint: str, *, actor: str, source: str = "cli") -> str:
        """Make a new SIP password for ``endpoint``; the old one stops working at the next reload.

        Returns the new password, the only time it can be seen; the audit records the change
        without it.
        """
        password = new_sip_password()
        with session_scope(self._sessions) as session:
            centralist = session.scalar(select(Centralist).where(Centralist.sip_endpoint == endpoint))
            if centralist is None:
                raise CentralistNotFound(f"no centralist with endpoint {endpoint!r}")
            centralist.sip_md5_cred = sip_digest(endpoint, self._realm, password)
            record_audit(
                session,
                actor=actor,
                verb="new-password",
                entity="centralist",
                entity_id=endpoint,
                source=source,
            )
        self._on_change()
        return password

    def set_on_duty(self, endpoint: str, on_duty: bool, *, actor: str, source: str = "cli") -> None:
        with session_scope(self._sessions) as session:
            centralist = session.scalar(select(Centralist).where(Centralist.sip_endpoint == endpoint))
            if centralist is None:
                raise CentralistNotFound(f"no centralist with endpoint {endpoint!r}")
            if on_duty and not centralist.active:
                raise CentralistError(f"centralist {endpoint!r} is deactivated")
            centralist.on_duty = on_duty
            record_audit(
                session,
                actor=actor,
                verb="on-duty" if on_duty else "off-duty",
                entity="centralist",
                entity_id=endpoint,
                source=source,
            )
        self._on_change()

    def update(
        self,
        endpoint: str,
        *,
        name: str,
        new_endpoint: str,
        region_code: str,
        on_duty: bool,
        actor: str,
        source: str = "cli",
    ) -> CentralistView:
        """Change name, endpoint (a new SIP account), region and duty; audited with what changed.

        The stored digest covers the endpoint name, so a renamed endpoint gets a new password
        (in the returned view, shown once).
        """
        name = name.strip()
        check_name(name)
        check_endpoint(new_endpoint)
        with session_scope(self._sessions) as session:
            centralist = session.scalar(select(Centralist).where(Centralist.sip_endpoint == endpoint))
            if centralist is None:
                raise CentralistNotFound(f"no centralist with endpoint {endpoint!r}")
            if not centralist.active:
                raise CentralistError(f"centralist {endpoint!r} is deactivated; reactivate first")
            region = session.scalar(select(Region).where(Region.code == region_code))
            if region is None:
                raise CentralistError(f"unknown region {region_code!r}")
            if new_endpoint != endpoint and session.scalar(
                select(Centralist.id).where(Centralist.sip_endpoint == new_endpoint)
            ):
                raise CentralistError(f"endpoint {new_endpoint!r} already exists")
            before = {
                "name": centralist.name,
                "endpoint": centralist.sip_endpoint,
                "region": centralist.region.code,
                "on_duty": centralist.on_duty,
            }
            try:
                centralist.sip_endpoint = new_endpoint
            except ValueError as exc:
                raise CentralistError(str(exc)) from None
            password = None
            if new_endpoint != endpoint:
                password = new_sip_password()
                centralist.sip_md5_cred = sip_digest(new_endpoint, self._realm, password)
            centralist.name = name
            centralist.region_id = region.id
            centralist.on_duty = on_duty
            after = {"name": name, "endpoint": new_endpoint, "region": region_code, "on_duty": on_duty}
            changed: dict[str, object] = {
                key: [before[key], value] for key, value in after.items() if before[key] != value
            }
            record_audit(
                session,
                actor=actor,
                verb="edit",
                entity="centralist",
                entity_id=centralist.id,
                detail=changed,
                source=source,
            )
            view = CentralistView(new_endpoint, name, region_code, on_duty, centralist.sip_contact, password)
        self._on_change()
        return view

    def set_active(self, endpoint: str, active: bool, *, actor: str, source: str = "cli") -> None:
        """Deactivate (off duty, no SIP account, out of the routing) or reactivate (off duty)."""
        with session_scope(self._sessions) as session:
            centralist = session.scalar(select(Centralist).where(Centralist.sip_endpoint == endpoint))
            if centralist is None:
                raise CentralistNotFound(f"no centralist with endpoint {endpoint!r}")
            if centralist.active == active:
                return
            centralist.active = active
            centralist.on_duty = False  # back on duty is a separate, deliberate step
            record_audit(
                session,
                actor=actor,
                verb="activate" if active else "deactivate",
                entity="centralist",
                entity_id=endpoint,
                source=source,
            )
        self._on_change()

    def list_all(self) -> list[CentralistView]:
        with session_scope(self._sessions) as session:
            rows = session.execute(
                select(
                    Centralist.sip_endpoint,
                    Centralist.name,
                    Region.code,
                    Centralist.on_duty,
                    Centralist.sip_contact,
                )
                .join(Region, Region.id == Centralist.region_id)
                .order_by(Region.code, Centralist.sip_endpoint)
            )
            return [CentralistView(*row) for row in rows]
