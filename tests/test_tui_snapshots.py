"""Snapshots (SVG) of the dashboard's screens at 80×24, from fixed data (tests/tui_fakes.py).

Why snapshots: they catch a screen that lays out badly (a column cut, a footer that lost its
keys, a colour that vanished on a light theme) which the pilot tests of test_tui_core.py cannot
see. After a deliberate change of a screen, look at the new pictures and accept them with
`pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from typing import Any

import pytest
from tui_fakes import OUTSIDE, FakeClient, FrozenState

from tui.app import Dashboard

SIZE = (80, 24)


def dashboard() -> Dashboard:
    app = Dashboard(FakeClient())  # type: ignore[arg-type]
    app.state = FrozenState()
    return app


async def settled(pilot: Any) -> None:
    """Until the fixed events are in and the positions read (bounded), then one more redraw."""
    app = pilot.app
    for _ in range(100):
        if app.state.connected and app.state.hub_view["participants"] and len(app.state.errors) >= 2:
            break
        await pilot.pause(0.02)
    await pilot.pause(0.4)  # the transfers feed redraws on a timer


def run_before(*keys: str) -> Any:
    async def before(pilot: Any) -> None:
        await settled(pilot)
        for key in keys:
            await pilot.press(key)
            await pilot.pause(0.1)
        await settled(pilot)

    return before


def test_overview(snap_compare: Any) -> None:
    assert snap_compare(dashboard(), terminal_size=SIZE, run_before=run_before())


def test_overview_light(snap_compare: Any) -> None:
    assert snap_compare(dashboard(), terminal_size=SIZE, run_before=run_before("d"))


def test_transfers(snap_compare: Any) -> None:
    assert snap_compare(dashboard(), terminal_size=SIZE, run_before=run_before("t"))


def test_transfer_detail(snap_compare: Any) -> None:
    # the newest is the outside transfer; the one below it is the refused, then the committed one
    assert snap_compare(dashboard(), terminal_size=SIZE, run_before=run_before("t", "down", "down", "enter", "down",
                                                                               "down", "down", "down", "down"))


def test_transfer_detail_outside_dfsp(snap_compare: Any) -> None:
    async def before(pilot: Any) -> None:
        await settled(pilot)
        await pilot.press("t")
        await settled(pilot)
        assert pilot.app.screen.selected_id() == OUTSIDE
        await pilot.press("enter")
        await pilot.pause(0.2)

    assert snap_compare(dashboard(), terminal_size=SIZE, run_before=before)


def test_help(snap_compare: Any) -> None:
    assert snap_compare(dashboard(), terminal_size=SIZE, run_before=run_before("question_mark"))


@pytest.mark.parametrize("key", ["p", "s", "f", "j"])
def test_other_screens(snap_compare: Any, key: str) -> None:
    """Participants, settlement, faults and join (built by others) as they draw from the same data."""
    assert snap_compare(dashboard(), terminal_size=SIZE, run_before=run_before(key))
