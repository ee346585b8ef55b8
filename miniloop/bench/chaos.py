"""`miniloop bench --chaos`: kill the hub with SIGKILL under load, restart it, check that nothing was lost.

The steps, in order:
1. a fresh hub in a temporary data directory (as `miniloop bench` starts one), onboarded the same
   way, and one process per simulated DFSP (miniloop.bench.dfsp in chaos mode: each keeps a record
   of what the hub answered 202 and of every outcome it was told, as payer and as payee);
2. the transfer load; `--kills` times, at a random moment of its own slice of the run (seeded by
   `--seed`, printed so a run can be repeated), the hub gets SIGKILL: no chance to finish a
   batch, deliver its outbox or stop nats-server. Its nats-server must exit by itself (the kernel's
   parent-death signal); the hub is started again on the same data directory, on new ports, and
   the DFSPs are told its new URL over their control pipe (their own callback servers never move,
   so the endpoints in the ledger stay right). The restarted hub's /health must report the broker
   OK. A kill waits until the restarted hub has answered at least one transfer 202;
3. after the last restart the load runs on a little, then stops; the DFSPs wait (bounded: the
   transfers' expiration plus 30 s) until the payer has heard the outcome of every transfer it
   was answered 202 for;
4. the hub is stopped (SIGTERM) and its ledger read: every transfer answered 202 must be in the
   ledger and final (COMMITTED, or ABORTED in one of its forms), its payer told that same
   outcome, its payee (for a commit) told COMMITTED; nothing committed twice (one COMMITTED
   state and one position change per account for each committed transfer); every DFSP's
   position equal to what its committed transfers moved; `miniloop ledger check` passing; and
   no nats-server left running from any of the hubs.
Outcomes told more than once with the same state are counted (at-least-once delivery allows
them); two different outcomes for one transfer are a failure.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from miniloop.bench import dfsp as bench_dfsp
from miniloop.bench.run import (
    READY_TIMEOUT_S, Options, _children, _command, onboard_dfsp, onboard_hub, start_dfsps, start_hub, stop_hub,
)
from miniloop.errors import MiniloopError

KILL_JITTER = 0.3  # a kill lands within ±30 % of a slice of the run from the end of its slice
MIN_UP_S = 1.0  # a restarted hub serves at least this long before the next kill
FIRST_ACCEPT_TIMEOUT_S = 20.0  # a (restarted) hub must answer a transfer 202 within this
NATS_EXIT_TIMEOUT_S = 10.0  # a killed hub's nats-server must be gone within this
HEALTH_TIMEOUT_S = 10.0  # a restarted hub's broker must be OK within this
OUTBOX_TIMEOUT_S = 30.0  # at the end, the hub's outbox must be empty within this
TAIL_S = 2.0  # the load runs at least this long after the last restart
RESULT_TIMEOUT_S = bench_dfsp.DRAIN_S + bench_dfsp.CHAOS_SETTLE_S + 30
FINAL = {"COMMITTED": "COMMITTED", "ABORTED_REJECTED": "ABORTED", "ABORTED_ERROR": "ABORTED",
         "EXPIRED_PREPARED": "ABORTED", "EXPIRED_RESERVED": "ABORTED", "INVALID": "ABORTED"}
LISTED = 5  # examples named per failed check


@dataclass
class Kill:
    at_s: float  # since the load started
    accepted_before: int = 0  # 202s since the hub (re)started, before the kill
    accepted_after: int = 0  # 202s from the restart to the next kill (or the end)
    nats_pids: list[int] = field(default_factory=list)
    nats_orphans: list[int] = field(default_factory=list)
    nats_exit_s: float | None = None  # from the kill to its nats-server being gone
    restart_s: float | None = None  # from the kill to the restarted hub being ready
    broker_ok: bool = False
    # internal, in time.monotonic()
    killed_at: float = 0.0
    up_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"at_s": round(self.at_s, 2), "accepted_before": self.accepted_before,
                "accepted_after": self.accepted_after, "nats_pids": self.nats_pids,
                "nats_orphans": self.nats_orphans, "nats_exit_s": self.nats_exit_s, "restart_s": self.restart_s,
                "broker_ok": self.broker_ok}


@dataclass
class Report:
    seed: int
    kills: list[Kill] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    ledger_check: str = "not run"
    errors: dict[str, int] = field(default_factory=dict)  # what the DFSPs saw (expected while the hub is down)
    accepted: dict[str, float] = field(default_factory=dict)  # transferId -> when it was answered 202
    told: dict[str, list[str]] = field(default_factory=dict)  # transferId -> outcomes its payer was told
    payee_told: dict[str, list[str]] = field(default_factory=dict)  # ... and its payee

    def check(self, name: str, ok: bool, problem: str = "") -> None:
        self.checks[name] = self.checks.get(name, True) and ok
        if not ok and problem:
            self.problems.append(problem)

    @property
    def ok(self) -> bool:
        return all(self.checks.values())


class _Pipes:
    """The DFSP processes' pipes: progress and results, read whenever the controller waits."""

    def __init__(self, pipes: list[Any]) -> None:
        self.pipes = pipes
        self.accepted_now: dict[int, int] = {}  # how many 202s each DFSP has had
        self.last_accepted: dict[int, float] = {}  # when each DFSP last got a 202 (time.monotonic)
        self.results: dict[int, dict[str, Any]] = {}
        self.records: dict[int, dict[str, Any]] = {}

    def pump(self) -> None:
        for i, pipe in enumerate(self.pipes):
            while i not in self.records and pipe.poll():
                message = pipe.recv()
                if message[0] == "progress":
                    self.accepted_now[i], self.last_accepted[i] = message[4], message[5]
                elif message[0] == "result":
                    self.results[i] = message[1]
                elif message[0] == "record":
                    self.records[i] = message[1]

    def accepted_since(self, moment: float) -> bool:
        return max(self.last_accepted.values(), default=0.0) >= moment

    def wait(self, until: float) -> None:
        while time.monotonic() < until:
            self.pump()
            time.sleep(0.05)

    def send(self, *message: Any) -> None:
        for pipe in self.pipes:
            pipe.send(message)


