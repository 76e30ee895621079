"""Tip recordings: where they live, and a purge that removes file and row together or neither."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from burgernet.settings import Settings
from recordings.retention import (
    TRASH_SUFFIX,
    StoredRecording,
    purge_expired,
    recording_path_for_tip,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class InMemoryRecordings:
    """The RecordingRepository protocol over a dict: what the SQLAlchemy one does with rows."""

    rows: dict[int, StoredRecording] = field(default_factory=dict)
    refuse_delete: set[int] = field(default_factory=set)

    def list_expired(self, cutoff: datetime) -> Iterable[StoredRecording]:
        return [row for row in self.rows.values() if row.created_at < cutoff]

    def delete(self, recording_id: int) -> None:
        if recording_id in self.refuse_delete:
            raise RuntimeError("database is locked")
        del self.rows[recording_id]


def add_tip(repo: InMemoryRecordings, settings: Settings, rid: int, age_days: float) -> Path:
    path = recording_path_for_tip(1, f"1700000000.{rid}", settings=settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF fake tip %d" % rid)
    repo.rows[rid] = StoredRecording(rid, path, NOW - timedelta(days=age_days))
    return path


def test_tip_paths_follow_the_layout_and_refuse_escapes(audio_settings: Settings) -> None:
    path = recording_path_for_tip(42, "1700000000.17", settings=audio_settings)
    assert path == audio_settings.recordings_dir / "tips" / "42" / "1700000000.17.wav"
    for bad in ("../../etc/passwd", "a/b", "", ".hidden", "x..y"):
        with pytest.raises(ValueError):
            recording_path_for_tip(42, bad, settings=audio_settings)
    with pytest.raises(ValueError):
        recording_path_for_tip(-1, "1.2", settings=audio_settings)


def test_purge_deletes_exactly_the_expired_recordings(audio_settings: Settings) -> None:
    repo = InMemoryRecordings()
    ages = {1: 200.0, 2: 90.5, 3: 89.9, 4: 10.0, 5: 365.0}
    paths = {rid: add_tip(repo, audio_settings, rid, age) for rid, age in ages.items()}

    report = purge_expired(NOW, 90, repo, root=audio_settings.recordings_dir)

    assert sorted(report.deleted) == [1, 2, 5] and report.ok
    assert sorted(repo.rows) == [3, 4]
    assert {rid for rid, path in paths.items() if path.exists()} == {3, 4}
    assert not list(audio_settings.recordings_dir.rglob(f"*{TRASH_SUFFIX}"))
    assert report.cutoff == NOW - timedelta(days=90)


def test_a_row_whose_file_is_already_gone_is_still_deleted(audio_settings: Settings) -> None:
    repo = InMemoryRecordings()
    add_tip(repo, audio_settings, 1, 100).unlink()
    report = purge_expired(NOW, 90, repo)
    assert report.file_was_missing == [1] and report.deleted == [] and repo.rows == {}


def test_when_the_row_cannot_be_deleted_the_file_stays(audio_settings: Settings) -> None:
    repo = InMemoryRecordings(refuse_delete={2})
    add_tip(repo, audio_settings, 1, 100)
    kept = add_tip(repo, audio_settings, 2, 100)
    content = kept.read_bytes()
    report = purge_expired(NOW, 90, repo)
    assert report.deleted == [1]
    assert [rid for rid, _ in report.failed] == [2] and "database is locked" in report.failed[0][1]
    assert 2 in repo.rows and kept.read_bytes() == content
    assert not report.ok


def test_when_the_file_cannot_be_removed_the_row_stays(audio_settings: Settings) -> None:
    repo = InMemoryRecordings()
    stuck = add_tip(repo, audio_settings, 1, 100)
    # Root ignores file permissions, so block the rename with a non-empty folder at the trash name.
    blocker = stuck.with_name(f"{stuck.name}.1{TRASH_SUFFIX}")
    blocker.mkdir()
    (blocker / "keep").touch()
    report = purge_expired(NOW, 90, repo)
    assert [rid for rid, _ in report.failed] == [1]
    assert 1 in repo.rows and stuck.is_file()


def test_paths_outside_the_recordings_folder_are_never_deleted(
    audio_settings: Settings, tmp_path: Path
) -> None:
    outsider = tmp_path / "important.txt"
    outsider.write_text("not a recording")
    repo = InMemoryRecordings(rows={9: StoredRecording(9, outsider, NOW - timedelta(days=400))})
    report = purge_expired(NOW, 90, repo, root=audio_settings.recordings_dir)
    assert [rid for rid, _ in report.failed] == [9]
    assert outsider.read_text() == "not a recording" and 9 in repo.rows


def test_trash_left_by_an_interrupted_purge_is_swept(audio_settings: Settings) -> None:
    repo = InMemoryRecordings()
    path = add_tip(repo, audio_settings, 1, 1)
    leftover = path.with_name(f"old.wav.3{TRASH_SUFFIX}")
    leftover.write_bytes(b"x")
    report = purge_expired(NOW, 90, repo, root=audio_settings.recordings_dir)
    assert not leftover.exists() and path.exists() and report.ok


def test_retention_must_be_positive() -> None:
    with pytest.raises(ValueError):
        purge_expired(NOW, 0, InMemoryRecordings())
