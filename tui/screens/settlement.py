"""Settlement: windows, close, settle step by step (placeholder until built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from tui.screens.base import HubScreen


class SettlementScreen(HubScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Settlement: windows, close, settle step by step")
        yield Footer()
