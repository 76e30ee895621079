"""A local server that speaks the part of Twilio's REST API and webhooks the project uses.

The official client (``twilio.rest.Client``, pointed here through ``twilio.api_base_url``)
really talks HTTP to it:

* ``POST /2010-04-01/Accounts/{sid}/Messages.json`` — basic auth checked, a Twilio-shaped
  Message resource (``SM…``, status ``queued``) or a Twilio-shaped error
  (``{code, message, more_info, status}``);
* ``GET  …/Messages.json`` — ``To``, ``From``, ``DateSent``/``DateSent<``/``DateSent>``
  filters, newest first, with the paging fields the client follows (``next_page_uri``…);
* ``POST …/Calls.json`` and ``GET …/Calls/{sid}.json``.

Then, like Twilio, it calls back asynchronously (one background thread, in order):
``sent`` then ``delivered`` (or ``undelivered``/``failed`` with an ``ErrorCode``, per number) to
a message's ``StatusCallback``; for a call it fetches the TwiML from ``Url`` (optionally
"presses" digits at the ``<Gather>``), then posts ``answered``/``completed`` or
``busy``/``no-answer``/``failed`` to ``StatusCallback``. Every webhook is a form POST signed
with ``X-Twilio-Signature`` exactly as Twilio signs it
(``RequestValidator(auth_token).compute_signature(url, params)``); a callback can be posted
twice, as Twilio's retries do. Inbound SMS (``STOP``/``START``) are simulated the same way,
and a number that sent STOP is refused afterwards with 21610, as Twilio's opt-out handling does.

Faults on demand: the next N requests answered 429 (with ``Retry-After``) or 500; chosen
numbers refused (e.g. 400/21211); an answer "lost" after the message was accepted.
"""

from __future__ import annotations

import base64
import email.utils
import json
import queue
import re
import secrets
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from twilio.request_validator import RequestValidator

from burgernet.settings import TwilioSettings
from testbed.ports import port_block

API_VERSION = "2010-04-01"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ACCOUNT_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>[^/]+)/(?P<rest>.+)$")
STOP_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
START_WORDS = {"START", "UNSTOP", "YES"}


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _rfc2822(moment: datetime | None) -> str | None:
    return email.utils.format_datetime(moment) if moment else None


def _parse_date_filter(value: str) -> datetime:
    value = value.strip().lstrip("<>=")
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass
class FakeMessage:
    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    created_at: datetime
    received_at: float  # time.time(), for rate measurements
    status: str = "queued"
    sent_at: datetime | None = None
    error_code: int | None = None

    def resource(self, account_sid: str) -> dict[str, Any]:
        return {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": _rfc2822(self.created_at),
            "date_sent": _rfc2822(self.sent_at),
            "date_updated": _rfc2822(self.sent_at or self.created_at),
            "direction": "outbound-api",
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": str(max(1, -(-len(self.body) // 153))),
            "price": None,
            "price_unit": "EUR",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{self.sid}/Media.json"
            },
            "to": self.to,
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/Messages/{self.sid}.json",
        }


@dataclass
class FakeCall:
    sid: str
    to: str
    from_: str
    url: str | None
    method: str
    status_callback: str | None
    status_callback_events: tuple[str, ...]
    timeout: int | None
    created_at: datetime
    received_at: float
    status: str = "queued"
    twiml: list[str] = field(default_factory=list)  # every TwiML document Twilio was given

    def resource(self, account_sid: str) -> dict[str, Any]:
        return {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "date_created": _rfc2822(self.created_at),
            "date_updated": _rfc2822(self.created_at),
            "direction": "outbound-api",
            "from": self.from_,
            "from_formatted": self.from_,
            "sid": self.sid,
            "status": self.status,
            "to": self.to,
            "to_formatted": self.to,
            "uri": f"/{API_VERSION}/Accounts/{account_sid}/Calls/{self.sid}.json",
        }


@dataclass(frozen=True)
class Webhook:
    """A request the fake made to our application, and what it answered."""

    url: str
    params: Mapping[str, str]
    status_code: int | None  # None: the application could not be reached
    body: str
    error: str | None = None


