"""Scenarios: pick a bundled scenario, run it against the attached hub, watch it, read its report.

Why in-process with the engine itself: `miniloop scenario run` and this screen then tell the same
story with the same checks (miniloop.scenario.engine `run_scenario`), and the run's lines are
the terminal report's own (TerminalProgress, without colours), written to a log widget as the
engine goes: `LogProgress` adapts the one to the other. At the end the report table shows each
step passed, FAILED or skipped with the reason of a failure, and the status line the summary.
One run at a time; it runs in a worker, so the dashboard stays live while it does.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, DataTable, Footer, Header, RichLog, Static

from miniloop.errors import ConfigError
from miniloop.scenario import loading
from miniloop.scenario.engine import SetupError, run_scenario
from miniloop.scenario.report.terminal import TerminalProgress, shorten, step_label
from miniloop.scenario.results import Message, RunResult, StepResult
from tui.forms import fill_table
from tui.screens.base import HubScreen
from tui.screens.confirm import ConfirmScreen


class _LogWriter:
    """A text stream whose lines go to a RichLog, failures and passes in the theme's colours."""

    encoding = "utf-8"

    def __init__(self, screen: ScenariosScreen) -> None:
        self.screen = screen
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            self.screen.log_line(line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


class LogProgress:
    """The engine's Progress, shown in the screen's log (and remembered for the report)."""

    def __init__(self, screen: ScenariosScreen) -> None:
        self.screen = screen
        self.terminal = TerminalProgress(_LogWriter(screen), verbose=False, color=False)  # type: ignore[arg-type]

    def run_started(self, run: RunResult) -> None:
        self.terminal.run_started(run)

    def step_started(self, number: int, total: int, title: str) -> None:
        self.screen.set_status(f"Running {self.screen.running}: step {number} of {total}: {' '.join(title.split())}")
        self.terminal.step_started(number, total, title)

    def message(self, msg: Message) -> None:
        self.terminal.message(msg)

    def step_finished(self, result: StepResult) -> None:
        self.terminal.step_finished(result)

    def run_finished(self, run: RunResult) -> None:
        self.terminal.run_finished(run)


def why(step: StepResult) -> str:
    """The first reason a step failed, in one line ("" for a step that passed)."""
    if step.ok:
        return ""
    if step.skipped:
        return "skipped: an earlier step it needs failed"
    if step.error:
        return f"error: {step.error}"
    for check in step.checks:
        if not check.ok:
            return f"{check.what}: {check.detail}" if check.detail else check.what
    if step.deviations:
        dev = step.deviations[0]
        return f"deviation [{dev.rule}] {dev.detail}"
    return ""


def summary(run: RunResult) -> str:
    c = run.counts()
    return (f"{run.scenario} {'passed' if run.ok else 'FAILED'}: {len(run.steps)} steps, {c['passed']} passed, "
            f"{c['failed']} failed, {c['skipped']} skipped; {c['deviations']} deviations; "
            f"{int(run.duration_s * 1000)} ms")


class ScenariosScreen(HubScreen):
    TOPICS: ClassVar[set[str]] = set()

    DEFAULT_CSS = """
    ScenariosScreen #scenarios {
        height: 8;
    }
    ScenariosScreen #scenario-output {
        height: 1fr;
        border-top: solid $accent;
    }
    ScenariosScreen #scenario-log, ScenariosScreen #scenario-report {
        height: 1fr;
    }
    ScenariosScreen #scenario-status {
        height: auto;
        max-height: 3;
        padding: 0 1;
        background: $boost;
    }
    ScenariosScreen #scenario-status.ok {
        color: $text-success;
    }
    ScenariosScreen #scenario-status.error {
        color: $text-error;
    }
    """

    BINDINGS = [
        # named on the hint line (the Footer's room is for the mode keys at 80 columns)
        Binding("x", "run", "Run", show=False),
        Binding("v", "toggle_view", "Log/Report", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.running: str | None = None  # the scenario being run
        self.result: RunResult | None = None  # the last run's result
        self.status = ""
        self.log_lines: list[str] = []  # what the log shows, as plain text

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("↑↓ pick a scenario  x or Enter run it  v switch between its log and its report",
                     classes="hint", markup=False)
        table: DataTable[str] = DataTable(id="scenarios", cursor_type="row", zebra_stripes=True)
        table.add_columns("Scenario", "Description")
        yield table
        with Vertical(id="scenario-output"):
            with ContentSwitcher(initial="scenario-log"):
                yield RichLog(id="scenario-log", wrap=False, markup=False, max_lines=5000)
                report: DataTable[str] = DataTable(id="scenario-report", cursor_type="row", zebra_stripes=True)
                report.add_columns("#", "Result", "Kind", "Title", "ms", "Why")  # the result first: 80 columns
                yield report
        yield Static("Loading the scenarios ...", id="scenario-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(self._list, group="scenario-list")

    async def _list(self) -> None:
        try:
            found = await asyncio.to_thread(loading.available)
        except Exception as exc:  # a broken install: say so instead of an empty table
            self.set_status(f"The scenarios cannot be listed: {exc}", ok=False)
            return
        fill_table(self.query_one("#scenarios", DataTable), [(name, (name, shorten(description, 200)))
                                                             for name, description in found])
        self.set_status(f"{len(found)} scenarios: pick one and press x (or Enter) to run it on this hub")

    # --- output ------------------------------------------------------------------------------

    def set_status(self, text: str, ok: bool | None = None) -> None:
        self.status = text
        line = self.query_one("#scenario-status", Static)
        line.update(text)
        line.set_class(ok is True, "ok")
        line.set_class(ok is False, "error")

    def log_line(self, line: str) -> None:
        self.log_lines.append(line)
        theme = self.app.current_theme
        stripped = line.strip()
        color = None
        if stripped.startswith(("FAIL", "error:", "Scenario FAILED", "SKIP")) or " FAILED " in f" {line} ":
            color = theme.error
        elif stripped.startswith(("PASS", "Scenario passed")):
            color = theme.success
        elif stripped.startswith("deviation"):
            color = theme.warning
        style = color or ""
        if stripped.startswith(("[", "Scenario ")):
            style = f"bold {style}".strip()
        self.query_one("#scenario-log", RichLog).write(Text(line, style=style))

    def action_toggle_view(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        switcher.current = "scenario-report" if switcher.current == "scenario-log" else "scenario-log"

    # --- running -----------------------------------------------------------------------------

    def selected(self) -> str | None:
        table = self.query_one("#scenarios", DataTable)
        if table.row_count == 0:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "scenarios":
            event.stop()
            self.action_run()

    def action_run(self) -> None:
        if self.running is not None:
            self.set_status(f"{self.running} is still running: one run at a time", ok=False)
            return
        name = self.selected()
        if name is None:
            self.set_status("No scenario to run (the list is empty)", ok=False)
            return
        self.running = name
        self.run_worker(self._confirm_and_run(name), group="scenario-run")

    async def _confirm_and_run(self, name: str) -> None:
        try:
            if not await self.app.push_screen_wait(ConfirmScreen(
                    f"Run scenario {name} on this hub?",
                    "It makes real payments (and may onboard DFSPs or settle windows) on the hub.")):
                self.set_status("Cancelled: nothing was run")
                return
            await self._run(name)
        finally:
            self.running = None

    async def _run(self, name: str) -> None:
        self.query_one(ContentSwitcher).current = "scenario-log"
        self.query_one("#scenario-log", RichLog).clear()
        self.log_lines.clear()
        self.result = None
        self.set_status(f"Running {name} ...")
        try:
            loaded = await asyncio.to_thread(loading.load, name)
        except ConfigError as exc:
            self.set_status(f"{name} cannot be loaded: {exc}", ok=False)
            return
        urls = dict(self.client.urls)
        try:
            result = await run_scenario(loaded, urls, LogProgress(self), {},
                                        getattr(self.client, "admin_token", None))
        except (SetupError, ConfigError) as exc:
            self.set_status(f"{name} could not start: {exc}", ok=False)
            self.log_line(f"error: the run could not start: {exc}")
            return
        except KeyError as exc:  # a URL the hub's wallet port does not report
            self.set_status(f"{name} needs the hub's {exc} URL, which the dashboard does not know", ok=False)
            return
        except Exception as exc:  # the run broke: show why, keep the dashboard
            self.set_status(f"{name} stopped: {type(exc).__name__}: {exc}", ok=False)
            self.log_line(f"error: {type(exc).__name__}: {exc}")
            return
        finally:
            self.dashboard.positions_changed()
        self.result = result
        self.show_report(result)

    def show_report(self, run: RunResult) -> None:
        report = self.query_one("#scenario-report", DataTable)
        fill_table(report, [(f"{id(run)}-{step.number}",
                             (str(step.number), step_label(step), step.kind, shorten(step.title, 60),
                              str(int(step.duration_s * 1000)), shorten(why(step), 200)))
                            for step in run.steps])
        self.query_one(ContentSwitcher).current = "scenario-report"
        failed = next((step for step in run.steps if not step.ok), None)
        self.set_status(summary(run) + (f". Step {failed.number}: {shorten(why(failed), 120)}" if failed else "")
                        + "  (v: the log)", ok=run.ok)