def kill_times(rng: random.Random, start_at: float, duration: float, kills: int) -> list[float]:
    """One kill per slice of the run, the slices ending before it does (the load goes on after the last)."""
    slice_s = duration / (kills + 1)
    return [start_at + slice_s * (i + 1) + rng.uniform(-KILL_JITTER, KILL_JITTER) * slice_s for i in range(kills)]


def _nats_children(pid: int) -> list[int]:
    return [c for c in _children(pid) if "nats-server" in _command(c)]


def _gone(pid: int) -> bool:
    """No such process, or a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and text in _command(int(entry.name)) \
                and not _gone(int(entry.name)):
            found.append(int(entry.name))
    return found


def _broker_ok(fspiop_url: str) -> bool:
    """The hub's /health names the broker OK (polled, bounded)."""
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{fspiop_url}/health", timeout=5) as response:
                services = json.loads(response.read()).get("services", [])
        except urllib.error.HTTPError as exc:  # 502 while something is DOWN: its body still says what
            try:
                services = json.loads(exc.read()).get("services", [])
            except ValueError:
                services = []
        except (urllib.error.URLError, OSError, ValueError):
            services = []
        if any(s.get("name") == "broker" and s.get("status") == "OK" for s in services):
            return True
        time.sleep(0.1)
    return False


def _wait_outbox_empty(data_dir: Path) -> int:
    """Wait (bounded) until the hub has delivered every message it owes; return how many remain."""
    from miniloop.ledger.store import DB_FILE

    deadline = time.monotonic() + OUTBOX_TIMEOUT_S
    while True:
        db = sqlite3.connect(f"file:{data_dir / DB_FILE}?mode=ro", uri=True, timeout=5)
        try:
            waiting = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        finally:
            db.close()
        if not waiting or time.monotonic() > deadline:
            return int(waiting)
        time.sleep(0.1)


