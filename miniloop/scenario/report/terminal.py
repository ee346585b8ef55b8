"""Showing a scenario run in a terminal: live, message by message, then a summary table.

Why live: a scenario talks to a real hub and perhaps a fintech's own DFSP; whoever runs it wants
to see each request and callback as it happens, not only a verdict at the end. The engine calls
TerminalProgress as the run goes; `summary_table` is plain ASCII so it also reads well in CI logs.
The small text helpers here (`body_summary`, `step_label`, `deviations_by_rule`) are shared by
the JUnit and HTML outputs so that all three describe a message or a step in the same words.
"""

from __future__ import annotations

import json
import os
import textwrap
from typing import Any, TextIO

from miniloop.scenario.results import Deviation, Message, RunResult, StepResult

WIDTH = 100  # the summary table never grows wider than this
SUMMARY_MAX = 110  # characters of a body summary
_ANSI = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1", "cyan": "36"}


def shorten(text: str, width: int) -> str:
    """`text` on one line, cut to `width` characters with "..." (at a word boundary when one is near)."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    if width <= 3:
        return text[:width]
    cut = text[: width - 3]
    space = cut.rfind(" ")
    if space >= width - 15:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "..."


def ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _money(value: Any) -> str | None:
    if isinstance(value, dict) and "amount" in value:
        return f"{value.get('amount')} {value.get('currency', '')}".strip()
    return None


def _party_name(party: dict[str, Any]) -> str:
    if party.get("name"):
        return str(party["name"])
    info = party.get("personalInfo")
    names = info.get("complexName") if isinstance(info, dict) else None
    if not isinstance(names, dict):
        return "(no name)"
    return " ".join(str(names[k]) for k in ("firstName", "middleName", "lastName") if names.get(k)) or "(no name)"


def body_summary(body: Any) -> str:
    """The key fields of an FSPIOP body on one short line ("" when there is nothing worth saying)."""
    if body is None or body == {} or body == "":
        return ""
    if not isinstance(body, dict):
        return shorten(body if isinstance(body, str) else json.dumps(body, default=str), SUMMARY_MAX)
    info = body.get("errorInformation")
    if isinstance(info, dict):
        description = info.get("errorDescription")
        return shorten(f"error {info.get('errorCode', '?')}" + (f": {description}" if description else ""), SUMMARY_MAX)
    party = body.get("party")
    if isinstance(party, dict):
        ids = party.get("partyIdInfo")
        fsp = ids.get("fspId") if isinstance(ids, dict) else None
        return shorten(f"party {_party_name(party)}" + (f" ({fsp})" if fsp else ""), SUMMARY_MAX)
    parts: list[str] = []
    for key in ("amount", "transferAmount", "payeeReceiveAmount", "payeeFspFee", "payeeFspCommission"):
        if (money := _money(body.get(key))) is not None:
            parts.append(f"{key} {money}")
    if body.get("transferState"):
        parts.append(f"transferState {body['transferState']}")
    if body.get("expiration"):
        parts.append(f"expiration {body['expiration']}")
    return shorten("; ".join(parts), SUMMARY_MAX)


def is_error(msg: Message) -> bool:
    """An error callback: its path ends in /error or its body carries errorInformation."""
    return msg.path.rstrip("/").endswith("/error") or (isinstance(msg.body, dict) and "errorInformation" in msg.body)


def step_label(step: StepResult) -> str:
    """passed, FAILED or skipped: the result column of every summary."""
    return "skipped" if step.skipped else "passed" if step.ok else "FAILED"


def deviations_by_rule(run: RunResult) -> list[tuple[str, list[tuple[StepResult, Deviation]]]]:
    """The run's deviations grouped by rule id, in the order each rule was first broken."""
    groups: dict[str, list[tuple[StepResult, Deviation]]] = {}
    for step in run.steps:
        for dev in step.deviations:
            groups.setdefault(dev.rule, []).append((step, dev))
    return list(groups.items())


def deviation_line(dev: Deviation) -> str:
    return f"deviation [{dev.rule}] {dev.text} — {dev.detail} ({dev.ref})"


def message_line(msg: Message, width: int = 0) -> str:
    """`  123 ms  a -> b  METHOD path  -> 202  note`, the route padded to `width`."""
    route = f"{msg.sender} -> {msg.receiver}".ljust(width)
    line = f"{ms(msg.at):>7} ms  {route}  {msg.title}"
    if msg.status is not None:
        line += f"  -> {msg.status}"
    return line + (f"  ({msg.note})" if msg.note else "")


def body_json(body: Any) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False, default=str) if not isinstance(body, str) else body


