"""A real SMTP server for tests (aiosmtpd), recording what it receives.

``SmtpServer`` runs aiosmtpd's ``Controller`` on a loopback port from :mod:`testbed.ports`
in its own thread. Every accepted message is kept with its envelope and the parsed message
(thread-safe: the server's thread appends, the test reads). Chosen recipients can be answered
with an SMTP error at RCPT time (451 to test retries, 550 for a refused mailbox), and the DATA
answer can be replaced for every message (e.g. 452 "insufficient storage").

Use it through the ``smtp_server`` fixture (tests/conftest.py); ``smtp_server.settings()`` is the
``SmtpSettings`` that points a :class:`burgernet.mailer.Mailer` at it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, cast

from aiosmtpd.controller import Controller

from burgernet.settings import SmtpSettings
from testbed.ports import port_block


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def body(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        return str(text).replace("\r\n", "\n")  # as written, not as carried on the wire


class _RecordingHandler:
    """aiosmtpd handler hooks; state is shared with the test thread under ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.received: list[ReceivedMail] = []
        self.refusals: dict[str, str] = {}
        self.data_reply: str | None = None
        self.rcpt_attempts: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            self.rcpt_attempts.append(address)
            refusal = self.refusals.get(address.lower())
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            reply = self.data_reply
        if reply is not None:
            return reply
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        message = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(data))
        mail = ReceivedMail(str(envelope.mail_from), tuple(envelope.rcpt_tos), data, message)
        with self.lock:
            self.received.append(mail)
            self.lock.notify_all()
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or port_block()
        self._handler = _RecordingHandler()
        self._controller = Controller(self._handler, hostname=host, port=self.port)

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def settings(self, base: SmtpSettings | None = None) -> SmtpSettings:
        """SMTP settings that point at this server (plain, no TLS, no login)."""
        base = base or SmtpSettings()
        return base.model_copy(
            update={
                "host": self.host,
                "port": self.port,
                "username": "",
                "password": "",
                "starttls": False,
                "use_ssl": False,
                "timeout_seconds": 5.0,
            }
        )

    # What arrived.
    @property
    def messages(self) -> list[ReceivedMail]:
        with self._handler.lock:
            return list(self._handler.received)

    def messages_to(self, address: str) -> list[ReceivedMail]:
        wanted = address.lower()
        return [m for m in self.messages if wanted in (r.lower() for r in m.rcpt_tos)]

    @property
    def rcpt_attempts(self) -> list[str]:
        """Every RCPT TO the server saw, accepted or refused."""
        with self._handler.lock:
            return list(self._handler.rcpt_attempts)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """At least ``count`` messages, waiting up to ``timeout`` seconds (AssertionError if not)."""
        deadline = time.monotonic() + timeout
        with self._handler.lock:
            while len(self._handler.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} messages, got {len(self._handler.received)}")
                self._handler.lock.wait(left)
            return list(self._handler.received)

    # How it answers.
    def refuse(self, address: str, reply: str = "550 5.1.1 No such mailbox") -> None:
        """Answer RCPT TO for ``address`` with ``reply`` (e.g. "451 4.7.1 Try again later")."""
        code = reply[:3]
        if not (code.isdigit() and code[0] in "45"):
            raise ValueError(f"a refusal must be a 4xx or 5xx reply, not {reply!r}")
        with self._handler.lock:
            self._handler.refusals[address.lower()] = reply

    def accept(self, address: str) -> None:
        with self._handler.lock:
            self._handler.refusals.pop(address.lower(), None)

    def answer_data_with(self, reply: str | None) -> None:
        """Answer every DATA with ``reply`` (None: accept again)."""
        with self._handler.lock:
            self._handler.data_reply = reply

    def clear(self) -> None:
        """Forget received messages and refusals (for a server shared between tests)."""
        with self._handler.lock:
            self._handler.received.clear()
            self._handler.refusals.clear()
            self._handler.rcpt_attempts.clear()
            self._handler.data_reply = None


__all__ = ["ReceivedMail", "SmtpServer"]
