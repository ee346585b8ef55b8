"""Driving the dashboard in tests: a Dashboard attached to a real hub under Textual's pilot, and
a bounded wait that lets the app run while it waits (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from tui.app import Dashboard
from tui.client import HubClient

WAIT_S = 20.0


@asynccontextmanager
async def dashboard(hub: Any, size: tuple[int, int] = (80, 24)) -> AsyncIterator[tuple[Dashboard, Any]]:
    """(app, pilot) of a dashboard attached to `hub`'s wallet port, closed afterwards."""
    client = await HubClient.attach(hub.urls["wallet"])
    app = Dashboard(client)
    try:
        async with app.run_test(size=size) as pilot:
            yield app, pilot
    finally:
        await client.close()


async def until(pilot: Any, predicate: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Let the app run until `predicate()` is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.05)
