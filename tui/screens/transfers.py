"""Transfers: every transfer as it happens, newest first, with filters; Enter opens one.

Why redraw on a timer: under load the hub commits hundreds of transfers a second, each one an
event. The screen only notes that the feed changed and redraws at most every REDRAW_S, keeping
the cursor on the transfer it was on. Paused (space), it does not redraw at all, so one can read.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Header, Input, Select, Static

from tui.screens.base import HubScreen, StateChanged
from tui.state import CONNECTION, FINAL_STATES, PARTICIPANTS, POSITIONS, THEME, TRANSFERS, Transfer
from tui.widgets import amount_text, clock, state_text, theme_style

SHOWN = 500  # rows at most (newest first)
REDRAW_S = 0.3
STATES = (("All states", "all"), ("In flight", "flight"), ("Committed", "COMMITTED"), ("Aborted", "ABORTED"))
ALL_DFSPS = "*"


def matches(transfer: Transfer, dfsp: str, state: str, text: str) -> bool:
    """Whether a transfer passes the filters: a DFSP (payer or payee), a state, and free text
    (the start of its id, or its amount)."""
    if dfsp != ALL_DFSPS and dfsp not in (transfer.payer, transfer.payee):
        return False
    if state == "flight" and transfer.transfer_state in FINAL_STATES:
        return False
    if state in FINAL_STATES and transfer.transfer_state != state:
        return False
    text = text.strip().lower()
    if text:
        amount = transfer.amount.lower()
        return (transfer.transfer_id.lower().startswith(text) or amount == text
                or amount_text(transfer.amount).lower() == text or amount.startswith(text))
    return True


class TransfersScreen(HubScreen):
    TOPICS = {TRANSFERS, PARTICIPANTS, POSITIONS, CONNECTION, THEME}
    BINDINGS: ClassVar = [
        # shown on the status line (the Footer's room is for the mode keys at 80 columns)
        Binding("enter", "open", "Detail", show=False),
        Binding("space", "pause", "Pause/resume", show=False),
        Binding("slash", "search", "Search", key_display="/", show=False),
        Binding("c", "clear_filters", "Clear filters", show=False),
        Binding("escape", "leave_search", "Table", show=False),
    ]

    paused = False
    _dirty = True
    _dfsps: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filters"):
            yield Select([], prompt="All DFSPs", id="dfsp-filter", compact=True, allow_blank=True)
            yield Select(STATES, value="all", id="state-filter", compact=True, allow_blank=False)
            yield Input(placeholder="/ id or amount", id="text-filter", compact=True)
        yield Static(id="feed-status")
        table = DataTable(id="transfers-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#transfers-table", DataTable)
        table.add_column("Time", key="time")
        table.add_column("Id", key="id")
        table.add_column("Payer → payee", key="who")
        table.add_column("Amount", key="amount")
        table.add_column("State", key="state")
        table.add_column("Error", key="error")
        table.focus()
        self.set_interval(REDRAW_S, self._redraw_if_dirty)
        super().on_mount()

    # --- drawing -----------------------------------------------------------------------------

    def on_state_changed(self, message: StateChanged) -> None:
        if message.topics & {THEME, CONNECTION}:
            self._dirty = True
            self.show()
        elif message.topics & self.TOPICS:
            self._dirty = True  # drawn by the timer, at most every REDRAW_S

    def _redraw_if_dirty(self) -> None:
        if self._dirty and not self.paused and self.app.screen is self:
            self.show()

    def filters(self) -> tuple[str, str, str]:
        dfsp = self.query_one("#dfsp-filter", Select).value
        state = self.query_one("#state-filter", Select).value
        text = self.query_one("#text-filter", Input).value
        return (dfsp if isinstance(dfsp, str) else ALL_DFSPS, state if isinstance(state, str) else "all", text)

    def show(self) -> None:
        self.draw(force=False)

    def draw(self, *, force: bool) -> None:
        """Draw the feed; paused, only the status line, unless `force` (the filters changed)."""
        if not self.is_mounted:
            return
        self._update_dfsps()
        dfsp, state, text = self.filters()
        everything = self.hub.newest_transfers(len(self.hub.transfers))
        shown = [t for t in everything if matches(t, dfsp, state, text)][:SHOWN]
        self._show_status(len(shown), len(everything))
        if self.paused and not force:
            return
        self._dirty = False
        table = self.query_one("#transfers-table", DataTable)
        current = self.selected_id()
        table.clear()
        for transfer in shown:
            table.add_row(*self._row(transfer), key=transfer.transfer_id)
        if current is not None and current in table.rows:
            table.move_cursor(row=table.get_row_index(current), animate=False)

    def _row(self, transfer: Transfer) -> tuple[object, ...]:
        who = f"{transfer.payer or '?'} → {transfer.payee or '?'}"
        amount = Text(f"{amount_text(transfer.amount)} {transfer.currency}".strip(), justify="right")
        error = Text(transfer.error_code or "", style=theme_style(self.app, "text-error"))
        return (clock(transfer.when), transfer.transfer_id[:8], who, amount,
                state_text(self.app, transfer.state, transfer.transfer_state), error)

    def _show_status(self, shown: int, total: int) -> None:
        live = ("[b]PAUSED[/b]" if self.paused else "live" if self.hub.connected else "[b]not connected[/b]")
        self.query_one("#feed-status", Static).update(
            f"{shown} of {total} shown · {live} │ [b]⏎[/b] detail [b]␣[/b] {'resume' if self.paused else 'pause'} "
            "[b]/[/b] search [b]c[/b] clear")

    def _update_dfsps(self) -> None:
        names = {p.get("name") for p in self.hub.hub_view.get("participants") or []}
        names |= {t.payer for t in self.hub.transfers.values()} | {t.payee for t in self.hub.transfers.values()}
        dfsps = tuple(sorted(n for n in names if isinstance(n, str) and n))
        if dfsps != self._dfsps:
            self._dfsps = dfsps
            select = self.query_one("#dfsp-filter", Select)
            value = select.value
            select.set_options([(name, name) for name in dfsps])
            if isinstance(value, str) and value in dfsps:
                select.value = value

    # --- reading and acting ------------------------------------------------------------------

    def selected_id(self) -> str | None:
        table = self.query_one("#transfers-table", DataTable)
        if not table.row_count:
            return None
        try:
            return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - no row under the cursor
            return None

    def on_select_changed(self, event: Select.Changed) -> None:
        self.draw(force=True)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.draw(force=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#transfers-table", DataTable).focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "transfers-table" and event.row_key.value:
            self.open(event.row_key.value)

    def action_open(self) -> None:
        transfer_id = self.selected_id()
        if transfer_id:
            self.open(transfer_id)

    def open(self, transfer_id: str) -> None:
        from tui.screens.detail import DetailScreen

        transfer = self.hub.transfers.get(transfer_id)
        if transfer is not None:
            self.app.push_screen(DetailScreen(transfer))

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.show()

    def action_search(self) -> None:
        self.query_one("#text-filter", Input).focus()

    def action_leave_search(self) -> None:
        self.query_one("#transfers-table", DataTable).focus()

    def action_clear_filters(self) -> None:
        self.query_one("#dfsp-filter", Select).clear()
        self.query_one("#state-filter", Select).value = "all"
        self.query_one("#text-filter", Input).value = ""
        self.draw(force=True)
