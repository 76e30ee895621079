"""``burgernet recordings ...``: build the prompt catalogue, convert a sound, purge old tips.

Registered by ``burgernet/cli.py`` (``main.add_command(recordings)``). The commands take
their settings from the parent's context object when it has a ``settings`` attribute
(the composition root's ``Context``), else from :func:`burgernet.settings.get_settings`.

``purge`` needs the database, which this package does not know: the application
registers a factory with :func:`register_repository_factory` that turns the click
context object into a context manager yielding a :class:`RecordingRepository`.
``sweep-tips`` (and ``purge``, which sweeps first) take the database sessions from the
context object's ``sessions`` (the composition root's ``Context``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from burgernet.settings import Settings, get_settings
from burgernet.tip_inbox import SweepReport, TipInbox
from recordings.catalogue import build_catalogue, build_prompt, custom_prompt_path
from recordings.convert import AudioError, AudioLimits, convert_file
from recordings.paths import LANGUAGES, tips_dir
from recordings.retention import RecordingRepository, purge_expired

RepositoryFactory = Callable[[Any], AbstractContextManager[RecordingRepository]]
_repository_factory: RepositoryFactory | None = None


def register_repository_factory(factory: RepositoryFactory) -> None:
    """Tell ``recordings purge`` how to reach the tip recordings in the database."""
    global _repository_factory
    _repository_factory = factory


def _settings(ctx: click.Context) -> Settings:
    found = getattr(ctx.obj, "settings", None)
    return found if isinstance(found, Settings) else get_settings()


@click.group("recordings")
def recordings() -> None:
    """Audio: IVR prompts, sound conversion, tip recording retention."""


@recordings.command("prompts")
@click.option(
    "--lang",
    "langs",
    type=click.Choice(LANGUAGES),
    multiple=True,
    help="Only this language (repeatable; default: all).",
)
@click.option("--force", is_flag=True, help="Synthesise again instead of using the TTS cache.")
@click.pass_context
def prompts_command(ctx: click.Context, langs: tuple[str, ...], force: bool) -> None:
    """Build every IVR and alert-call prompt into <sounds_dir>/<lang>/burgernet/."""
    settings = _settings(ctx)
    try:
        built = build_catalogue(settings=settings, langs=langs or LANGUAGES, force=force)
    except AudioError as exc:
        raise click.ClickException(str(exc)) from exc
    written = sum(prompt.written for prompt in built)
    click.echo(
        f"{len(built)} prompts in {settings.sounds_dir} ({written} written, {len(built) - written} unchanged)"
    )


@recordings.command("replace-prompt")
@click.argument("name")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lang", type=click.Choice(LANGUAGES), required=True)
@click.option("--revert", is_flag=True, help="Drop the replacement and go back to text-to-speech.")
@click.pass_context
def replace_prompt_command(ctx: click.Context, name: str, source: Path, lang: str, revert: bool) -> None:
    """Replace prompt NAME (e.g. welcome) with a recording SOURCE (wav, mp3, ogg, m4a, ...)."""
    settings = _settings(ctx)
    try:
        custom = custom_prompt_path(settings, lang, name)
    except KeyError as exc:
        raise click.ClickException(f"{exc.args[0]}; see 'burgernet recordings prompts'") from None
    if revert:
        custom.unlink(missing_ok=True)
    else:
        try:
            convert_file(source, custom, limits=AudioLimits.from_settings(settings))
        except AudioError as exc:
            raise click.ClickException(str(exc)) from exc
    built = build_prompt(lang, name, settings=settings)
    click.echo(f"{built.path} now plays {'text-to-speech' if revert else source.name}")


@recordings.command("convert")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--no-trim", is_flag=True, help="Keep leading and trailing silence.")
@click.pass_context
def convert_command(ctx: click.Context, source: Path, target: Path, no_trim: bool) -> None:
    """Convert SOURCE (wav, mp3, ogg, m4a, ...) to TARGET (.wav or .sln, 8 kHz mono 16-bit)."""
    limits = AudioLimits.from_settings(_settings(ctx))
    try:
        result = convert_file(source, target, limits=limits, trim_silence=not no_trim)
    except AudioError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{result.path}: {result.duration_seconds:.2f} s, {result.dbfs:.1f} dBFS")


@recordings.command("purge")
@click.option("--days", type=click.IntRange(min=1), default=None, help="Retention (default: settings).")
@click.pass_context
def purge_command(ctx: click.Context, days: int | None) -> None:
    """Delete tip recordings older than the retention period: file and database row together."""
    if _repository_factory is None:
        raise click.ClickException("no recording repository registered (register_repository_factory)")
    settings = _settings(ctx)
    # retention.tips_days (audio.recording_retention_days while that is unset); the scheduled
    # `retention run` inside the worker does the same for every kind of personal data.
    retention = days or settings.tips_retention_days()
    # Tips nobody filed (FastAGI was down) get their row first, so retention reaches them too.
    # A recording without a row is never deleted: without the database to sweep, it just waits.
    sessions = getattr(ctx.obj, "sessions", None)
    swept = _tip_inbox(ctx).sweep() if sessions is not None else None
    with _repository_factory(ctx.obj) as repository:
        report = purge_expired(datetime.now(UTC), retention, repository, root=settings.recordings_dir)
    click.echo(
        json.dumps(
            {
                "swept": _sweep_summary(swept) if swept is not None else None,
                "cutoff": report.cutoff.isoformat(),
                "deleted": len(report.deleted),
                "file_was_missing": len(report.file_was_missing),
                "failed": [{"id": rid, "reason": why} for rid, why in report.failed],
                "trash_left": [str(path) for path in report.trash_left],
            }
        )
    )
    if not report.ok:
        sys.exit(1)


@recordings.command("sweep-tips")
@click.pass_context
def sweep_tips_command(ctx: click.Context) -> None:
    """Give every tip recording a database row (what ``burgernet serve`` does every few seconds).

    For tips recorded while FastAGI was down: each gets its call, and its action when the caller
    can still be matched to exactly one; the others wait in the panel's unassigned tips.
    """
    report = _tip_inbox(ctx).sweep()
    click.echo(json.dumps(_sweep_summary(report)))
    if report.failed:
        sys.exit(1)


def _tip_inbox(ctx: click.Context) -> TipInbox:
    settings = _settings(ctx)
    sessions = getattr(ctx.obj, "sessions", None)
    if sessions is None:
        raise click.ClickException("no database: run this through the burgernet command")
    return TipInbox(sessions, tips_dir(settings), settings.routing.alerted_window_seconds)


def _sweep_summary(report: SweepReport) -> dict[str, object]:
    return {
        "filed": len(report.filed),
        "linked": {str(tip): action for tip, action in report.linked.items()},
        "already_filed": report.already_filed,
        "settling": report.settling,
        "failed": [{"path": str(path), "reason": why} for path, why in report.failed],
    }
