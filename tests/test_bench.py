"""`miniloop bench`, run as a user runs it: a fresh hub, simulated DFSPs in their own processes,
real HTTP, the figures table, JSON, and the ledger check afterwards.

These runs are short and assert what was measured exists and is consistent (payments completed,
no errors, the ledger checks out), never how fast it was: timings belong to the benchmark's
output, not to tests.
"""

from __future__ import annotations

import json
from pathlib import Path

BENCH_TIMEOUT_S = 120.0


def test_transfer_flow_with_baseline_prints_the_table_and_writes_json(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = run_cli("bench", "--duration", "3", "--concurrency", "4", "--baseline", "--json", str(out),
                timeout=BENCH_TIMEOUT_S)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "transfer flow (prepare + fulfil), 2 DFSPs, 4 in flight" in r.stdout
    for row in ("completed per second", "latency p99", "switch RSS peak", "share of the baseline"):
        assert row in r.stdout, r.stdout
    assert "ledger check after the run: OK" in r.stdout, r.stdout

    report = json.loads(out.read_text())
    assert report["options"]["flow"] == "transfer" and report["machine"]["cores"] >= 1
    baseline, hub = report["results"]
    assert (baseline["label"], hub["label"]) == ("baseline", "miniloop")
    for result in (baseline, hub):
        assert result["completed"] > 0 and result["rate"] > 0
        assert result["errors"] == {}
        latency = result["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert hub["ledger_check"].startswith("OK")
    assert hub["rss_mb"]["miniloop"] > 0 and hub["start_s"] > 0


def test_full_flow_looks_up_quotes_and_transfers(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "full.json"
    r = run_cli("bench", "--duration", "3", "--concurrency", "4", "--flow", "full", "--dfsps", "3",
                "--json", str(out), timeout=BENCH_TIMEOUT_S)
    assert r.returncode == 0, r.stdout + r.stderr
    (hub,) = json.loads(out.read_text())["results"]
    assert hub["flow"] == "full" and hub["completed"] > 0 and hub["errors"] == {}
    assert hub["ledger_check"].startswith("OK")


def test_bad_options_get_one_line(run_cli) -> None:
    r = run_cli("bench", "--dfsps", "1")
    assert r.returncode == 2 and r.stderr.strip() == "miniloop: bench: --dfsps must be 2 or more (each DFSP pays the others)"
    r = run_cli("bench", "--duration", "0")
    assert r.returncode == 2 and "must be more than 0" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("bench", "--rate", "10", "--concurrency", "3")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr
    r = run_cli("bench", "--admin-url", "http://127.0.0.1:1")
    assert r.returncode == 2 and r.stderr.strip() == "miniloop: bench: --admin-url and --als-url go with --url"


def test_unreachable_url_is_one_line(run_cli) -> None:
    r = run_cli("bench", "--duration", "1", "--url", "http://127.0.0.1:9", "--admin-url", "http://127.0.0.1:9",
                "--als-url", "http://127.0.0.1:9")
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("miniloop: bench: cannot reach http://127.0.0.1:9") and "Traceback" not in r.stderr


def test_bench_and_scenario_send_the_admin_token_to_a_remote_hub(hubs, run_cli, tmp_path: Path) -> None:
    """A hub on 0.0.0.0 with --admin-token asks for it on its operators' ports: `bench --url`
    sends --admin-token (else MINILOOP_ADMIN_TOKEN), and so does `scenario run --admin-token`."""
    token = "bench-token-8c1f"
    hub = hubs.start("--host", "0.0.0.0", "--admin-token", token)
    remote = ["--url", hub.urls["fspiop"], "--admin-url", hub.urls["admin"], "--als-url", hub.urls["als_admin"]]
    r = run_cli("bench", "--duration", "1", *remote, "--admin-token", "wrong", env={"MINILOOP_ADMIN_TOKEN": token},
                timeout=BENCH_TIMEOUT_S)  # the flag wins over the environment
    assert r.returncode == 2 and "(401)" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    out = tmp_path / "bench.json"
    r = run_cli("bench", "--duration", "3", "--concurrency", "4", *remote, "--json", str(out),
                env={"MINILOOP_ADMIN_TOKEN": token}, timeout=BENCH_TIMEOUT_S)
    assert r.returncode == 0, r.stdout + r.stderr
    (result,) = json.loads(out.read_text())["results"]
    assert result["completed"] > 0 and result["errors"] == {}, result
    assert token not in r.stdout + r.stderr
    r = run_cli("scenario", "run", "p2p", "--data-dir", str(hub.data_dir), "--admin-token", token)
    assert r.returncode == 0, r.stdout + r.stderr
