"""The dashboard's Faults and Join screens (tui.screens.faults, tui.screens.join), driven with
Textual's pilot at 80×24 against real demo hubs, and checked on the hub's own APIs.

Faults: keys set a fault on the selected DFSP, GET /<dfsp>/faults on the sim port says it took,
and a payment to that DFSP fails the way the mode says. Join: a loopback hub has no join address
(the screen says how to get one); a hub started with --host 0.0.0.0 shows its QR code, the URL and
the customers who joined. The QR drawing itself is checked module by module against qrcode's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from textual.widgets import DataTable, Input, Static

from conftest import Hub, HubLauncher
from tui.app import Dashboard
from tui.client import HubClient
from tui_pilot import until
from tui_pilot import dashboard as _dashboard
from tui.screens.faults import FaultsScreen, fault_body
from tui.screens.join import JoinScreen, joined_text, qr_lines, qr_matrix

SIZE = (80, 24)


def dashboard(hub: Hub) -> Any:
    return _dashboard(hub, SIZE)


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


@pytest.fixture
def hub(demo: Hub) -> Any:
    yield demo
    for dfsp in ("greenwallet", "bluewallet", "merchantbank"):
        httpx.put(f"{demo.urls['sim']}/{dfsp}/faults", json={"mode": "normal"}, timeout=10)


def sim_fault(hub: Hub, dfsp: str) -> dict[str, Any]:
    r = httpx.get(f"{hub.urls['sim']}/{dfsp}/faults", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


async def pay(hub: Hub, **extra: Any) -> httpx.Response:
    """greenwallet's Amara pays Corner Grocery at merchantbank (off the event loop: the app keeps running)."""
    body = {"from": "27710000001", "to": {"id": "27730000001"}, "amount": "2", **extra}
    return await asyncio.to_thread(httpx.post, f"{hub.urls['sim']}/greenwallet/send", json=body, timeout=60)


def cell(screen: FaultsScreen, dfsp: str, column: str) -> str:
    return str(screen.query_one("#faults-table", DataTable).get_cell(dfsp, column))


async def open_faults(app: Dashboard, pilot: Any, select: str) -> FaultsScreen:
    await pilot.press("f")
    screen = await until(pilot, lambda: app.screen if isinstance(app.screen, FaultsScreen) else None, "the faults screen")
    table = screen.query_one("#faults-table", DataTable)
    await until(pilot, lambda: table.row_count == 3 and cell(screen, select, "mode") == "normal", "the faults read")
    names = [str(k.value) for k in table.rows]
    for _ in range(names.index(select)):
        await pilot.press("down")
    assert screen.selected() == select
    return screen


# --------------------------------------------------------------------------- faults


def test_keys_set_a_fault_that_the_sim_reports_and_payments_feel(hub: Hub) -> None:
    async def run() -> None:
        async with dashboard(hub) as (app, pilot):
            screen = await open_faults(app, pilot, "merchantbank")
            await pilot.press("3")  # silent
            await until(pilot, lambda: cell(screen, "merchantbank", "mode") == "silent", "silent on screen")
            assert sim_fault(hub, "merchantbank")["mode"] == "silent"
            assert sim_fault(hub, "greenwallet")["mode"] == "normal"
            assert "merchantbank is now silent" in str(screen.query_one("#fault-status", Static).render())
            r = await pay(hub, timeoutSeconds=2)
            assert r.status_code == 504 and r.json()["state"] == "TIMED_OUT", r.text

            # reject with a code typed in: c, the digits, Enter
            await pilot.press("c", "5", "1", "0", "4", "enter")
            await until(pilot, lambda: cell(screen, "merchantbank", "details") == "code 5104", "reject 5104 on screen")
            assert sim_fault(hub, "merchantbank") == {
                "dfsp": "merchantbank", "mode": "reject", "delaySeconds": None, "errorCode": "5104"}
            r = await pay(hub)
            assert r.status_code == 502 and r.json()["error"]["errorCode"] == "5104", r.text

            # slow with a delay typed in: e, the delay, Enter
            await pilot.press("e")
            delay = screen.query_one("#delay", Input)
            assert delay.has_focus
            delay.value = ""
            await pilot.press("1", ".", "5", "enter")
            await until(pilot, lambda: cell(screen, "merchantbank", "mode") == "slow", "slow on screen")
            assert sim_fault(hub, "merchantbank")["delaySeconds"] == 1.5
            started = time.monotonic()
            r = await pay(hub)
            assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text
            assert time.monotonic() - started >= 1.5

            # down with the mouse, then back to normal with a key
            await pilot.click("#mode-down")
            await until(pilot, lambda: cell(screen, "merchantbank", "mode") == "down", "down on screen")
            assert sim_fault(hub, "merchantbank")["mode"] == "down"
            r = await pay(hub)
            assert r.status_code == 502 and r.json()["error"]["errorCode"] == "1001", r.text
            await pilot.press("1")
            await until(pilot, lambda: cell(screen, "merchantbank", "mode") == "normal", "normal on screen")
            r = await pay(hub)
            assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text

    asyncio.run(run())


