"""Settlement: the settlement windows, closing the open one, and settling step by step.

Why step by step, one key per step: this is how a hub operator and the settlement bank settle a
Mojaloop hub (docs/settlement.md), and each step shows something: at PS_TRANSFERS_RESERVED the
net recipients' positions reset, at PS_TRANSFERS_COMMITTED the net senders', so the positions
line at the bottom (from the hub view the app keeps fresh) moves back to zero as you go. The
calls are those of the Settlement API (docs/settlement-api.md), with the same bodies as the
scenario engine's settle steps (miniloop/scenario/steps.py `_advance`): every account of the
settlement moved to the next state at once. The screen reads the windows and the newest
settlement again whenever an event says a window or a settlement changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, ClassVar

import aiohttp
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header, Static

from tui.client import Answer
from tui.forms import fill_table
from tui.screens.base import HubScreen, StateChanged
from tui.screens.confirm import ConfirmScreen
from tui.state import POSITIONS, WINDOWS

NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, ConnectionError)
ALL_SINCE = "fromDateTime=1970-01-01T00:00:00.000Z"  # the API needs a filter: this one keeps all
FILTERS = ("all", "OPEN", "CLOSED", "PENDING_SETTLEMENT", "SETTLED", "ABORTED")
WINDOWS_SHOWN = 50
STEPS = ("PENDING_SETTLEMENT", "PS_TRANSFERS_RECORDED", "PS_TRANSFERS_RESERVED", "PS_TRANSFERS_COMMITTED", "SETTLED")
ABORTABLE = ("PENDING_SETTLEMENT", "PS_TRANSFERS_RECORDED", "PS_TRANSFERS_RESERVED")
STEP_WORDS = {
    "PS_TRANSFERS_RECORDED": "the bank has the instructions; nothing moves yet",
    "PS_TRANSFERS_RESERVED": "net recipients' positions are reset",
    "PS_TRANSFERS_COMMITTED": "net senders' positions are reset",
    "SETTLED": "the bank has moved the money; the windows are settled",
}


def next_state(state: str | None) -> str | None:
    """The state every account of a settlement in `state` moves to next (None: nothing to do)."""
    if state == "SETTLING":
        return "SETTLED"
    if state in STEPS[:-1]:
        return STEPS[STEPS.index(state) + 1]
    return None


class CallFailed(Exception):
    pass


class SettlementScreen(HubScreen):
    TOPICS: ClassVar[set[str]] = {WINDOWS, POSITIONS}

    DEFAULT_CSS = """
    SettlementScreen .settlement-heading {
        height: auto;
        max-height: 2;
        padding: 0 1;
        background: $boost;
        text-style: bold;
    }
    SettlementScreen #windows {
        height: 1fr;
        min-height: 3;
    }
    SettlementScreen #settlement-accounts {
        height: 1fr;
        min-height: 3;
    }
    SettlementScreen #positions {
        height: auto;
        max-height: 2;
        padding: 0 1;
        color: $text-muted;
    }
    SettlementScreen #settlement-outcome {
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $boost;
    }
    SettlementScreen #settlement-outcome.ok {
        color: $text-success;
    }
    SettlementScreen #settlement-outcome.error {
        color: $text-error;
    }
    """

    BINDINGS = [
        # named on the hint line (the Footer's room is for the mode keys at 80 columns)
        Binding("c", "close_window", "Close window", show=False),
        Binding("e", "settle", "Settle closed", show=False),
        Binding("a", "advance", "Next step", show=False),
        Binding("x", "abort", "Abort", show=False),
        Binding("l", "filter", "Filter", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter = FILTERS[0]
        self.windows: list[dict[str, Any]] = []
        self.settlement: dict[str, Any] | None = None  # the settlement shown (the newest, or the one made here)
        self.outcome = ""
        self._account_names: dict[int, str] = {}
        self._busy = False  # POSITION account id -> participant name

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("c close the open window  e settle the closed ones  a next step  x abort",
                     classes="hint", markup=False)
        yield Static("", id="windows-heading", classes="settlement-heading", markup=False)
        windows: DataTable[str] = DataTable(id="windows", cursor_type="row", zebra_stripes=True)
        windows.add_columns("Window", "State", "Created", "Content", "Reason")
        yield windows
        yield Static("Settlement: none yet", id="settlement-heading", classes="settlement-heading", markup=False)
        accounts: DataTable[str] = DataTable(id="settlement-accounts", cursor_type="row", zebra_stripes=True)
        accounts.add_columns("Participant", "Account", "Net amount", "State", "Reason")
        yield accounts
        yield Static("", id="positions", markup=False)
        yield Static("Close the open window, settle it, then take it step by step to SETTLED.",
                     id="settlement-outcome", markup=False)
        yield Footer()

    # --- reading -----------------------------------------------------------------------------

    # (Textual also runs HubScreen's handlers of these messages, which call show())

    def on_mount(self) -> None:
        self.reload()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_state_changed(self, message: StateChanged) -> None:
        if WINDOWS in message.topics:
            self.reload()

    def reload(self) -> None:
        self.run_worker(self._load, group="settlement-load", exclusive=True)

    async def _load(self) -> None:
        try:
            query = ALL_SINCE if self.filter == "all" else f"state={self.filter}"
            self.windows = await self._list(f"/settlementWindows?{query}")
            settlement_id = self.settlement.get("id") if self.settlement else None
            if settlement_id is None:
                found = await self._list(f"/settlements?{ALL_SINCE}")
                newest = max(found, key=lambda s: int(s.get("id", 0))) if found else None
            else:
                answer = await self.client.settlement("GET", f"/settlements/{settlement_id}")
                newest = answer.body if answer.ok and isinstance(answer.body, dict) else self.settlement
            if (self.settlement.get("id") if self.settlement else None) == settlement_id:
                self.settlement = newest  # unless an action chose another settlement meanwhile
            if self.settlement and any(int(a["id"]) not in self._account_names
                                       for p in self.settlement.get("participants", []) for a in p.get("accounts", [])):
                await self._read_names()
        except NETWORK_ERRORS as exc:
            self.say(f"The Settlement API did not answer: {exc or type(exc).__name__}", ok=False)
            return
        self.draw()

    async def _list(self, path: str) -> list[dict[str, Any]]:
        """A Settlement API list; the API answers 400 "... not found" for an empty one."""
        answer = await self.client.settlement("GET", path)
        return [item for item in answer.body if isinstance(item, dict)] if answer.ok and isinstance(answer.body, list) else []

    async def _read_names(self) -> None:
        answer = await self.client.admin("GET", "/participants")
        for participant in answer.body if answer.ok and isinstance(answer.body, list) else []:
            for account in participant.get("accounts") or []:
                if account.get("ledgerAccountType") == "POSITION":
                    self._account_names[int(account["id"])] = str(participant.get("name"))

    # --- drawing -----------------------------------------------------------------------------

    def show(self) -> None:
        """The positions line, from the hub view (the tables are drawn by `draw`, after a reload)."""
        rows = self.hub.hub_view.get("participants") or []
        parts = [f"{row.get('name')} {row.get('position')}" for row in rows if isinstance(row, dict)]
        self.query_one("#positions", Static).update("Positions: " + ("  ".join(parts) if parts else "—"))

    def draw(self) -> None:
        self.show()
        shown = sorted(self.windows, key=lambda w: -int(w.get("id", 0)))[:WINDOWS_SHOWN]
        self.query_one("#windows-heading", Static).update(
            f"Settlement windows ({'all' if self.filter == 'all' else self.filter}; l changes the filter): "
            f"{len(self.windows)}")
        table = self.query_one("#windows", DataTable)
        rows = []
        for window in shown:
            content = ", ".join(f"{c.get('currencyId')} {c.get('state')}"
                                + (f" (settlement {c['settlementId']})" if c.get("settlementId") else "")
                                for c in window.get("content") or []) or "—"
            rows.append((str(window.get("id")), (str(window.get("id")), str(window.get("state")),
                                                 _time(window.get("createdDate")), content,
                                                 str(window.get("reason") or ""))))
        fill_table(table, rows)
        accounts = self.query_one("#settlement-accounts", DataTable)
        heading = self.query_one("#settlement-heading", Static)
        settlement = self.settlement
        if settlement is None:
            heading.update("Settlement: none yet (e settles the closed windows)")
            fill_table(accounts, [])
            return
        state = settlement.get("state")
        coming = next_state(state)
        windows = ", ".join(str(w.get("id")) for w in settlement.get("settlementWindows") or [])
        heading.update(f"Settlement {settlement.get('id')} ({settlement.get('settlementModel', '')}, "
                       f"windows {windows}): {state}" + (f"; a → {coming}" if coming else ""))
        rows = []
        for participant in settlement.get("participants") or []:
            for account in participant.get("accounts") or []:
                net = account.get("netSettlementAmount") or {}
                name = self._account_names.get(int(account.get("id", 0)), f"participant {participant.get('id')}")
                rows.append((f"{settlement.get('id')}/{participant.get('id')}/{account.get('id')}",
                             (name, str(account.get("id")), f"{net.get('amount')} {net.get('currency', '')}",
                              str(account.get("state")), str(account.get("reason") or ""))))
        fill_table(accounts, rows)

    def say(self, text: str, ok: bool = True) -> None:
        self.outcome = text
        line = self.query_one("#settlement-outcome", Static)
        line.update(text)
        line.set_class(ok, "ok")
        line.set_class(not ok, "error")
        self.notify(text, severity="information" if ok else "error", timeout=6)

    # --- actions -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]
        self.reload()

    def action_close_window(self) -> None:
        self._start(self._close)

    def action_settle(self) -> None:
        self._start(self._settle)

    def action_advance(self) -> None:
        self._start(self._advance)

    def action_abort(self) -> None:
        self._start(self._abort)

    def _start(self, flow: Callable[[], Awaitable[None]]) -> None:
        """One action at a time: its questions, its calls, then the outcome and a fresh read."""
        if self._busy:
            self.say("Still busy with the previous action", ok=False)
            return
        self._busy = True
        self.run_worker(partial(self._guard, flow), group="settlement-action")

    async def _guard(self, flow: Callable[[], Awaitable[None]]) -> None:
        try:
            await flow()
        except CallFailed as exc:
            self.say(str(exc), ok=False)
        except NETWORK_ERRORS as exc:
            self.say(f"The hub did not answer: {exc or type(exc).__name__}", ok=False)
        finally:
            self._busy = False
        self.dashboard.positions_changed()
        await self._load()

    async def _confirm(self, question: str, detail: str = "", *, danger: bool = False) -> bool:
        if await self.app.push_screen_wait(ConfirmScreen(question, detail, danger=danger)):
            return True
        self.say("Cancelled: nothing was sent")
        return False

    async def _must(self, what: str, answer: Answer) -> Any:
        if not answer.ok:
            raise CallFailed(f"{what} refused: {answer.error_text()}")
        return answer.body

    async def _close(self) -> None:
        open_windows = await self._list("/settlementWindows?state=OPEN")
        if not open_windows:
            raise CallFailed("There is no open window to close")
        window = max(open_windows, key=lambda w: int(w.get("id", 0)))
        if not await self._confirm(f"Close settlement window {window['id']}?",
                                   "Its payments are then netted and can be settled; a new window opens."):
            return
        body = await self._must(f"Closing window {window['id']}", await self.client.settlement(
            "POST", f"/settlementWindows/{window['id']}", {"state": "CLOSED", "reason": "closed from the dashboard"}))
        self.say(f"Window {window['id']} closed; window {body.get('id')} is open. e settles the closed windows")

    async def _settle(self) -> None:
        windows = [w for state in ("CLOSED", "ABORTED") for w in await self._list(f"/settlementWindows?state={state}")]
        if not windows:
            raise CallFailed("No CLOSED window to settle: close the open window first (c)")
        answer = await self.client.admin("GET", "/settlementModels")
        models = await self._must("Reading the settlement models", answer)
        groups = _by_model(windows, models)
        if not groups:
            raise CallFailed("No active DEFERRED NET settlement model settles the closed windows' currencies")
        plan = "; ".join(f"{model}: window{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}"
                         for model, ids in groups.items())
        if not await self._confirm("Create a settlement for the closed windows?", plan):
            return
        created = []
        for model, ids in groups.items():
            body = await self._must(f"Settling windows {', '.join(map(str, ids))} with {model}", await self.client.settlement(
                "POST", "/settlements", {"settlementModel": model, "reason": "settled from the dashboard",
                                         "settlementWindows": [{"id": i} for i in ids]}))
            self.settlement = body
            created.append(f"settlement {body.get('id')} ({model})")
        self.say(f"Created {', '.join(created)}: PENDING_SETTLEMENT. a moves every account to the next step")

    async def _current(self) -> dict[str, Any]:
        if self.settlement is None:
            raise CallFailed("No settlement yet: e settles the closed windows")
        return await self._must("Reading the settlement", await self.client.settlement(
            "GET", f"/settlements/{self.settlement['id']}"))

    async def _advance(self) -> None:
        current = await self._current()
        coming = next_state(current.get("state"))
        if coming is None:
            raise CallFailed(f"Settlement {current['id']} is {current.get('state')}: there is no next step "
                             "(e settles the closed windows)")
        if not await self._confirm(f"Move every account of settlement {current['id']} to {coming}?",
                                   STEP_WORDS.get(coming, "")):
            return
        body = {"participants": [{"id": p["id"], "accounts": [{"id": a["id"], "state": coming,
                                                               "reason": f"{coming} (dashboard)"}
                                                              for a in p.get("accounts", [])]}
                                 for p in current.get("participants", [])]}
        answer = await self._must(f"Moving settlement {current['id']} to {coming}", await self.client.settlement(
            "PUT", f"/settlements/{current['id']}", body))
        self.settlement = {**current, "state": answer.get("state", current.get("state"))}
        refused = [f"account {a.get('id')}: {a['errorInformation'].get('errorDescription', '')}"
                   for p in answer.get("participants", []) for a in p.get("accounts", []) if "errorInformation" in a]
        if refused:
            raise CallFailed(f"Settlement {current['id']} is {answer.get('state')}; refused: " + "; ".join(refused))
        windows = "".join(f"; window {w.get('id')} is {w.get('state')}" for w in answer.get("settlementWindows") or [])
        self.say(f"Settlement {current['id']} is {answer.get('state')}: {STEP_WORDS.get(coming, '')}{windows}")

    async def _abort(self) -> None:
        current = await self._current()
        if current.get("state") not in ABORTABLE:
            raise CallFailed(f"Settlement {current['id']} is {current.get('state')}: only a settlement in "
                             f"{', '.join(ABORTABLE)} can be aborted")
        if not await self._confirm(f"Abort settlement {current['id']}?",
                                   "Its accounts become ABORTED, reset positions come back, and its windows "
                                   "can be settled again.", danger=True):
            return
        answer = await self._must(f"Aborting settlement {current['id']}", await self.client.settlement(
            "PUT", f"/settlements/{current['id']}", {"state": "ABORTED", "reason": "aborted from the dashboard"}))
        self.say(f"Settlement {current['id']} is {answer.get('state')}; its windows can be settled again (e)")


def _by_model(windows: list[dict[str, Any]], models: Any) -> dict[str, list[int]]:
    """The closed windows to settle, by the name of the model that settles their content: the
    active DEFERRED NET model of the content's currency and account type, or the default one."""
    usable = [m for m in models or [] if isinstance(m, dict) and m.get("isActive")
              and m.get("settlementDelay") == "DEFERRED" and m.get("settlementGranularity") == "NET"]
    groups: dict[str, list[int]] = {}
    for window in windows:
        for content in window.get("content") or []:
            if content.get("state") not in ("CLOSED", "ABORTED"):
                continue
            same_type = [m for m in usable if m.get("ledgerAccountTypeId") == content.get("ledgerAccountType")]
            model = next((m for m in same_type if m.get("currency") == content.get("currencyId")), None) \
                or next((m for m in same_type if m.get("currency") is None), None)
            if model is not None:
                ids = groups.setdefault(str(model["name"]), [])
                if int(window["id"]) not in ids:
                    ids.append(int(window["id"]))
    return groups


def _time(value: Any) -> str:
    """"2026-12-06T06:08:10.605Z" -> "12-06 06:08:10"."""
    text = str(value or "")
    return f"{text[5:10]} {text[11:19]}" if len(text) >= 19 else text
