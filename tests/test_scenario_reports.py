"""The scenario reports (terminal, JUnit XML, HTML) read a RunResult the same way, whatever it holds.

Why hand-built runs: the reports must show a passing run, and a failing one with failed checks,
deviations, a step that could not run and a skipped step, without a hub or an engine to make them.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from miniloop.scenario.report.diagram import lifelines, sequence_svg
from miniloop.scenario.report.html import html_report, write_html
from miniloop.scenario.report.junit import junit_xml, write_junit
from miniloop.scenario.report.terminal import TerminalProgress, body_summary, summary_table
from miniloop.scenario.results import HUB, Check, Deviation, Message, Participant, RunResult, StepResult

CT = "application/vnd.interoperability.parties+json;version=1.1"


def _dev(detail: str, rule: str = "callback-content-type") -> Deviation:
    return Deviation(dfsp="fintechfsp", rule=rule, text="A callback carries the Content-Type of its resource.",
                     ref="FSPIOP API v1.1, 3.2.1.1", detail=detail)


def _lookup_messages(at: float) -> list[Message]:
    party = {"party": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": "233244112233",
                                       "fspId": "fintechfsp"}, "name": "Kwame Mensah"}}
    return [
        Message(at, "payerfsp", HUB, "GET", "/parties/MSISDN/233244112233", {"fspiop-source": "payerfsp"}, None, 202),
        Message(at + 0.01, HUB, "fintechfsp", "GET", "/parties/MSISDN/233244112233", {}, None, 202),
        Message(at + 0.03, "fintechfsp", HUB, "PUT", "/parties/MSISDN/233244112233", {"content-type": CT}, party, 200),
        Message(at + 0.04, HUB, "payerfsp", "PUT", "/parties/MSISDN/233244112233", {"content-type": CT}, party, 200),
    ]


def _run(steps: list[StepResult], name: str = "p2p") -> RunResult:
    return RunResult(scenario=name, description="Ama sends Kwame 10 USD", file=f"scenarios/{name}.toml",
                     hub="http://127.0.0.1:3000", started_at="2025-01-02T03:04:05Z", duration_s=0.5,
                     participants=[Participant("payer", "payerfsp", "engine"),
                                   Participant("payee", "fintechfsp", "external", "http://127.0.0.1:4040")],
                     steps=steps)


@pytest.fixture
def passing() -> RunResult:
    quote = {"quoteId": "q1", "amount": {"amount": "10", "currency": "USD"}, "expiration": "2025-01-02T03:05:05Z"}
    transfer = {"transferState": "COMMITTED", "completedTimestamp": "2025-01-02T03:04:06Z"}
    return _run([
        StepResult(1, "lookup", "Look up Kwame", checks=[Check("callback answered", True)],
                   messages=_lookup_messages(0.0), duration_s=0.05),
        StepResult(2, "quote", "Quote 10 USD",
                   messages=[Message(0.1, "payerfsp", HUB, "POST", "/quotes", {}, quote, 202)],
                   checks=[Check("status 202", True)], started=0.1, duration_s=0.1),
        StepResult(3, "transfer", "Transfer 10 USD",
                   messages=[Message(0.3, HUB, "payerfsp", "PUT", "/transfers/t1", {}, transfer, 200)],
                   started=0.2, duration_s=0.2),
    ])


@pytest.fixture
def failing() -> RunResult:
    error = {"errorInformation": {"errorCode": "3204", "errorDescription": "Party not found <script>alert(1)</script>"}}
    long_path = "/parties/MSISDN/" + "9" * 120 + "/error"
    return _run([
        StepResult(1, "lookup", "Look up Kwame at the fintech " + "with a very long title " * 4,
                   checks=[Check("outcome answered", False, "got an error callback 3204"), Check("status 202", True)],
                   deviations=[_dev("sent text/plain"), _dev("sent application/json", rule="date-header")],
                   messages=[Message(0.0, "payerfsp", HUB, "GET", "/parties/MSISDN/1", {}, None, 202),
                             Message(0.02, "fintechfsp", HUB, "PUT", long_path, {"content-type": "text/plain"}, error,
                                     200, note="refused by the hub: 3102")],
                   duration_s=0.03),
        StepResult(2, "quote", "Quote", deviations=[_dev("again text/plain")], started=0.1, duration_s=0.01),
        StepResult(3, "admin", "Fund the payer", error="hub unreachable: connection refused", started=0.2),
        StepResult(4, "transfer", "Transfer", skipped=True),
    ], name="broken")


def test_summary_table_lists_steps_totals_and_rules(failing: RunResult) -> None:
    table = summary_table(failing)
    lines = table.splitlines()
    assert all(len(line) <= 100 for line in lines)
    for title in ("Look up Kwame", "Quote", "Fund the payer", "Transfer"):
        assert title in table
    assert "..." in table  # the long title is truncated
    assert re.search(r"^\s+4\s+transfer\s+Transfer\s+skipped", table, re.M)
    assert re.search(r"^\s+3\s+admin\s+Fund the payer\s+FAILED", table, re.M)
    assert "4 steps: 0 passed, 3 failed, 1 skipped; 3 deviations" in table
    assert re.search(r"callback-content-type\s+x2", table) and re.search(r"date-header\s+x1", table)
    assert "FSPIOP API v1.1, 3.2.1.1" in table


def test_summary_table_of_a_passing_run(passing: RunResult) -> None:
    table = summary_table(passing)
    assert "3 steps: 3 passed, 0 failed, 0 skipped; 0 deviations" in table
    assert "Deviations" not in table


def _replay(run: RunResult, verbose: bool = False) -> str:
    out = io.StringIO()
    progress = TerminalProgress(out, verbose=verbose, color=False)
    progress.run_started(run)
    for step in run.steps:
        progress.step_started(step.number, len(run.steps), step.title)
        for msg in step.messages:
            progress.message(msg)
        progress.step_finished(step)
    progress.run_finished(run)
    return out.getvalue()


def test_terminal_progress_of_a_passing_run(passing: RunResult) -> None:
    text = _replay(passing)
    assert "\x1b[" not in text
    assert "Scenario p2p" in text and "http://127.0.0.1:3000" in text
    assert "fintechfsp (played by external)" in text
    assert "[1/3] Look up Kwame" in text
    assert re.search(r"30 ms\s+fintechfsp -> hub\s+PUT /parties/MSISDN/233244112233\s+-> 200", text)
    assert "party Kwame Mensah (fintechfsp)" in text
    assert "amount 10 USD; expiration 2025-01-02T03:05:05Z" in text
    assert "transferState COMMITTED" in text
    assert "PASS" in text and text.rstrip().endswith("Scenario passed.")


def test_terminal_progress_of_a_failing_run(failing: RunResult) -> None:
    text = _replay(failing, verbose=True)
    assert "FAIL" in text and text.rstrip().endswith("Scenario FAILED.")
    assert "error 3204: Party not found" in text
    assert "FAIL outcome answered: got an error callback 3204" in text
    rule = "A callback carries the Content-Type of its resource."
    assert f"deviation [callback-content-type] {rule} — sent text/plain (FSPIOP API v1.1, 3.2.1.1)" in text
    assert "error: hub unreachable" in text and "SKIP" in text
    assert '"errorCode": "3204"' in text  # verbose shows the body


def test_terminal_color_follows_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    assert TerminalProgress(io.StringIO()).color is False
    out = io.StringIO()
    progress = TerminalProgress(out, color=True)
    progress.step_finished(StepResult(1, "check", "x", checks=[Check("a", False)]))
    assert "\x1b[31m" in out.getvalue() and "✘" in out.getvalue()


def test_body_summary() -> None:
    assert body_summary(None) == ""
    assert body_summary({"party": {"personalInfo": {"complexName": {"firstName": "Ama", "lastName": "Owusu"}}}}) \
        == "party Ama Owusu"
    assert body_summary({"transferAmount": {"amount": "10", "currency": "USD"}}) == "transferAmount 10 USD"
    assert len(body_summary({"errorInformation": {"errorCode": "2001", "errorDescription": "x" * 500}})) <= 110
    assert body_summary({"errorInformation": {"errorCode": "2001"}}) == "error 2001"
    assert body_summary({"party": {"personalInfo": "odd"}, "x": 1}) == "party (no name)"
    assert body_summary([1, "<b>"]) == '[1, "<b>"]'


def test_junit_counts_and_failures(failing: RunResult, tmp_path: Path) -> None:
    path = tmp_path / "out" / "junit.xml"
    write_junit(failing, path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped")} == \
        {"tests": "4", "failures": "2", "errors": "1", "skipped": "1"}
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "scenario:broken"
    cases = suite.findall("testcase")
    assert [c.get("name")[:2] for c in cases] == ["01", "02", "03", "04"]
    assert all(c.get("classname") == "scenario.broken" for c in cases)
    first = cases[0].find("failure")
    assert first is not None and first.get("type") == "callback-content-type"
    assert "outcome answered" in first.get("message", "") and "date-header" in first.get("message", "")
    assert "3204" in (cases[0].findtext("system-out") or "")
    assert cases[1].find("failure").get("type") == "callback-content-type"
    assert cases[2].find("error").get("message") == "hub unreachable: connection refused"
    assert cases[3].find("skipped") is not None and cases[3].find("system-out") is None


def test_junit_of_a_passing_run_and_bad_characters(passing: RunResult) -> None:
    passing.steps[0].title += "\x00\x1b"
    root = ET.fromstring(junit_xml(passing))
    assert root.get("failures") == "0" and root.get("errors") == "0"
    assert not list(root.iter("failure")) and not list(root.iter("error"))
    assert float(root.find("testsuite/testcase").get("time")) == pytest.approx(0.05)


class _Strict(HTMLParser):
    """Collects tags and fails on nothing silently: html.parser never raises, so record what it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.starts: list[str] = []
        self.stack: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append(tag)
        self.ids += [v for k, v in attrs if k == "id" and v]
        if tag not in {"meta", "br", "line", "rect", "polygon", "path", "link", "hr", "img"}:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()


