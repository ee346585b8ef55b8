"""The operator's screens of the dashboard (tui.screens.participants, settlement, scenarios),
driven with Textual's pilot against a real demo hub, and checked by reading the hub's own APIs.

Each test opens its own dashboard on the module's hub (one hub per xdist worker). The tests move
money relative to what they read first, so they hold in any order on the shared hub.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from textual.widgets import DataTable, Footer, Input

from tests.conftest import Hub, unique_name
from tui.app import Dashboard
from tui_pilot import until
from tui_pilot import dashboard as _dashboard
from tui.forms import FormScreen
from tui.screens.confirm import ConfirmScreen



@pytest.fixture(scope="module")
def hub(module_hubs: Any) -> Hub:
    return module_hubs.start()


def dashboard(hub: Hub, size: tuple[int, int] = (100, 32)) -> Any:
    """Forms need more room than 80x24; the tests that check 80x24 say so."""
    return _dashboard(hub, size)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def liquidity(hub: Hub, name: str) -> Decimal:
    return -Decimal(str(hub.account_value(name, "SETTLEMENT")))


def ndc(hub: Hub, name: str) -> Decimal:
    limits = hub.admin.get(f"/participants/{name}/limits").json()
    return Decimal(str(limits[0]["limit"]["value"]))


# --------------------------------------------------------------------------- participants


async def open_participants(app: Dashboard, pilot: Any, select: str | None = None) -> Any:
    await pilot.press("p")
    screen = await until(pilot, lambda: app.screen if type(app.screen).__name__ == "ParticipantsScreen" else None,
                         "the participants screen")
    table = screen.query_one("#participants", DataTable)
    await until(pilot, lambda: table.row_count >= 3, "the participants in the table")
    if select is not None:
        await until(pilot, lambda: f"{select}|USD" in [str(k.value) for k in table.rows], f"{select} in the table")
        keys = [str(k.value) for k in table.rows]
        table.move_cursor(row=keys.index(f"{select}|USD"))
        await pilot.pause()
    return screen


async def fill_form(app: Dashboard, pilot: Any, values: dict[str, str]) -> FormScreen:
    form = await until(pilot, lambda: app.screen if isinstance(app.screen, FormScreen) else None, "the form")
    for name, text in values.items():
        box = form.query_one(f"#field-{name}", Input)
        box.value = ""
        box.focus()
        await pilot.press(*text) if text else None
    return form


async def submit_and_confirm(app: Dashboard, pilot: Any, form: FormScreen, answer: str = "y") -> None:
    await pilot.press("ctrl+s")
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), f"the confirmation ({form.error_text})")
    await pilot.press(answer)
    await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the confirmation to close")


async def outcome(pilot: Any, screen: Any, contains: str) -> str:
    return await until(pilot, lambda: screen.outcome if contains in screen.outcome else None,
                       f"an outcome with {contains!r} (now {screen.outcome!r})")


def test_participants_at_80x24_show_the_table_and_footer(hub: Hub) -> None:
    async def main() -> None:
        async with dashboard(hub, size=(80, 24)) as (app, pilot):
            screen = await open_participants(app, pilot)
            table = screen.query_one("#participants", DataTable)
            assert table.region.height >= 5 and table.region.width == 80
            assert screen.query_one(Footer).region.y == 23
            names = {str(k.value).split("|")[0] for k in table.rows}
            assert {"greenwallet", "bluewallet", "merchantbank"} <= names

    run(main())


def test_onboard_a_dfsp_with_its_ndc_and_deposit(hub: Hub) -> None:
    name = unique_name("tui")

    async def main() -> None:
        async with dashboard(hub) as (app, pilot):
            screen = await open_participants(app, pilot)
            await pilot.press("n")
            form = await fill_form(app, pilot, {"name": name, "ndc": "1500", "deposit": "2500",
                                                "url": "http://tuidfsp.example:4000"})
            await submit_and_confirm(app, pilot, form)
            await outcome(pilot, screen, "onboarded")
            table = screen.query_one("#participants", DataTable)
            await until(pilot, lambda: f"{name}|USD" in [str(k.value) for k in table.rows], "the new DFSP's row")

    run(main())
    assert hub.admin.get(f"/participants/{name}").json()["isActive"] == 1
    assert ndc(hub, name) == 1500
    assert liquidity(hub, name) == 2500
    endpoint = hub.admin.get(f"/participants/{name}/endpoints", params={"type": "FSPIOP_CALLBACK_URL_TRANSFER_PUT"})
    assert endpoint.json()["value"] == "http://tuidfsp.example:4000/transfers/{{transferId}}"


def test_change_the_ndc(hub: Hub) -> None:
    target = ndc(hub, "merchantbank") + 123

    async def main() -> None:
        async with dashboard(hub) as (app, pilot):
            screen = await open_participants(app, pilot, select="merchantbank")
            await pilot.press("c")
            form = await fill_form(app, pilot, {"ndc": str(target)})
            await submit_and_confirm(app, pilot, form)
            await outcome(pilot, screen, "Net Debit Cap is now")

    run(main())
    assert ndc(hub, "merchantbank") == target


def test_funds_in_and_out_move_the_liquidity(hub: Hub) -> None:
    before = liquidity(hub, "bluewallet")

    async def main() -> None:
        async with dashboard(hub) as (app, pilot):
            screen = await open_participants(app, pilot, select="bluewallet")
            await pilot.press("i")
            await submit_and_confirm(app, pilot, await fill_form(app, pilot, {"amount": "300"}))
            await outcome(pilot, screen, "added to bluewallet")
            assert liquidity(hub, "bluewallet") == before + 300
            await pilot.press("w")
            await submit_and_confirm(app, pilot, await fill_form(app, pilot, {"amount": "120.5"}))
            await outcome(pilot, screen, "taken from bluewallet")
            assert liquidity(hub, "bluewallet") == before + Decimal("179.5")
            # the table follows through the hub view
            table = screen.query_one("#participants", DataTable)
            await until(pilot, lambda: Decimal(table.get_row("bluewallet|USD")[4]) == before + Decimal("179.5"),
                        "the new liquidity in the table")
            # more than the balance: refused, nothing moves
            await pilot.press("w")
            await submit_and_confirm(app, pilot, await fill_form(app, pilot, {"amount": "999999999"}))
            await outcome(pilot, screen, "refused")

    run(main())
    assert liquidity(hub, "bluewallet") == before + Decimal("179.5")


def test_deactivate_and_activate(hub: Hub) -> None:
    name = unique_name("tuiact")
    hub.onboard(name)

    async def main() -> None:
        async with dashboard(hub) as (app, pilot):
            screen = await open_participants(app, pilot, select=name)
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("y")
            await outcome(pilot, screen, "is now inactive")
            assert hub.admin.get(f"/participants/{name}").json()["isActive"] == 0
            table = screen.query_one("#participants", DataTable)
            await until(pilot, lambda: table.get_row(f"{name}|USD")[5] == "INACTIVE", "INACTIVE in the table")
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("y")
            await outcome(pilot, screen, "is now active")

    run(main())
    assert hub.admin.get(f"/participants/{name}").json()["isActive"] == 1


def test_cancelling_a_confirmation_changes_nothing(hub: Hub) -> None:
    before = liquidity(hub, "greenwallet")

    async def main() -> None:
        async with dashboard(hub) as (app, pilot):
            screen = await open_participants(app, pilot, select="greenwallet")
            await pilot.press("i")
            await submit_and_confirm(app, pilot, await fill_form(app, pilot, {"amount": "5000"}), answer="n")
            await outcome(pilot, screen, "Cancelled")
            await pilot.press("a")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the confirmation to close")

    run(main())
    assert liquidity(hub, "greenwallet") == before
    assert hub.admin.get("/participants/greenwallet").json()["isActive"] == 1


def test_bad_input_sends_nothing_and_says_why(hub: Hub) -> None:
    before = liquidity(hub, "greenwallet")
    name_count = len(hub.admin.get("/participants").json())

    async def main() -> None:
        async with dashboard(hub) as (app, pilot):
            await open_participants(app, pilot, select="greenwallet")
            await pilot.press("i")
            form = await fill_form(app, pilot, {"amount": "-5"})
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "negative" in form.error_text, "the message about a negative amount")
            assert app.screen is form  # still open: nothing was sent
            form.query_one("#field-amount", Input).value = "abc"
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "not a number" in form.error_text, "the message about a non-number")
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(app.screen, FormScreen), "the form to close")
            await pilot.press("n")
            form = await fill_form(app, pilot, {"name": "", "url": "http://x.example"})
            await pilot.press("ctrl+s")
            await until(pilot, lambda: "name is required" in form.error_text, "the message about an empty name")
            await pilot.press("escape")

    run(main())
    assert liquidity(hub, "greenwallet") == before
    assert len(hub.admin.get("/participants").json()) == name_count


# --------------------------------------------------------------------------- settlement


async def confirm_key(app: Dashboard, pilot: Any, key: str) -> None:
    await pilot.press(key)
    await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), f"the confirmation of {key!r}")
    await pilot.press("y")
    await until(pilot, lambda: not isinstance(app.screen, ConfirmScreen), "the confirmation to close")


def position(hub: Hub, name: str) -> Decimal:
    return Decimal(str(hub.admin.get(f"/participants/{name}/positions", params={"currency": "USD"}).json()["value"]))


def test_close_the_window_and_settle_it_step_by_step(hub: Hub) -> None:
    pay = {"from": "27710000001", "to": {"idType": "MSISDN", "id": "27720000001"}, "amount": "10"}
    found: dict[str, Any] = {}

    async def main() -> None:
        async with dashboard(hub, size=(80, 24)) as (app, pilot):
            for _ in range(2):
                answer = await app.client.sim("POST", "/greenwallet/send", pay)
                assert answer.ok and answer.body["state"] == "COMMITTED", answer
            await pilot.press("s")
            screen = await until(pilot, lambda: app.screen if type(app.screen).__name__ == "SettlementScreen" else None,
                                 "the settlement screen")
            windows = screen.query_one("#windows", DataTable)
            await until(pilot, lambda: windows.row_count >= 1, "the windows")
            assert screen.query_one(Footer).region.y == 23 and windows.region.height >= 2
            await until(pilot, lambda: position(hub, "greenwallet") > 0, "greenwallet's position")
            await confirm_key(app, pilot, "c")
            await outcome(pilot, screen, "closed")
            # settle, go one step, and abort: the windows can be settled again
            await confirm_key(app, pilot, "e")
            await outcome(pilot, screen, "Created settlement")
            aborted = screen.settlement["id"]
            await confirm_key(app, pilot, "a")
            await outcome(pilot, screen, "PS_TRANSFERS_RECORDED")
            await confirm_key(app, pilot, "x")
            await outcome(pilot, screen, f"Settlement {aborted} is ABORTED")
            # again, all the way
            await confirm_key(app, pilot, "e")
            await outcome(pilot, screen, "Created settlement")
            settlement_id = screen.settlement["id"]
            assert settlement_id != aborted, screen.outcome
            accounts = screen.query_one("#settlement-accounts", DataTable)
            await until(pilot, lambda: accounts.row_count >= 2, "the settlement's accounts")
            names = {accounts.get_row(key)[0] for key in accounts.rows}
            assert {"greenwallet", "bluewallet"} <= names
            for state in ("PS_TRANSFERS_RECORDED", "PS_TRANSFERS_RESERVED", "PS_TRANSFERS_COMMITTED", "SETTLED"):
                await confirm_key(app, pilot, "a")
                await outcome(pilot, screen, f"Settlement {settlement_id} is {state}")
            await until(pilot, lambda: all(accounts.get_row(key)[3] == "SETTLED" for key in accounts.rows),
                        "every account SETTLED in the table")
            positions = screen.query_one("#positions")
            await until(pilot, lambda: "greenwallet 0 " in str(positions.render()) + " "
                        and "bluewallet 0 " in str(positions.render()) + " ", "the positions back to 0")
            # nothing left: a next step says so
            await pilot.press("a")
            await outcome(pilot, screen, "no next step")
            found["id"], found["aborted"] = settlement_id, aborted

    run(main())
    settlement = hub.settlement.get(f"settlements/{found['id']}").json()
    assert settlement["state"] == "SETTLED"
    assert all(w["state"] == "SETTLED" for w in settlement["settlementWindows"])
    assert hub.settlement.get(f"settlements/{found['aborted']}").json()["state"] == "ABORTED"
    assert position(hub, "greenwallet") == 0 and position(hub, "bluewallet") == 0


# --------------------------------------------------------------------------- scenarios


async def open_scenarios(app: Dashboard, pilot: Any, select: str) -> Any:
    await pilot.press("r")
    screen = await until(pilot, lambda: app.screen if type(app.screen).__name__ == "ScenariosScreen" else None,
                         "the scenarios screen")
    table = screen.query_one("#scenarios", DataTable)
    await until(pilot, lambda: select in [str(k.value) for k in table.rows], f"{select} in the list")
    table.move_cursor(row=[str(k.value) for k in table.rows].index(select))
    await pilot.pause()
    return screen


def test_run_a_scenario_and_see_it_pass(hub: Hub) -> None:
    before = position(hub, "greenwallet")

    async def main() -> None:
        async with dashboard(hub, size=(80, 24)) as (app, pilot):
            screen = await open_scenarios(app, pilot, "p2p")
            assert screen.query_one(Footer).region.y == 23
            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("y")
            await until(pilot, lambda: screen.running is None and screen.result is not None, "the run's end", 90)
            assert screen.result.ok, screen.status
            assert screen.status.startswith("p2p passed"), screen.status
            report = screen.query_one("#scenario-report", DataTable)
            assert report.row_count == len(screen.result.steps) >= 1
            assert all(report.get_row(key)[1] == "passed" for key in report.rows)
            assert any("Amara at greenwallet sends 10 USD" in line for line in screen.log_lines)
            assert any(line.startswith("Scenario passed") for line in screen.log_lines)

    run(main())
    assert position(hub, "greenwallet") == before + 10


def test_a_cancelled_run_runs_nothing(hub: Hub) -> None:
    async def main() -> None:
        async with dashboard(hub) as (app, pilot):
            screen = await open_scenarios(app, pilot, "p2p")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("n")
            await until(pilot, lambda: "Cancelled" in screen.status, "the cancellation")
            assert screen.result is None and screen.running is None

    run(main())


def test_a_failing_run_shows_why(hub: Hub) -> None:
    assert hub.admin.put("/participants/bluewallet", json={"isActive": False}).status_code == 200

    async def main() -> None:
        async with dashboard(hub) as (app, pilot):
            screen = await open_scenarios(app, pilot, "p2p")
            await pilot.press("x")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            await pilot.press("y")
            await until(pilot, lambda: screen.running is None and screen.result is not None, "the run's end", 90)
            assert not screen.result.ok
            assert screen.status.startswith("p2p FAILED") and "Step 1:" in screen.status, screen.status
            report = screen.query_one("#scenario-report", DataTable)
            first = report.get_row(next(iter(report.rows)))
            assert first[1] == "FAILED" and first[5], first
            assert any(line.startswith("Scenario FAILED") for line in screen.log_lines)

    try:
        run(main())
    finally:
        hub.admin.put("/participants/bluewallet", json={"isActive": True})