def _kill_hub(process: subprocess.Popen[bytes], kill: Kill) -> None:
    kill.nats_pids = _nats_children(process.pid)
    kill.killed_at = time.monotonic()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(READY_TIMEOUT_S)
    deadline = time.monotonic() + NATS_EXIT_TIMEOUT_S
    while time.monotonic() < deadline and not all(_gone(p) for p in kill.nats_pids):
        time.sleep(0.02)
    kill.nats_orphans = [p for p in kill.nats_pids if not _gone(p)]
    kill.nats_exit_s = round(time.monotonic() - kill.killed_at, 2)


# ------------------------------------------------------------------------------ the command


def chaos(options: Options) -> int:
    if options.url:
        raise MiniloopError("bench: --chaos starts (and kills) its own hub: it does not go with --url")
    if options.baseline:
        raise MiniloopError("bench: --chaos and --baseline do not go together")
    if options.rate:
        raise MiniloopError("bench: --chaos keeps a number of payments in flight: use --concurrency, not --rate")
    if options.kills < 1:
        raise MiniloopError("bench: --kills must be 1 or more")
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(1, 2**31)
    print(f"miniloop bench --chaos: {options.flow} flow, {options.dfsps} DFSPs, {options.concurrency} in flight, "
          f"{options.duration:g} s, {options.kills} kills, seed {seed}", flush=True)
    report = Report(seed)
    workdir = Path(tempfile.mkdtemp(prefix="miniloop-chaos-"))
    data_dir = workdir / "hub"
    process: subprocess.Popen[bytes] | None = None
    processes: list[Any] = []
    try:
        try:
            process, processes = _run(options, random.Random(seed), data_dir, report)
        except MiniloopError as exc:
            report.check("the run completed", False, str(exc).removeprefix("bench: "))
        if process is not None and process.poll() is None:
            nats = _nats_children(process.pid)
            stop_hub(process)
            report.check("the hub stopped cleanly", process.returncode == 0,
                         f"the last hub exited with status {process.returncode}")
            deadline = time.monotonic() + NATS_EXIT_TIMEOUT_S
            while time.monotonic() < deadline and not all(_gone(p) for p in nats):
                time.sleep(0.02)
        leftovers = _processes_mentioning(str(data_dir))
        report.counts["nats_orphans"] = sum(len(k.nats_orphans) for k in report.kills) + len(leftovers)
        report.check("no nats-server outlived its hub", report.counts["nats_orphans"] == 0,
                     f"processes left running: {[k.nats_orphans for k in report.kills]} {leftovers}")
        if (data_dir / "miniloop.db").exists() and report.counts.get("accepted") is not None:
            _check_ledger(data_dir, report)
    finally:
        for p in processes:
            if p.is_alive():
                p.kill()
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        for pid in _processes_mentioning(str(data_dir)):  # a nats-server orphan: ours to end
            os.kill(pid, signal.SIGKILL)
        if not report.ok:
            keep = Path(tempfile.gettempdir()) / f"miniloop-chaos-{seed}.log"
            shutil.copyfile(workdir / "hub.log", keep) if (workdir / "hub.log").exists() else None
            report.problems.append(f"the hubs' output is kept in {keep}")
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(report))
    if options.json_path is not None:
        options.json_path.write_text(json.dumps({
            "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform},
            "options": {"duration": options.duration, "concurrency": options.concurrency, "flow": options.flow,
                        "dfsps": options.dfsps, "kills": options.kills, "seed": seed},
            "kills": [k.to_json() for k in report.kills], "counts": report.counts, "checks": report.checks,
            "ledger_check": report.ledger_check, "problems": report.problems, "dfsp_errors": report.errors,
            "ok": report.ok,
        }, indent=2) + "\n")
    return 0 if report.ok else 1


def _wait_for_a_202(control: _Pipes, up_at: float) -> None:
    """Wait (bounded) until the hub that came up at `up_at` has answered a transfer 202."""
    deadline = time.monotonic() + FIRST_ACCEPT_TIMEOUT_S
    while not control.accepted_since(up_at):
        if time.monotonic() > deadline:
            raise MiniloopError(f"no transfer was answered 202 within {FIRST_ACCEPT_TIMEOUT_S:.0f} s of the hub's "
                                "(re)start")
        control.wait(time.monotonic() + 0.05)


