"""Join: the QR code the participants' phones scan to get a wallet of their own, and how many did.

Why in the terminal: in a workshop the trainer's laptop is on the projector; the room scans the
code from the screen. The code is the hub's `joinUrl` (GET /api/config: set when miniloop listens
beyond loopback, `--host 0.0.0.0`), drawn with the `qrcode` package as mobile_sim.qr does, in half
blocks (two modules per character cell) so a version 3 or 4 code fits an 80×24 terminal. It is
drawn black on white with a quiet zone whatever the terminal's theme: cameras want dark modules on
a light ground, and a light-on-dark code inside a dark terminal's edge would lose its quiet zone.
A terminal too short for it gets the URL large and a request to make the terminal taller.

The count of customers who joined comes from the simulators (GET /dfsps, `joined`), read when the
screen comes to the front, every REFRESH_S while it is there, and on `g`.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import qrcode
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Static

from tui.screens.base import HubScreen
from tui.state import THEME, TICK

REFRESH_S = 3.0
QUIET_ZONE = 2  # modules of white around the code (with the white cells' margin, enough to scan)
QR_STYLE = "#000000 on #ffffff"  # fixed on purpose: see the module's docstring
CHROME_ROWS = 3  # the header, the hint line and the footer
NO_URL = ("No join address: this hub listens on loopback only, so phones cannot reach it.\n\n"
          "Start it with\n\n    miniloop up --host 0.0.0.0\n\n"
          "and the QR code to join shows here.")


def qr_matrix(url: str) -> list[list[bool]]:
    """The modules of `url`'s QR code (True: dark), with its quiet zone."""
    code = qrcode.QRCode(border=QUIET_ZONE, error_correction=qrcode.constants.ERROR_CORRECT_L)
    code.add_data(url)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def qr_lines(url: str) -> list[str]:
    """The code in half blocks: each character is two modules, top and bottom ("▀", "▄", "█", " ")."""
    matrix = qr_matrix(url)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))  # one more light row: part of the quiet zone
    lines = []
    for top, bottom in zip(matrix[::2], matrix[1::2], strict=True):
        lines.append("".join("█" if t and b else "▀" if t else "▄" if b else " " for t, b in zip(top, bottom,
                                                                                                 strict=True)))
    return lines


def joined_text(dfsps: list[dict[str, Any]] | None) -> str:
    """"3 customers joined (2 at greenwallet, 1 at bluewallet)" from GET /dfsps."""
    if dfsps is None:
        return "Customers who joined: not read yet"
    counts = [(str(d.get("name")), int(d.get("joined") or 0)) for d in dfsps]
    total = sum(n for _, n in counts)
    if not total:
        return "No one has joined yet"
    each = ", ".join(f"{n} at {name}" for name, n in counts if n)
    return f"{total} customer{'s' if total != 1 else ''} joined ({each})"


class JoinScreen(HubScreen):
    TOPICS = {TICK, THEME}
    BINDINGS: ClassVar = [
        Binding("g", "refresh", "Read the customers again", show=False),
    ]
    DEFAULT_CSS = """
    JoinScreen #join-body {
        height: 1fr;
    }
    JoinScreen #qr {
        width: auto;
        height: auto;
        margin: 0 1;
    }
    JoinScreen #join-side {
        width: 1fr;
        height: auto;
        padding: 0 1;
    }
    JoinScreen #join-url {
        text-style: bold;
        color: $text-accent;
        margin: 1 0;
    }
    JoinScreen #join-count {
        margin-bottom: 1;
    }
    JoinScreen #join-help {
        color: $text-muted;
    }
    JoinScreen #join-help.main {
        color: $text;
        margin-top: 1;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.dfsps: list[dict[str, Any]] | None = None
        self._read_at = 0.0
        self._drawn: tuple[str | None, int] | None = None  # (url, rows available) of the code drawn

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Phones on the same network scan the code to join  g count again", classes="hint")
        with Horizontal(id="join-body"):
            yield Static(id="qr")
            with Vertical(id="join-side"):
                yield Static("Scan to get a wallet of your own", id="join-title")
                yield Static(id="join-url")
                yield Static(id="join-count")
                yield Static(id="join-help")
        yield Footer()

    @property
    def url(self) -> str | None:
        url = self.client.config.get("joinUrl")
        return url if isinstance(url, str) and url else None

    def show(self) -> None:
        if not self.is_mounted:
            return
        if time.monotonic() - self._read_at >= REFRESH_S:
            self._read_at = time.monotonic()
            self.read_joined()
        self.draw_code()
        self.query_one("#join-count", Static).update(joined_text(self.dfsps) if self.url else "")

    def on_resize(self) -> None:
        self.draw_code()

    def draw_code(self) -> None:
        url, rows = self.url, max(self.size.height - CHROME_ROWS, 0)
        if self._drawn == (url, rows):
            return
        self._drawn = (url, rows)
        qr, title = self.query_one("#qr", Static), self.query_one("#join-title", Static)
        link, help_ = self.query_one("#join-url", Static), self.query_one("#join-help", Static)
        count = self.query_one("#join-count", Static)
        link.display = count.display = url is not None
        help_.set_class(url is None, "main")
        if url is None:
            qr.display = False
            title.update("[b]Join[/b]")
            help_.update(NO_URL)
            return
        lines = qr_lines(url)
        if len(lines) > rows:
            qr.display = False
            title.update("Make the terminal taller to show the QR code "
                         f"({len(lines) + CHROME_ROWS} rows), or open this address on a phone:")
            link.update(Text(" ".join(url), style="bold"))  # spaced out: readable from the back of the room
            help_.update("")
            return
        qr.display = True
        qr.update(Text("\n".join(lines), style=QR_STYLE))
        title.update("Scan to get a wallet of your own")
        link.update(url)
        help_.update("The phone opens the wallet page and joins a simulated wallet with a new number "
                     "and 500 USD. Each one who joins is counted here.")

    @work(group="join-read", exclusive=True)
    async def read_joined(self) -> None:
        try:
            answer = await self.client.sim("GET", "/dfsps")
        except Exception:  # the hub went away for a moment: keep what we had, read again later
            return
        if answer.ok and isinstance(answer.body, list) and self.is_mounted:
            self.dfsps = answer.body
            self.query_one("#join-count", Static).update(joined_text(self.dfsps) if self.url else "")

    def action_refresh(self) -> None:
        self._read_at = time.monotonic()
        self.read_joined()
