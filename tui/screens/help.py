"""The help screen: every key of the dashboard and what each screen is for."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

SCREENS_HELP = """\
[b]miniloop dashboard[/b] — keys work on every screen; the mouse works too.

  [b]o[/b]  Overview       DFSPs, positions against their Net Debit Caps, liquidity, throughput, errors
  [b]t[/b]  Transfers      every transfer as it happens; Enter opens one: its messages and states
  [b]p[/b]  Participants   onboard a DFSP, change its NDC, funds in and out, activate or deactivate
  [b]s[/b]  Settlement     settlement windows: close one, settle it step by step
  [b]r[/b]  Scenarios      run a payment story and watch it
  [b]f[/b]  Faults         make a simulated DFSP slow, silent, rejecting or down
  [b]j[/b]  Join           the QR code phones scan to join the wallet simulator
  [b]?[/b]  Help           this screen (Escape closes it)
  [b]d[/b]  Dark / light   for dark and light terminals
  [b]q[/b]  Quit           leave the dashboard (a hub started with it stops too)
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(SCREENS_HELP)
