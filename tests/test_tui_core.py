"""The dashboard over a real demo hub: Textual's pilot at 80×24, and `miniloop` in a pseudo-terminal.

Why a real hub: the dashboard's whole job is to show what the hub does (positions moving, a
payment's FSPIOP messages, a refusal past the Net Debit Cap, a hub going away), so these tests
make payments through the simulators and wait (bounded, never a fixed sleep) until the screens
show them. The layout itself is checked by the snapshots (test_tui_snapshots.py).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import PORT_FLAGS, Hub, HubLauncher, clean_env, miniloop_cmd, nats_children, pid_gone, wait_until
from textual.widgets import DataTable, Footer, Static
from textual.widgets._footer import FooterKey

from tui.app import Dashboard
from tui.client import HubClient
from tui.screens.detail import DetailScreen
from tui.screens.help import HelpScreen
from tui.screens.overview import OverviewScreen
from tui.screens.transfers import TransfersScreen
from tui_pilot import until

SIZE = (80, 24)
AMARA, KWAME = "27710000001", "27720000001"


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


def run(coro: Awaitable[None]) -> None:
    asyncio.run(asyncio.wait_for(coro, 120))  # type: ignore[arg-type]


def cells(app: Dashboard, selector: str) -> list[list[str]]:
    """The text of every cell of a DataTable on the screen in front."""
    table = app.screen.query_one(selector, DataTable)
    return [[str(getattr(c, "plain", c)) for c in table.get_row_at(n)] for n in range(table.row_count)]


def text_of(app: Dashboard, selector: str) -> str:
    widget = app.screen.query_one(selector, Static)
    rendered = widget.render()
    return str(getattr(rendered, "plain", rendered))


async def attached(demo: Hub) -> Dashboard:
    return Dashboard(await HubClient.attach(demo.urls["wallet"]))


async def ready(pilot: Any) -> None:
    app = pilot.app
    await until(pilot, lambda: app.state.connected and app.state.hub_view["participants"], "the stream and positions")


async def pay(app: Dashboard, payer: str, sender: str, receiver: str, amount: str) -> dict[str, Any]:
    answer = await app.client.sim("POST", f"/{payer}/send", {"from": sender, "to": {"id": receiver},
                                                             "amount": amount}, slow=True)
    assert isinstance(answer.body, dict), answer
    return answer.body


def visible_footer_keys(app: Dashboard) -> set[str]:
    width = app.size.width
    return {key.key for key in app.screen.query_one(Footer).query(FooterKey)
            if key.region.width and key.region.right <= width}


def test_every_mode_by_key_and_back_with_help_at_80x24(demo: Hub) -> None:
    async def scenario() -> None:
        app = await attached(demo)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            assert isinstance(app.screen, OverviewScreen)
            assert visible_footer_keys(app) >= {"o", "t", "p", "s", "r", "f", "j", "question_mark", "q"}
            table = app.screen.query_one("#participants-table", DataTable)
            await until(pilot, lambda: table.region.height >= 5, "the DFSPs' table drawn")
            assert table.region.bottom <= SIZE[1] - 1
            for key, mode in (("t", "transfers"), ("p", "participants"), ("s", "settlement"), ("r", "scenarios"),
                              ("f", "faults"), ("j", "join"), ("o", "overview")):
                await pilot.press(key)
                await until(pilot, lambda mode=mode: app.current_mode == mode, f"mode {mode}")
                assert app.screen.query(Footer), mode
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, TransfersScreen), "the transfers screen")
            feed = app.screen.query_one("#transfers-table", DataTable)
            assert feed.region.height >= 10 and feed.region.bottom <= SIZE[1] - 1
            assert visible_footer_keys(app) >= {"o", "t", "q"}
            await pilot.press("question_mark")
            await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
            help_text = text_of(app, "#help Static")
            for words in ("Overview", "Transfers", "Dark/light", "Quit", "pause", "search"):
                assert words in help_text
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, TransfersScreen), "help closed")
            dark = app.current_theme.dark
            await pilot.press("d")
            await until(pilot, lambda: app.current_theme.dark != dark, "the other theme")
            await pilot.press("o")
            await until(pilot, lambda: isinstance(app.screen, OverviewScreen), "back to the overview")
        await app.client.close()

    run(scenario())


def test_overview_shows_the_demo_dfsps_and_a_position_moving(demo: Hub) -> None:
    async def scenario() -> None:
        app = await attached(demo)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await until(pilot, lambda: len(cells(app, "#participants-table")) >= 3, "the DFSPs")
            names = [row[0] for row in cells(app, "#participants-table")]
            assert {"greenwallet", "bluewallet", "merchantbank"} <= set(names)
            assert "live: connected" in text_of(app, "#connection")
            assert "OPEN" in text_of(app, "#window")

            def green_position() -> str:
                return next(row[2] for row in cells(app, "#participants-table") if row[0] == "greenwallet")

            before = Decimal(green_position().replace(",", ""))
            result = await pay(app, "greenwallet", AMARA, KWAME, "12")
            assert result["state"] == "COMMITTED", result
            await until(pilot, lambda: Decimal(green_position().replace(",", "")) == before + 12,
                        "greenwallet's position up by 12")
            await until(pilot, lambda: sum(app.state.throughput()) >= 1, "the throughput")
            await until(pilot, lambda: "in all" in text_of(app, "#rate") and " 0 in all" not in text_of(app, "#rate"),
                        "the rate counts the payment")
        await app.client.close()

    run(scenario())


def test_transfers_committed_and_aborted_filters_and_detail(demo: Hub) -> None:
    async def scenario() -> None:
        app = await attached(demo)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await pilot.press("t")
            await until(pilot, lambda: isinstance(app.screen, TransfersScreen), "the transfers screen")
            screen = app.screen
            committed = await pay(app, "greenwallet", AMARA, KWAME, "3.5")
            assert committed["state"] == "COMMITTED", committed
            paid_id = committed["transferId"]
            await until(pilot, lambda: any(r[1] == paid_id[:8] and r[4] == "COMMITTED"
                                           for r in cells(app, "#transfers-table")), "the committed payment")

            # a payment past bluewallet's lowered Net Debit Cap is refused (4200)
            view = (await app.client.hub_view()).body
            blue = next(p for p in view["participants"] if p["name"] == "bluewallet")
            limit = lambda value: {"currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": value,  # noqa: E731
                                                                "alarmPercentage": 10}}
            answer = await app.client.admin("PUT", "/participants/bluewallet/limits", limit(1))
            assert answer.ok, answer
            try:
                amount = str(max(Decimal(blue["position"]), Decimal(0)) + 20)
                refused = await pay(app, "bluewallet", KWAME, AMARA, amount)
            finally:
                answer = await app.client.admin("PUT", "/participants/bluewallet/limits",
                                                limit(int(Decimal(blue["ndc"]))))
                assert answer.ok, answer
            assert refused["state"] == "ABORTED", refused
            refused_id = refused["transferId"]
            await until(pilot, lambda: any(r[1] == refused_id[:8] and r[5] == "4200"
                                           for r in cells(app, "#transfers-table")), "the aborted payment")
            assert "ABORTED" in next(r[4] for r in cells(app, "#transfers-table") if r[1] == refused_id[:8])
            assert any("4200" in e.code for e in app.state.errors)

            # filters: state, DFSP, text; pause
            state_filter = screen.query_one("#state-filter")
            state_filter.value = "ABORTED"
            await until(pilot, lambda: all("ABORTED" in r[4] for r in cells(app, "#transfers-table"))
                        and any(r[1] == refused_id[:8] for r in cells(app, "#transfers-table")), "aborted only")
            state_filter.value = "COMMITTED"
            await until(pilot, lambda: all(r[4] in ("COMMITTED", "SETTLED") for r in cells(app, "#transfers-table"))
                        and any(r[1] == paid_id[:8] for r in cells(app, "#transfers-table")), "committed only")
            state_filter.value = "all"
            screen.query_one("#dfsp-filter").value = "merchantbank"
            await until(pilot, lambda: all("merchantbank" in r[2] for r in cells(app, "#transfers-table")),
                        "merchantbank's only")
            await pilot.press("c")
            await pilot.press("slash")
            for char in refused_id[:6]:
                await pilot.press(char)
            await until(pilot, lambda: [r[1] for r in cells(app, "#transfers-table")] == [refused_id[:8]],
                        "the id prefix search")
            await pilot.press("escape")
            await pilot.press("c")
            await until(pilot, lambda: len(cells(app, "#transfers-table")) >= 2, "filters cleared")
            await pilot.press("space")
            assert screen.paused and "PAUSED" in text_of(app, "#feed-status")
            rows = len(cells(app, "#transfers-table"))
            await pay(app, "greenwallet", AMARA, KWAME, "1")
            await until(pilot, lambda: len(app.state.transfers) > rows, "a transfer while paused")
            await pilot.pause(0.5)
            assert len(cells(app, "#transfers-table")) == rows, "the paused feed moved"
            await pilot.press("space")
            await until(pilot, lambda: len(cells(app, "#transfers-table")) == rows + 1, "the feed resumed")

            # the detail of the committed payment: lookup, quote and transfer messages, the states
            table = screen.query_one("#transfers-table", DataTable)
            table.move_cursor(row=table.get_row_index(paid_id), animate=False)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail")
            detail = app.screen
            await until(pilot, lambda: {"state COMMITTED", "state RESERVED"} <= {r[2] for r in cells(app, "#timeline")},
                        "the hub's states")
            whats = [r[2] for r in cells(app, "#timeline")]
            assert any(w.startswith("GET /parties/MSISDN/" + KWAME) for w in whats)
            assert any(w.startswith("POST /quotes") for w in whats) and any(w.startswith("PUT /quotes/") for w in whats)
            assert any(w.startswith("POST /transfers") for w in whats)
            assert any(w.startswith("PUT /transfers/" + paid_id[:8]) for w in whats)
            assert {"greenwallet → Hub", "Hub → bluewallet"} <= {r[1] for r in cells(app, "#timeline")}
            ms = [int(r[0]) for r in cells(app, "#timeline") if r[0]]
            assert ms[0] == 0 and ms == sorted(ms)
            post = next(n for n, w in enumerate(whats) if w.startswith("POST /transfers"))
            detail.query_one("#timeline", DataTable).move_cursor(row=post, animate=False)
            await until(pilot, lambda: f'"transferId": "{paid_id}"' in text_of(app, "#body"), "the message's body")
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, TransfersScreen), "back to the feed")

            # the refused one: its states and error
            table.move_cursor(row=table.get_row_index(refused_id), animate=False)
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen), "the refused one's detail")
            assert "4200" in text_of(app, "#summary")
            assert "state ABORTED_REJECTED" in [r[2] for r in cells(app, "#timeline")]
            await pilot.press("escape")
        await app.client.close()

    run(scenario())


def test_a_hub_that_goes_away_is_shown_disconnected(hubs: HubLauncher) -> None:
    hub = hubs.start()

    async def scenario() -> None:
        app = await attached(hub)
        async with app.run_test(size=SIZE) as pilot:
            await ready(pilot)
            await asyncio.to_thread(hub.stop)
            await until(pilot, lambda: "DISCONNECTED" in text_of(app, "#connection"), "disconnected shown")
            await pilot.press("t")
            await until(pilot, lambda: "not connected" in text_of(app, "#feed-status"), "the feed says so")
            await pilot.press("o")
            await pilot.pause(1.5)  # the stream retries and the positions fail: nothing may crash
            assert app.is_running and "DISCONNECTED" in text_of(app, "#connection")
        await app.client.close()

    run(scenario())


# --------------------------------------------------------------------------- the command line


def test_tui_with_nothing_at_the_url_says_so_in_one_line(run_cli: Callable[..., Any]) -> None:
    done = run_cli("tui", "--url", "http://127.0.0.1:1", timeout=30)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("miniloop: no miniloop wallet port answers at http://127.0.0.1:1")
    assert done.stdout == ""


def test_tui_without_a_terminal_says_so_in_one_line(run_cli: Callable[..., Any], demo: Hub) -> None:
    done = run_cli("tui", "--url", demo.urls["wallet"], timeout=30)
    assert done.returncode == 2, done
    assert done.stderr.strip().splitlines() == [
        "miniloop: the dashboard needs a terminal (stdin and stdout must be a TTY)"]


class Terminal:
    """A child process on a pseudo-terminal of 80×24, its output read as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                        start_new_session=True)
        os.close(slave)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def text(self) -> str:
        return bytes(self.output).decode("utf-8", errors="replace")

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        os.close(self.master)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(*args: str) -> Terminal:
        argv = miniloop_cmd("up", "--data-dir", str(tmp_path / "data"), *args)
        for flag in PORT_FLAGS:
            argv += [flag, "0"]
        opened.append(Terminal(argv, clean_env(tmp_path / "home", TERM="xterm-256color", COLUMNS="80", LINES="24")))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


