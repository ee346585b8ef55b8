"""`miniloop bench --chaos`, short: the hub is killed with SIGKILL three times under a stream of
transfers and restarted on the same data directory (issue 11's crash safety).

Why: a 202 from the switch promises that the request is in the ledger and that every message it
owes is in the outbox, to be sent after any crash. The chaos bench checks that promise the way a
DFSP sees it: every transfer answered 202 ends COMMITTED or ABORTED and its payer is told which,
nothing is committed twice, the positions add up, and no nats-server outlives a killed hub.

The run is a subprocess, as a user runs it; the test asserts on its JSON that every check passed
and that the kills really happened with transfers accepted before and after each. It never
asserts timings.
"""

from __future__ import annotations

import json
from pathlib import Path

CHAOS_TIMEOUT_S = 150.0  # the run bounds its own waits; this only stops a hung one
KILLS = 3


def test_sigkill_under_load_loses_nothing(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    r = run_cli("bench", "--chaos", "--kills", str(KILLS), "--duration", "12", "--concurrency", "6",
                "--json", str(out), timeout=CHAOS_TIMEOUT_S)
    assert out.exists(), r.stdout + r.stderr
    report = json.loads(out.read_text())
    failed = [name for name, ok in report["checks"].items() if not ok]
    assert r.returncode == 0 and report["ok"] and not failed, (failed, report["problems"], r.stdout, r.stderr)
    assert "chaos: every check passed" in r.stdout and f"seed {report['options']['seed']}" in r.stdout

    # the kills happened, with the hub answering 202s before and after each one
    kills = report["kills"]
    assert len(kills) == KILLS
    for kill in kills:
        assert kill["accepted_before"] > 0 and kill["accepted_after"] > 0, kill
        assert kill["broker_ok"] and kill["nats_pids"] and not kill["nats_orphans"], kill

    counts = report["counts"]
    assert counts["kills"] == KILLS
    assert counts["accepted"] >= sum(k["accepted_before"] for k in kills)
    assert counts["committed"] + counts["aborted"] == counts["accepted"] and counts["committed"] > 0
    for must_be_zero in ("unanswered_202", "payer_not_told", "payer_told_other", "payee_not_told", "committed_twice",
                         "conflicting_notifications", "positions_off", "nats_orphans"):
        assert counts[must_be_zero] == 0, (must_be_zero, report)
    assert report["ledger_check"].startswith("OK")


def test_chaos_refuses_options_it_cannot_honour(run_cli) -> None:
    r = run_cli("bench", "--chaos", "--url", "http://127.0.0.1:1")
    assert r.returncode == 2 and "--chaos starts (and kills) its own hub" in r.stderr
    r = run_cli("bench", "--chaos", "--rate", "10")
    assert r.returncode == 2 and "use --concurrency, not --rate" in r.stderr
    r = run_cli("bench", "--chaos", "--kills", "0")
    assert r.returncode == 2 and "must be 1 or more" in r.stderr and "Traceback" not in r.stderr
