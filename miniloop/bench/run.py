"""`miniloop bench`: start a hub, onboard simulated DFSPs, drive payments, report what was measured.

The steps, in order:
1. a fresh hub in a temporary data directory (`miniloop up --empty`, every port chosen by the
   kernel), timed from launch to ready; or a running hub given by `--url`;
2. one process per simulated DFSP (miniloop.bench.dfsp), each with its own HTTP server;
3. onboarding through the Admin API as an operator would: hub accounts, settlement model,
   oracle, then per DFSP the participant, its NDC, its callback endpoints and its funds (and for
   the full flow, its customers' MSISDNs through FSPIOP POST /participants);
4. the load, for `--duration` seconds; twice a second the DFSPs report progress and this process
   samples the CPU time and RSS of the hub, nats-server and the DFSPs from /proc;
5. the steady middle of the run is kept (the first and last 10 %, at least a second each, are
   ramp-up and ramp-down), its throughput and latency percentiles computed;
6. `miniloop ledger check` on the hub's ledger, then the hub is stopped and its data removed.
With `--baseline` the same load first runs against a trivial forwarder (miniloop.bench.forwarder).
With `--chaos` the hub is killed and restarted under the load instead (miniloop.bench.chaos).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from miniloop.bench import dfsp as bench_dfsp
from miniloop.errors import MiniloopError
from miniloop.fspiop.endpoints import for_base_url
from miniloop.fspiop.headers import imf_date

CURRENCY = bench_dfsp.CURRENCY
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0
SAMPLE_EVERY_S = 0.5
FUNDS = "1000000000"  # each DFSP's deposit: far more than a run can spend
NDC = "1000000000"
REGISTER_BATCH = 1_000  # MSISDNs per POST /participants


@dataclass
class Options:
    duration: float = 60.0
    concurrency: int = 0
    rate: float = 0.0
    flow: str = "transfer"
    dfsps: int = 2
    json_path: Path | None = None
    url: str | None = None  # a running hub's FSPIOP API
    admin_url: str | None = None
    als_url: str | None = None
    baseline: bool = False
    progress: bool = True
    chaos: bool = False  # kill the hub under the load, restart it, check nothing was lost
    kills: int = 5
    seed: int | None = None
    # with --url: the client certificate and CA for an https FSPIOP port (mutual TLS), and the
    # admin token of a hub started with --admin-token
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    admin_token: str | None = None

    def load_text(self) -> str:
        return f"{self.rate:g}/s offered" if self.rate else f"{self.concurrency} in flight"


@dataclass
class Target:
    """What the load is sent to: the hub, or the baseline forwarder."""

    label: str
    fspiop_url: str
    pid: int | None = None
    start_s: float | None = None
    data_dir: Path | None = None


@dataclass
class Sampler:
    """CPU seconds and RSS of some processes, from /proc (Linux); empty elsewhere."""

    pids: dict[str, list[int]]
    cpu: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # (when, cpu seconds)
    rss_peak: dict[str, int] = field(default_factory=dict)

    def sample(self) -> None:
        now = time.monotonic()
        for name, pids in self.pids.items():
            seconds, rss = 0.0, 0
            for pid in pids:
                seconds += _cpu_seconds(pid)
                rss += _rss_bytes(pid)
            self.cpu.setdefault(name, []).append((now, seconds))
            self.rss_peak[name] = max(self.rss_peak.get(name, 0), rss)

    def cpu_percent(self, name: str, start: float, end: float) -> float | None:
        points = [(t, s) for t, s in self.cpu.get(name, []) if start <= t <= end]
        if len(points) < 2 or points[-1][0] <= points[0][0]:
            return None
        return 100.0 * (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


# ------------------------------------------------------------------------------ HTTP to the hub


@dataclass
class Access:
    """How the controller reaches a hub given with --url: the SSL context for its https FSPIOP
    port, and the admin token sent to its operators' ports (and only there)."""

    ssl_context: ssl.SSLContext | None = None
    operator_urls: tuple[str, ...] = ()
    admin_token: str | None = None