def summary_table(run: RunResult) -> str:
    """The steps as a fixed-width table, a totals line and the deviations grouped by rule."""
    kind_w = min(8, max([4] + [len(s.kind) for s in run.steps]))
    fixed = 3 + 2 + kind_w + 2 + 2 + 7 + 2 + 7 + 2 + 4  # every column but the title, with the gaps
    title_w = max(5, min(WIDTH - fixed, max([5] + [len(" ".join(s.title.split())) for s in run.steps])))
    row = f"{{:>3}}  {{:<{kind_w}}}  {{:<{title_w}}}  {{:<7}}  {{:>7}}  {{:>4}}"
    lines = [row.format("#", "kind", "title", "result", "ms", "dev")]
    lines.append(row.format("---", "-" * kind_w, "-" * title_w, "-" * 7, "-" * 7, "-" * 4))
    for s in run.steps:
        lines.append(row.format(s.number, shorten(s.kind, kind_w), shorten(s.title, title_w), step_label(s),
                                ms(s.duration_s), len(s.deviations)))
    c = run.counts()
    lines.append("")
    lines.append(f"{len(run.steps)} step{'' if len(run.steps) == 1 else 's'}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped; "
                 f"{c['deviations']} deviation{'s' if c['deviations'] != 1 else ''}; {ms(run.duration_s)} ms")
    groups = deviations_by_rule(run)
    if groups:
        lines += ["", "Deviations by rule:"]
        for rule, found in groups:
            dfsps = ", ".join(dict.fromkeys(d.dfsp for _, d in found))
            lines.append(f"  {rule}  x{len(found)}  ({dfsps})")
            lines += textwrap.wrap(found[0][1].text, WIDTH, initial_indent=" " * 6, subsequent_indent=" " * 6)
            lines.append(f"      ref: {found[0][1].ref}")
    return "\n".join(lines)


SHOWN_KINDS = ("settle", "pay_qr", "bulk_pay", "request_to_pay", "pisp")  # whose passing details are always shown

class TerminalProgress:
    """Prints a run as the engine carries it out: the cast, each step, each message, then a summary."""

    def __init__(self, out: TextIO, *, verbose: bool = False, color: bool | None = None) -> None:
        self.out = out
        self.verbose = verbose
        if color is None:
            isatty = getattr(out, "isatty", None)
            color = bool(isatty and isatty()) and not os.environ.get("NO_COLOR")
        self.color = color
        self._route_w = 0

    def _c(self, text: str, style: str) -> str:
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m" if self.color else text

    def _print(self, text: str = "") -> None:
        encoding = getattr(self.out, "encoding", None)
        if encoding:  # never die on a terminal that cannot show a character
            text = text.encode(encoding, "replace").decode(encoding)
        self.out.write(text + "\n")
        self.out.flush()

    def run_started(self, run: RunResult) -> None:
        about = f" — {run.description}" if run.description else ""
        self._print(self._c(f"Scenario {run.scenario}", "bold") + about)
        self._print(f"  hub: {run.hub}")
        for p in run.participants:
            where = f"  {p.url}" if p.url else ""
            self._print(f"  {p.role}: {p.name} (played by {p.played_by}){where}")
        names = [p.name for p in run.participants] + ["hub"]
        self._route_w = min(40, 2 * max(len(n) for n in names) + 4)

    def step_started(self, number: int, total: int, title: str) -> None:
        self._print()
        self._print(self._c(f"[{number}/{total}] {' '.join(title.split())}", "bold"))

    def message(self, msg: Message) -> None:
        line = message_line(msg, self._route_w)
        self._print(self._c(line, "red") if is_error(msg) or msg.note else line)
        if summary := body_summary(msg.body):
            self._print(" " * 12 + self._c(summary, "dim"))
        if self.verbose and msg.body not in (None, "", {}):
            self._print(textwrap.indent(body_json(msg.body), " " * 12))

    def _mark(self, ok: bool) -> str:
        if not self.color:
            return "PASS" if ok else "FAIL"
        return self._c("✔", "green") if ok else self._c("✘", "red")

    def step_finished(self, result: StepResult) -> None:
        took = f"({ms(result.duration_s)} ms)"
        if result.skipped:
            self._print("  " + self._c("SKIP skipped: an earlier step it needs failed", "yellow"))
            return
        verdict = ("✔ passed" if self.color else "PASS") if result.ok else ("✘ FAILED" if self.color else "FAIL")
        self._print(f"  {self._c(verdict, 'green' if result.ok else 'red')} {took}")
        if result.error:
            self._print("    " + self._c(f"error: {result.error}", "red"))
        for check in result.checks:
            # some kinds' passing checks with a detail are what a trainer came to see (a settlement's
            # nets and resets, the QR code, a payroll's totals); they are shown without --verbose
            if not check.ok or self.verbose or (result.kind in SHOWN_KINDS and check.detail):
                detail = f": {check.detail}" if check.detail else ""
                self._print(f"    {self._mark(check.ok)} {check.what}{detail}")
        for dev in result.deviations:
            self._print("    " + self._c(deviation_line(dev), "yellow"))

    def run_finished(self, run: RunResult) -> None:
        self._print()
        self._print(summary_table(run))
        self._print()
        self._print(self._c("Scenario passed.", "green") if run.ok else self._c("Scenario FAILED.", "red"))
