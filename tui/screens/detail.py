"""A transfer's detail: every FSPIOP message of its payment and every state the hub gave it, on
one timeline, with the selected message's headers and body. Escape goes back.

Why one timeline: the lookup, the quote and the transfer are three conversations through the
hub; seeing the messages of all three (found by the trace id they share) next to the hub's own
state changes shows where the time went and where it failed. Messages are known only for the
simulated DFSPs (the simulators report what they send and receive); for a DFSP outside, only the
hub's states are known, and the screen says so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.screens.base import StateChanged
from tui.state import THEME, TRANSFERS, WIRE, HubState, Transfer
from tui.widgets import amount_text, parse_time, state_text, theme_style

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
HEADER_ORDER = ("fspiop-source", "fspiop-destination", "date", "traceparent", "content-type", "accept")


@dataclass
class Step:
    """One line of the timeline: a message (`message`) or a state of the hub (`state`)."""

    at: str
    moment: datetime | None
    message: dict[str, Any] | None = None
    state: str = ""


def timeline(transfer: Transfer, messages: list[dict[str, Any]]) -> list[Step]:
    """The messages and the states, by time (a message and a state at the same millisecond keep
    the order they were recorded in: messages first)."""
    steps = [Step(str(m.get("at", "")), parse_time(str(m.get("at", ""))), message=m) for m in messages]
    steps += [Step(at, parse_time(at), state=state) for state, at in transfer.states]
    order = {id(step): n for n, step in enumerate(steps)}
    far = datetime.max.replace(tzinfo=None)

    def key(step: Step) -> tuple[Any, int]:
        moment = step.moment.replace(tzinfo=None) if step.moment else far
        return moment, order[id(step)]

    return sorted(steps, key=key)


def short_path(path: str) -> str:
    """A path with its ids cut to 8 characters, so the timeline fits 80 columns."""
    return _UUID.sub(lambda m: m.group(0)[:8] + "…", path)


def who(message: dict[str, Any]) -> str:
    dfsp = str(message.get("dfsp", "?"))
    return f"{dfsp} → Hub" if message.get("direction") == "out" else f"Hub → {dfsp}"


def message_text(message: dict[str, Any]) -> str:
    """A message as the body pane shows it: the request line, the headers it has, the body."""
    lines = [f"{who(message)}  {message.get('method', '')} {message.get('path', '')}",
             f"HTTP {message.get('status', '')}" + (f"   error {message['errorCode']}" if message.get("errorCode") else ""),
             f"at {message.get('at', '')}   trace {message.get('traceId') or '-'}"]
    headers = message.get("headers")
    if isinstance(headers, dict) and headers:
        lines.append("")
        named = {str(k).lower(): v for k, v in headers.items()}
        ordered = [k for k in HEADER_ORDER if k in named] + sorted(k for k in named if k not in HEADER_ORDER)
        original = {str(k).lower(): str(k) for k in headers}
        lines += [f"{original[k]}: {named[k]}" for k in ordered]
    lines.append("")
    body = message.get("body")
    lines.append("(no body)" if body is None else json.dumps(body, indent=2, ensure_ascii=False)
                 if not isinstance(body, str) else body)
    return "\n".join(lines)


class DetailScreen(Screen[None]):
    """The detail of one transfer, pushed on top of the transfers screen."""

    BINDINGS: ClassVar = [Binding("escape,backspace", "back", "Back", show=False)]  # on the hint line

    def __init__(self, transfer: Transfer) -> None:
        super().__init__()
        self.transfer = transfer
        self.steps: list[Step] = []

    @property
    def hub(self) -> HubState:
        return self.app.state  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="summary")
        yield Static(id="detail-note")
        yield Static("[b]Esc[/b] back · [b]↑↓[/b] pick a line: its headers and body show below", classes="hint")
        table = DataTable(id="timeline", cursor_type="row")
        table.border_title = "Timeline"
        yield table
        with VerticalScroll(id="body-pane") as pane:
            pane.border_title = "Message"
            yield Static(id="body", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#timeline", DataTable)
        table.add_column("+ms", key="ms")
        table.add_column("Who", key="who")
        table.add_column("What", key="what")
        table.add_column("HTTP", key="status")
        table.add_column("Error", key="error")
        self.show()
        table.focus()

    def on_state_changed(self, message: StateChanged) -> None:
        if message.topics & {WIRE, TRANSFERS, THEME}:
            self.show(redraw=THEME in message.topics)

    def show(self, *, redraw: bool = False) -> None:
        transfer = self.transfer
        messages = self.hub.messages_of(transfer)
        steps = timeline(transfer, messages)
        self._show_summary(messages)
        if not redraw and len(steps) == len(self.steps) and self.steps:
            return
        self.steps = steps
        table = self.query_one("#timeline", DataTable)
        cursor = table.cursor_row
        table.clear()
        first = next((s.moment for s in steps if s.moment), None)
        error_style = theme_style(self.app, "text-error")
        for n, step in enumerate(steps):
            ms = f"{(step.moment - first).total_seconds() * 1000:.0f}" if step.moment and first else ""
            if step.message is not None:
                m = step.message
                status = str(m.get("status", ""))
                table.add_row(Text(ms, justify="right"), who(m),
                              f"{m.get('method', '')} {short_path(str(m.get('path', '')))}",
                              Text(status, style=error_style if status[:1] in ("4", "5") else ""),
                              Text(str(m.get("errorCode") or ""), style=error_style), key=f"step{n}")
            else:
                final = step.state in ("COMMITTED", "SETTLED") and "COMMITTED" or ""
                final = final or ("ABORTED" if step.state.startswith(("ABORTED", "EXPIRED", "INVALID")) else "")
                table.add_row(Text(ms, justify="right"), "Hub", Text.assemble("state ", state_text(
                    self.app, step.state, final)), "", "", key=f"step{n}")
        if table.row_count:
            table.move_cursor(row=min(max(cursor, 0), table.row_count - 1), animate=False)
        self._show_body(table.cursor_row)

    def _show_summary(self, messages: list[dict[str, Any]]) -> None:
        t = self.transfer
        summary = Text.assemble(
            ("Transfer ", ""), (t.transfer_id, "bold"), "\n",
            f"{t.payer or '?'} → {t.payee or '?'}   {amount_text(t.amount)} {t.currency}   ",
            state_text(self.app, t.state, t.transfer_state))
        if t.error_code:
            summary.append(f"   {t.error_code} {t.error_description or ''}".rstrip(), style=theme_style(self.app, "text-error"))
        self.query_one("#summary", Static).update(summary)
        note = self.query_one("#detail-note", Static)
        if messages:
            note.update(f"{len(messages)} FSPIOP messages of this payment (lookup, quote, transfer) and "
                        f"{len(t.states)} hub states")
        else:
            note.update("No FSPIOP messages known: its DFSPs are not simulated here (or the messages are "
                        "older than the dashboard), so only the hub's states are shown.")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_body(event.cursor_row)

    def _show_body(self, row: int) -> None:
        body = self.query_one("#body", Static)
        if not 0 <= row < len(self.steps):
            body.update("")
            return
        step = self.steps[row]
        if step.message is not None:
            body.update(message_text(step.message))
        else:
            t = self.transfer
            text = f"The hub recorded state {step.state} at {step.at}"
            if step.state.startswith(("ABORTED", "EXPIRED", "INVALID")) and t.error_code:
                text += f"\nerror {t.error_code} {t.error_description or ''}"
            body.update(text)

    def action_back(self) -> None:
        self.app.pop_screen()
