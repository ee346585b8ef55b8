"""Join: the QR code phones scan to join the wallet simulator (placeholder until built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from tui.screens.base import HubScreen


class JoinScreen(HubScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Join: the QR code phones scan to join the wallet simulator")
        yield Footer()
