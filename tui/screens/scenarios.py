"""Scenarios: pick, run, watch, report (placeholder until built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from tui.screens.base import HubScreen


class ScenariosScreen(HubScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Scenarios: pick, run, watch, report")
        yield Footer()