_access = Access()


def _call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json", **(headers or {})}
    if _access.admin_token and _access.operator_urls and url.startswith(_access.operator_urls):
        headers["authorization"] = f"Bearer {_access.admin_token}"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    context = _access.ssl_context if url.startswith("https://") else None
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, raw.decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        raise MiniloopError(f"bench: cannot reach {url}: {exc}") from None


def _must(result: tuple[int, Any], what: str, *ok: int) -> Any:
    status, body = result
    if status not in ok:
        raise MiniloopError(f"bench: {what} was refused ({status}): {body}")
    return body


# ------------------------------------------------------------------------------ the hub


def start_hub(data_dir: Path) -> tuple[Target, dict[str, str], subprocess.Popen[bytes]]:
    """`miniloop up --empty` on free ports; returns when it is ready (its own hub.json: one left
    by a hub that was killed is removed first). Its output is appended to hub.log beside the data."""
    command = [sys.executable, "-m", "miniloop", "up", "--headless", "--empty", "--data-dir", str(data_dir),
               "--log-level", "warning"]
    for flag in ("--fspiop-port", "--admin-port", "--settlement-port", "--als-admin-port", "--sim-port",
                 "--wallet-port"):
        command += [flag, "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINILOOP_")}
    began = time.monotonic()
    runtime = data_dir / "hub.json"
    runtime.unlink(missing_ok=True)
    with open(data_dir.parent / "hub.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    while not runtime.exists():
        if process.poll() is not None:
            raise MiniloopError(f"bench: the hub did not start: {(data_dir.parent / 'hub.log').read_text()[-500:]}")
        if time.monotonic() - began > READY_TIMEOUT_S:
            process.kill()
            raise MiniloopError(f"bench: the hub was not ready after {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.02)
    ready = time.monotonic() - began
    info = json.loads(runtime.read_text())
    return Target("miniloop", info["urls"]["fspiop"], info["pid"], ready, data_dir), info["urls"], process


def stop_hub(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def onboard_hub(urls: dict[str, str]) -> None:
    """What an operator does once per currency: hub accounts, a settlement model, an oracle."""
    admin, als = urls["admin"], urls["als_admin"]
    for account_type in ("HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"):
        status, body = _call("POST", f"{admin}/participants/Hub/accounts", {"currency": CURRENCY, "type": account_type})
        if status != 201 and "already" not in json.dumps(body):
            raise MiniloopError(f"bench: creating the Hub's {account_type} account was refused ({status}): {body}")
    status, _ = _call("GET", f"{admin}/settlementModels/DEFERREDNET")
    if status != 200:
        _must(_call("POST", f"{admin}/settlementModels", {
            "name": "DEFERREDNET", "settlementGranularity": "NET", "settlementInterchange": "MULTILATERAL",
            "settlementDelay": "DEFERRED", "currency": CURRENCY, "requireLiquidityCheck": True,
            "ledgerAccountType": "POSITION", "settlementAccountType": "SETTLEMENT", "autoPositionReset": True,
        }), "creating the settlement model", 201)
    oracles = _must(_call("GET", f"{als}/oracles"), "listing the oracles", 200) or []
    if not any(o.get("oracleIdType") == "MSISDN" for o in oracles):
        _must(_call("POST", f"{als}/oracles", {
            "oracleIdType": "MSISDN", "endpoint": {"value": f"{als}/oracle", "endpointType": "URL"},
            "currency": CURRENCY, "isDefault": True,
        }), "registering the MSISDN oracle", 201)


def onboard_dfsp(urls: dict[str, str], name: str, callback_base: str, numbers: list[str]) -> None:
    admin = urls["admin"]
    _must(_call("POST", f"{admin}/participants", {"name": name, "currency": CURRENCY}), f"creating {name}", 201)
    _must(_call("POST", f"{admin}/participants/{name}/initialPositionAndLimits", {
        "currency": CURRENCY, "limit": {"type": "NET_DEBIT_CAP", "value": NDC}, "initialPosition": 0,
    }), f"setting {name}'s NDC", 201)
    for endpoint_type, value in for_base_url(callback_base).items():
        _must(_call("POST", f"{admin}/participants/{name}/endpoints", {"type": endpoint_type, "value": value}),
              f"registering {name}'s endpoints", 201)
    accounts = _must(_call("GET", f"{admin}/participants/{name}/accounts"), f"reading {name}'s accounts", 200)
    (settlement,) = [a["id"] for a in accounts if a["ledgerAccountType"] == "SETTLEMENT"]
    _must(_call("POST", f"{admin}/participants/{name}/accounts/{settlement}", {
        "transferId": str(uuid.uuid4()), "externalReference": "bench", "action": "recordFundsIn",
        "reason": "bench deposit", "amount": {"amount": FUNDS, "currency": CURRENCY},
    }), f"depositing {name}'s funds", 202)
    media = "application/vnd.interoperability.participants+json;version=1.1"
    for start in range(0, len(numbers), REGISTER_BATCH):
        party_list = [{"partyIdType": "MSISDN", "partyIdentifier": n, "fspId": name}
                      for n in numbers[start:start + REGISTER_BATCH]]
        _must(_call("POST", f"{urls['fspiop']}/participants", {"requestId": str(uuid.uuid4()), "partyList": party_list},
                    headers={"content-type": media, "accept": media, "date": imf_date(), "fspiop-source": name}),
              f"registering {name}'s MSISDNs", 202)


# ------------------------------------------------------------------------------ one measured run


@dataclass
class Result:
    label: str
    flow: str
    window_s: float
    completed: int
    rate: float
    latency_ms: dict[str, float]
    errors: dict[str, int]
    cpu_percent: dict[str, float | None]
    rss_mb: dict[str, float]
    start_s: float | None = None
    ledger_check: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(p * len(values)))]


class Progress:
    """A one-line progress bar on stderr (only on a terminal)."""

    def __init__(self, enabled: bool, label: str, duration: float) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.label, self.duration = label, duration

    def show(self, elapsed: float, done: int, rate: float, errors: int, in_flight: int) -> None:
        if not self.enabled:
            return
        width = 24
        filled = int(width * min(1.0, max(0.0, elapsed / self.duration)))
        bar = "█" * filled + "·" * (width - filled)
        sys.stderr.write(f"\r{self.label:<9} {bar} {min(elapsed, self.duration):5.1f}/{self.duration:.0f} s  "
                         f"{done:>8,} done  {rate:>7,.0f}/s  {in_flight:>5} in flight  {errors} errors ")
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 100 + "\r")
            sys.stderr.flush()


