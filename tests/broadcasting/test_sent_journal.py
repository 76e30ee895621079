"""The sent journal: what a provider accepted is on disk before the worker can be killed."""

from __future__ import annotations

import asyncio
from pathlib import Path

from broadcasting.channels.base import Outcome
from broadcasting.journal import SentJournal


def test_a_note_is_found_by_another_reader_of_the_folder(tmp_path: Path) -> None:
    writer, reader = SentJournal(tmp_path), SentJournal(tmp_path)
    writer.note(7, Outcome("sent", provider_ref="SM1"))
    writer.note(8, Outcome("failed", error="refused"))  # not accepted: nothing to remember
    found = reader.find(7)
    assert found is not None and (found.status, found.provider_ref) == ("sent", "SM1")
    assert reader.find(8) is None
    writer.close()


async def test_notes_of_one_step_are_written_together_before_the_next_step(tmp_path: Path) -> None:
    journal = SentJournal(tmp_path)
    for delivery_id in range(1, 101):
        journal.note_soon(delivery_id, Outcome("sent"))
    journal.note_soon(500, Outcome("failed"))
    assert not journal.path.exists()  # nothing written within the step itself
    await asyncio.sleep(0)  # the next step of the event loop
    lines = journal.path.read_text().splitlines()
    assert len(lines) == 100
    reader = SentJournal(tmp_path)
    assert all(reader.find(n) is not None for n in range(1, 101))
    assert reader.find(500) is None
    journal.close()


async def test_closing_writes_what_is_still_pending(tmp_path: Path) -> None:
    journal = SentJournal(tmp_path)
    journal.note_soon(3, Outcome("sent"))
    journal.close()
    assert SentJournal(tmp_path).find(3) is not None
