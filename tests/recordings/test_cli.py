"""The ``recordings`` click group: prompts, convert, purge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from burgernet.settings import Settings
from recordings import cli as recordings_cli
from recordings.catalogue import prompt_names
from recordings.retention import StoredRecording, recording_path_for_tip
from tests.recordings.conftest import encode, make_tone, wav_info
from tests.recordings.test_retention import InMemoryRecordings


@pytest.fixture
def obj(audio_settings: Settings) -> SimpleNamespace:
    # Stands in for composition.context.Context: the commands only read .settings.
    return SimpleNamespace(settings=audio_settings)


def test_prompts_builds_one_language_then_reports_unchanged(
    obj: SimpleNamespace, audio_settings: Settings
) -> None:
    runner = CliRunner()
    result = runner.invoke(recordings_cli.recordings, ["prompts", "--lang", "en"], obj=obj)
    assert result.exit_code == 0, result.output
    count = len(prompt_names())
    assert f"{count} prompts" in result.output and f"{count} written" in result.output
    assert (audio_settings.sounds_dir / "en" / "burgernet" / "alert-menu.wav").is_file()
    assert not (audio_settings.sounds_dir / "nl").exists()
    again = runner.invoke(recordings_cli.recordings, ["prompts", "--lang", "en"], obj=obj)
    assert "0 written" in again.output


def test_convert_writes_the_target_and_rejects_bad_input_with_one_line(
    obj: SimpleNamespace, tmp_path: Path
) -> None:
    source = encode(make_tone(tmp_path / "in.wav"), tmp_path / "in.ogg")
    target = tmp_path / "out" / "x.wav"
    result = CliRunner().invoke(recordings_cli.recordings, ["convert", str(source), str(target)], obj=obj)
    assert result.exit_code == 0, result.output
    assert wav_info(target).rate == 8000
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00\x01garbage" * 500)
    failed = CliRunner().invoke(
        recordings_cli.recordings, ["convert", str(junk), str(tmp_path / "j.wav")], obj=obj
    )
    assert failed.exit_code == 1 and "not a sound file" in failed.output
    assert not (tmp_path / "j.wav").exists()


def test_purge_uses_the_registered_repository(
    obj: SimpleNamespace, audio_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = InMemoryRecordings()
    now = datetime.now(UTC)
    for rid, age in ((1, 200), (2, 5)):
        path = recording_path_for_tip(1, f"17.{rid}", settings=audio_settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"tip")
        repo.rows[rid] = StoredRecording(rid, path, now - timedelta(days=age))

    @contextmanager
    def factory(context: Any) -> Iterator[InMemoryRecordings]:
        assert context is obj
        yield repo

    monkeypatch.setattr(recordings_cli, "_repository_factory", None)
    missing = CliRunner().invoke(recordings_cli.recordings, ["purge"], obj=obj)
    assert missing.exit_code == 1 and "no recording repository" in missing.output

    recordings_cli.register_repository_factory(factory)
    result = CliRunner().invoke(recordings_cli.recordings, ["purge"], obj=obj)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["deleted"] == 1 and summary["failed"] == []
    assert sorted(repo.rows) == [2]


def test_replace_prompt_and_revert(tmp_path: Path) -> None:
    import subprocess

    from click.testing import CliRunner

    from burgernet.settings import load_settings
    from recordings.catalogue import build_prompt, custom_prompt_path
    from recordings.cli import recordings

    settings = load_settings(data_dir=tmp_path)
    recorded = tmp_path / "welkom.mp3"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=2", str(recorded)],
        check=True,
    )

    class Obj:
        pass

    obj = Obj()
    obj.settings = settings  # type: ignore[attr-defined]
    runner = CliRunner()
    result = runner.invoke(recordings, ["replace-prompt", "welcome", str(recorded), "--lang", "nl"], obj=obj)
    assert result.exit_code == 0, result.output
    target = build_prompt("nl", "welcome", settings=settings).path
    replacement = custom_prompt_path(settings, "nl", "welcome").read_bytes()
    assert target.read_bytes() == replacement
    # A rebuild of the catalogue keeps the replacement ...
    assert build_prompt("nl", "welcome", settings=settings).written is False
    # ... until it is reverted to text-to-speech.
    result = runner.invoke(
        recordings, ["replace-prompt", "welcome", str(recorded), "--lang", "nl", "--revert"], obj=obj
    )
    assert result.exit_code == 0 and not custom_prompt_path(settings, "nl", "welcome").exists()
    assert target.read_bytes() != replacement  # the spoken text is back
    bad = runner.invoke(
        recordings, ["replace-prompt", "no-such-prompt", str(recorded), "--lang", "nl"], obj=obj
    )
    assert bad.exit_code != 0 and "no prompt named" in bad.output
