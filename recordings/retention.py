"""Spoken tips: where Asterisk writes them, and deleting them when the retention ends.

A tip recording is personal data (a voice, often a name and phone number), so it must
not outlive ``settings.audio.recording_retention_days``. A purge must also never leave a
database row pointing at a missing file (the control panel would offer a dead link) or a
file that no row knows about (nobody would ever delete it). The order that keeps both
safe, per recording:

1. rename the file to a trash name beside it (if that fails: keep the row, report);
2. delete the row (if that fails: rename the file back, report);
3. unlink the trash file (a leftover ``*.purging`` file is swept on the next run).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from burgernet.calls import StoredRecording as StoredRecording
from burgernet.settings import Settings, get_settings
from recordings.paths import tip_recording_path

log = logging.getLogger(__name__)

TRASH_SUFFIX = ".purging"


class RecordingRepository(Protocol):
    """What the purge needs from storage; the core's :class:`burgernet.calls.TipRecordings` implements it."""

    def list_expired(self, cutoff: datetime) -> Iterable[StoredRecording]:
        """Recordings created strictly before ``cutoff``."""
        ...

    def delete(self, recording_id: int) -> None:
        """Delete one row durably (committed when this returns); raise when it cannot."""
        ...


@dataclass
class PurgeReport:
    cutoff: datetime
    deleted: list[int] = field(default_factory=list)
    # Row deleted; its file was already gone before the purge.
    file_was_missing: list[int] = field(default_factory=list)
    # Nothing changed for these: (recording id, why).
    failed: list[tuple[int, str]] = field(default_factory=list)
    # Row deleted, but the trash file could not be removed (swept next run).
    trash_left: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.trash_left


def recording_path_for_tip(action_id: int, unique_id: str, *, settings: Settings | None = None) -> Path:
    """``<recordings_dir>/tips/<action_id>/<unique_id>.wav``: where Asterisk records a tip.

    ``unique_id`` is Asterisk's ``${UNIQUEID}``; a value that could leave the folder is
    refused with ValueError. Pass the path without extension to the dialplan
    (``BN_TIP_FILE``) and let ``Record(${BN_TIP_FILE}.wav)`` pick the format.
    """
    return tip_recording_path(settings or get_settings(), action_id, unique_id)


def purge_expired(
    now: datetime,
    retention_days: int,
    repository: RecordingRepository,
    *,
    root: Path | None = None,
) -> PurgeReport:
    """Delete every recording older than ``retention_days`` before ``now``: file and row together.

    With ``root`` set, a row whose path lies outside it is refused (reported, kept): the
    purge must never delete an arbitrary file because a database value says so.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    report = PurgeReport(cutoff=now - timedelta(days=retention_days))
    if root is not None:
        # Leftovers of an earlier run that stopped between steps 2 and 3.
        report.trash_left.extend(sweep_trash(root))
    for recording in list(repository.list_expired(report.cutoff)):
        _purge_one(recording, repository, report, root)
    return report


def sweep_trash(root: Path) -> list[Path]:
    """Remove ``*.purging`` files a crash left behind (their rows are gone); return those that stay."""
    stuck: list[Path] = []
    if not root.is_dir():
        return stuck
    for trash in root.rglob(f"*{TRASH_SUFFIX}"):
        if not trash.is_file():
            continue
        try:
            trash.unlink()
        except OSError as exc:
            log.warning("cannot remove %s: %s", trash, exc)
            stuck.append(trash)
    return stuck


def _purge_one(
    recording: StoredRecording, repository: RecordingRepository, report: PurgeReport, root: Path | None
) -> None:
    path = Path(recording.path)
    if root is not None and not path.resolve().is_relative_to(root.resolve()):
        report.failed.append((recording.id, f"{path} is outside {root}; not deleted"))
        return
    # The trash name carries the id so two rows pointing at one file cannot collide.
    trash = path.with_name(f"{path.name}.{recording.id}{TRASH_SUFFIX}")
    had_file = True
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        had_file = False
    except OSError as exc:
        report.failed.append((recording.id, f"cannot remove {path}: {exc}"))
        return
    try:
        repository.delete(recording.id)
    except Exception as exc:
        if had_file:
            # Put it back: the row still points at it. This rename undoes one that just
            # succeeded in the same folder; if even that fails, say so loudly.
            try:
                os.rename(trash, path)
            except OSError as undo:
                log.error("recording %s left at %s after a failed purge: %s", recording.id, trash, undo)
        report.failed.append((recording.id, f"cannot delete the database row: {exc}"))
        return
    if had_file:
        report.deleted.append(recording.id)
        try:
            trash.unlink()
        except OSError as exc:
            log.warning("cannot remove %s: %s", trash, exc)
            report.trash_left.append(trash)
    else:
        report.file_was_missing.append(recording.id)
