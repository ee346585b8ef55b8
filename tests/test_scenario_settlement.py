"""The `settle` step kind and the bundled settlement scenario, over a real demo hub.

One demo hub (a `miniloop up` child) serves the module. Every test that settles leaves the demo
DFSPs as it found them (everything settled, positions 0), because the bundled scenario starts by
checking exactly that. Malformed settle steps are refused at load, without a hub, the way
tests/test_scenario_loading.py checks every loading error: one line, naming the file and line.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest

from conftest import Hub, HubLauncher
from miniloop.scenario.engine import run_scenario
from miniloop.scenario.loading import ScenarioError, load
from miniloop.scenario.report.terminal import TerminalProgress
from miniloop.scenario.results import RunResult

NETS = "greenwallet owes 120 USD, bluewallet is owed 70 USD, merchantbank is owed 50 USD"


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


def run(hub: Hub, scenario: str | Path) -> tuple[RunResult, str]:
    """Run a scenario on `hub` in this process; the result and what the terminal showed."""
    out = io.StringIO()
    result = asyncio.run(run_scenario(load(str(scenario)), hub.urls, TerminalProgress(out, color=False)))
    return result, out.getvalue()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "story.toml"
    path.write_text(text)
    return path


def failed(result: RunResult) -> list[str]:
    return [f"{s.number} {s.title}: {s.error or ''} {[c for c in s.checks if not c.ok]}" for s in result.steps if not s.ok]


def positions(hub: Hub) -> dict[str, Any]:
    found = {}
    for name in ("greenwallet", "bluewallet", "merchantbank"):
        r = hub.admin.get(f"/participants/{name}/positions", params={"currency": "USD"})
        assert r.status_code == 200, r.text
        found[name] = float(r.json()["value"])
    return found


# ------------------------------------------------------------------------------ the bundled scenario


def test_the_bundled_settlement_scenario_passes_and_shows_the_nets(demo: Hub) -> None:
    result, shown = run(demo, "settlement")
    assert result.ok, failed(result)
    kinds = [s.kind for s in result.steps]
    assert kinds.count("settle") == 7 and kinds.count("send") == 4
    settle = next(s for s in result.steps if s.kind == "settle" and s.title.startswith("The operator settles"))
    assert settle.checks[0].what.endswith("is PENDING_SETTLEMENT") and settle.checks[0].detail == NETS
    # without --verbose the trainer sees who owes and who is owed, each new state and the resets
    assert f"PASS {settle.checks[0].what}: {NETS}" in shown
    assert "is PS_TRANSFERS_RESERVED: it was PS_TRANSFERS_RECORDED" in shown
    assert "bluewallet's position changes by +70: it changed by +70 (-70 -> 0)" in shown
    assert "greenwallet's position changes by -120: it changed by -120 (120 -> 0)" in shown
    assert "is SETTLED: it was PS_TRANSFERS_COMMITTED; window" in shown
    assert positions(demo) == {"greenwallet": 0, "bluewallet": 0, "merchantbank": 0}

    # it can run again on the same hub, even after a payment nobody settled: its first step
    # settles what was left, so the day starts from positions at 0
    p2p, _ = run(demo, "p2p")
    assert p2p.ok, failed(p2p)
    again, shown = run(demo, "settlement")
    assert again.ok, failed(again)
    first = again.steps[0]
    assert first.checks[-1].what == "nothing is left unsettled", first.checks
    assert "greenwallet owes 10 USD, bluewallet is owed 10 USD" in first.checks[-1].detail
    assert positions(demo) == {"greenwallet": 0, "bluewallet": 0, "merchantbank": 0}
    third, _ = run(demo, "settlement")
    assert third.ok and third.steps[0].checks[-1].detail == "there was nothing to settle", failed(third)


def test_the_settlement_scenario_runs_from_the_command_line(demo: Hub, run_cli: Any) -> None:
    cli = run_cli("scenario", "list")
    assert cli.returncode == 0 and "settlement " in cli.stdout and "broken" not in cli.stdout
    cli = run_cli("scenario", "run", "settlement", "--data-dir", str(demo.data_dir))
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert NETS in cli.stdout and cli.stdout.rstrip().endswith("Scenario passed.")


# ------------------------------------------------------------------------------ refusals and abort


SKIPPING = '''description = "an advance that skips a state, an abort, and a settlement again"

[[steps]]
kind = "settle"
action = "close"
skip_if_empty = true

[[steps]]
kind = "send"
dfsp = "greenwallet"
from = "27710000002"
to = "MSISDN/27720000002"
amount = "7"

[[steps]]
id = "day"
kind = "settle"
action = "close"

[[steps]]
id = "s"
kind = "settle"
action = "settle"
windows = ["${day.id}"]

[[steps]]
kind = "settle"
name = "skips PS_TRANSFERS_RECORDED"
action = "advance"
to = "PS_TRANSFERS_COMMITTED"

[[steps]]
kind = "settle"
name = "a refusal the step expects"
action = "advance"
to = "PS_TRANSFERS_RESERVED"
expect.state = "PENDING_SETTLEMENT"
expect.error_text = "not allowed"

[[steps]]
kind = "settle"
action = "advance"
settlement = "${s.id}"
to = "PS_TRANSFERS_RECORDED"

[[steps]]
kind = "settle"
action = "advance"
to = "PS_TRANSFERS_RESERVED"
expect.positions = { bluewallet = "+7", greenwallet = "0" }

[[steps]]
kind = "settle"
name = "aborted: the reservation is undone"
action = "abort"
reason = "the bank said no"
expect.positions = { bluewallet = "-7", greenwallet = "0" }

[[steps]]
kind = "request"
api = "settlement"
method = "GET"
path = "/settlementWindows/${day.id}"
expect.body = { state = "ABORTED" }

[[steps]]
kind = "settle"
name = "the aborted window is settled again"
action = "settle"

[[steps]]
kind = "settle"
action = "advance"
to = "PS_TRANSFERS_RECORDED"

[[steps]]
kind = "settle"
action = "advance"
to = "PS_TRANSFERS_RESERVED"

[[steps]]
kind = "settle"
action = "advance"
to = "PS_TRANSFERS_COMMITTED"

[[steps]]
kind = "settle"
action = "advance"
to = "SETTLED"
expect.body = { state = "SETTLED", "settlementWindows.0.state" = "SETTLED" }

[[steps]]
kind = "check"
expect.positions = { greenwallet = "0", bluewallet = "0" }

[[steps]]
kind = "settle"
name = "closing an empty window is refused"
action = "close"
expect.status = 400
expect.error_code = "3100"
expect.error_text = "is empty"
'''


def test_an_advance_that_skips_a_state_fails_with_the_reason(demo: Hub, tmp_path: Path) -> None:
    result, shown = run(demo, write(tmp_path, SKIPPING))
    assert [s.number for s in result.steps if not s.ok] == [5], failed(result)
    skipping = result.steps[4]
    assert skipping.error is None
    moved, state = [f"{c.what}: {c.detail}" for c in skipping.checks if not c.ok]
    assert moved == ("every account moves to PS_TRANSFERS_COMMITTED: refused for greenwallet, bluewallet: State "
                     "change not allowed (at PENDING_SETTLEMENT; an account moves one state at a time, so the next "
                     "is PS_TRANSFERS_RECORDED)")
    assert state.startswith("settlement ") and "is PS_TRANSFERS_COMMITTED: it is PENDING_SETTLEMENT (unchanged" in state
    assert "FAIL every account moves to PS_TRANSFERS_COMMITTED: refused for greenwallet, bluewallet" in shown
    # the refused PUT changed nothing: the next steps move the same settlement from PENDING_SETTLEMENT
    expected = result.steps[5]
    assert expected.ok and expected.checks[0].what == "the hub refuses the move"
    resettled = result.steps[10]
    assert resettled.checks[0].detail == "greenwallet owes 7 USD, bluewallet is owed 7 USD"
    assert positions(demo) == {"greenwallet": 0, "bluewallet": 0, "merchantbank": 0}


def test_settle_steps_without_something_to_work_on_fail_at_run_time(demo: Hub, tmp_path: Path) -> None:
    story = write(tmp_path, '''description = "nothing to settle"

[[steps]]
kind = "settle"
action = "close"
skip_if_empty = true

[[steps]]
kind = "settle"
action = "settle"

[[steps]]
kind = "settle"
action = "close"
''')
    result, _ = run(demo, story)
    assert [s.ok for s in result.steps] == [True, False, False]
    assert result.steps[1].error is not None and "no settlement window to settle" in result.steps[1].error
    (refusal,) = [c for c in result.steps[2].checks if not c.ok]
    assert refusal.what == "the hub carries it out" and "3100" in refusal.detail and "is empty" in refusal.detail


# ------------------------------------------------------------------------------ refused at load


HEAD = 'description = "x"\n\n[[steps]]\nkind = "settle"\naction = "close"\n\n[[steps]]\nkind = "settle"\n'


@pytest.mark.parametrize(("step", "line", "what"), [
    ('action = "pay"\n', 9,
     "step 2 (kind \"settle\"): action: 'pay' is not one of: close, settle, advance, abort, settle_all"),
    ('action = "advance"\n', 9,
     'step 2 (kind "settle"): action = "advance" needs `to`, one of: PS_TRANSFERS_RECORDED, PS_TRANSFERS_RESERVED, '
     "PS_TRANSFERS_COMMITTED, SETTLED"),
    ('action = "advance"\nsettlement = "1"\nto = "PS_TRANSFERS_RESERVD"\n', 11,
     "step 2 (kind \"settle\"): to: 'PS_TRANSFERS_RESERVD' is not one of: PS_TRANSFERS_RECORDED, "
     "PS_TRANSFERS_RESERVED, PS_TRANSFERS_COMMITTED, SETTLED"),
    ('action = "close"\nto = "SETTLED"\n', 10, 'step 2 (kind "settle"): to is only for action = "advance"'),
    ('action = "settle"\nskip_if_empty = true\n', 10,
     'step 2 (kind "settle"): skip_if_empty is only for action = "close"'),
    ('action = "abort"\n', 9,
     'step 2 (kind "settle"): action = "abort" needs an earlier settle step with action = "settle", or `settlement`'),
    ('action = "settle"\nexpect.state = "DONE"\n', 10,
     "step 2 (kind \"settle\"): expect.state: 'DONE' is not a settlement state (one of: PENDING_SETTLEMENT, "
     "PS_TRANSFERS_RECORDED, PS_TRANSFERS_RESERVED, PS_TRANSFERS_COMMITTED, SETTLED, SETTLING, ABORTED)"),
    ('action = "settle"\nwindows = 3\n', 10, 'step 2 (kind "settle"): windows: expected an array, got an integer'),
])
def test_a_malformed_settle_step_is_refused_at_load(tmp_path: Path, step: str, line: int, what: str) -> None:
    path = write(tmp_path, HEAD + step)
    with pytest.raises(ScenarioError) as caught:
        load(str(path))
    assert (caught.value.line, caught.value.what) == (line, what)
    assert str(caught.value) == f"{path}:{line}: {what}" and "\n" not in str(caught.value)


def test_a_settle_without_an_earlier_close_is_refused_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, 'description = "x"\n\n[[steps]]\nkind = "settle"\naction = "settle"\n')
    with pytest.raises(ScenarioError) as caught:
        load(str(path))
    assert (caught.value.line, caught.value.what) == (
        5, 'step 1 (kind "settle"): action = "settle" needs an earlier settle step with action = "close", or `windows`')
    load(str(write(tmp_path, 'description = "x"\n\n[[steps]]\nkind = "settle"\naction = "settle"\nwindows = ["3"]\n')))