def start_dfsps(options: Options, flow: str, prefix: str) -> tuple[list[str], list[Any], list[Any], dict[str, str]]:
    """One process per simulated DFSP; returns their names, pipes, processes and callback base URLs."""
    context = multiprocessing.get_context("spawn")
    names = [f"{prefix}{uuid.uuid4().hex[:4]}{i}" for i in range(options.dfsps)]
    concurrency = max(1, options.concurrency // options.dfsps) if not options.rate else 0
    pipes, processes = [], []
    for i, name in enumerate(names):
        peers = [n for n in names if n != name]
        plan = bench_dfsp.Plan(name=name, index=i, peers=peers, peer_indexes=[names.index(p) for p in peers],
                               flow=flow, concurrency=concurrency,
                               rate=options.rate / options.dfsps if options.rate else 0.0, chaos=options.chaos,
                               tls_files=_tls_files(options) if options.url else None)
        ours, theirs = context.Pipe()
        process = context.Process(target=bench_dfsp.run, args=(plan, theirs), name=f"bench-{name}", daemon=True)
        process.start()
        pipes.append(ours)
        processes.append(process)
    bases = {}
    for name, pipe in zip(names, pipes):
        if not pipe.poll(READY_TIMEOUT_S):
            raise MiniloopError("bench: a simulated DFSP did not start")
        bases[name] = f"http://127.0.0.1:{pipe.recv()[1]}/{name}"
    return names, pipes, processes, bases


def measure_hub(target: Target, options: Options, urls: dict[str, str]) -> Result:
    """Start the DFSP processes, onboard them, run the load, collect the figures."""
    names, pipes, processes, bases = start_dfsps(options, options.flow, "bench")
    for i, name in enumerate(names):
        numbers = [bench_dfsp.msisdn(i, n) for n in range(bench_dfsp.PARTIES)] if options.flow == "full" else []
        onboard_dfsp(urls, name, bases[name], numbers)
    return _drive(target, options, options.flow, pipes, processes)


def _drive(target: Target, options: Options, flow: str, pipes: list[Any], processes: list[Any]) -> Result:
    pids: dict[str, list[int]] = {"simulated DFSPs": [p.pid for p in processes]}
    if target.pid is not None:
        pids[target.label] = [target.pid]
        nats = [c for c in _children(target.pid) if "nats" in _command(c)]
        if nats:
            pids["nats-server"] = nats
    sampler = Sampler(pids)
    start_at = time.monotonic() + 0.5
    end_at = start_at + options.duration
    for pipe in pipes:
        pipe.send(("go", start_at, end_at, target.fspiop_url))
    progress = Progress(options.progress, target.label, options.duration)
    latest: dict[int, tuple[int, int, int]] = {}
    results: dict[int, dict[str, Any]] = {}
    history: list[tuple[float, int]] = []
    next_sample = time.monotonic()
    deadline = end_at + bench_dfsp.DRAIN_S + 30
    while len(results) < len(pipes):
        if time.monotonic() > deadline:
            raise MiniloopError("bench: the simulated DFSPs did not finish")
        for i, pipe in enumerate(pipes):
            while i not in results and pipe.poll():
                message = pipe.recv()
                if message[0] == "progress":
                    latest[i] = message[1:]
                elif message[0] == "result":
                    results[i] = message[1]
        now = time.monotonic()
        if now >= next_sample:
            next_sample = now + SAMPLE_EVERY_S
            sampler.sample()
            done = sum(v[0] for v in latest.values())
            history.append((now, done))
            recent = [h for h in history if h[0] >= now - 2.0]
            rate = (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0]) if len(recent) > 1 and recent[-1][0] > recent[0][0] else 0.0
            progress.show(now - start_at, done, rate, sum(v[1] for v in latest.values()),
                          sum(v[2] for v in latest.values()))
        time.sleep(0.05)
    progress.end()
    for pipe in pipes:  # every payer is done: the payees may go
        pipe.send(("stop",))
    for process in processes:
        process.join(bench_dfsp.DRAIN_S + 5)
        if process.is_alive():
            process.kill()

    trim = max(1.0, 0.1 * options.duration)
    window_start, window_end = start_at + trim, end_at - trim
    window = max(window_end - window_start, 1e-9)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    for result in results.values():
        done_at, latency = array("d"), array("d")
        done_at.frombytes(result["done_at"])
        latency.frombytes(result["latency"])
        latencies += [lat for at, lat in zip(done_at, latency) if window_start <= at <= window_end]
        for what, n in result["errors"].items():
            errors[what] = errors.get(what, 0) + n
    latencies.sort()
    return Result(
        label=target.label, flow=flow, window_s=round(window, 2), completed=len(latencies),
        rate=round(len(latencies) / window, 1),
        latency_ms={name: round(1000 * _percentile(latencies, p), 2)
                    for name, p in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))},
        errors=errors,
        cpu_percent={name: (round(v, 1) if (v := sampler.cpu_percent(name, window_start, window_end)) is not None else None)
                     for name in pids},
        rss_mb={name: round(v / 1e6, 1) for name, v in sampler.rss_peak.items()},
        start_s=round(target.start_s, 2) if target.start_s is not None else None,
    )


