"""The help screen: every key of the dashboard and what each screen is for."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

SCREENS_HELP = """\
[b]miniloop dashboard[/b] — these keys work everywhere; so does the mouse.

 [b]o[/b] Overview    DFSPs, positions against their caps, errors
 [b]t[/b] Transfers   every transfer as it happens; Enter opens one
 [b]p[/b] DFSPs       onboard, Net Debit Cap, funds in/out, activate
 [b]s[/b] Settle      settlement windows: close, settle step by step
 [b]r[/b] Scenario    run a payment story and watch it
 [b]f[/b] Faults      make a simulated DFSP slow, silent or down
 [b]j[/b] Join        the QR code phones scan to join the wallet
 [b]?[/b] Help        this screen (Escape closes it)
 [b]d[/b] Dark/light  for dark and light terminals
 [b]q[/b] Quit        leave (a hub started with the dashboard stops)

[b]Transfers[/b]
 [b]↑ ↓[/b] PgUp PgDn  move in the feed
 [b]Enter[/b], click   open the transfer: its messages and states
 [b]space[/b]          pause / resume the live feed, to read it
 [b]/[/b]              search: an id's start or an amount
 [b]Tab[/b]            the DFSP and state filters; [b]c[/b] clears them all
 [b]Escape[/b]         from the search back to the feed

[b]A transfer[/b]
 [b]↑ ↓[/b]            a message or a state: its headers and body below
 [b]Escape[/b]         back to the feed
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(SCREENS_HELP)