def _run(options: Options, rng: random.Random, data_dir: Path,
         report: Report) -> tuple[subprocess.Popen[bytes] | None, list[Any]]:
    """Start, load, kill and restart, wait for the outcomes; return the last hub and the DFSPs."""
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    target, urls, process = start_hub(data_dir)
    processes: list[Any] = []
    try:
        onboard_hub(urls)
        names, pipes, processes, bases = start_dfsps(options, options.flow, "chaos")
        for i, name in enumerate(names):
            numbers = [bench_dfsp.msisdn(i, n) for n in range(bench_dfsp.PARTIES)] if options.flow == "full" else []
            onboard_dfsp(urls, name, bases[name], numbers)
        control = _Pipes(pipes)
        start_at = time.monotonic() + 0.5
        control.send("go", start_at, float("inf"), urls["fspiop"])
        up_at = start_at
        for planned in kill_times(rng, start_at, options.duration, options.kills):
            control.wait(max(planned, up_at + MIN_UP_S))
            _wait_for_a_202(control, up_at)
            kill = Kill(at_s=time.monotonic() - start_at)
            report.kills.append(kill)
            _kill_hub(process, kill)
            if kill.nats_orphans:  # it would hold the NATS store; the check reports it
                for pid in kill.nats_orphans:
                    os.kill(pid, signal.SIGKILL)
            target, urls, process = start_hub(data_dir)
            kill.up_at = up_at = time.monotonic()
            kill.restart_s = round(up_at - kill.killed_at, 2)
            control.send("hub", urls["fspiop"])
            kill.broker_ok = _broker_ok(urls["fspiop"])
        control.wait(max(start_at + options.duration, up_at + TAIL_S))
        _wait_for_a_202(control, up_at)
        control.send("end")
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        while len(control.results) < len(pipes):
            if time.monotonic() > deadline:
                raise MiniloopError("the simulated DFSPs did not finish")
            control.wait(time.monotonic() + 0.1)
        # every payer has heard; the messages owed to payees may still be on their way
        _wait_outbox_empty(data_dir)
        control.send("stop")
        deadline = time.monotonic() + bench_dfsp.DRAIN_S + 10
        while len(control.records) < len(pipes):
            if time.monotonic() > deadline:
                raise MiniloopError("the simulated DFSPs did not send their record")
            control.wait(time.monotonic() + 0.05)
        for p in processes:
            p.join(bench_dfsp.DRAIN_S + 5)
        _tally(list(control.records.values()), start_at, report)
    except BaseException:
        if process.poll() is None:
            stop_hub(process)
        raise
    return process, processes


def _tally(results: list[dict[str, Any]], start_at: float, report: Report) -> None:
    """What the DFSPs saw: accepted transfers around each kill, outcomes told, duplicates."""
    accepted: dict[str, float] = {}
    told: dict[str, list[str]] = {}
    payee_told: dict[str, list[str]] = {}
    errors: Counter[str] = Counter()
    for result in results:
        accepted.update(result["accepted"])
        told.update(result["told"])
        payee_told.update(result["payee_told"])
        errors.update(result["errors"])
        errors["fulfilments never answered (the transfer expires)"] += result["fulfil_unsent"]
    report.errors = {k: v for k, v in errors.items() if v}
    bounds = [start_at] + [k.up_at for k in report.kills] + [float("inf")]
    for i, kill in enumerate(report.kills):
        kill.accepted_before = sum(1 for t in accepted.values() if bounds[i] <= t < kill.killed_at)
        kill.accepted_after = sum(1 for t in accepted.values()
                                  if kill.up_at <= t < (report.kills[i + 1].killed_at if i + 1 < len(report.kills)
                                                        else float("inf")))
        report.check("transfers were accepted around every kill", kill.accepted_before > 0 and kill.accepted_after > 0,
                     f"kill {i + 1}: {kill.accepted_before} transfers accepted before it, {kill.accepted_after} after")
        report.check("the broker was OK after every restart", kill.broker_ok,
                     f"kill {i + 1}: the restarted hub's /health did not report the broker OK "
                     f"within {HEALTH_TIMEOUT_S:.0f} s")
    report.counts["kills"] = len(report.kills)
    report.counts["accepted"] = len(accepted)
    report.accepted, report.told, report.payee_told = accepted, told, payee_told
    dupes = conflicts = 0
    conflicting = []
    for who, record in (("payer", told), ("payee", payee_told)):
        for transfer_id, states in record.items():
            dupes += len(states) - len(set(states))
            if len(set(states)) > 1:
                conflicts += 1
                conflicting.append(f"{transfer_id} ({who} told {', '.join(states)})")
    report.counts["duplicate_notifications"] = dupes
    report.counts["conflicting_notifications"] = conflicts
    report.check("no transfer was told two different outcomes", not conflicts,
                 f"{conflicts} transfers were told two different outcomes: {', '.join(conflicting[:LISTED])}")