def _cpu_per_payment(result: Result) -> float | None:
    """CPU time the switch spent per completed payment: steadier than the rate on a busy machine."""
    cpu = result.cpu_percent.get(result.label)
    return None if cpu is None or not result.rate else round(cpu / 100 / result.rate * 1e6, 0)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ------------------------------------------------------------------------------ baseline


def run_baseline(options: Options, workdir: Path) -> Result:
    """The same load against the trivial forwarder. Transfer flow only: it cannot look parties up."""
    names, pipes, processes, bases = start_dfsps(options, "transfer", "base")
    port_file = workdir / "forwarder.port"
    forwarder = subprocess.Popen(
        [sys.executable, "-m", "miniloop.bench.forwarder", str(port_file), json.dumps(bases)],
        stdout=subprocess.DEVNULL, stderr=open(workdir / "forwarder.log", "wb"), start_new_session=True)
    try:
        began = time.monotonic()
        while not port_file.exists() or not port_file.read_text():
            if forwarder.poll() is not None or time.monotonic() - began > READY_TIMEOUT_S:
                raise MiniloopError("bench: the baseline forwarder did not start: "
                                    f"{(workdir / 'forwarder.log').read_text()[-300:]}")
            time.sleep(0.02)
        target = Target("baseline", f"http://127.0.0.1:{port_file.read_text()}", forwarder.pid)
        return _drive(target, options, "transfer", pipes, processes)
    finally:
        forwarder.terminate()
        try:
            forwarder.wait(10)
        except subprocess.TimeoutExpired:
            forwarder.kill()