def hub_info(data: Path, pid: int) -> dict[str, Any] | None:
    try:
        info = json.loads((data / "hub.json").read_text())
    except (OSError, ValueError):
        return None
    return info if info.get("pid") == pid else None


def test_miniloop_on_a_terminal_shows_the_dashboard_and_q_stops_the_hub(terminal: Callable[..., Terminal],
                                                                         tmp_path: Path) -> None:
    data = tmp_path / "data"
    term = terminal()
    wait_until(lambda: hub_info(data, term.process.pid) or term.process.poll() is not None, 30, what="hub.json")
    assert term.process.poll() is None, term.text()
    nats = nats_children(term.process.pid)
    assert nats, "no nats-server child"
    wait_until(lambda: "Overview" in term.text() and "greenwallet" in term.text(), 30, what="the dashboard")
    assert "Press Ctrl-C to stop" not in term.text()
    term.send(b"q")
    term.process.wait(20)
    assert term.process.returncode == 0, term.text()[-2000:]
    wait_until(lambda: all(pid_gone(pid) for pid in nats), 10, what="nats-server gone")
    assert not (data / "hub.json").exists()
    log = (data / "miniloop.log").read_text()
    assert "INFO" in log or "WARNING" in log
    shown = term.text()
    assert " INFO " not in shown and " WARNING " not in shown, "log lines reached the terminal"
    assert "miniloop: stopped" in shown


def test_headless_on_a_terminal_prints_the_urls(terminal: Callable[..., Terminal], tmp_path: Path) -> None:
    term = terminal("--headless")
    wait_until(lambda: "Press Ctrl-C to stop." in term.text() or term.process.poll() is not None, 30,
               what="the URLs")
    shown = term.text()
    assert "Wallet simulator" in shown and "FSPIOP API" in shown, shown
    assert "\x1b[?1049h" not in shown, "an alternate screen (a dashboard) was opened"
    os.killpg(term.process.pid, signal.SIGTERM)
    term.process.wait(20)
    assert term.process.returncode == 0
