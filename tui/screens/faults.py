"""Faults: make a simulated DFSP slow, silent, rejecting or down (placeholder until built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from tui.screens.base import HubScreen


class FaultsScreen(HubScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Faults: make a simulated DFSP slow, silent, rejecting or down")
        yield Footer()
