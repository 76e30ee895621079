"""The SMTP mailer against a real SMTP server (aiosmtpd): delivery, Message-IDs, error kinds."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from burgernet.mailer import (
    Mailer,
    PermanentMailError,
    TransientMailError,
    deterministic_message_id,
    sender_domain,
)
from burgernet.settings import SmtpSettings
from testbed.ports import port_block
from testbed.smtp import SmtpServer


@pytest.fixture
def mailer(smtp_server: SmtpServer) -> Mailer:
    return Mailer(smtp_server.settings())


def test_a_message_arrives_with_its_headers_and_text(mailer: Mailer, smtp_server: SmtpServer) -> None:
    message_id = mailer.send(
        "bewoner@example.nl",
        "Buurtonderzoek: inbraak Lange Nieuwstraat",
        "Heeft u iets gezien? Café ‘De Hoek’ — ja.\n",
        headers={"Auto-Submitted": "auto-generated"},
    )
    [mail] = smtp_server.wait_for(1)
    assert mail.rcpt_tos == ("bewoner@example.nl",)
    assert mail.mail_from == "noreply@burgernet.local"
    assert mail.subject == "Buurtonderzoek: inbraak Lange Nieuwstraat"
    assert mail.body() == "Heeft u iets gezien? Café ‘De Hoek’ — ja.\n"
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert mail.message["From"] == "Burgernet <noreply@burgernet.local>"
    assert mail.message["Date"]
    assert mail.message_id == message_id
    assert message_id.startswith("<") and message_id.endswith("@burgernet.local>")


def test_a_given_message_id_is_kept_on_the_wire(mailer: Mailer, smtp_server: SmtpServer) -> None:
    wanted = mailer.message_id("inquiry", 3, "link", 17)
    assert wanted == "<inquiry-3-link-17@burgernet.local>"
    assert mailer.send("a@example.nl", "s", "b", message_id=wanted) == wanted
    assert mailer.send("a@example.nl", "s", "b", message_id="retry-1@example.org") == "<retry-1@example.org>"
    first, second = smtp_server.wait_for(2)
    assert first.message_id == wanted
    assert second.message_id == "<retry-1@example.org>"


def test_deterministic_message_ids() -> None:
    assert deterministic_message_id("x.nl", "a b", 1) == deterministic_message_id("x.nl", "a b", 1)
    assert deterministic_message_id("x.nl", "a b", 1) == "<a_b-1@x.nl>"
    assert deterministic_message_id("x.nl", "a", 1) != deterministic_message_id("x.nl", "a", 2)
    assert sender_domain("Burgernet <noreply@politie.example>") == "politie.example"
    with pytest.raises(ValueError):
        deterministic_message_id("x.nl")


def test_a_4xx_recipient_refusal_is_transient(mailer: Mailer, smtp_server: SmtpServer) -> None:
    smtp_server.refuse("grey@example.nl", "451 4.7.1 Greylisted, try again later")
    with pytest.raises(TransientMailError) as caught:
        mailer.send("grey@example.nl", "s", "b")
    assert caught.value.code == 451
    assert caught.value.recipient == "grey@example.nl"
    assert not caught.value.permanent
    assert smtp_server.messages == []


def test_a_5xx_recipient_refusal_is_permanent(mailer: Mailer, smtp_server: SmtpServer) -> None:
    smtp_server.refuse("gone@example.nl", "550 5.1.1 No such mailbox")
    with pytest.raises(PermanentMailError) as caught:
        mailer.send("gone@example.nl", "s", "b")
    assert caught.value.code == 550
    assert caught.value.permanent
    assert "No such mailbox" in str(caught.value)


def test_a_4xx_answer_to_data_is_transient(mailer: Mailer, smtp_server: SmtpServer) -> None:
    smtp_server.answer_data_with("452 4.3.1 Insufficient system storage")
    with pytest.raises(TransientMailError) as caught:
        mailer.send("a@example.nl", "s", "b")
    assert caught.value.code == 452
    smtp_server.answer_data_with("554 5.7.1 Message rejected")
    with pytest.raises(PermanentMailError):
        mailer.send("a@example.nl", "s", "b")


def test_connection_refused_is_transient() -> None:
    closed_port = port_block()  # checked free: nothing listens there
    mailer = Mailer(SmtpSettings(host="127.0.0.1", port=closed_port, timeout_seconds=2))
    with pytest.raises(TransientMailError) as caught:
        mailer.send("a@example.nl", "s", "b")
    assert caught.value.code is None


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts and never greets: the SMTP client must time out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", port_block()))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_server_that_does_not_answer_is_a_transient_timeout(silent_server: int) -> None:
    mailer = Mailer(SmtpSettings(host="127.0.0.1", port=silent_server, timeout_seconds=0.5))
    with pytest.raises(TransientMailError, match="did not answer in time"):
        mailer.send("a@example.nl", "s", "b")


def test_a_header_with_a_line_break_is_permanent_and_nothing_is_sent(
    mailer: Mailer, smtp_server: SmtpServer
) -> None:
    with pytest.raises(PermanentMailError):
        mailer.send("a@example.nl", "hello\r\nBcc: victim@example.nl", "b")
    with pytest.raises(PermanentMailError):
        mailer.send("a@example.nl", "s", "b", headers={"Message-ID": "<x@y>"})
    with pytest.raises(PermanentMailError):
        mailer.send("not an address", "s", "b")
    assert smtp_server.rcpt_attempts == []
