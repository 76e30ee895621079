"""The official Twilio client, pointed where the settings say, and its errors in our terms.

Shared by :mod:`broadcasting.twilio.sms` and :mod:`broadcasting.twilio.voice`. The client's own
edge/region options only pick another ``*.twilio.com`` host, so a Twilio-speaking test server
(``testbed/fake_twilio.py``) is reached by an HTTP client that rewrites the
``https://api.twilio.com`` prefix to ``twilio.api_base_url`` — every request, paging links
included, goes through it. The same client remembers the headers of a failed answer per
thread (the worker sends from many threads at once) because the client's exception drops them
and a 429's ``Retry-After`` is what the worker should wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from broadcasting.errors import PermanentProviderError, ProviderError, TransientProviderError
from burgernet.settings import Settings

TWILIO_API = "https://api.twilio.com"
REQUEST_TIMEOUT_SECONDS = 15.0
T = TypeVar("T")
# Twilio error codes (https://www.twilio.com/docs/api/errors) that a later try may get past;
# any other 4xx is about this request itself (bad number, unsubscribed, not permitted).
_TRANSIENT_CODES = {20429, 14107, 30001, 31206}


class RebasedHttpClient(TwilioHttpClient):
    """``TwilioHttpClient`` that sends api.twilio.com requests to ``base_url`` instead."""

    def __init__(self, base_url: str, *, pool_size: int = 32, timeout: float = REQUEST_TIMEOUT_SECONDS):
        # Retries are the worker's business (with back-off and the delivery state machine):
        # a library-level retry of a POST could send one SMS twice.
        super().__init__(pool_connections=True, timeout=timeout, max_retries=0)
        self.base_url = base_url.rstrip("/")
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        assert self.session is not None
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._failed = threading.local()

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        if url.startswith(TWILIO_API) and self.base_url != TWILIO_API:
            url = self.base_url + url[len(TWILIO_API) :]
        self._failed.headers = {}
        response = super().request(
            method,
            url,
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )
        if response.status_code >= 400:
            self._failed.headers = dict(response.headers or {})
        return response

    def failed_headers(self) -> dict[str, str]:
        """Headers of this thread's last failed answer (empty when it succeeded)."""
        return dict(getattr(self._failed, "headers", {}) or {})


def make_client(settings: Settings) -> tuple[Client, RebasedHttpClient]:
    t = settings.twilio
    http = RebasedHttpClient(t.api_base_url, pool_size=max(32, settings.broadcast.worker_concurrency + 4))
    return Client(username=t.account_sid, password=t.auth_token, http_client=http), http


def callback_base(settings: Settings) -> str:
    """Where Twilio reaches our callback_api (no trailing slash)."""
    return (settings.twilio.callback_base_url or settings.web.public_base_url).rstrip("/")


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _header(headers: dict[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def classify(exc: Exception, http: RebasedHttpClient, what: str) -> ProviderError:
    """Turn whatever the client raised into a transient or permanent provider error."""
    if isinstance(exc, TwilioRestException):
        code = str(exc.code) if exc.code is not None else str(exc.status)
        message = f"{what}: Twilio {exc.status} {exc.code or ''} {exc.msg}".strip()
        if exc.status == 429 or exc.status >= 500 or (exc.code in _TRANSIENT_CODES):
            retry_after = retry_after_seconds(_header(http.failed_headers(), "Retry-After"))
            return TransientProviderError(message, code=code, retry_after=retry_after)
        return PermanentProviderError(message, code=code)
    if isinstance(exc, requests.RequestException):
        # Refused, reset, timed out: the request may or may not have arrived. For an SMS the
        # worker's retry goes through the same claim, so an unanswered POST is tried again;
        # see TwilioSms.send for why that is acceptable.
        return TransientProviderError(f"{what}: no answer from Twilio ({type(exc).__name__}: {exc})")
    if isinstance(exc, TwilioException):
        return TransientProviderError(f"{what}: unexpected answer from Twilio ({exc})")
    raise exc


def call_twilio(http: RebasedHttpClient, what: str, work: Callable[[], T]) -> T:
    """Run ``work()`` (a client call) and raise only ProviderErrors."""
    try:
        return work()
    except (TwilioException, requests.RequestException) as exc:
        raise classify(exc, http, what) from exc
