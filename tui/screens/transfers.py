"""Transfers: the live feed, with filters (placeholder until built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from tui.screens.base import HubScreen


class TransfersScreen(HubScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Transfers: the live feed, with filters")
        yield Footer()
