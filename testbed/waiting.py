"""Waiting, in a test, for something a real component does in its own time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 0.1) -> float:
    """Seconds until ``condition`` held; an AssertionError naming ``what`` after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(every)
    return time.monotonic() - started
