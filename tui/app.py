"""The Textual dashboard of a running hub: `miniloop` (with the hub) or `miniloop tui` (attached).

Why one App with modes: each screen (overview, transfers, participants, settlement, scenarios,
faults, join) keeps its own state when you switch away and back, and one key reaches each from
anywhere. The App owns the two things every screen needs: the HubClient (tui.client) and the
HubState (tui.state) fed by one worker that reads the hub's event stream for as long as the
dashboard runs. When the state changes, the screen in front is told which topics changed
(tui.screens.base.StateChanged); positions are read again from the hub, at most every
POSITIONS_EVERY_S, when an event says they moved.
"""

from __future__ import annotations

import asyncio
import logging

from textual.app import App
from textual.binding import Binding
from textual.screen import ModalScreen

from tui.client import HubClient
from tui.screens.base import StateChanged
from tui.screens.faults import FaultsScreen
from tui.screens.help import HelpScreen
from tui.screens.join import JoinScreen
from tui.screens.overview import OverviewScreen
from tui.screens.participants import ParticipantsScreen
from tui.screens.scenarios import ScenariosScreen
from tui.screens.settlement import SettlementScreen
from tui.screens.transfers import TransfersScreen
from tui.state import POSITIONS, THEME, TICK, HubState

log = logging.getLogger(__name__)

POSITIONS_EVERY_S = 0.5
EVENTS_RESTART_S = 2.0


class Dashboard(App[None]):
    """The dashboard. `owns_hub`: started by `miniloop`, so quitting it stops the hub (the caller does)."""

    TITLE = "miniloop"
    CSS_PATH = "dashboard.tcss"
    MODES = {
        "overview": OverviewScreen, "transfers": TransfersScreen, "participants": ParticipantsScreen,
        "settlement": SettlementScreen, "scenarios": ScenariosScreen, "faults": FaultsScreen, "join": JoinScreen,
    }
    DEFAULT_MODE = "overview"
    ENABLE_COMMAND_PALETTE = False  # its ^p would take room the mode keys need at 80 columns
    # the Footer shows these on every screen: short words, so all of them fit in 80 columns;
    # a screen's own keys are on a hint line of that screen (and in the help)
    BINDINGS = [
        Binding("o", "switch_mode('overview')", "Overview"),
        Binding("t", "switch_mode('transfers')", "Transfers"),
        Binding("p", "switch_mode('participants')", "DFSPs", tooltip="Participants"),
        Binding("s", "switch_mode('settlement')", "Settle", tooltip="Settlement"),
        Binding("r", "switch_mode('scenarios')", "Scenario", tooltip="Scenarios"),
        Binding("f", "switch_mode('faults')", "Faults"),
        Binding("j", "switch_mode('join')", "Join"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("d", "toggle_dark", "Dark/light", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, client: HubClient, *, owns_hub: bool = False) -> None:
        super().__init__()
        self.client = client
        self.state = HubState()
        self.owns_hub = owns_hub
        self.sub_title = client.wallet_url
        self._positions_due = asyncio.Event()

    def on_mount(self) -> None:
        self.run_worker(self._read_events(), name="events", group="hub", exclusive=False)
        self.run_worker(self._refresh_positions(), name="positions", group="hub", exclusive=False)
        self._positions_due.set()
        self.set_interval(1.0, self._tick)

    async def _read_events(self) -> None:
        """Feed the HubState from the stream for as long as the dashboard runs; never fail the app
        (client.events reconnects by itself; anything it did not expect starts it again)."""
        while True:
            try:
                async for kind, data in self.client.events():
                    changed = self.state.apply(kind, data)
                    if POSITIONS in changed or kind == "hello":
                        self._positions_due.set()
                    if changed:
                        self.tell_screen(changed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a hub going away must never crash the dashboard
                log.warning("the event stream failed: %s", exc)
                self.tell_screen(self.state.apply("disconnected", {"reason": str(exc) or type(exc).__name__}))
                await asyncio.sleep(EVENTS_RESTART_S)

    async def _refresh_positions(self) -> None:
        """Read the positions and the open window again when due; never more often than POSITIONS_EVERY_S."""
        while True:
            await self._positions_due.wait()
            self._positions_due.clear()
            try:
                answer = await self.client.hub_view()
            except Exception as exc:  # the hub went away for a moment: the stream says so too
                log.info("reading the positions failed: %s", exc)
            else:
                if answer.ok and isinstance(answer.body, dict):
                    self.state.hub_view = answer.body
                    self.tell_screen({POSITIONS})
            await asyncio.sleep(POSITIONS_EVERY_S)

    def positions_changed(self) -> None:
        """A screen changed something the positions show (funds, limits): read them again soon."""
        self._positions_due.set()

    def _tick(self) -> None:
        self.state.tick()
        self.tell_screen({TICK})

    def tell_screen(self, topics: set[str]) -> None:
        if not topics:
            return
        try:
            screen = self.screen
        except Exception:  # noqa: BLE001 - no screen yet, or the app is closing
            return
        screen.post_message(StateChanged(topics))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """No switching screens while a dialog (a form, a confirmation, help) waits for an answer."""
        if action in ("switch_mode", "help") and isinstance(self.screen, ModalScreen):
            return False
        return True

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"
        self.tell_screen({THEME})
