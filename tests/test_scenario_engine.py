"""The scenario engine over the real stack: every step kind, failures pinned to their step, and the
conformance pack against a well-behaved DFSP and against DFSPs broken on purpose.

One demo hub (a `miniloop up` child) serves the module. Each test runs the engine in this process,
against that hub, with its own participant names, so tests stay independent. A DFSP under test is
the reference DFSP (miniloop.scenario.reference_dfsp) started here and given to the engine as an
external DFSP, exactly as `--dfsp NAME=URL` does.
"""

from __future__ import annotations

import asyncio
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conftest import Hub, HubLauncher, unique_name
from miniloop.scenario.engine import run_scenario
from miniloop.scenario.loading import load
from miniloop.scenario.reference_dfsp import ReferenceDfsp
from miniloop.scenario.report.terminal import TerminalProgress
from miniloop.scenario.results import RunResult


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


def run(hub: Hub, scenario: str | Path, *, externals: dict[str, str] | None = None,
        overrides: dict[str, str] | None = None, reference: dict[str, Any] | None = None) -> RunResult:
    """Run a scenario on `hub` in this process; `reference` starts a reference DFSP as an external one."""

    async def go() -> RunResult:
        found = dict(externals or {})
        dfsp = None
        if reference is not None:
            dfsp = ReferenceDfsp(reference["name"], hub.urls["fspiop"], fault=reference.get("fault", "none"),
                                 parties=reference.get("parties", ["MSISDN/27790000001"]))
            found[reference["name"]] = await dfsp.start()
        try:
            return await run_scenario(load(str(scenario), overrides), hub.urls, TerminalProgress(io.StringIO()), found)
        finally:
            if dfsp is not None:
                await dfsp.stop()

    return asyncio.run(go())


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "story.toml"
    path.write_text(text)
    return path


def failed(result: RunResult) -> list[str]:
    return [f"{s.number} {s.title}: {s.error or ''} {[c for c in s.checks if not c.ok]} {s.deviations}"
            for s in result.steps if not s.ok]


def test_every_step_kind_runs_and_checks_its_expectations(demo: Hub, tmp_path: Path) -> None:
    payer, payee = unique_name("pay"), unique_name("get")
    story = write(tmp_path, f'''
description = "every kind"
[vars]
party = "MSISDN/27791234567"
[dfsps.payer]
name = "{payer}"
[dfsps.payee]
name = "{payee}"
played_by = "reference"
parties = ["${{party}}"]

[[steps]]
id = "who"
kind = "lookup"
from = "payer"
party = "${{party}}"
expect.body = {{ "party.partyIdInfo.fspId" = "${{dfsps.payee.name}}" }}

[[steps]]
id = "q"
kind = "quote"
from = "payer"
to = "payee"
payee = "${{party}}"
amount = "12.5"

[[steps]]
id = "t"
kind = "transfer"
from = "payer"
to = "payee"
expect.state = "COMMITTED"
expect.positions = {{ payer = "+12.5", payee = "-12.5" }}

[[steps]]
kind = "wait"
transfer = "t"
state = "COMMITTED"

[[steps]]
kind = "send"
dfsp = "greenwallet"
from = "27710000003"
to = "MSISDN/27720000003"
amount = "1"
expect.balances = {{ "greenwallet/27710000003" = "-1" }}

[[steps]]
kind = "admin"
action = "set_ndc"
dfsp = "payer"
amount = "5000"

[[steps]]
kind = "request"
api = "admin"
method = "GET"
path = "/participants/${{dfsps.payer.name}}/limits"
expect.body = {{ "0.limit.value" = "5000" }}

[[steps]]
kind = "request"
from = "payer"
method = "GET"
path = "/transfers/${{t.transferId}}"
expect.body = {{ transferState = "COMMITTED" }}

[[steps]]
kind = "check"
expect.positions = {{ payer = "12.5" }}
''')
    result = run(demo, story)
    assert result.ok, failed(result)
    assert [s.kind for s in result.steps] == ["lookup", "quote", "transfer", "wait", "send", "admin", "request",
                                              "request", "check"]
    assert not result.deviations  # the reference DFSP keeps every rule
    lookup = result.steps[0]
    assert any(m.sender == payee and m.path == "/parties/MSISDN/27791234567" for m in lookup.messages)


def test_a_failed_expectation_is_reported_on_its_step_and_line(demo: Hub, tmp_path: Path, run_cli: Any) -> None:
    story = write(tmp_path, '''description = "a wrong expectation"

[[steps]]
kind = "send"
dfsp = "greenwallet"
from = "27710000002"
to = "MSISDN/27720000002"
amount = "1"

[[steps]]
kind = "send"
dfsp = "greenwallet"
from = "27710000002"
to = "MSISDN/27799999990"
amount = "1"
expect.state = "COMMITTED"
''')
    result = run(demo, story)
    assert [s.ok for s in result.steps] == [True, False]
    second = result.steps[1]
    assert second.line == 10
    assert [c.detail for c in second.checks if not c.ok] == [
        "got ABORTED (3200: Generic ID not found - MSISDN 27799999990 is not registered)"]
    junit = tmp_path / "out.xml"
    cli = run_cli("scenario", "run", str(story), "--data-dir", str(demo.data_dir), "--junit", str(junit))
    assert cli.returncode == 1, cli.stdout + cli.stderr
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "1" or suite.find("testsuite").get("failures") == "1"  # type: ignore[union-attr]