# ------------------------------------------------------------------------------ the command


def bench(options: Options) -> int:
    """Run the benchmark; print the table (and write JSON). Exit status 1 if anything failed."""
    if options.chaos:
        from miniloop.bench.chaos import chaos

        return chaos(options)
    remote = None
    if options.url:
        remote = _remote_urls(options)
        _use_access(options, remote)
    workdir = Path(tempfile.mkdtemp(prefix="miniloop-bench-"))
    results: list[Result] = []
    process = None
    try:
        if options.baseline:
            results.append(run_baseline(options, workdir))
        if remote is not None:
            urls = remote
            target = Target("miniloop", urls["fspiop"], _local_pid(urls["fspiop"]))
        else:
            target, urls, process = start_hub(workdir / "hub")
        onboard_hub(urls)
        result = measure_hub(target, options, urls)
        results.append(result)
        if target.data_dir is not None:
            result.ledger_check = _ledger_check(target.data_dir)
    finally:
        if process is not None:
            stop_hub(process)
        shutil.rmtree(workdir, ignore_errors=True)
    print(render(results, options))
    if options.json_path is not None:
        options.json_path.write_text(json.dumps({
            "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform},
            "options": {"duration": options.duration, "concurrency": options.concurrency, "rate": options.rate,
                        "flow": options.flow, "dfsps": options.dfsps, "url": options.url},
            "results": [r.to_json() for r in results],
        }, indent=2) + "\n")
    failed = any(r.errors for r in results) or any(
        r.ledger_check is not None and not r.ledger_check.startswith("OK") for r in results)
    return 1 if failed else 0


def _local_pid(url: str) -> int | None:
    """The process listening on the URL's port on this machine, if any (Linux): a hub measured
    with --url gets its CPU and memory reported too."""
    port = urlsplit(url).port
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # LISTEN
                inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


def _tls_files(options: Options) -> tuple[str | None, str | None, str | None] | None:
    files = (options.tls_cert, options.tls_key, options.tls_ca)
    return None if files == (None, None, None) else tuple(str(f) if f else None for f in files)  # type: ignore[return-value]


def _use_access(options: Options, urls: dict[str, str]) -> None:
    """--url: the TLS files (a bad one is one line, exit 2, before anything runs) and the token."""
    from miniloop.tls import tool_context

    global _access
    _access = Access(tool_context(options.tls_cert, options.tls_key, options.tls_ca),
                     (urls["admin"], urls["als_admin"]), options.admin_token)


