"""Waiting on a condition instead of sleeping: the one polling helper of the test suites."""

from __future__ import annotations

import time


def eventually(fn, timeout: float = 20.0, interval: float = 0.2, what: str = "condition"):
    """Polls `fn` until it returns a truthy value without raising; returns that value, or
    raises AssertionError naming `what` and the last error after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - not there yet
            last = e
        time.sleep(interval)
    raise AssertionError(f"{what} not met in {timeout}s (last error: {last!r})")
