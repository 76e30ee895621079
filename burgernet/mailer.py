"""E-mail over SMTP with the standard library (smtplib + EmailMessage), configured by ``settings.smtp``.

Failures are sorted into two kinds so that the caller (the e-mail sender of the broadcast
workers, which also carries the neighbourhood inquiry's mail) knows what to do with them:

* :class:`TransientMailError`: try again later. SMTP 4xx answers (greylisting, mailbox busy,
  "451 try again"), connection refused, time-outs, a connection dropped half-way.
* :class:`PermanentMailError`: retrying will not help. SMTP 5xx answers (unknown mailbox,
  relay denied, rejected content, bad credentials) and messages that cannot be built at all
  (a header with a line break in it).

Idempotency: a caller that retries gives the same ``message_id`` every time (see
:func:`deterministic_message_id`), so that a message which did arrive the first time although
we saw an error is recognisable as the same message by the receiving side and by our logs.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from burgernet.settings import SmtpSettings

# Headers the Mailer writes itself; a caller's ``headers`` may not override them.
_OWN_HEADERS = frozenset({"from", "to", "subject", "message-id", "date", "mime-version", "content-type"})
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class MailError(Exception):
    """Sending failed. ``code`` is the SMTP answer when there was one, ``recipient`` the address."""

    permanent = False

    def __init__(self, message: str, *, code: int | None = None, recipient: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.recipient = recipient


class TransientMailError(MailError):
    """Worth retrying later: 4xx answers, refused connections, time-outs, dropped connections."""


class PermanentMailError(MailError):
    """Not worth retrying: 5xx answers (recipient refused, relay denied) or an unbuildable message."""

    permanent = True


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    body_text: str
    message_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def sender_domain(sender: str) -> str:
    """``"Burgernet <noreply@burgernet.local>"`` → ``burgernet.local`` (for Message-IDs)."""
    _name, address = parseaddr(sender)
    domain = address.rpartition("@")[2]
    return domain or "burgernet.local"


def deterministic_message_id(domain: str, *parts: object) -> str:
    """The same parts give the same Message-ID: ``<inquiry-3-link-17@burgernet.local>``."""
    local = "-".join(_ID_UNSAFE.sub("_", str(part)) for part in parts if str(part))
    if not local:
        raise ValueError("a Message-ID needs at least one non-empty part")
    return f"<{local}@{domain}>"


def _normalise_message_id(message_id: str) -> str:
    value = message_id.strip()
    if not value or any(ch in value for ch in "\r\n \t"):
        raise PermanentMailError(f"invalid Message-ID {message_id!r}")
    if not value.startswith("<"):
        value = f"<{value}>"
    if "@" not in value or not value.endswith(">"):
        raise PermanentMailError(f"invalid Message-ID {message_id!r} (want <local@domain>)")
    return value


def _classified(exc: BaseException, recipient: str | None = None) -> MailError:
    """Any smtplib/socket failure → a transient or permanent :class:`MailError`."""
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        # One recipient per message here, so the one refusal decides.
        for address, (code, text) in exc.recipients.items():
            return _by_code(int(code), _text(text), address)
        return PermanentMailError("all recipients refused", recipient=recipient)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if isinstance(exc.__context__, TimeoutError):  # smtplib wraps a read time-out this way
            return TransientMailError("the SMTP server did not answer in time", recipient=recipient)
        return TransientMailError(f"connection closed by the server: {exc}", recipient=recipient)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentMailError(f"the SMTP server does not support this: {exc}", recipient=recipient)
    if isinstance(exc, smtplib.SMTPResponseException):
        # SMTPSenderRefused, SMTPDataError, SMTPConnectError, SMTPHeloError, SMTPAuthenticationError.
        return _by_code(int(exc.smtp_code), _text(exc.smtp_error), recipient)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentMailError(f"TLS certificate not accepted: {exc}", recipient=recipient)
    if isinstance(exc, TimeoutError):
        return TransientMailError("the SMTP server did not answer in time", recipient=recipient)
    if isinstance(exc, OSError):  # refused, unreachable, reset, other TLS trouble
        return TransientMailError(f"cannot talk to the SMTP server: {exc}", recipient=recipient)
    if isinstance(exc, smtplib.SMTPException):
        return TransientMailError(f"SMTP error: {exc}", recipient=recipient)
    raise exc


def _by_code(code: int, text: str, recipient: str | None) -> MailError:
    message = f"{code} {text}".strip()
    if 400 <= code < 500:
        return TransientMailError(message, code=code, recipient=recipient)
    if code >= 500:
        return PermanentMailError(message, code=code, recipient=recipient)
    # Anything else (a garbled answer) is not a verdict about the recipient.
    return TransientMailError(f"unexpected SMTP answer {message}", code=code, recipient=recipient)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class Mailer:
    """Sends plain-text e-mail, one connection per message (the workers send many at once)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.domain = sender_domain(settings.sender)

    def message_id(self, *parts: object) -> str:
        """A deterministic Message-ID in the sender's domain (same parts → same id)."""
        return deterministic_message_id(self.domain, *parts)

    def build(self, mail: OutgoingMail) -> EmailMessage:
        """The message as it goes on the wire; a header that cannot be written → PermanentMailError."""
        try:
            message = EmailMessage()
            message["From"] = self.settings.sender
            message["To"] = Address(addr_spec=mail.to.strip())
            message["Subject"] = mail.subject
            message["Date"] = formatdate(localtime=False, usegmt=True)
            message["Message-ID"] = (
                _normalise_message_id(mail.message_id) if mail.message_id else make_msgid(domain=self.domain)
            )
            for name, value in mail.headers.items():
                if name.strip().lower() in _OWN_HEADERS:
                    raise PermanentMailError(f"header {name!r} is set by the mailer itself")
                message[name] = value
            message.set_content(mail.body_text)
        except MailError:
            raise
        except (ValueError, TypeError, IndexError) as exc:
            # email raises these for line breaks in headers or a malformed address.
            raise PermanentMailError(f"cannot build the message: {exc}", recipient=mail.to) from None
        return message

    @contextmanager
    def connection(self) -> Iterator[smtplib.SMTP]:
        """An open, greeted (and when configured: TLS'd, logged-in) SMTP connection."""
        client = self._connect()
        try:
            yield client
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()

    def _connect(self) -> smtplib.SMTP:
        cfg = self.settings
        client: smtplib.SMTP | None = None
        try:
            if cfg.use_ssl:
                client = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
            client.ehlo()
            if cfg.starttls and not cfg.use_ssl:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if cfg.username:
                client.login(cfg.username, cfg.password)
        except BaseException as exc:
            if client is not None:
                client.close()
            if isinstance(exc, smtplib.SMTPException | OSError):
                raise _classified(exc) from exc
            raise
        return client

    def _deliver(self, client: smtplib.SMTP, mail: OutgoingMail) -> str:
        message = self.build(mail)
        try:
            client.send_message(message, to_addrs=[mail.to.strip()])
        except (smtplib.SMTPException, OSError) as exc:
            raise _classified(exc, mail.to) from exc
        return str(message["Message-ID"])

    def send(
        self,
        to: str,
        subject: str,
        body_text: str,
        *,
        message_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Send one message; returns its Message-ID, raises Transient/PermanentMailError."""
        mail = OutgoingMail(to, subject, body_text, message_id, dict(headers or {}))
        self.build(mail)  # a message that cannot be built fails before any connection is made
        with self.connection() as client:
            return self._deliver(client, mail)


__all__ = [
    "MailError",
    "Mailer",
    "OutgoingMail",
    "PermanentMailError",
    "TransientMailError",
    "deterministic_message_id",
    "sender_domain",
]
