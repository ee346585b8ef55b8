"""Overview: DFSPs, positions, NDC use, liquidity, throughput, recent errors (placeholder until built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from tui.screens.base import HubScreen


class OverviewScreen(HubScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Overview: DFSPs, positions, NDC use, liquidity, throughput, recent errors")
        yield Footer()
