"""Shared helpers: start a real `miniloop up` in a subprocess and talk to it over HTTP.

Every hub gets its own data directory under pytest's tmp dirs and asks the kernel for every port
(port 0), so tests can run in parallel (`pytest -n auto`). No user settings are read: the child's
XDG_CONFIG_HOME / XDG_DATA_HOME point into the test's tmp dir and MINILOOP_* variables of the
calling shell are dropped.

Fixtures:
    hubs         function-scoped `HubLauncher`: `hubs.start(empty=True)` -> a running `Hub`
    module_hubs  the same, module-scoped (one hub shared by a module's independent tests)
    run_cli      run `python -m miniloop ARGS` to completion (bounded) in a clean environment
    cli_env      a clean environment dict for a miniloop child process
    test_dfsps   module-scoped test DFSP server (tests/fspiop_dfsp.py) for FSPIOP conformance tests
    scene        module-scoped: an empty hub with USD set up, `test_dfsps` and an FSPIOP client
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

START_TIMEOUT_S = 40.0  # a loaded 2-core machine running the suite in parallel can take a while
STOP_TIMEOUT_S = 15.0
POLL_S = 0.05
CLI_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 10.0
PORT_FLAGS = ("--fspiop-port", "--admin-port", "--settlement-port", "--als-admin-port", "--sim-port",
              "--wallet-port")


# --------------------------------------------------------------------------- small utilities


def unique_name(prefix: str = "dfsp") -> str:
    """A participant name nobody else uses (2..30 chars of [A-Za-z0-9_-], a valid NATS token)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def new_transfer_id() -> str:
    return str(uuid.uuid4())


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = POLL_S, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(interval)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a miniloop child: no MINILOOP_* from outside, no user config or data."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINILOOP_")}
    config_home, data_home = home / "xdg-config", home / "xdg-data"
    config_home.mkdir(parents=True, exist_ok=True)
    data_home.mkdir(parents=True, exist_ok=True)
    env["XDG_CONFIG_HOME"] = str(config_home)
    env["XDG_DATA_HOME"] = str(data_home)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def pid_gone(pid: int) -> bool:
    """True if `pid` does not exist or is a zombie (dead, only waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    state = stat.rsplit(")", 1)[1].split()[0]  # the comm field may contain spaces
    return state in ("Z", "X")


def children_of(pid: int) -> list[int]:
    """Direct children of `pid`, from /proc/<pid>/task/*/children (no psutil)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(c) for c in children.read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def live_processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text` (e.g. a test's data dir)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and text in cmdline(int(entry.name)) and not pid_gone(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def nats_children(pid: int) -> list[int]:
    return [c for c in children_of(pid) if "nats-server" in cmdline(c)]


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"errorInformation"}, body
    return body["errorInformation"]["errorCode"]


def miniloop_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "miniloop", *args]


# --------------------------------------------------------------------------- the hub process


class HubStartFailed(AssertionError):
    pass


class Hub:
    """One `miniloop up` child process, its URLs once ready, and HTTP clients for its APIs."""

    def __init__(self, data_dir: Path, args: list[str], env: dict[str, str], log_dir: Path,
                 command: tuple[str, ...] = ("up",)) -> None:
        self.data_dir = data_dir
        self.args = args
        self.command = command
        self.env = env
        log_dir.mkdir(parents=True, exist_ok=True)
        self._stdout_path = log_dir / "stdout.txt"
        self._stderr_path = log_dir / "stderr.txt"
        self.process: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self.nats_pid: int | None = None
        self._clients: list[httpx.Client] = []

    # ---------------------------------------------------------------- process control

    def start(self, timeout: float = START_TIMEOUT_S) -> Hub:
        """Start the child and wait (bounded) until it has written hub.json."""
        runtime_file = self.data_dir / "hub.json"
        with open(self._stdout_path, "wb") as out, open(self._stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                miniloop_cmd(*self.command, *self.args), stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=self.env,
            )
        deadline = time.monotonic() + timeout
        while True:
            if runtime_file.is_file():
                try:
                    info = json.loads(runtime_file.read_text())
                except ValueError:
                    info = None  # replaced atomically, but be tolerant
                if info and info.get("pid") == self.process.pid:
                    self.info = info
                    break
            if self.process.poll() is not None:
                raise HubStartFailed(
                    f"miniloop exited with {self.process.returncode} before it was ready:\n{self.stderr}"
                )
            if time.monotonic() >= deadline:
                self.kill()
                raise HubStartFailed(f"miniloop was not ready in {timeout} s:\n{self.stderr}")
            time.sleep(POLL_S)
        found = nats_children(self.process.pid)
        self.nats_pid = found[0] if found else None
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT_S) -> int:
        """Send `sig` and wait (bounded); SIGKILL if it does not stop in time. Returns the exit status."""
        assert self.process is not None
        self.close_clients()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        return self.process.returncode

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def cleanup(self) -> None:
        """Teardown: stop the hub if it runs, and never leave its nats-server behind."""
        if self.process is None:
            return
        self.stop()
        if self.nats_pid is not None and not pid_gone(self.nats_pid) and str(self.data_dir) in cmdline(self.nats_pid):
            os.kill(self.nats_pid, signal.SIGKILL)

    @property
    def stdout(self) -> str:
        return self._stdout_path.read_text(errors="replace") if self._stdout_path.exists() else ""

    @property
    def stderr(self) -> str:
        return self._stderr_path.read_text(errors="replace") if self._stderr_path.exists() else ""

    # ---------------------------------------------------------------- URLs and clients

    @property
    def urls(self) -> dict[str, str]:
        return self.info["urls"]

    @property
    def seeded(self) -> bool:
        return self.info["seeded"]

    def client(self, name: str) -> httpx.Client:
        client = httpx.Client(base_url=self.urls[name], timeout=HTTP_TIMEOUT_S)
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()

    @property
    def admin(self) -> httpx.Client:
        if not hasattr(self, "_admin") or self._admin.is_closed:
            self._admin = self.client("admin")
        return self._admin

    @property
    def als(self) -> httpx.Client:
        if not hasattr(self, "_als") or self._als.is_closed:
            self._als = self.client("als_admin")
        return self._als

    @property
    def settlement(self) -> httpx.Client:
        """Base URL ends in /v2: use relative paths ("settlementWindows")."""
        if not hasattr(self, "_settlement") or self._settlement.is_closed:
            self._settlement = httpx.Client(base_url=self.urls["settlement"] + "/", timeout=HTTP_TIMEOUT_S)
            self._clients.append(self._settlement)
        return self._settlement

    # ---------------------------------------------------------------- onboarding shortcuts (for tests
    # that need a ready DFSP; test_onboarding does the sequence step by step itself)

    def setup_currency(self, currency: str = "USD", model_name: str | None = None) -> None:
        """Hub accounts and a DEFERRED/NET/MULTILATERAL settlement model for `currency`."""
        for account_type in ("HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"):
            r = self.admin.post("/participants/Hub/accounts", json={"currency": currency, "type": account_type})
            assert r.status_code == 201, r.text
        r = self.admin.post("/settlementModels", json=deferred_net_model(currency, model_name))
        assert r.status_code == 201, r.text

    def onboard(self, name: str, currency: str = "USD", ndc: int = 10000, funds: int | None = 10000) -> dict[str, int]:
        """A ready DFSP: participant, NDC, funds in. Returns {"POSITION": id, "SETTLEMENT": id}."""
        r = self.admin.post("/participants", json={"name": name, "currency": currency})
        assert r.status_code == 201, r.text
        r = self.admin.post(f"/participants/{name}/initialPositionAndLimits", json={
            "currency": currency, "limit": {"type": "NET_DEBIT_CAP", "value": ndc}, "initialPosition": 0,
        })
        assert r.status_code == 201, r.text
        ids = self.account_ids(name, currency)
        if funds:
            r = self.funds(name, ids["SETTLEMENT"], "recordFundsIn", funds, currency)
            assert r.status_code == 202, r.text
        return ids

    def account_ids(self, name: str, currency: str = "USD") -> dict[str, int]:
        r = self.admin.get(f"/participants/{name}/accounts")
        assert r.status_code == 200, r.text
        return {a["ledgerAccountType"]: a["id"] for a in r.json() if a["currency"] == currency}

    def account_value(self, name: str, account_type: str = "SETTLEMENT", currency: str = "USD") -> Any:
        r = self.admin.get(f"/participants/{name}/accounts")
        assert r.status_code == 200, r.text
        (value,) = [a["value"] for a in r.json()
                    if a["ledgerAccountType"] == account_type and a["currency"] == currency]
        return value

    def funds(self, name: str, account_id: int, action: str, amount: Any, currency: str = "USD",
              transfer_id: str | None = None) -> httpx.Response:
        return self.admin.post(f"/participants/{name}/accounts/{account_id}", json=funds_body(
            action, amount, currency, transfer_id or new_transfer_id()))


def deferred_net_model(currency: str = "USD", name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or "DEFERREDNET", "settlementGranularity": "NET", "settlementInterchange": "MULTILATERAL",
        "settlementDelay": "DEFERRED", "currency": currency, "requireLiquidityCheck": True,
        "ledgerAccountType": "POSITION", "settlementAccountType": "SETTLEMENT", "autoPositionReset": True,
    }


def funds_body(action: str, amount: Any, currency: str, transfer_id: str) -> dict[str, Any]:
    return {
        "transferId": transfer_id, "externalReference": "test-ref", "action": action,
        "reason": "pytest", "amount": {"amount": amount, "currency": currency},
    }


class HubLauncher:
    """Starts hubs under one base directory and stops all of them at teardown."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.started: list[Hub] = []
        self._count = 0

    def prepare(self, *args: str, data_dir: Path | None = None, empty: bool = False,
                env: dict[str, str] | None = None) -> Hub:
        """A `Hub` not started yet (all ports 0)."""
        self._count += 1
        home = self.base / f"hub{self._count}"
        data_dir = data_dir or home / "data"
        argv = ["--data-dir", str(data_dir)]
        for flag in PORT_FLAGS:
            argv += [flag, "0"]
        if empty:
            argv.append("--empty")
        argv += list(args)
        hub = Hub(data_dir, argv, clean_env(home, **(env or {})), home / "logs")
        self.started.append(hub)
        return hub

    def start(self, *args: str, data_dir: Path | None = None, empty: bool = False,
              env: dict[str, str] | None = None) -> Hub:
        return self.prepare(*args, data_dir=data_dir, empty=empty, env=env).start()

    def cleanup(self) -> None:
        for hub in reversed(self.started):
            hub.cleanup()


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[HubLauncher]:
    launcher = HubLauncher(tmp_path / "hubs")
    yield launcher
    launcher.cleanup()


@pytest.fixture(scope="module")
def module_hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubLauncher]:
    launcher = HubLauncher(tmp_path_factory.mktemp("module-hubs"))
    yield launcher
    launcher.cleanup()


# --------------------------------------------------------------------------- the command line


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path / "home")


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `python -m miniloop ARGS` to completion (bounded); extra env via env={...}."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = CLI_TIMEOUT_S,
            stdin: Any = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            miniloop_cmd(*args), env={**cli_env, **(env or {})}, stdin=stdin,
            capture_output=True, text=True, timeout=timeout,
        )

    return run


# --------------------------------------------------------------------------- FSPIOP conformance


@pytest.fixture(scope="module")
def test_dfsps() -> Iterator[Any]:
    """The module's test DFSP server (tests/fspiop_dfsp.py): plays every DFSP under /<name>."""
    from fspiop_dfsp import TestDfsps

    with TestDfsps() as dfsps:
        yield dfsps


@pytest.fixture(scope="module")
def scene(module_hubs: HubLauncher, test_dfsps: Any) -> Iterator[Any]:
    """One empty hub per module with USD hub accounts and a settlement model, the test DFSP
    server and an FSPIOP client (`fspiop_dfsp.Scene`). Tests create their own DFSPs in it."""
    from fspiop_dfsp import Scene

    hub = module_hubs.start(empty=True)
    hub.setup_currency()
    scene = Scene(hub, test_dfsps)
    yield scene
    scene.close()
