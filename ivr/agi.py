"""One FastAGI session: the environment Asterisk sends, and the commands a call flow uses.

The wire protocol (Asterisk's res_agi): on connect Asterisk sends ``agi_<name>: <value>``
lines ended by a blank line; then the script writes one command line at a time and reads
one answer per command: ``200 result=<n> [(<data>)] [endpos=..]`` on success, ``510`` for an
invalid command, ``511`` when the channel is dead, ``520`` with a usage text. When the
caller hangs up, FastAGI sends a bare ``HANGUP`` line (once, unless the dialplan set
``AGISIGHUP=no``), at any moment: usually ahead of the answer to the command in flight.

The dialplan bounds the time a call spends in ``AGI()`` (``TIMEOUT(absolute)`` and a ``T``
extension, see :data:`burgernet.channel_vars.AGI_DEADLINE_SECONDS`): with a ``deadline_margin``
the session pushes that deadline forward before every prompt, by the prompt's length plus the
margin, so a live flow is never cut off and a frozen one is after at most the margin.

Every answer that was asked for but not read (a hang-up or a timeout raised in the middle of
a command, or the flow was cancelled) is read and thrown away before the next command is
written, so a later command (the server's failure path) never takes an older command's answer
for its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import re
import wave
from collections.abc import Mapping
from dataclasses import dataclass

from burgernet import channel_vars as cv


class AgiError(Exception):
    """Base for everything that ends a session early."""


class ChannelHungUp(AgiError):
    """The caller hung up (or Asterisk closed the connection): stop quietly.

    Raised on an early EOF, a ``HANGUP`` line, ``511`` (dead channel) and ``200 result=-1``
    from the commands where -1 means the channel is gone (ANSWER, STREAM FILE, GET DATA, ...).
    """


class AgiProtocolError(AgiError):
    """Asterisk (or something pretending to be it) sent what the protocol does not allow."""


class _DeadChannelAnswer(ChannelHungUp):
    """``511``: the answer to a command that is not allowed on a dead channel."""


class AgiCommandError(AgiError):
    """Asterisk refused a command (510 / 520): a bug on our side."""


MAX_LINE_BYTES = 8192
_MSET_UNSAFE = frozenset(',"\\\n\r')
_VARIABLE_NAME = re.compile(r"^[A-Za-z0-9_()\-.,]+$")
# "200 result=49 (data) endpos=1234": panoramisk.utils.parse_agi_result turns result=-1 into an
# error without a status and raises on lines it does not know, so the answer is parsed here.
_ANSWER = re.compile(r"^(?P<code>\d{3})(?:[ -](?P<rest>.*))?$")
_RESULT = re.compile(r"result=(?P<result>\S*)(?:\s+\((?P<data>.*)\))?")


@dataclass(frozen=True)
class AgiEnvironment:
    """The ``agi_*`` header lines, the ones the flows use by name, the rest in ``raw``."""

    script: str
    unique_id: str
    linked_id: str
    channel: str
    caller_id: str | None
    caller_id_name: str | None
    extension: str
    context: str
    language: str
    arguments: tuple[str, ...]
    raw: Mapping[str, str]

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> AgiEnvironment:
        def value(name: str) -> str:
            return headers.get(f"agi_{name}", "").strip()

        script = value("network_script") or value("request").rsplit("/", 1)[-1]
        # Arguments arrive as agi_arg_1..n; stop at the first gap.
        arguments = []
        for number in range(1, 32):
            name = f"agi_arg_{number}"
            if name not in headers:
                break
            arguments.append(headers[name])
        caller_id = value("callerid")
        return cls(
            script=script.split("?", 1)[0].strip("/"),
            unique_id=value("uniqueid") or "unknown",
            linked_id=value("linkedid") or value("uniqueid"),
            channel=value("channel"),
            caller_id=None if caller_id in ("", "unknown") else caller_id,
            caller_id_name=value("calleridname") or None,
            extension=value("extension"),
            context=value("context"),
            language=value("language") or "en",
            arguments=tuple(arguments),
            raw=dict(headers),
        )


@dataclass(frozen=True)
class AgiResult:
    code: int
    result: str
    data: str

    @property
    def digit(self) -> str | None:
        """For STREAM FILE / WAIT FOR DIGIT: the key pressed, as a character, or None."""
        try:
            value = int(self.result)
        except ValueError:
            return None
        return chr(value) if value > 0 else None


# How long a prompt takes when its file cannot be measured (a relative name that Asterisk
# resolves in its own sounds folder, a format we do not read): long enough for any catalogue
# prompt, so a live flow is never cut off; a frozen server then costs up to this much silence.
UNMEASURED_SOUND_SECONDS = 30.0
SAY_DIGIT_SECONDS = 1.5  # one digit of SAY DIGITS, from Asterisk's own sounds
# Raw formats Asterisk plays, in bytes per second of sound (WAV files carry their own rate).
_RAW_SOUND_RATES = {".sln16": 32000, ".sln": 16000, ".ulaw": 8000, ".alaw": 8000, ".g722": 8000, ".gsm": 1650}


def sound_seconds(sound: str) -> float:
    """How long the sound Asterisk plays as ``sound`` (a name without extension) lasts."""
    for suffix in (".wav", *_RAW_SOUND_RATES):
        try:
            status = os.stat(sound + suffix)
        except OSError:
            continue
        seconds = _measured_seconds(sound + suffix, status.st_size, status.st_mtime_ns)
        if seconds is not None:
            return seconds
    return UNMEASURED_SOUND_SECONDS


@functools.lru_cache(maxsize=512)
def _measured_seconds(path: str, size: int, _mtime_ns: int) -> float | None:
    """Seconds of one sound file; cached per (path, size, mtime), so a rewritten prompt is read again."""
    suffix = os.path.splitext(path)[1]
    if suffix != ".wav":
        return size / _RAW_SOUND_RATES[suffix]
    try:
        with wave.open(path) as sound:
            return sound.getnframes() / sound.getframerate()
    except (OSError, EOFError, wave.Error, ZeroDivisionError):
        return None


def quote(value: str) -> str:
    """An AGI argument: double-quoted, backslash and quote escaped, no line breaks allowed."""
    if "\n" in value or "\r" in value:
        raise ValueError("AGI arguments cannot contain line breaks")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class AgiSession:
    """Commands for one call. One command is in flight at a time (a lock makes sure)."""

    def __init__(
        self,
        env: AgiEnvironment,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        command_timeout: float = 30.0,
        deadline_margin: float | None = None,
    ) -> None:
        self.env = env
        self._reader = reader
        self._writer = writer
        self._command_timeout = command_timeout
        # Seconds of silence a frozen server may cost the caller after a prompt; None: the
        # dialplan sets no deadline for this call (see extend_deadline).
        self._deadline_margin = deadline_margin
        self._lock = asyncio.Lock()
        self.hung_up = False
        # Answers Asterisk owes us for commands whose wait was cut short (see the module doc).
        self._unanswered = 0

    # -- the protocol ----------------------------------------------------------------------------
    async def command(self, line: str, timeout: float | None = None) -> AgiResult:
        """Send one command line and return its ``200`` answer.

        Raises :class:`ChannelHungUp` (hang-up, EOF, 511), :class:`AgiCommandError` (510/520),
        :class:`AgiProtocolError` (garbage, or no answer within ``timeout``).
        """
        if "\n" in line or "\r" in line:
            raise ValueError("one AGI command per line")
        name = line.split(" ", 1)[0]
        deadline = timeout or self._command_timeout
        async with self._lock:
            if self._writer.is_closing():
                raise ChannelHungUp("connection closed")
            try:
                while self._unanswered:
                    await asyncio.wait_for(self._skip_stale_answer(), self._command_timeout)
                self._writer.write(line.encode() + b"\n")
                self._unanswered += 1
                await self._writer.drain()
                return await asyncio.wait_for(self._read_result(), deadline)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                raise ChannelHungUp(str(exc) or "connection lost") from None
            except TimeoutError:
                raise AgiProtocolError(f"no answer to {name} within {deadline:g} s") from None

    async def _read_line(self) -> str:
        try:
            raw = await self._reader.readline()
        except ValueError:  # the stream's limit: a line longer than any real answer
            raise AgiProtocolError("answer line too long") from None
        if not raw.endswith(b"\n"):  # EOF, possibly in the middle of a line
            self.hung_up = True
            raise ChannelHungUp("Asterisk closed the connection")
        if len(raw) > MAX_LINE_BYTES:
            raise AgiProtocolError("answer line too long")
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    async def _skip_stale_answer(self) -> None:
        """Read one answer owed to an older command. A ``HANGUP`` line still raises."""
        # An answer to a command nobody waits for any more, whatever it says; the next one will tell.
        with contextlib.suppress(AgiCommandError, AgiProtocolError, _DeadChannelAnswer):
            await self._read_result()

    def _answered(self) -> None:
        self._unanswered = max(0, self._unanswered - 1)

    async def _read_result(self) -> AgiResult:
        while True:
            line = await self._read_line()
            if line == "HANGUP":
                # The caller left. The answer to the command in flight still follows; it is
                # skipped before the next command (self._unanswered), if there is one.
                self.hung_up = True
                raise ChannelHungUp("the caller hung up")
            if not line:
                continue
            answer = _ANSWER.match(line)
            status = int(answer.group("code")) if answer else 0
            if status == 100:  # "100 result=0 Trying..." precedes the real answer
                continue
            self._answered()
            if answer is None:
                raise AgiProtocolError(f"unexpected answer {line[:80]!r}")
            if status == 200:
                found = _RESULT.search(answer.group("rest") or "")
                if found is None:
                    raise AgiProtocolError(f"200 without result: {line[:80]!r}")
                return AgiResult(200, found.group("result"), found.group("data") or "")
            if status == 511:
                self.hung_up = True
                raise _DeadChannelAnswer("the channel is dead")
            if status in (510, 520):
                if line.startswith("520-"):  # a usage text follows, up to "520 End of proper usage."
                    for _ in range(64):
                        if (await self._read_line()).startswith("520 "):
                            break
                raise AgiCommandError(line)
            raise AgiProtocolError(f"unexpected answer {line[:80]!r}")

    # -- the AGI deadline --------------------------------------------------------------------------
    async def extend_deadline(self, seconds: float = 0.0) -> None:
        """Give this call ``seconds`` plus the margin before the dialplan's AGI deadline fires.

        Where Python and the dialplan meet: the dialplan arms ``TIMEOUT(absolute)`` right before
        ``AGI()`` and jumps to its ``T`` extension (then the failure path) when it fires, because
        Asterisk itself would wait for a frozen FastAGI server for ever. The deadline counts from
        the moment it is set; setting it again replaces it. So before each prompt the flow says
        how long the prompt may take, and a server that freezes during or after it leaves the
        caller at most the margin in silence once the prompt is over.
        """
        if self._deadline_margin is None:
            return
        await self.set_variable(cv.AGI_DEADLINE_FUNCTION, str(math.ceil(seconds + self._deadline_margin)))

    async def clear_deadline(self) -> None:
        """Disarm the deadline: the channel leaves AGI() somewhere other than right after it.

        After :meth:`goto` the dialplan does not come back to its ``Set(TIMEOUT(absolute)=0)``
        after ``AGI()``; an armed deadline would then fire in the next context, which has no
        ``T`` extension, and Asterisk would hang up on the caller.
        """
        if self._deadline_margin is None:
            return
        await self.set_variable(cv.AGI_DEADLINE_FUNCTION, "0")

    # -- commands the flows use --------------------------------------------------------------------
    async def answer(self) -> None:
        if (await self.command("ANSWER")).result == "-1":
            raise ChannelHungUp("could not answer: the channel is gone")

    async def get_variable(self, name: str) -> str | None:
        result = await self.command(f"GET VARIABLE {_checked(name)}")
        return result.data if result.result == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {_checked(name)} {quote(value)}")

    async def set_variables(self, variables: Mapping[str, str]) -> None:
        """Set several channel variables in one round trip (``EXEC MSet``), in the given order.

        MSet splits its argument on commas and treats quotes and backslashes specially, so a
        value containing any of them is refused rather than silently mangled.
        """
        pairs = []
        for name, value in variables.items():
            if any(ch in value for ch in _MSET_UNSAFE):
                raise ValueError(f'value of {name} cannot contain , " \\ or line breaks: {value!r}')
            pairs.append(f"{_checked(name)}={value}")
        if pairs:
            result = await self.command(f"EXEC MSet {quote(','.join(pairs))}")
            if result.result == "-1":
                raise ChannelHungUp("hung up while setting variables")

    async def stream_file(self, sound: str, escape_digits: str = "") -> str | None:
        """Play a sound; returns the key that interrupted it, if any."""
        await self.extend_deadline(sound_seconds(sound))
        result = await self.command(f"STREAM FILE {quote(sound)} {quote(escape_digits)}", timeout=300)
        if result.result == "-1":
            raise ChannelHungUp("hung up during playback")
        return result.digit

    async def get_data(self, sound: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play a sound and collect up to ``max_digits`` keys; None when nothing was keyed."""
        # Asterisk waits up to timeout_ms for the first key and again after each key.
        await self.extend_deadline(sound_seconds(sound) + timeout_ms / 1000 * max(1, max_digits))
        result = await self.command(
            f"GET DATA {quote(sound)} {int(timeout_ms)} {int(max_digits)}",
            timeout=timeout_ms / 1000 * (max_digits + 1) + 120,
        )
        if result.result == "-1":
            raise ChannelHungUp("hung up while keying digits")
        digits = "".join(ch for ch in result.result if ch in "0123456789*#")
        return digits or None

    async def wait_for_digit(self, timeout_ms: int) -> str | None:
        await self.extend_deadline(timeout_ms / 1000)
        result = await self.command(f"WAIT FOR DIGIT {int(timeout_ms)}", timeout=timeout_ms / 1000 + 30)
        if result.result == "-1":
            raise ChannelHungUp("hung up while waiting for a key")
        return result.digit

    async def say_digits(self, digits: str, escape_digits: str = "") -> str | None:
        """Say ``digits`` one by one; returns the key that interrupted it, if any."""
        if not digits or any(ch not in "0123456789*#" for ch in digits):
            raise ValueError(f"SAY DIGITS takes digits, * and #: {digits!r}")
        await self.extend_deadline(len(digits) * SAY_DIGIT_SECONDS)
        result = await self.command(f"SAY DIGITS {digits} {quote(escape_digits)}", timeout=120)
        if result.result == "-1":
            raise ChannelHungUp("hung up while saying digits")
        return result.digit

    async def verbose(self, message: str, level: int = 1) -> None:
        await self.command(f"VERBOSE {quote(message)} {int(level)}")

    async def set_context(self, context: str) -> None:
        await self.command(f"SET CONTEXT {_checked(context)}")

    async def set_extension(self, extension: str) -> None:
        await self.command(f"SET EXTENSION {_checked(extension)}")

    async def set_priority(self, priority: int | str) -> None:
        """A number, or a priority label of the target extension."""
        await self.command(f"SET PRIORITY {_checked(str(priority))}")

    async def goto(self, context: str, extension: str = "s", priority: int | str = 1) -> None:
        """Continue in the dialplan at context,extension,priority once this script returns."""
        await self.set_context(context)
        await self.set_extension(extension)
        await self.set_priority(priority)

    async def hangup(self) -> None:
        """Hang up this channel. The script may still run dead-channel commands afterwards."""
        await self.command("HANGUP")
        self.hung_up = True


def _checked(name: str) -> str:
    if not _VARIABLE_NAME.match(name):
        raise ValueError(f"unsafe dialplan name {name!r}")
    return name