def _parse(document: str) -> _Strict:
    parser = _Strict()
    parser.feed(document)
    parser.close()
    assert parser.stack == []
    assert len(parser.ids) == len(set(parser.ids)), "duplicate ids"
    return parser


@pytest.mark.parametrize("which", ["passing", "failing"])
def test_html_is_self_contained_and_well_formed(which: str, request: pytest.FixtureRequest) -> None:
    run: RunResult = request.getfixturevalue(which)
    document = html_report(run)
    parser = _parse(document)
    assert parser.starts.count("svg") == document.count("<svg") == sum(1 for s in run.steps if s.messages)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*[a-z][a-z0-9+.-]*:""", document, re.I)
    assert "@import" not in document and not re.search(r"url\(\s*['\"]?\s*(https?:|//)", document, re.I)
    assert "<script" not in document.lower()
    for step in run.steps:
        assert f'id="step-{step.number}"' in document


def test_html_escapes_and_names_rules(failing: RunResult, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html(failing, path)
    document = path.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    for rule in ("callback-content-type", "date-header"):
        assert rule in document
    assert 'href="#step-2"' in document  # a deviation links to its step
    assert "FAILED" in document and "hub unreachable" in document and "Not run" in document
    assert "9" * 120 in document  # the full path, in the tooltip and the details
    svg = document[document.index("<svg"):document.index("</svg>")]
    assert "#c62828" in svg and "refused by the hub: 3102" in svg and "…" in svg


def test_lifelines_put_the_hub_in_the_middle() -> None:
    msgs = [Message(0, "a", HUB, "GET", "/x"), Message(0, HUB, "b", "GET", "/x"), Message(0, "c", HUB, "PUT", "/x")]
    assert lifelines(msgs) == ["a", "b", HUB, "c"]
    assert lifelines(msgs[:2]) == ["a", HUB, "b"]
    assert lifelines([Message(0, "a", "b", "GET", "/x")]) == ["a", "b"]
    assert sequence_svg([]) == ""
    loop = sequence_svg([Message(0, "a", "a", "GET", "/self")])
    assert loop.startswith("<svg") and "<path" in loop
