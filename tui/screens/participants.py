"""Participants: onboard, NDC, funds in and out, activate and deactivate (placeholder until built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from tui.screens.base import HubScreen


class ParticipantsScreen(HubScreen):
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Participants: onboard, NDC, funds in and out, activate and deactivate")
        yield Footer()
