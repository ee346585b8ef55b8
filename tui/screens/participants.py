"""Participants: every DFSP's position, Net Debit Cap, liquidity and status, and the operator's
actions on them: onboard a new DFSP, change a Net Debit Cap, funds in and out, activate and
deactivate.

Why through the Admin API, call by call: these are the calls an operator of a real Mojaloop hub
makes (docs/admin-api.md), so the screen doubles as a live demonstration of them; each outcome
line names the call that failed and the hub's FSPIOP error. The table is drawn from the hub view
the app keeps fresh (tui.app reads it again when an event says positions or participants moved).
Every action asks for its values in a form (tui.forms), which refuses bad input before anything
is sent, then for a confirmation (tui.screens.confirm); the calls run in a worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, ClassVar

import aiohttp
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from miniloop.fspiop.endpoints import for_base_url
from tui import forms
from tui.client import Answer
from tui.forms import Field, FormScreen
from tui.screens.base import HubScreen
from tui.screens.confirm import ConfirmScreen
from tui.state import PARTICIPANTS, POSITIONS

DEFAULT_ALARM_PERCENTAGE = 10
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, ConnectionError)


class CallFailed(Exception):
    """One Admin API call of an action failed: the text says which and why."""


class ParticipantsScreen(HubScreen):
    TOPICS: ClassVar[set[str]] = {POSITIONS, PARTICIPANTS}

    DEFAULT_CSS = """
    ParticipantsScreen #participants {
        height: 1fr;
    }
    ParticipantsScreen #participants-outcome {
        height: auto;
        max-height: 4;
        padding: 0 1;
        background: $boost;
    }
    ParticipantsScreen #participants-outcome.ok {
        color: $text-success;
    }
    ParticipantsScreen #participants-outcome.error {
        color: $text-error;
    }
    """

    BINDINGS = [
        # named on the hint line (the Footer's room is for the mode keys at 80 columns)
        Binding("n", "onboard", "Onboard", show=False),
        Binding("c", "ndc", "NDC", show=False),
        Binding("i", "funds_in", "Funds in", show=False),
        Binding("w", "funds_out", "Funds out", show=False),
        Binding("a", "toggle_active", "(De)activate", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.outcome = ""  # the last action's outcome line, as shown
        self._busy = False

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("n onboard a DFSP  c NDC  i funds in  w funds out  a (de)activate the selected one",
                     classes="hint", markup=False)
        table: DataTable[str] = DataTable(id="participants", cursor_type="row", zebra_stripes=True)
        table.add_columns("Participant", "Cur", "Position", "Net Debit Cap", "Liquidity", "Status")
        yield table
        yield Static("n onboards a new DFSP; select a row for NDC, funds in/out, (de)activate",
                     id="participants-outcome", markup=False)
        yield Footer()

    # --- drawing -----------------------------------------------------------------------------

    def show(self) -> None:
        table = self.query_one("#participants", DataTable)
        rows = [row for row in self.hub.hub_view.get("participants") or [] if isinstance(row, dict)]
        keys = [f"{row.get('name')}|{row.get('currency')}" for row in rows]
        cells = [(str(row.get("name", "")), str(row.get("currency", "")), _text(row.get("position")),
                  _text(row.get("ndc")), _text(row.get("liquidity")),
                  "active" if row.get("active") else "INACTIVE") for row in rows]
        forms.fill_table(table, list(zip(keys, cells, strict=True)))

    def selected_key(self) -> str | None:
        table = self.query_one("#participants", DataTable)
        if table.row_count == 0:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # no valid cursor
            return None

    def selected(self) -> dict[str, Any] | None:
        """The hub view's row of the selected participant and currency."""
        key = self.selected_key()
        for row in self.hub.hub_view.get("participants") or []:
            if f"{row.get('name')}|{row.get('currency')}" == key:
                return row
        return None

    def say(self, text: str, ok: bool = True) -> None:
        self.outcome = text
        line = self.query_one("#participants-outcome", Static)
        line.update(text)
        line.set_class(ok, "ok")
        line.set_class(not ok, "error")
        self.notify(text, severity="information" if ok else "error", timeout=6)

    # --- actions -----------------------------------------------------------------------------

    def _start(self, flow: Callable[[], Awaitable[None]]) -> None:
        """One action at a time: its form, its confirmation, its calls, its outcome."""
        if self._busy:
            self.say("Still busy with the previous action", ok=False)
            return
        self._busy = True

        async def guarded() -> None:
            try:
                await flow()
            finally:
                self._busy = False

        self.run_worker(guarded, group="participant-action")

    def _need_selection(self) -> dict[str, Any] | None:
        row = self.selected()
        if row is None:
            self.say("Select a participant first (arrow keys or the mouse)", ok=False)
        return row

    def action_onboard(self) -> None:
        self._start(self._onboard)

    def action_ndc(self) -> None:
        if (row := self._need_selection()) is not None:
            self._start(partial(self._ndc, row))

    def action_funds_in(self) -> None:
        if (row := self._need_selection()) is not None:
            self._start(partial(self._funds, row, out=False))

    def action_funds_out(self) -> None:
        if (row := self._need_selection()) is not None:
            self._start(partial(self._funds, row, out=True))

    def action_toggle_active(self) -> None:
        if (row := self._need_selection()) is not None:
            self._start(partial(self._toggle_active, row))

    async def _ask(self, title: str, fields: list[Field], submit: str = "OK") -> dict[str, Any] | None:
        return await self.app.push_screen_wait(FormScreen(title, fields, submit=submit))

    async def _confirm(self, question: str, detail: str = "", *, danger: bool = False) -> bool:
        if await self.app.push_screen_wait(ConfirmScreen(question, detail, danger=danger)):
            return True
        self.say("Cancelled: nothing was sent", ok=True)
        return False

    async def _call(self, what: str, method: str, path: str, body: Any = None) -> Answer:
        """One Admin API call; CallFailed with what failed and the hub's error text."""
        try:
            answer = await self.client.admin(method, path, body)
        except NETWORK_ERRORS as exc:
            raise CallFailed(f"{what} failed: the hub did not answer ({exc or type(exc).__name__})") from None
        if not answer.ok:
            raise CallFailed(f"{what} failed: {answer.error_text()}")
        return answer

    async def _run(self, flow: Any, success: str) -> None:
        """Run the calls of an action, then say how it ended and have the positions read again."""
        try:
            await flow
        except CallFailed as exc:
            self.say(str(exc), ok=False)
        else:
            self.say(success, ok=True)
        finally:
            self.dashboard.positions_changed()

    # onboarding

    async def _onboard(self) -> None:
        rows = self.hub.hub_view.get("participants") or []
        taken = {str(row.get("name", "")).lower() for row in rows} | {"hub"}
        currency = str(rows[0].get("currency") or "USD") if rows else "USD"

        def new_name(text: str) -> str:
            name = forms.participant_name(text)
            if name.lower() in taken:
                raise ValueError(f"{name} is already a participant of this hub")
            return name

        values = await self._ask("Onboard a new DFSP", [
            Field("name", "Name", new_name, placeholder="e.g. redbank"),
            Field("currency", "Currency", forms.currency, value=currency),
            Field("ndc", "Net Debit Cap", forms.positive_amount, value="10000"),
            Field("deposit", "Initial deposit", forms.amount_or_zero, value="10000"),
            Field("url", "Callback base URL", forms.base_url, placeholder="http://redbank.example:4000"),
        ], submit="Onboard")
        if values is None:
            self.say("Onboarding cancelled: nothing was sent")
            return
        name, cur = values["name"], values["currency"]
        if not await self._confirm(
                f"Onboard {name} in {cur}?",
                f"Creates the participant with a Net Debit Cap of {values['ndc']} {cur}, registers its "
                f"callbacks under {values['url']}, and deposits {values['deposit']} {cur}."):
            return
        await self._run(self._onboard_calls(values),
                        f"{name} onboarded: Net Debit Cap {values['ndc']} {cur}, "
                        f"liquidity {values['deposit']} {cur}, callbacks at {values['url']}")

    async def _onboard_calls(self, values: dict[str, Any]) -> None:
        name, cur = values["name"], values["currency"]
        self.say(f"Onboarding {name}: creating the participant ...")
        await self._call(f"creating {name} (POST /participants)", "POST", "/participants",
                         {"name": name, "currency": cur})
        await self._call(f"setting {name}'s Net Debit Cap (POST /participants/{name}/initialPositionAndLimits)",
                         "POST", f"/participants/{name}/initialPositionAndLimits",
                         {"currency": cur, "limit": {"type": "NET_DEBIT_CAP", "value": values["ndc"]},
                          "initialPosition": 0})
        self.say(f"Onboarding {name}: registering its callback endpoints ...")
        for endpoint_type, value in for_base_url(values["url"]).items():
            await self._call(f"registering {endpoint_type}", "POST", f"/participants/{name}/endpoints",
                             {"type": endpoint_type, "value": value})
        if values["deposit"] != "0":
            account = await self._settlement_account(name, cur)
            await self._call(f"depositing {values['deposit']} {cur}", "POST", f"/participants/{name}/accounts/{account}",
                             _funds_body("recordFundsIn", values["deposit"], cur, "initial deposit (dashboard)"))

    async def _settlement_account(self, name: str, cur: str) -> int:
        answer = await self._call(f"reading {name}'s accounts", "GET", f"/participants/{name}/accounts")
        for account in answer.body or []:
            if account.get("ledgerAccountType") == "SETTLEMENT" and account.get("currency") == cur:
                return int(account["id"])
        raise CallFailed(f"{name} has no SETTLEMENT account in {cur}")

    # Net Debit Cap

    async def _ndc(self, row: dict[str, Any]) -> None:
        name, cur = row["name"], row["currency"]
        values = await self._ask(f"Net Debit Cap of {name} ({cur})", [
            Field("ndc", f"New cap ({cur})", forms.positive_amount, value=_text(row.get("ndc")).replace("—", "")),
        ], submit="Set cap")
        if values is None:
            self.say("Cancelled: nothing was sent")
            return
        if not await self._confirm(f"Set {name}'s Net Debit Cap to {values['ndc']} {cur}?",
                                   f"It is {_text(row.get('ndc'))} now; its position is {_text(row.get('position'))}."):
            return

        async def calls() -> None:
            answer = await self._call(f"reading {name}'s limits", "GET", f"/participants/{name}/limits?currency={cur}")
            alarm = next((limit["limit"].get("alarmPercentage") for limit in answer.body or []
                          if limit.get("limit", {}).get("type") == "NET_DEBIT_CAP"), None)
            await self._call(f"changing {name}'s Net Debit Cap (PUT /participants/{name}/limits)", "PUT",
                             f"/participants/{name}/limits",
                             {"currency": cur, "limit": {"type": "NET_DEBIT_CAP", "value": values["ndc"],
                                                         "alarmPercentage": alarm if alarm is not None
                                                         else DEFAULT_ALARM_PERCENTAGE}})

        await self._run(calls(), f"{name}'s Net Debit Cap is now {values['ndc']} {cur}")

    # funds in and out

    async def _funds(self, row: dict[str, Any], *, out: bool) -> None:
        name, cur = row["name"], row["currency"]
        what = "Funds out" if out else "Funds in"
        values = await self._ask(f"{what}: {name} ({cur}), liquidity {_text(row.get('liquidity'))}", [
            Field("amount", f"Amount ({cur})", forms.positive_amount),
            Field("reason", "Reason", forms.reason,
                  value="withdrawal to the bank" if out else "deposit at the settlement bank"),
        ], submit=what)
        if values is None:
            self.say("Cancelled: nothing was sent")
            return
        amount = values["amount"]
        if not await self._confirm(
                f"{what}: {amount} {cur} {'from' if out else 'to'} {name}?",
                f"{name}'s liquidity at the settlement bank {'goes down' if out else 'goes up'} by {amount} {cur} "
                f"(it is {_text(row.get('liquidity'))} now).", danger=out):
            return

        async def calls() -> None:
            account = await self._settlement_account(name, cur)
            path = f"/participants/{name}/accounts/{account}"
            if not out:
                await self._call(f"funds in to {name}", "POST", path, _funds_body("recordFundsIn", amount, cur, values["reason"]))
                return
            body = _funds_body("recordFundsOutPrepareReserve", amount, cur, values["reason"])
            await self._call(f"funds out of {name} (prepare)", "POST", path, body)
            try:
                await self._call(f"funds out of {name} (commit)", "PUT", f"{path}/transfers/{body['transferId']}",
                                 {"action": "recordFundsOutCommit", "reason": values["reason"]})
            except CallFailed as exc:
                if "ABORTED" in str(exc):  # the hub aborts a funds-out above the balance at once
                    raise CallFailed(f"funds out of {name} refused: {amount} {cur} is more than its liquidity; "
                                     f"nothing moved ({exc})") from None
                raise

        await self._run(calls(), f"{what}: {amount} {cur} {'taken from' if out else 'added to'} {name}")

    # activate, deactivate

    async def _toggle_active(self, row: dict[str, Any]) -> None:
        name = row["name"]
        try:
            answer = await self._call(f"reading {name}", "GET", f"/participants/{name}")
        except CallFailed as exc:
            self.say(str(exc), ok=False)
            return
        active = bool((answer.body or {}).get("isActive"))
        verb = "Deactivate" if active else "Activate"
        if not await self._confirm(f"{verb} {name}?",
                                   "An inactive DFSP can neither send nor receive payments." if active
                                   else "It can send and receive payments again.", danger=active):
            return
        await self._run(self._call(f"{verb.lower()[:-1]}ing {name} (PUT /participants/{name})", "PUT",
                                   f"/participants/{name}", {"isActive": not active}),
                        f"{name} is now {'inactive' if active else 'active'}")


def _text(value: Any) -> str:
    return "—" if value is None else str(value)


def _funds_body(action: str, amount: str, cur: str, reason: str) -> dict[str, Any]:
    return {"transferId": str(uuid.uuid4()), "externalReference": "dashboard", "action": action,
            "reason": reason, "amount": {"amount": amount, "currency": cur}}
