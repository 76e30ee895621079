"""What a provider accepted, written down the instant it said so: no message goes out twice.

A worker claims a delivery in the database ("sending"), hands it to the provider, and then
writes the outcome to the database. A worker killed between the provider's "accepted" and
that database write leaves the delivery in doubt. For SMS the provider can be asked
afterwards (:meth:`TwilioSmsSender.reconcile`); an SMTP server cannot, so the delivery would
be sent a second time. The database write is also what fails while the database restarts.

So every accepted delivery is appended to a journal file at once: by the sending thread
right after the SMTP server's 250 (:class:`~broadcasting.channels.base.NotesAcceptance`),
otherwise by the worker in the same step of the event loop in which the provider's answer
arrived (no ``await`` in between). A ``kill -9`` or a database outage then no longer falls
between "accepted" and "written down".
When a delivery turns up in doubt, the journal is read before the provider is asked or the
message is sent again.

One file per worker process (``sent-<host>-<pid>.jsonl`` under ``<data_dir>/broadcast/``), so
processes never write into each other's file; a reader scans them all, each from where it last
stopped. The page cache survives the death of a process, so no ``fsync`` is needed for the
faults this guards against (a crashed or killed worker, a database outage). Files untouched
for :data:`KEEP_SECONDS` are removed at start: by then every delivery in them is final.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from broadcasting.channels.base import Outcome

log = logging.getLogger(__name__)

KEEP_SECONDS: Final = 2 * 24 * 3600
# Outcomes that mean the provider took the message: sending it again would double it.
ACCEPTED: Final = frozenset({"sent", "delivered", "answered"})


@dataclass(frozen=True)
class Accepted:
    status: str
    provider_ref: str | None


def _line(delivery_id: int, outcome: Outcome) -> str:
    entry = {"d": delivery_id, "s": outcome.status, "r": outcome.provider_ref, "t": round(time.time())}
    return json.dumps(entry, separators=(",", ":")) + "\n"


class SentJournal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._remove_old()
        self.path = folder / f"sent-{socket.gethostname()}-{os.getpid()}.jsonl"
        self._file: IO[str] | None = None
        self._read_up_to: dict[Path, int] = {}
        self._accepted: dict[int, Accepted] = {}
        self._writing = threading.Lock()  # senders note from their own threads (SMTP)
        self._pending: list[str] = []  # note_soon's lines of this step of the event loop
        self._flush_scheduled = False

    def note(self, delivery_id: int, outcome: Outcome) -> None:
        """Write down an accepted delivery: from the sending thread, or with no ``await`` after
        the provider's answer. Noting one twice is harmless."""
        if outcome.status not in ACCEPTED:
            return
        self._write(_line(delivery_id, outcome))

    def note_soon(self, delivery_id: int, outcome: Outcome) -> None:
        """Write down an accepted delivery at the end of this step of the event loop, in one
        write with every other delivery noted in the same step.

        For push, where hundreds of answers arrive in one step: a write per push was a system
        call per push. The lines reach the page cache before the loop runs anything that
        awaits, so a killed worker loses a note only if it dies within that same step, which
        :meth:`note` leaves open as well (its caller resumes one step after the answer)."""
        if outcome.status not in ACCEPTED:
            return
        self._pending.append(_line(delivery_id, outcome))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_pending)

    def flush_pending(self) -> None:
        """Write what :meth:`note_soon` collected (also on close)."""
        self._flush_scheduled = False
        if self._pending:
            lines, self._pending = self._pending, []
            self._write("".join(lines))

    def _write(self, text: str) -> None:
        try:
            with self._writing:
                if self._file is None:
                    self._file = self.path.open("a", encoding="utf-8", buffering=1)  # line-buffered
                self._file.write(text)
        except OSError as exc:
            # A full disk must not stop the alerts: the database write still follows.
            log.warning("sent journal %s: could not note %s (%s)", self.path, text.strip()[:200], exc)

    def find(self, delivery_id: int) -> Accepted | None:
        """What a provider accepted for this delivery, according to any worker of this machine."""
        self._read_new_lines()
        return self._accepted.get(delivery_id)

    def close(self) -> None:
        self.flush_pending()
        with self._writing:
            if self._file is not None:
                self._file.close()
                self._file = None

    def _read_new_lines(self) -> None:
        for path in sorted(self.folder.glob("sent-*.jsonl")):
            start = self._read_up_to.get(path, 0)
            try:
                with path.open("rb") as journal:
                    journal.seek(start)
                    data = journal.read()
            except OSError:
                continue
            complete = data.rfind(b"\n") + 1  # a line being written right now waits
            self._read_up_to[path] = start + complete
            for raw in data[:complete].splitlines():
                try:
                    entry = json.loads(raw)
                    self._accepted[int(entry["d"])] = Accepted(str(entry["s"]), entry.get("r"))
                except (ValueError, KeyError, TypeError):
                    log.warning("sent journal %s: unreadable line skipped", path)

    def _remove_old(self) -> None:
        cutoff = time.time() - KEEP_SECONDS
        for path in self.folder.glob("sent-*.jsonl"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue
