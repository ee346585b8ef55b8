"""Sequence diagrams of a step's messages, drawn as inline SVG by hand.

Why by hand: the HTML report must be one self-contained file that opens anywhere, offline, with
JavaScript off, so no Mermaid or PlantUML. A sequence diagram is only boxes, dashed lifelines,
arrows and text; placing them is a few lines of arithmetic. One lifeline per participant the
step's messages name, the hub in the middle; one arrow per message, top to bottom, its time in
ms on the left. Error callbacks and messages with a note are red. Each arrow carries a <title>
tooltip with the full path, headers and body, and links to the message's details below the SVG.
No ids, no url() references and no namespace URL, so several diagrams can share one page.
"""

from __future__ import annotations

from html import escape

from miniloop.scenario.report.terminal import body_json, body_summary, is_error, ms, shorten
from miniloop.scenario.results import HUB, Message

TIME_W = 64  # the left margin, where the times go
COL_W = 220  # room per lifeline
HEAD_H = 44  # the participant boxes
LINE_H = 15  # one line of label text
CHAR_W = 6.7  # the width of one character of the 11px monospace label font
INK, RED, GREY = "#37474f", "#c62828", "#607d8b"
FONT = "font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px"


def lifelines(messages: list[Message]) -> list[str]:
    """The participants in order of first appearance, with the hub (when present) in the middle."""
    names = list(dict.fromkeys(n for m in messages for n in (m.sender, m.receiver)))
    if HUB not in names:
        return names
    others = [n for n in names if n != HUB]
    middle = (len(others) + 1) // 2
    return others[:middle] + [HUB] + others[middle:]


def cut_path(method: str, path: str, status: int | None, room: int) -> str:
    """`METHOD path → status` in `room` characters, the middle of the path elided if it must be."""
    tail = f" → {status}" if status is not None else ""
    left = room - len(method) - 1 - len(tail)
    if len(path) > left:
        keep = max(left - 1, 4)
        path = path[: keep - keep // 3] + "…" + path[len(path) - keep // 3 :]
    return f"{method} {path}{tail}"


def tooltip(msg: Message) -> str:
    status = f" → {msg.status}" if msg.status is not None else ""
    lines = [f"{msg.sender} → {msg.receiver}: {msg.method} {msg.path}{status}"]
    if msg.note:
        lines.append(f"note: {msg.note}")
    if msg.headers:
        lines += ["", "headers:"] + [f"{k}: {v}" for k, v in msg.headers.items()]
    if msg.body not in (None, "", {}):
        lines += ["", "body:", body_json(msg.body)]
    return "\n".join(lines)


def _text(x: float, y: float, text: str, *, anchor: str = "middle", fill: str = INK, extra: str = "") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" fill="{fill}" style="{FONT}{extra}" '
            f'paint-order="stroke" stroke="#fff" stroke-width="3">{escape(text)}</text>')


def _arrow(x1: float, x2: float, y: float, color: str) -> str:
    """A horizontal arrow, or a small loop for a message a participant sends itself."""
    if x1 == x2:
        d = f"M{x1:.0f},{y - 8:.0f} h28 v16 h-26"
        tip = x1 + 2
        head = f"{tip:.0f},{y + 8:.0f} {tip + 8:.0f},{y + 4:.0f} {tip + 8:.0f},{y + 12:.0f}"
        return (f'<path d="{d}" fill="none" stroke="{color}" stroke-width="1.5"/>'
                f'<polygon points="{head}" fill="{color}"/>')
    step = 8 if x2 > x1 else -8
    head = f"{x2:.0f},{y:.0f} {x2 - step:.0f},{y - 4:.0f} {x2 - step:.0f},{y + 4:.0f}"
    return (f'<line x1="{x1:.0f}" y1="{y:.0f}" x2="{x2 - step:.0f}" y2="{y:.0f}" stroke="{color}" stroke-width="1.5"/>'
            f'<line x1="{x1:.0f}" y1="{y:.0f}" x2="{x2:.0f}" y2="{y:.0f}" stroke="transparent" stroke-width="12"/>'
            f'<polygon points="{head}" fill="{color}"/>')


def _row(msg: Message, xs: dict[str, float], top: float, width: float, href: str | None) -> tuple[str, float]:
    """One message: its labels above the arrow, its note below; returns the SVG and the next row's top."""
    x1, x2 = xs[msg.sender], xs[msg.receiver]
    color = RED if is_error(msg) or msg.note else INK
    span = min(max(abs(x2 - x1), COL_W * 1.5), width - TIME_W - 8)
    room = int(span / CHAR_W) - 2
    mid = min(max((x1 + x2) / 2 + (20 if x1 == x2 else 0), TIME_W + room * CHAR_W / 2), width - room * CHAR_W / 2)
    title = cut_path(msg.method, msg.path, msg.status, room)
    parts = [_text(mid, top + 11, title, fill=color, extra=";font-weight:600")]
    summary = body_summary(msg.body)
    if summary:
        parts.append(_text(mid, top + 11 + LINE_H, shorten(summary, room), fill=RED if is_error(msg) else GREY))
    y = top + LINE_H * len(parts) + 8
    parts.append(_text(6, y + 4, f"{ms(msg.at)} ms", anchor="start", fill=GREY))
    parts.append(_arrow(x1, x2, y, color))
    bottom = y + (8 if x1 == x2 else 0)
    if msg.note:
        parts.append(_text(mid, bottom + 15, shorten(msg.note, room), fill=RED, extra=";font-style:italic"))
        bottom += LINE_H
    body = f"<title>{escape(tooltip(msg))}</title>" + "".join(parts)
    group = f'<a href="{escape(href)}">{body}</a>' if href else body
    return f'<g class="msg">{group}</g>', bottom + 14


def _heads(names: list[str], xs: dict[str, float], height: float) -> list[str]:
    out = []
    for name in names:
        x, hub = xs[name], name == HUB
        out.append(f'<line x1="{x:.0f}" y1="{HEAD_H - 8}" x2="{x:.0f}" y2="{height - 6:.0f}" stroke="#b0bec5" '
                   f'stroke-dasharray="5,4"/>')
        out.append(f'<rect x="{x - COL_W / 2 + 14:.0f}" y="8" width="{COL_W - 28}" height="28" rx="4" '
                   f'fill="{"#37474f" if hub else "#eceff1"}" stroke="#37474f"/>')
        label = shorten(name, int((COL_W - 40) / CHAR_W))
        out.append(f'<text x="{x:.0f}" y="27" text-anchor="middle" fill="{"#fff" if hub else INK}" '
                   f'style="{FONT};font-size:12px;font-weight:600">{escape(label)}</text>')
    return out


def sequence_svg(messages: list[Message], *, anchor: str | None = None, label: str = "sequence diagram") -> str:
    """The inline SVG of `messages` ("" when there are none).

    With `anchor`, arrow i links to `#<anchor>-<i>` (i from 1), the id of the message's details.
    """
    if not messages:
        return ""
    names = lifelines(messages)
    xs = {n: TIME_W + COL_W * (i + 0.5) for i, n in enumerate(names)}
    width = TIME_W + COL_W * len(names) + 8
    rows, top = [], HEAD_H + 8.0
    for i, msg in enumerate(messages, 1):
        svg, top = _row(msg, xs, top, width, f"#{anchor}-{i}" if anchor else None)
        rows.append(svg)
    height = top + 4
    return (f'<svg class="seq" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'role="img" aria-label="{escape(label)}" style="max-width:100%;height:auto">'
            + "".join(_heads(names, xs, height)) + "".join(rows) + "</svg>")