def test_a_fault_set_elsewhere_shows_up_and_bad_input_is_refused_on_screen(hub: Hub) -> None:
    async def run() -> None:
        async with dashboard(hub) as (app, pilot):
            screen = await open_faults(app, pilot, "bluewallet")
            httpx.put(f"{hub.urls['sim']}/bluewallet/faults", json={"mode": "down"}, timeout=10)
            await pilot.press("g")
            await until(pilot, lambda: cell(screen, "bluewallet", "mode") == "down", "down read again")
            await pilot.press("e")
            screen.query_one("#delay", Input).value = "99"
            await pilot.press("enter")
            status = screen.query_one("#fault-status", Static)
            await until(pilot, lambda: "0.1 to 60" in str(status.render()), "the delay refused")
            assert sim_fault(hub, "bluewallet")["mode"] == "down"  # nothing was sent

    asyncio.run(run())


def test_fault_bodies_from_the_inputs() -> None:
    assert fault_body("slow", "2", "") == {"mode": "slow", "delaySeconds": 2}
    assert fault_body("slow", "", "") == {"mode": "slow", "delaySeconds": 5}
    assert fault_body("slow", "0.5", "") == {"mode": "slow", "delaySeconds": 0.5}
    assert fault_body("reject", "5", "") == {"mode": "reject"}
    assert fault_body("reject", "5", "5104") == {"mode": "reject", "errorCode": "5104"}
    assert fault_body("silent", "5", "5104") == {"mode": "silent"}
    for mode, delay, code in (("slow", "61", ""), ("slow", "0", ""), ("slow", "1.2.3", ""), ("reject", "", "51")):
        with pytest.raises(ValueError):
            fault_body(mode, delay, code)


# --------------------------------------------------------------------------- join


def test_the_join_screen_on_a_loopback_hub_says_how_to_get_a_join_address(hub: Hub) -> None:
    async def run() -> None:
        async with dashboard(hub) as (app, pilot):
            await pilot.press("j")
            screen = await until(pilot, lambda: app.screen if isinstance(app.screen, JoinScreen) else None, "join")
            await pilot.pause(0.2)
            assert not screen.query_one("#qr", Static).display
            assert "--host 0.0.0.0" in str(screen.query_one("#join-help", Static).render())

    asyncio.run(run())


def test_the_join_screen_shows_the_qr_code_the_url_and_who_joined(module_hubs: HubLauncher) -> None:
    lan = module_hubs.start("--host", "0.0.0.0")
    join_url = lan.info["joinUrl"]
    assert join_url
    r = httpx.post(f"{lan.urls['wallet']}/api/join", json={"name": "Zanele"}, timeout=30)
    assert r.status_code == 201, r.text

    async def run() -> None:
        async with dashboard(lan) as (app, pilot):
            await pilot.press("j")
            screen = await until(pilot, lambda: app.screen if isinstance(app.screen, JoinScreen) else None, "join")
            qr = screen.query_one("#qr", Static)
            await until(pilot, lambda: qr.display and "█" in str(qr.render()), "the QR code")
            assert str(qr.render()).splitlines() == qr_lines(join_url)
            assert qr.region.height <= SIZE[1] - 3 and qr.region.right <= SIZE[0]  # all of it on screen
            assert join_url in str(screen.query_one("#join-url", Static).render())
            count = screen.query_one("#join-count", Static)
            await until(pilot, lambda: "1 customer joined" in str(count.render()), "the count of joins")
            httpx.post(f"{lan.urls['wallet']}/api/join", json={}, timeout=30)
            await pilot.press("g")
            await until(pilot, lambda: "2 customers joined" in str(count.render()), "the count read again")
        # too short a terminal: the URL large and a request for more rows
        client = await HubClient.attach(lan.urls["wallet"])
        try:
            async with Dashboard(client).run_test(size=(80, 12)) as pilot:
                await pilot.press("j")
                await pilot.pause(0.3)
                screen = pilot.app.screen
                assert not screen.query_one("#qr", Static).display
                assert "taller" in str(screen.query_one("#join-title", Static).render())
                assert " ".join(join_url) in str(screen.query_one("#join-url", Static).render())
        finally:
            await client.close()

    asyncio.run(run())


def test_the_qr_drawing_has_every_module_of_the_code_and_a_quiet_zone() -> None:
    url = "http://192.168.100.200:3080/join"
    matrix, lines = qr_matrix(url), qr_lines(url)
    assert len(lines) == (len(matrix) + 1) // 2 <= 21 and len(lines[0]) == len(matrix) <= 37  # fits 80×24
    top = {"█": True, "▀": True, "▄": False, " ": False}
    bottom = {"█": True, "▀": False, "▄": True, " ": False}
    redrawn = []
    for line in lines:
        redrawn += [[top[c] for c in line], [bottom[c] for c in line]]
    assert redrawn[:len(matrix)] == matrix
    assert not any(matrix[0]) and not any(matrix[1]) and not any(row[0] or row[1] for row in matrix)  # quiet zone


def test_joined_text() -> None:
    assert joined_text(None).endswith("not read yet")
    assert joined_text([{"name": "a", "joined": 0}]) == "No one has joined yet"
    assert joined_text([{"name": "a", "joined": 2}, {"name": "b", "joined": 0}, {"name": "c", "joined": 1}]) == (
        "3 customers joined (2 at a, 1 at c)")