@dataclass
class _Fault:
    status: int
    code: int
    message: str
    retry_after: str | None = None


@dataclass(frozen=True)
class CallOutcome:
    status: str = "completed"  # completed (answered), busy, no-answer, failed, canceled
    digits: str | None = None  # pressed at the first <Gather> of the alert TwiML
    duration: int = 12


class FakeTwilio:
    def __init__(
        self,
        account_sid: str | None = None,
        auth_token: str | None = None,
        *,
        host: str = "127.0.0.1",
        callback_delay: float = 0.05,
    ) -> None:
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.host = host
        self.port = 0
        self.callback_delay = callback_delay
        self.validator = RequestValidator(self.auth_token)
        self.lock = threading.Condition()
        self.messages: list[FakeMessage] = []
        self.calls: list[FakeCall] = []
        self.webhooks: list[Webhook] = []
        self.requests: list[tuple[str, str, int]] = []  # method, path, answer status
        self.message_outcomes: dict[str, tuple[str, int | None]] = {}
        self.call_outcomes: dict[str, CallOutcome] = {}
        self.opted_out: set[str] = set()
        self.duplicate_callbacks = False
        self._next_faults: list[_Fault] = []
        self._number_faults: dict[str, _Fault] = {}
        self._lose_answers = 0
        self._callbacks: queue.Queue[Any] = queue.Queue()
        self._http = requests.Session()
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life cycle -----------------------------------------------------------------------------------
    def start(self) -> FakeTwilio:
        handler = _handler_for(self)
        for _ in range(5):
            try:
                self.port = port_block()
                self._server = ThreadingHTTPServer((self.host, self.port), handler)
                break
            except OSError:
                continue
        if self._server is None:
            raise RuntimeError("fake Twilio: no port to listen on")
        self._server.daemon_threads = True
        for target, name in (
            (self._server.serve_forever, "fake-twilio-http"),
            (self._work, "fake-twilio-hooks"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()  # callbacks still waiting are dropped, not posted
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._callbacks.put(None)
        for thread in self._threads:
            thread.join(5)
        self._http.close()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings(self, base: TwilioSettings, callback_base_url: str | None = None) -> TwilioSettings:
        """``base`` pointed at this server (and our callbacks at ``callback_base_url``)."""
        update: dict[str, Any] = {
            "api_base_url": self.base_url,
            "account_sid": self.account_sid,
            "auth_token": self.auth_token,
        }
        if callback_base_url is not None:
            update["callback_base_url"] = callback_base_url
        return base.model_copy(update=update)

    # -- what tests configure --------------------------------------------------------------------------
    def fail_next(self, count: int, status: int = 429, *, retry_after: float | str | None = None) -> None:
        """Answer the next ``count`` API requests with 429 (Too Many Requests) or a 5xx."""
        code, message = (20429, "Too Many Requests") if status == 429 else (20500, "Internal Server Error")
        fault = _Fault(status, code, message, None if retry_after is None else str(retry_after))
        with self.lock:
            self._next_faults.extend([fault] * count)

    def fail_number(
        self, number: str, status: int = 400, code: int = 21211, message: str | None = None
    ) -> None:
        """Refuse every message or call to ``number`` (default: invalid 'To' number)."""
        text = message or {
            21211: f"The 'To' number {number} is not a valid phone number.",
            21610: "Attempt to send to unsubscribed recipient",
            21614: f"'To' number {number} is not a valid mobile number",
        }.get(code, "Refused")
        with self.lock:
            self._number_faults[number] = _Fault(status, code, text)

    def lose_next_answers(self, count: int = 1) -> None:
        """Accept the next ``count`` messages, then drop the connection instead of answering."""
        with self.lock:
            self._lose_answers += count

    def message_outcome(self, number: str, status: str = "delivered", error_code: int | None = None) -> None:
        """Final status reported for messages to ``number``: delivered, undelivered or failed."""
        if status not in ("delivered", "undelivered", "failed"):
            raise ValueError(status)
        default_codes = {"undelivered": 30003, "failed": 30008}
        with self.lock:
            self.message_outcomes[number] = (status, error_code or default_codes.get(status))

    def call_outcome(self, number: str, outcome: CallOutcome) -> None:
        with self.lock:
            self.call_outcomes[number] = outcome

    # -- what tests read --------------------------------------------------------------------------------
    def message_times(self) -> list[float]:
        with self.lock:
            return [m.received_at for m in self.messages]

    def recipients(self) -> list[str]:
        with self.lock:
            return [m.to for m in self.messages]

    def wait_for(self, what: Any, timeout: float = 10.0, description: str = "condition") -> None:
        """Wait until ``what()`` (called under the lock) is true."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while not what():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake Twilio: timed out waiting for {description}")
                self.lock.wait(min(left, 0.1))

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[FakeMessage]:
        self.wait_for(lambda: len(self.messages) >= count, timeout, f"{count} messages")
        with self.lock:
            return list(self.messages)

    def wait_for_webhooks(self, count: int, timeout: float = 10.0) -> list[Webhook]:
        self.wait_for(lambda: len(self.webhooks) >= count, timeout, f"{count} webhooks")
        with self.lock:
            return list(self.webhooks)

    # -- webhooks -------------------------------------------------------------------------------------------
    def sign(self, url: str, params: Mapping[str, str]) -> str:
        return str(self.validator.compute_signature(url, dict(params)))

    def post_webhook(
        self, url: str, params: Mapping[str, str], *, signature: str | None = None, record: bool = True
    ) -> Webhook:
        """POST ``params`` to ``url`` as Twilio does: form-encoded and signed (or ``signature``)."""
        headers = {
            "X-Twilio-Signature": self.sign(url, params) if signature is None else signature,
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        try:
            answer = self._http.post(url, data=dict(params), headers=headers, timeout=15)
            hook = Webhook(url, dict(params), answer.status_code, answer.text)
        except requests.RequestException as exc:
            hook = Webhook(url, dict(params), None, "", str(exc))
        if record:
            with self.lock:
                self.webhooks.append(hook)
                self.lock.notify_all()
        return hook

    def send_inbound(self, url: str, *, from_: str, body: str, to: str = "+3197010000011") -> Webhook:
        """An SMS from a participant arriving at our number (Twilio's "A message comes in")."""
        keyword = body.strip().upper()
        with self.lock:
            if keyword in STOP_WORDS:
                self.opted_out.add(from_)
            elif keyword in START_WORDS:
                self.opted_out.discard(from_)
        sid = _sid("SM")
        params = {
            "ToCountry": "NL",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": body,
            "FromCountry": "NL",
            "To": to,
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
        }
        if keyword in STOP_WORDS | START_WORDS:
            params["OptOutType"] = "STOP" if keyword in STOP_WORDS else "START"
        return self.post_webhook(url, params)

    def _message_events(self, message: FakeMessage) -> list[tuple[str, int | None]]:
        with self.lock:
            final, code = self.message_outcomes.get(message.to, ("delivered", None))
        if final == "failed":
            return [("failed", code)]
        return [("sent", None), (final, code)]

    def _work(self) -> None:
        """Deliver callbacks one after another, like a (well-behaved) Twilio."""
        while True:
            job = self._callbacks.get()
            if job is None or self._stopping.is_set():
                return
            time.sleep(self.callback_delay)
            try:
                job()
            except Exception as exc:  # a broken test app must not stop later callbacks
                with self.lock:
                    self.webhooks.append(Webhook("", {}, None, "", f"fake Twilio: {exc!r}"))
                    self.lock.notify_all()

    def _post_status(self, url: str, params: Mapping[str, str]) -> None:
        self.post_webhook(url, params)
        if self.duplicate_callbacks:
            self.post_webhook(url, params)

    def _report_message(self, message: FakeMessage) -> None:
        for status, code in self._message_events(message):
            with self.lock:
                message.status = status
                if status == "sent":
                    message.sent_at = datetime.now(UTC)
                message.error_code = code
            if not message.status_callback:
                continue
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": API_VERSION,
                "From": message.from_,
                "MessageSid": message.sid,
                "MessageStatus": status,
                "SmsSid": message.sid,
                "SmsStatus": status,
                "To": message.to,
            }
            if code is not None:
                params["ErrorCode"] = str(code)
            self._post_status(message.status_callback, params)

    def _call_params(self, call: FakeCall, status: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "Called": call.to,
            "Caller": call.from_,
            "Direction": "outbound-api",
            "From": call.from_,
            "To": call.to,
        }

    def _run_call(self, call: FakeCall) -> None:
        with self.lock:
            outcome = self.call_outcomes.get(call.to, CallOutcome())
        events = {event.lower() for event in call.status_callback_events}
        sequence = 0

        def report(status: str, extra: Mapping[str, str] | None = None) -> None:
            nonlocal sequence
            if call.status_callback is None:
                return
            params = self._call_params(call, status)
            params.update(
                {
                    "SequenceNumber": str(sequence),
                    "Timestamp": email.utils.format_datetime(datetime.now(UTC)),
                    "CallbackSource": "call-progress-events",
                }
            )
            params.update(extra or {})
            sequence += 1
            self._post_status(call.status_callback, params)

        if outcome.status != "completed":
            with self.lock:
                call.status = outcome.status
            if "completed" in events:
                report(outcome.status, {"CallDuration": "0"})
            return
        with self.lock:
            call.status = "in-progress"
        if "answered" in events:
            report("in-progress")
        if call.url:
            answer = self.post_webhook(call.url, self._call_params(call, "in-progress"))
            with self.lock:
                call.twiml.append(answer.body)
            action = _gather_action(answer.body)
            if outcome.digits and action:
                params = self._call_params(call, "in-progress")
                params.update({"Digits": outcome.digits, "FinishedOnKey": ""})
                pressed = self.post_webhook(action, params)
                with self.lock:
                    call.twiml.append(pressed.body)
        with self.lock:
            call.status = "completed"
        if "completed" in events:
            report("completed", {"CallDuration": str(outcome.duration)})

    # -- the REST API (called from the server's threads) -------------------------------------------------
    def _check_auth(self, header: str | None, account: str) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (
            secrets.compare_digest(user, self.account_sid)
            and secrets.compare_digest(password, self.auth_token)
            and account == self.account_sid
        )

    def _take_fault(self, number: str | None) -> _Fault | None:
        with self.lock:
            if self._next_faults:
                return self._next_faults.pop(0)
            if number is not None and number in self._number_faults:
                return self._number_faults[number]
            if number is not None and number in self.opted_out:
                return _Fault(400, 21610, "Attempt to send to unsubscribed recipient")
        return None

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        form: dict[str, list[str]],
        auth: str | None,
    ) -> tuple[int, dict[str, str], Any]:
        match = _ACCOUNT_PATH.match(path)
        if match is None:
            return _error(404, 20404, "The requested resource was not found")
        if not self._check_auth(auth, match["account"]):
            return _error(401, 20003, "Authenticate")
        rest = match["rest"]
        if method == "POST" and rest == "Messages.json":
            return self._create_message(form)
        if method == "GET" and rest == "Messages.json":
            fault = self._take_fault(None)
            return _fault_answer(fault) if fault else self._list_messages(query)
        if method == "POST" and rest == "Calls.json":
            return self._create_call(form)
        call_match = re.fullmatch(r"Calls/(CA[0-9a-f]+)\.json", rest)
        if method == "GET" and call_match:
            with self.lock:
                call = next((c for c in self.calls if c.sid == call_match[1]), None)
            if call is None:
                return _error(404, 20404, f"The requested resource /Calls/{call_match[1]}.json was not found")
            return 200, {}, call.resource(self.account_sid)
        return _error(404, 20404, "The requested resource was not found")

    def _create_message(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        to, from_, body = (form.get(k, [""])[0] for k in ("To", "From", "Body"))
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not from_:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        fault = self._take_fault(to)
        if fault:
            return _fault_answer(fault)
        if not _E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        message = FakeMessage(
            sid=_sid("SM"),
            to=to,
            from_=from_,
            body=body,
            status_callback=form.get("StatusCallback", [None])[0],
            created_at=datetime.now(UTC),
            received_at=time.time(),
        )
        with self.lock:
            self.messages.append(message)
            lose = self._lose_answers > 0
            if lose:
                self._lose_answers -= 1
            self.lock.notify_all()
        self._callbacks.put(lambda: self._report_message(message))
        if lose:
            return -1, {}, None
        return 201, {}, message.resource(self.account_sid)

    def _list_messages(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        def one(name: str) -> str | None:
            return query.get(name, [None])[0]

        to, from_ = one("To"), one("From")
        on, before, after = one("DateSent"), one("DateSent<"), one("DateSent>")
        page_size = min(1000, int(one("PageSize") or 50))
        page = int(one("Page") or 0)
        with self.lock:
            found = [
                m for m in self.messages if (to is None or m.to == to) and (from_ is None or m.from_ == from_)
            ]
            if on or before or after:
                found = [m for m in found if m.sent_at is not None]
            if on:
                day = _parse_date_filter(on).date()
                found = [m for m in found if m.sent_at and m.sent_at.date() == day]
            if before:
                limit = _parse_date_filter(before)
                found = [m for m in found if m.sent_at and m.sent_at <= limit]
            if after:
                limit = _parse_date_filter(after)
                found = [m for m in found if m.sent_at and m.sent_at >= limit]
            found = list(reversed(found))  # newest first, as Twilio lists them
            chunk = [m.resource(self.account_sid) for m in found[page * page_size : (page + 1) * page_size]]
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        filters = {k: v[0] for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}

        def page_uri(number: int) -> str:
            return f"{base}?{urlencode({**filters, 'PageSize': page_size, 'Page': number})}"

        more = (page + 1) * page_size < len(found)
        return (
            200,
            {},
            {
                "messages": chunk,
                "end": page * page_size + max(0, len(chunk) - 1),
                "first_page_uri": page_uri(0),
                "next_page_uri": (page_uri(page + 1) + f"&PageToken=PA{page + 1}") if more else None,
                "page": page,
                "page_size": page_size,
                "previous_page_uri": page_uri(page - 1) if page > 0 else None,
                "start": page * page_size,
                "uri": page_uri(page),
            },
        )

    def _create_call(self, form: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        to, from_ = form.get("To", [""])[0], form.get("From", [""])[0]
        url, twiml = form.get("Url", [None])[0], form.get("Twiml", [None])[0]
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not from_:
            return _error(400, 21213, "No 'From' number is specified")
        if not url and not twiml:
            return _error(400, 21205, "Url parameter is required.")
        fault = self._take_fault(to)
        if fault:
            return _fault_answer(fault)
        if not _E164.match(to):
            return _error(400, 21217, f"Phone number {to} is not valid.")
        call = FakeCall(
            sid=_sid("CA"),
            to=to,
            from_=from_,
            url=url,
            method=form.get("Method", ["POST"])[0],
            status_callback=form.get("StatusCallback", [None])[0],
            status_callback_events=tuple(form.get("StatusCallbackEvent", ["completed"])),
            timeout=int(form["Timeout"][0]) if "Timeout" in form else None,
            created_at=datetime.now(UTC),
            received_at=time.time(),
        )
        with self.lock:
            self.calls.append(call)
            self.lock.notify_all()
        self._callbacks.put(lambda: self._run_call(call))
        return 201, {}, call.resource(self.account_sid)


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    return (
        status,
        headers or {},
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def _fault_answer(fault: _Fault) -> tuple[int, dict[str, str], Any]:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    return _error(fault.status, fault.code, fault.message, headers)


def _gather_action(twiml: str) -> str | None:
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError:
        return None
    gather = root.find("Gather")
    return gather.get("action") if gather is not None else None


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, method: str) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            form = parse_qs(raw, keep_blank_values=True)
            query = parse_qs(split.query, keep_blank_values=True)
            status, headers, body = fake.handle(
                method, split.path, query, form, self.headers.get("Authorization")
            )
            with fake.lock:
                fake.requests.append((method, split.path, status))
            if status < 0:  # "lost" answer: the message was taken, the connection dies
                self.close_connection = True
                self.connection.shutdown(2)
                return
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

    return Handler
