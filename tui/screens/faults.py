"""Faults: make a simulated DFSP slow, silent, rejecting or down, and see what the room will see.

Why a screen for it: a trainer shows timeouts and errors live, with one key, while the phones and
the transfers screen show the result. Each simulated DFSP (the client's config) is a row with its
fault as the sim port reports it (GET /<dfsp>/faults, docs/simulator.md "Faults"); keys 1 to 5
(or the buttons) set normal, slow, silent, reject or down on the selected one with
PUT /<dfsp>/faults, and the row shows the answer at once. The delay of `slow` and the error code
of `reject` come from the two small inputs (`e` and `c` go there; Enter in one sets that mode).
The faults are read again every REFRESH_S while the screen is in front, so a change made with
curl shows up too.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Static

from tui.screens.base import HubScreen
from tui.state import THEME, TICK
from tui.widgets import theme_style

MODES = ("normal", "slow", "silent", "reject", "down")
REFRESH_S = 3.0
DEFAULT_DELAY = "5"
DELAY_MIN, DELAY_MAX = 0.1, 60.0

# what the room will see, one line per mode (at most 66 characters, so each fits at 80 columns)
EXPLAIN = {
    "normal": "answers at once: payments to it commit as usual",
    "slow": "answers after the delay: payments to it commit, only later",
    "silent": "payments to it wait, then expire with 3303; its payments out work",
    "reject": "refuses: lookups 3204, quotes 5101, transfers 5105 (or your code)",
    "down": "answers 503: the hub retries, gives up and tells the payer 1001",
}
MODE_STYLE = {"normal": "text-success", "slow": "text-warning", "silent": "text-warning",
              "reject": "text-error", "down": "text-error"}


def fault_body(mode: str, delay: str, code: str) -> dict[str, Any]:
    """The PUT /<dfsp>/faults body for `mode`, with the inputs' delay (slow) or code (reject).

    ValueError with a line for the user when the input is not usable.
    """
    body: dict[str, Any] = {"mode": mode}
    if mode == "slow":
        try:
            seconds = float(delay.strip() or DEFAULT_DELAY)
        except ValueError:
            raise ValueError(f"the delay must be a number of seconds, {DELAY_MIN:g} to {DELAY_MAX:g}") from None
        if not DELAY_MIN <= seconds <= DELAY_MAX:
            raise ValueError(f"the delay must be {DELAY_MIN:g} to {DELAY_MAX:g} seconds")
        body["delaySeconds"] = int(seconds) if seconds == int(seconds) else seconds
    elif mode == "reject" and code.strip():
        if not (len(code.strip()) == 4 and code.strip().isdigit()):
            raise ValueError("the error code must be 4 digits, such as 5104 (or empty: the usual codes)")
        body["errorCode"] = code.strip()
    return body


def describe(fault: dict[str, Any] | None) -> tuple[str, str]:
    """(mode, its details) of a GET /<dfsp>/faults answer, for the table."""
    if not fault:
        return "?", "not read yet"
    mode = str(fault.get("mode", "?"))
    if mode == "slow":
        return mode, f"{fault.get('delaySeconds'):g} s delay" if fault.get("delaySeconds") is not None else ""
    if mode == "reject":
        return mode, f"code {fault['errorCode']}" if fault.get("errorCode") else "usual codes"
    return mode, ""


class FaultsScreen(HubScreen):
    TOPICS = {TICK, THEME}
    BINDINGS: ClassVar = [
        # named on the hint line (the Footer's room is for the mode keys at 80 columns)
        Binding("1", "set_mode('normal')", "Normal", show=False),
        Binding("2", "set_mode('slow')", "Slow", show=False),
        Binding("3", "set_mode('silent')", "Silent", show=False),
        Binding("4", "set_mode('reject')", "Reject", show=False),
        Binding("5", "set_mode('down')", "Down", show=False),
        Binding("e", "edit('#delay')", "Edit the delay", show=False),
        Binding("c", "edit('#error-code')", "Edit the error code", show=False),
        Binding("g", "refresh", "Read again", show=False),
        Binding("escape", "leave_input", "Back to the table", show=False),
    ]
    DEFAULT_CSS = """
    FaultsScreen #faults-table {
        height: auto;
        max-height: 8;
        border: round $primary 50%;
        border-title-color: $text-primary;
    }
    FaultsScreen #fault-inputs {
        height: 1;
        padding: 0 1;
        margin-top: 1;
    }
    FaultsScreen #fault-inputs Label {
        margin-right: 1;
    }
    FaultsScreen #delay, FaultsScreen #error-code {
        width: 10;
        margin-right: 2;
    }
    FaultsScreen #fault-buttons {
        height: 1;
        padding: 0 1;
        margin-top: 1;
    }
    FaultsScreen #fault-buttons Button {
        margin-right: 1;
        min-width: 10;
    }
    FaultsScreen #fault-status {
        height: 1;
        padding: 0 1;
        margin-top: 1;
    }
    FaultsScreen #fault-status.problem {
        color: $text-error;
    }
    FaultsScreen #explain {
        height: auto;
        padding: 0 1;
        margin-top: 1;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.faults: dict[str, dict[str, Any]] = {}  # the last answer of GET/PUT /<dfsp>/faults, by DFSP
        self._read_at = 0.0
        self._changes = 0  # PUTs made: a read that started before one is not shown over its answer

    # --- layout ------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("↑↓ pick a DFSP  1-5 set its fault (below)  e delay  c code  g read again",
                     classes="hint")
        table: DataTable[Any] = DataTable(id="faults-table", cursor_type="row", zebra_stripes=True)
        table.border_title = "Simulated DFSPs"
        yield table
        with Horizontal(id="fault-inputs"):
            yield Label("Delay (slow), s:")
            yield Input(DEFAULT_DELAY, id="delay", compact=True, restrict=r"[0-9.]*", max_length=5)
            yield Label("Error code (reject):")
            yield Input(placeholder="usual", id="error-code", compact=True, restrict=r"[0-9]*", max_length=4)
        with Horizontal(id="fault-buttons"):
            for number, mode in enumerate(MODES, 1):
                yield Button(f"{number} {mode.capitalize()}", id=f"mode-{mode}", compact=True,
                             tooltip=EXPLAIN[mode])
        yield Static(id="fault-status")
        yield Static(id="explain")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#faults-table", DataTable)
        table.add_column("DFSP", key="dfsp", width=16)
        table.add_column("Fault", key="mode", width=8)
        table.add_column("Details", key="details", width=16)
        table.focus()
        super().on_mount()

    # --- reading and drawing -----------------------------------------------------------------

    def dfsps(self) -> list[str]:
        return [str(d.get("name")) for d in self.client.config.get("dfsps") or [] if d.get("name")]

    def selected(self) -> str | None:
        table = self.query_one("#faults-table", DataTable)
        if table.row_count == 0:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        return str(row_key.value)

    def show(self) -> None:
        if not self.is_mounted:
            return
        if time.monotonic() - self._read_at >= REFRESH_S:
            self._read_at = time.monotonic()
            self.read_faults()
        self.draw()

    def draw(self) -> None:
        table = self.query_one("#faults-table", DataTable)
        names = self.dfsps()
        if [str(k.value) for k in table.rows] != names:
            table.clear()
            for name in names:
                table.add_row(name, "", "", key=name)
        for name in names:
            mode, details = describe(self.faults.get(name))
            table.update_cell(name, "mode", Text(mode, style=theme_style(self.app, MODE_STYLE.get(mode, "text-muted"),
                                                                         bold=mode != "normal")))
            table.update_cell(name, "details", details)
        if not names:
            self.status("this hub simulates no DFSP (started with --empty?)", problem=True)
        self.draw_explanation()

    def draw_explanation(self) -> None:
        current = describe(self.faults.get(self.selected() or ""))[0]
        lines = Text()
        for number, mode in enumerate(MODES, 1):
            marker = "▶" if mode == current else " "
            style = theme_style(self.app, MODE_STYLE[mode], bold=mode == current)
            lines.append(f"{marker} {number} ")
            lines.append(f"{mode:<7}", style=style)
            lines.append(f" {EXPLAIN[mode]}\n" if number < len(MODES) else f" {EXPLAIN[mode]}")
        self.query_one("#explain", Static).update(lines)

    def status(self, text: str, *, problem: bool = False) -> None:
        line = self.query_one("#fault-status", Static)
        line.update(text)
        line.set_class(problem, "problem")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.draw_explanation()

    @work(group="faults-read", exclusive=True)
    async def read_faults(self, announce: bool = False) -> None:
        changes, found = self._changes, {}
        for name in self.dfsps():
            try:
                answer = await self.client.sim("GET", f"/{name}/faults")
            except Exception as exc:  # the hub went away for a moment: say so, try again later
                self.status(f"cannot read the faults: {exc or type(exc).__name__}", problem=True)
                return
            if answer.ok and isinstance(answer.body, dict):
                found[name] = answer.body
        if changes != self._changes or not self.is_mounted:
            return  # a fault was set meanwhile: its answer is newer
        self.faults.update(found)
        if announce:
            self.status(f"read at {time.strftime('%H:%M:%S')}")
        self.draw()

    # --- actions -----------------------------------------------------------------------------

    def action_set_mode(self, mode: str) -> None:
        dfsp = self.selected()
        if dfsp is None:
            self.status("no DFSP to set a fault on", problem=True)
            return
        try:
            body = fault_body(mode, self.query_one("#delay", Input).value, self.query_one("#error-code", Input).value)
        except ValueError as exc:
            self.status(str(exc), problem=True)
            return
        self.status(f"setting {dfsp} {mode}…")
        self.put_fault(dfsp, body)

    @work(group="faults-put")
    async def put_fault(self, dfsp: str, body: dict[str, Any]) -> None:
        self._changes += 1
        try:
            answer = await self.client.sim("PUT", f"/{dfsp}/faults", body)
        except Exception as exc:
            self.status(f"{dfsp}: the hub did not answer ({exc or type(exc).__name__})", problem=True)
            return
        if not answer.ok or not isinstance(answer.body, dict):
            self.status(f"{dfsp}: refused: {answer.error_text()}", problem=True)
            return
        self.faults[dfsp] = answer.body
        mode, details = describe(answer.body)
        self.status(f"{dfsp} is now {mode}" + (f" ({details})" if details else ""))
        if self.is_mounted:
            self.draw()

    def action_edit(self, selector: str) -> None:
        self.query_one(selector, Input).focus()

    def action_leave_input(self) -> None:
        self.query_one("#faults-table", DataTable).focus()

    def action_refresh(self) -> None:
        self._read_at = time.monotonic()
        self.status("reading the faults again…")
        self.read_faults(announce=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the delay sets slow, in the error code reject, on the selected DFSP."""
        self.action_leave_input()
        self.action_set_mode("slow" if event.input.id == "delay" else "reject")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("mode-"):
            self.action_set_mode(event.button.id.removeprefix("mode-"))
            self.action_leave_input()