def test_a_broken_file_is_one_line_naming_file_and_line(run_cli: Any, tmp_path: Path) -> None:
    story = write(tmp_path, 'description = "x"\n\n[[steps]]\nkind = "send"\ndfsp = "a"\nfrom = "1"\nto = "MSISDN/1"\n'
                            'amount = 10\n')
    cli = run_cli("scenario", "run", str(story), "--data-dir", str(tmp_path / "no-hub"))
    assert cli.returncode == 2
    (line,) = cli.stderr.strip().splitlines()
    assert line.startswith(f"miniloop: {story}:8: ") and "amount" in line and "string" in line


def test_scenario_list_shows_the_bundled_scenarios(run_cli: Any) -> None:
    cli = run_cli("scenario", "list")
    assert cli.returncode == 0
    for name in ("p2p", "ndc-and-deactivation", "conformance"):
        assert name in cli.stdout
    assert "broken" not in cli.stdout


def test_operator_controls_scenario_passes(demo: Hub) -> None:
    result = run(demo, "ndc-and-deactivation")
    assert result.ok, failed(result)


# ------------------------------------------------------------------------------ the conformance pack


def test_conformance_pack_passes_for_a_well_behaved_dfsp(demo: Hub, tmp_path: Path, run_cli: Any) -> None:
    name = unique_name("good")
    result = run(demo, "conformance", reference={"name": name})
    assert result.ok, failed(result)
    assert not result.deviations
    assert {p.name: p.played_by for p in result.participants}[name] == "external"
    # the proxy saw every request the hub sent the DFSP, and the DFSP's answers
    messages = [m for s in result.steps for m in s.messages]
    assert any(m.receiver == name and m.path == "/transfers" and m.status == 202 for m in messages)
    assert any(m.sender == name and m.path.startswith("/transfers/") for m in messages)


@pytest.mark.parametrize(("fault", "rule", "step"), [
    ("wrong-condition", "fulfilment", "Transfer on the SEND quote: fulfilled in time with the right fulfilment"),
    ("missing-header", "date-header", "Lookup of a party the DFSP serves: PUT /parties with the party"),
    ("late-fulfil", "fulfil-in-time", "Transfer on the SEND quote: fulfilled in time with the right fulfilment"),
])
def test_conformance_pack_reports_each_deviation(demo: Hub, fault: str, rule: str, step: str) -> None:
    name = unique_name(fault.split("-")[0][:6])
    result = run(demo, "conformance", reference={"name": name, "fault": fault})
    assert not result.ok
    found = {(d.rule, d.dfsp) for d in result.deviations}
    assert (rule, name) in found, result.deviations
    flagged = [s.title for s in result.steps if any(d.rule == rule for d in s.deviations)]
    assert step in flagged, flagged
    deviation = next(d for d in result.deviations if d.rule == rule)
    assert deviation.ref.startswith("FSPIOP API Definition v1.1 §") and deviation.text and deviation.detail


def test_reports_are_written(demo: Hub, tmp_path: Path, run_cli: Any) -> None:
    html, junit, out = tmp_path / "r.html", tmp_path / "r.xml", tmp_path / "r.json"
    cli = run_cli("scenario", "run", "p2p", "--data-dir", str(demo.data_dir), "--html", str(html),
                  "--junit", str(junit), "--json", str(out))
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "<svg" in html.read_text() and "PUT /transfers/" in html.read_text()
    ET.parse(junit)
    data = json.loads(out.read_text())
    assert data["ok"] is True and data["steps"][0]["kind"] == "send"


def test_miniloop_dfsp_is_tested_with_the_conformance_pack_from_the_command_line(
        demo: Hub, run_cli: Any, cli_env: dict[str, str], tmp_path: Path) -> None:
    """The documented path: `miniloop dfsp` in one terminal, `scenario run conformance --dfsp` in another."""
    import subprocess

    from conftest import miniloop_cmd, wait_until

    name = unique_name("cli")
    log = tmp_path / "dfsp.log"
    with open(log, "w") as out:
        dfsp = subprocess.Popen(miniloop_cmd("dfsp", "--name", name, "--hub", demo.urls["fspiop"], "--port", "0",
                                             "--party", "MSISDN/27790000001"),
                                stdout=out, stderr=subprocess.STDOUT, env=cli_env, text=True)
    try:
        line = wait_until(lambda: next((x for x in log.read_text().splitlines() if "listening on" in x), None), 20,
                          what="the reference DFSP to listen")
        url = line.split("listening on ")[1].split()[0]
        html = tmp_path / "report.html"
        cli = run_cli("scenario", "run", "conformance", "--dfsp", f"{name}={url}", "--data-dir", str(demo.data_dir),
                      "--html", str(html))
        assert cli.returncode == 0, cli.stdout + cli.stderr
        assert "Scenario passed." in cli.stdout and f"{name} (played by external)" in cli.stdout
        assert html.exists()
    finally:
        dfsp.terminate()
        dfsp.wait(10)


def test_a_dfsp_option_the_scenario_cannot_use_is_one_line(demo: Hub, run_cli: Any, tmp_path: Path) -> None:
    cli = run_cli("scenario", "run", "p2p", "--dfsp", "mine=http://127.0.0.1:9", "--data-dir", str(demo.data_dir))
    assert cli.returncode == 2, cli.stdout + cli.stderr
    (line,) = cli.stderr.strip().splitlines()
    assert "no role 'mine'" in line and "no testable role" in line
    story = write(tmp_path, 'description = "x"\n[[steps]]\nkind = "check"\nrule = "no-such-rule"\n')
    cli = run_cli("scenario", "run", str(story), "--data-dir", str(demo.data_dir))
    assert cli.returncode == 2
    (line,) = cli.stderr.strip().splitlines()
    assert f"{story}:2: step 1: rule 'no-such-rule' is not one of: " in line
