"""Overview: DFSPs, positions against their Net Debit Caps, liquidity, throughput, the open
settlement window, recent errors, and whether the live stream is connected.

Why one screen of all this: it is what a trainer leaves on the projector while people pay. Every
part is read from the HubState (tui.state), so drawing it never waits for the hub.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Sparkline, Static

from tui.screens.base import HubScreen
from tui.state import CONNECTION, ERRORS, POSITIONS, THEME, TICK, TRANSFERS, WINDOWS
from tui.widgets import amount_text, clock, ndc_bar, theme_style

ERRORS_SHOWN = 50


class OverviewScreen(HubScreen):
    TOPICS = {POSITIONS, ERRORS, TRANSFERS, CONNECTION, TICK, WINDOWS, THEME}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="connection")
        participants = DataTable(id="participants-table", cursor_type="none", zebra_stripes=True)
        participants.border_title = "DFSPs"
        yield participants
        with Horizontal(id="throughput-row"):
            with Vertical(id="throughput-box"):
                yield Static(id="rate")
                yield Sparkline([0], id="throughput")
            yield Static(id="window")
        errors = DataTable(id="errors-table", cursor_type="none")
        errors.border_title = "Recent errors"
        yield errors
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#participants-table", DataTable)
        table.add_column("DFSP", key="name")
        table.add_column("Cur", key="currency")
        table.add_column("Position", key="position")
        table.add_column("NDC", key="ndc")
        table.add_column("NDC use", key="use")
        table.add_column("Liquidity", key="liquidity")
        table.add_column("Active", key="active")
        errors = self.query_one("#errors-table", DataTable)
        errors.add_column("Time", key="time", width=8)
        errors.add_column("What", key="what", width=30)
        errors.add_column("Code", key="code", width=4)
        errors.add_column("Description", key="description", width=60)
        super().on_mount()

    def show(self) -> None:
        if not self.is_mounted:
            return
        self._show_connection()
        self._show_participants()
        self._show_throughput()
        self._show_window()
        self._show_errors()

    def _show_connection(self) -> None:
        line = self.query_one("#connection", Static)
        if self.hub.connected:
            line.update(Text.assemble(("● ", theme_style(self.app, "text-success")),
                                      f"live: connected to {self.client.wallet_url}"))
            line.set_class(False, "disconnected")
        else:
            reason = self.hub.disconnect_reason
            text = "connecting…" if reason is None else f"DISCONNECTED from {self.client.wallet_url} ({reason}); retrying"
            line.update(Text.assemble(("● ", theme_style(self.app, "text-error")), text))
            line.set_class(reason is not None, "disconnected")

    def _show_participants(self) -> None:
        table = self.query_one("#participants-table", DataTable)
        table.clear()
        for row in self.hub.hub_view.get("participants") or []:
            key = f"{row.get('name')}/{row.get('currency')}"
            active = row.get("active")
            table.add_row(
                str(row.get("name", "")), str(row.get("currency", "")),
                Text(amount_text(row.get("position")), justify="right"),
                Text(amount_text(row.get("ndc")), justify="right"),
                ndc_bar(self.app, row.get("position"), row.get("ndc")),
                Text(amount_text(row.get("liquidity")), justify="right"),
                Text("yes", style=theme_style(self.app, "text-success")) if active else Text("no", style=theme_style(self.app, "text-error")),
                key=key)

    def _show_throughput(self) -> None:
        per_second = self.hub.throughput()
        self.query_one("#throughput", Sparkline).data = [float(n) for n in per_second]
        now = per_second[-2] if len(per_second) > 1 else 0  # the last whole second
        peak = max(per_second) if per_second else 0
        total = sum(per_second)
        self.query_one("#rate", Static).update(
            f"Committed/s, 2 min: [b]{now}[/b] now · peak {peak} · {total} in all")

    def _show_window(self) -> None:
        window = self.hub.hub_view.get("window")
        widget = self.query_one("#window", Static)
        if isinstance(window, dict):
            since = str(window.get("createdDate", ""))
            widget.update(f"Settlement window\n[b]{window.get('id', '?')} {window.get('state', '')}[/b]\n"
                          f"since {since[:10]} {clock(since)}")
        else:
            widget.update("Settlement window\nnone open")

    def _show_errors(self) -> None:
        table = self.query_one("#errors-table", DataTable)
        newest = list(self.hub.errors)[-ERRORS_SHOWN:][::-1]
        if table.row_count == len(newest) and table.row_count and self._errors_top == id(newest[0]):
            return
        table.clear()
        style = theme_style(self.app, "text-error")
        for error in newest:
            table.add_row(clock(error.at), error.what, Text(error.code, style=style), error.description)
        self._errors_top = id(newest[0]) if newest else None

    _errors_top: int | None = None