def _check_ledger(data_dir: Path, report: Report) -> None:
    """The stopped hub's ledger against what the DFSPs saw; then `miniloop ledger check`."""
    from miniloop.ledger.check import check_ledger
    from miniloop.ledger.store import DB_FILE

    accepted, told, payee_told = report.accepted, report.told, report.payee_told
    db = sqlite3.connect(f"file:{data_dir / DB_FILE}?mode=ro", uri=True)
    try:
        states = dict(db.execute("SELECT id, state FROM transfer WHERE kind = 'FSPIOP'"))
        commits = dict(db.execute("SELECT transfer_id, count(*) FROM transfer_state_change WHERE state = 'COMMITTED' "
                                  "GROUP BY transfer_id"))
        moved_twice = [r[0] for r in db.execute(
            "SELECT pc.transfer_id FROM position_change pc JOIN transfer t ON t.id = pc.transfer_id "
            "WHERE t.state = 'COMMITTED' AND t.kind = 'FSPIOP' GROUP BY pc.transfer_id, pc.account_id "
            "HAVING count(*) > 1")]
        # each DFSP's position against what its committed transfers moved (every DFSP starts at 0)
        positions = dict(db.execute(
            "SELECT p.name, pos.value FROM position pos JOIN account a ON a.id = pos.account_id "
            "JOIN participant p ON p.id = a.participant_id "
            "WHERE a.ledger_account_type_id = 1 AND p.name != 'Hub'"))
        expected: Counter[str] = Counter()
        for payer, payee, amount in db.execute(
                "SELECT f.payer_fsp, f.payee_fsp, t.amount FROM transfer t JOIN transfer_fspiop f "
                "ON f.transfer_id = t.id WHERE t.state = 'COMMITTED'"):
            expected[payer] += amount
            expected[payee] -= amount
    finally:
        db.close()

    lost = [t for t in accepted if t not in states]
    unfinished = [f"{t} ({states[t]})" for t in accepted if t in states and states[t] not in FINAL]
    report.counts["committed"] = sum(1 for t in accepted if states.get(t) == "COMMITTED")
    report.counts["aborted"] = sum(1 for t in accepted if FINAL.get(states.get(t, "")) == "ABORTED")
    report.counts["unanswered_202"] = len(lost) + len(unfinished)
    report.check("every transfer answered 202 ended COMMITTED or ABORTED", not lost and not unfinished,
                 f"{len(lost)} transfers answered 202 are not in the ledger ({', '.join(lost[:LISTED])}); "
                 f"{len(unfinished)} are not final ({', '.join(unfinished[:LISTED])})")
    not_told, told_other = [], []
    for transfer_id in accepted:
        final = FINAL.get(states.get(transfer_id, ""))
        if final is None:
            continue  # counted above
        heard = set(told.get(transfer_id, []))
        if not heard:
            not_told.append(f"{transfer_id} ({states[transfer_id]})")
        elif heard != {final}:
            told_other.append(f"{transfer_id} ({states[transfer_id]}, told {', '.join(sorted(heard))})")
    report.counts["payer_not_told"] = len(not_told)
    report.counts["payer_told_other"] = len(told_other)
    report.check("every payer was told the outcome", not not_told,
                 f"{len(not_told)} payers were never told the outcome: {', '.join(not_told[:LISTED])}")
    report.check("every payer was told the outcome in the ledger", not told_other,
                 f"{len(told_other)} payers were told another outcome: {', '.join(told_other[:LISTED])}")
    payee_missing = [t for t in accepted if states.get(t) == "COMMITTED" and "COMMITTED" not in payee_told.get(t, [])]
    report.counts["payee_not_told"] = len(payee_missing)
    report.check("every payee was told of its commit", not payee_missing,
                 f"{len(payee_missing)} payees were never told of a commit: {', '.join(payee_missing[:LISTED])}")
    twice = sorted({t for t, n in commits.items() if n > 1} | set(moved_twice))
    report.counts["committed_twice"] = len(twice)
    report.check("nothing was committed twice", not twice,
                 f"{len(twice)} transfers were committed (or moved a position) twice: {', '.join(twice[:LISTED])}")
    off = [f"{name} {positions.get(name, 0)} (committed transfers moved {expected[name]})"
           for name in sorted(set(positions) | set(expected)) if positions.get(name, 0) != expected[name]]
    report.counts["positions_off"] = len(off)
    report.check("positions equal the committed transfers", not off,
                 f"positions (in 1/10,000) that differ from the committed transfers: {'; '.join(off[:LISTED])}")
    result = check_ledger(data_dir / DB_FILE)
    report.ledger_check = f"OK ({result.summary})" if result.ok else \
        f"{result.found} problems: " + "; ".join(result.problems[:LISTED])
    report.check("ledger check", result.ok, f"ledger check: {report.ledger_check}")


