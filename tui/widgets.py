"""Small pieces several screens draw: colours from the theme, a Net Debit Cap bar, amounts, times.

Why here: table cells are Rich text, which cannot name Textual's CSS variables ($success,
$warning, $error). `theme_style` reads the App's current theme instead, so a cell coloured with it
reads well on light and dark terminals and follows `d` (the screens redraw on the THEME topic).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.text import Text
from textual.app import App

NDC_WARN = Decimal("0.5")
NDC_DANGER = Decimal("0.8")
BAR_WIDTH = 10
FINAL_STYLE = {"COMMITTED": "text-success", "ABORTED": "text-error"}


def theme_style(app: App[Any], name: str, *, bold: bool = False) -> str:
    """A Rich style of the theme's colour `name` ("text-success", "warning", "error", ...)."""
    colour = app.theme_variables.get(name, "")
    if not colour.startswith("#"):
        colour = ""
    return f"{'bold ' if bold else ''}{colour}".strip() or ("bold" if bold else "")


def decimal(text: Any) -> Decimal | None:
    try:
        return Decimal(str(text))
    except (InvalidOperation, ValueError):
        return None


def amount_text(value: Any) -> str:
    """An FSPIOP amount as people read it: 1,234.5 (the text itself when it is not a number)."""
    number = decimal(value)
    if number is None or not number.is_finite():
        return str(value if value is not None else "")
    whole = number == number.to_integral_value()
    return f"{number:,.0f}" if whole else f"{number.normalize():,f}"


def ndc_use(position: Any, ndc: Any) -> Decimal | None:
    """How much of its Net Debit Cap a DFSP's position uses (0.25 = 25 %); None without a cap."""
    pos, cap = decimal(position), decimal(ndc)
    if pos is None or cap is None or cap <= 0:
        return None
    return max(pos, Decimal(0)) / cap


def ndc_bar(app: App[Any], position: Any, ndc: Any, width: int = BAR_WIDTH) -> Text:
    """A bar of the position against the Net Debit Cap, with the percentage: "▇▇▇▁▁▁▁▁▁▁  31%".

    Green up to half the cap, the theme's warning colour past NDC_WARN, its error colour past
    NDC_DANGER (then a payment soon fails with 4200).
    """
    use = ndc_use(position, ndc)
    if use is None:
        return Text("no cap" if decimal(ndc) in (None, Decimal(0)) else "", style=theme_style(app, "text-muted"))
    level = "success" if use < NDC_WARN else "warning" if use < NDC_DANGER else "error"
    filled = min(width, int((use * width).to_integral_value(rounding="ROUND_CEILING"))) if use > 0 else 0
    bar = Text()
    bar.append("█" * filled, style=theme_style(app, level))
    bar.append("░" * (width - filled), style=theme_style(app, "foreground-darken-3") or "dim")
    percent = " <1%" if 0 < use < Decimal("0.01") else f" {min(use * 100, Decimal(999)):3.0f}%"
    bar.append(percent, style=theme_style(app, f"text-{level}"))
    return bar


def state_text(app: App[Any], state: str, transfer_state: str) -> Text:
    """A transfer's state coloured by where it ended: committed, aborted, or still in flight."""
    style = FINAL_STYLE.get(transfer_state)
    return Text(state or transfer_state or "?", style=theme_style(app, style) if style else theme_style(app, "text-accent"))


def parse_time(at: str) -> datetime | None:
    """An event's ISO 8601 time ("2026-12-06T09:01:55.729Z"), or None."""
    if not at:
        return None
    try:
        return datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        return None


def clock(at: str) -> str:
    """The time of day of an event's ISO 8601 time, UTC as the hub gives it: 09:01:55."""
    moment = parse_time(at)
    return moment.strftime("%H:%M:%S") if moment else at[:8]
