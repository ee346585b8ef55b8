"""What every dashboard screen shares: the hub's state, the client, and being told what changed.

Why: the event stream (tui.app) updates one HubState whatever is on screen. A screen names the
topics it shows (`TOPICS`, from tui.state) and draws itself in `show()`: when it mounts, when it
comes back to the front, and when one of its topics changed while it is in front. A screen in
the background redraws only when it comes back, so the stream never waits for drawing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.message import Message
from textual.screen import Screen

if TYPE_CHECKING:
    from tui.app import Dashboard
    from tui.client import HubClient
    from tui.state import HubState


class StateChanged(Message):
    """Posted to the screen in front when the stream changed some topics of the HubState."""

    def __init__(self, topics: set[str]) -> None:
        super().__init__()
        self.topics = topics


class HubScreen(Screen[None]):
    """A top-level screen of the dashboard (one per mode)."""

    TOPICS: ClassVar[set[str]] = set()

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    @property
    def hub(self) -> HubState:
        return self.dashboard.state

    @property
    def client(self) -> HubClient:
        return self.dashboard.client

    def show(self) -> None:
        """Draw the screen from `self.hub` (override)."""

    def on_mount(self) -> None:
        self.show()

    def on_screen_resume(self) -> None:
        self.show()

    def on_state_changed(self, message: StateChanged) -> None:
        if message.topics & self.TOPICS:
            self.show()