def _remote_urls(options: Options) -> dict[str, str]:
    assert options.url is not None
    parts = urlsplit(options.url)
    host = f"{parts.scheme}://{parts.hostname}"
    return {
        "fspiop": options.url.rstrip("/"),
        "admin": (options.admin_url or f"{host}:3001").rstrip("/"),
        "als_admin": (options.als_url or f"{host}:4001").rstrip("/"),
    }


def _ledger_check(data_dir: Path) -> str:
    """The load has drained; check the ledger (read-only) while the hub still runs."""
    from miniloop.ledger.check import check_ledger
    from miniloop.ledger.store import DB_FILE

    report = check_ledger(data_dir / DB_FILE)
    if report.ok:
        return f"OK ({report.summary})"
    return f"{report.found} problems: " + "; ".join(report.problems[:5])


def render(results: list[Result], options: Options) -> str:
    """The results as a table, one column per target."""
    flow = {"transfer": "transfer flow (prepare + fulfil)", "full": "full flow (lookup + quote + transfer)"}[options.flow]
    lines = [f"miniloop bench: {flow}, {options.dfsps} DFSPs, {options.load_text()}, {options.duration:g} s, "
             f"{os.cpu_count()} cores"]
    if results:
        lines.append(f"(figures from the steady {results[-1].window_s:g} s in the middle of each run)")

    def fmt(value: Any, unit: str = "") -> str:
        if value is None or value != value:  # None or NaN
            return "n/a"
        if isinstance(value, float):
            return f"{value:,.1f}{unit}"
        return f"{value:,}{unit}"

    rows: list[tuple[str, list[str]]] = [
        ("", [r.label + (" (transfer flow)" if r.label == "baseline" and options.flow == "full" else "") for r in results]),
        ("completed per second", [fmt(r.rate) for r in results]),
        ("latency p50", [fmt(r.latency_ms["p50"], " ms") for r in results]),
        ("latency p95", [fmt(r.latency_ms["p95"], " ms") for r in results]),
        ("latency p99", [fmt(r.latency_ms["p99"], " ms") for r in results]),
        ("latency max", [fmt(r.latency_ms["max"], " ms") for r in results]),
        ("errors", [str(sum(r.errors.values())) for r in results]),
        ("switch CPU (% of a core)", [fmt(r.cpu_percent.get(r.label)) for r in results]),
        ("switch CPU per payment", [fmt(_cpu_per_payment(r), " µs") for r in results]),
        ("switch RSS peak", [fmt(r.rss_mb.get(r.label), " MB") for r in results]),
        ("nats-server CPU / RSS", [f"{fmt(r.cpu_percent.get('nats-server'))} % / {fmt(r.rss_mb.get('nats-server'), ' MB')}"
                                   if "nats-server" in r.rss_mb else "-" for r in results]),
        ("simulated DFSPs CPU", [fmt(r.cpu_percent.get("simulated DFSPs"), " %") for r in results]),
        ("start to ready", [fmt(r.start_s, " s") if r.start_s is not None else "-" for r in results]),
    ]
    if len(results) == 2 and results[0].rate:
        rows.append(("share of the baseline", ["", f"{100 * results[1].rate / results[0].rate:.0f} %"]))
    width = max(len(name) for name, _ in rows)
    columns = [max(len(values[i]) for _, values in rows) for i in range(len(results))]
    for name, values in rows:
        lines.append("  " + name.ljust(width) + "  " + "  ".join(v.rjust(c) if name else v.rjust(c)
                                                                 for v, c in zip(values, columns)))
    for r in results:
        if r.ledger_check is not None:
            lines.append(f"  ledger check after the run: {r.ledger_check}")
        for what, n in sorted(r.errors.items(), key=lambda item: -item[1]):
            lines.append(f"  {r.label} error: {n} x {what}")
    return "\n".join(lines)