def render(report: Report) -> str:
    lines = []
    for i, kill in enumerate(report.kills, 1):
        nats = (f"its nats-server exited ({kill.nats_exit_s} s)" if not kill.nats_orphans else f"nats-server {kill.nats_orphans} LEFT RUNNING") \
            if kill.nats_pids else "no nats-server found"
        lines.append(f"  kill {i:>{len(str(len(report.kills)))}} at {kill.at_s:5.1f} s: {kill.accepted_before:>6,} accepted before, {nats}, "
                     f"back in {kill.restart_s if kill.restart_s is not None else 'n/a'} s "
                     f"(broker {'OK' if kill.broker_ok else 'NOT OK'}), {kill.accepted_after:>6,} accepted after")
    c = report.counts

    def n(key: str) -> str:
        return f"{c[key]:,}" if key in c else "n/a"

    rows = [
        ("kills", n("kills"), ""),
        ("transfers answered 202", n("accepted"), ""),
        ("  committed", n("committed"), ""),
        ("  aborted (expired, rejected)", n("aborted"), ""),
        ("answered 202, not final", n("unanswered_202"), "must be 0"),
        ("payer not told", n("payer_not_told"), "must be 0"),
        ("payer told another outcome", n("payer_told_other"), "must be 0"),
        ("payee not told of a commit", n("payee_not_told"), "must be 0"),
        ("committed twice", n("committed_twice"), "must be 0"),
        ("duplicate notifications", n("duplicate_notifications"), "same outcome again: allowed"),
        ("conflicting notifications", n("conflicting_notifications"), "must be 0"),
        ("positions off", n("positions_off"), "must be 0"),
        ("nats-server orphans", n("nats_orphans"), "must be 0"),
    ]
    width = max(len(r[0]) for r in rows)
    values = max(len(r[1]) for r in rows)
    lines += [f"  {name.ljust(width)}  {value.rjust(values)}  {note}".rstrip() for name, value, note in rows]
    lines.append(f"  ledger check: {report.ledger_check}")
    for what, count in sorted(report.errors.items(), key=lambda item: -item[1]):
        lines.append(f"  seen by the DFSPs: {count:,} x {what}")
    for problem in report.problems:
        lines.append(f"  PROBLEM: {problem}")
    lines.append("chaos: every check passed" if report.ok else
                 "chaos: FAILED: " + ", ".join(name for name, ok in report.checks.items() if not ok))
    return "\n".join(lines)
