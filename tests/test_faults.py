"""Faults the hub must survive (issue 11): a full disk or a read-only data directory, a payee
DFSP that answers 500. (The NATS connection lost and restored: tests/test_nats_loss.py.)

Why: a sandbox hub runs on laptops and small VMs whose disks fill up, and in front of DFSPs that
are being developed and crash. Neither may hang the hub, leak a traceback to a DFSP, half-write
the ledger or lose a request that was answered 202; and when the fault goes away the hub carries
on by itself (docs/reliability.md "Faults").

How the storage faults are made: a small tmpfs mounted for the test (the suite runs as root, here
and in CI; without the right to mount these tests are skipped, saying so). Filling it with a
file gives SQLite the real ENOSPC a full disk gives; deleting the file gives the space back. A
filesystem cannot be made read-only under a process that has files open on it for writing (the
kernel refuses the remount: EBUSY), and chmod does not stop root, so "read-only" is tested where
it can really happen: at start (a read-only mount), and in the writer over a read-only SQLite
connection (the same path an EROFS takes: SQLITE_READONLY/IOERR).
"""

from __future__ import annotations

import asyncio
import errno
import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from fspiop_dfsp import Scene, TestDfsps, Transfer

from conftest import HubLauncher, miniloop_cmd, wait_until
from miniloop.fspiop.endpoints import for_base_url
from miniloop.ledger import store
from miniloop.ledger.writer import LedgerUnavailable, Writer

TIMEOUT_S = 20.0
DISK_MB = 32
UP_ARGS = ("--fspiop-port", "0", "--admin-port", "0", "--settlement-port", "0", "--als-admin-port", "0",
           "--sim-port", "0", "--wallet-port", "0")


# --------------------------------------------------------------------------- a small disk of our own


class Tmpfs:
    """A tmpfs mounted at `path` for one test; unmounted (lazily if still busy) at teardown."""

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (root needed): {result.stderr.strip()}")

    def remount(self, option: str) -> None:
        result = subprocess.run(["mount", "-o", f"remount,{option}", str(self.path)], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr

    def fill(self) -> Path:
        """Write a file until the disk is full (ENOSPC); return it (delete it to give the space back)."""
        filler = self.path / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        return filler

    def unmount(self) -> None:
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Tmpfs]:
    mounted = Tmpfs(tmp_path / "disk", DISK_MB)
    yield mounted
    mounted.unmount()


def health(url: str) -> dict[str, str]:
    r = httpx.get(url + "/health", timeout=10)
    assert r.status_code in (200, 502), r.text
    return {s["name"]: s["status"] for s in r.json()["services"]}


def ledger_check(data_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(miniloop_cmd("ledger", "check", "--data-dir", str(data_dir)), env=env,
                          capture_output=True, text=True, timeout=60)


# --------------------------------------------------------------------------- read-only at start


def test_starting_on_a_read_only_data_directory_is_one_line_and_exit_2(hubs: HubLauncher, disk: Tmpfs) -> None:
    data_dir = disk.path / "data"
    first = hubs.start(data_dir=data_dir, empty=True)
    first.setup_currency()
    assert first.stop() == 0, first.stderr
    disk.remount("ro")
    try:
        result = subprocess.run(miniloop_cmd("up", "--data-dir", str(data_dir), "--empty", *UP_ARGS), env=first.env,
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (result.returncode, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("miniloop: "), result.stderr
        assert "data directory" in lines[0] and str(data_dir) in lines[0] and "Read-only" in lines[0], lines[0]
    finally:
        disk.remount("rw")
    again = hubs.start(data_dir=data_dir, empty=True)  # writable again: the ledger is all there
    assert any(a["ledgerAccountType"] == "HUB_RECONCILIATION" for a in again.admin.get("/participants/Hub/accounts").json())


# --------------------------------------------------------------------------- a full disk while running


def test_a_full_disk_gives_503_and_the_hub_recovers_when_space_returns(hubs: HubLauncher, disk: Tmpfs) -> None:
    data_dir = disk.path / "data"
    hub = hubs.start(data_dir=data_dir, empty=True)
    hub.setup_currency()
    with TestDfsps() as dfsps:
        scene = Scene(hub, dfsps)
        payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
        assert scene.commit(Transfer(payer, payee, amount="1")).body["transferState"] == "COMMITTED"
        reserved = Transfer(payer, payee, amount="2")
        scene.reserve(reserved)  # answered 202 before the disk filled

        filler = disk.fill()
        # SQLite may still fit a few commits in WAL space it already has: send prepares until one
        # is refused. Every one answered 202 meanwhile must still be there at the end.
        accepted: list[Transfer] = []
        refused = None
        for _ in range(200):
            transfer = Transfer(payer, payee, amount="1")
            started = time.monotonic()
            r = scene.prepare(transfer)
            assert time.monotonic() - started < 5, "the hub hung on a full disk"
            if r.status_code == 202:
                accepted.append(transfer)
                continue
            refused = r
            break
        assert refused is not None, "the disk never filled up for SQLite"
        assert refused.status_code == 503, refused.text
        info = refused.json()["errorInformation"]
        assert info["errorCode"] == "2003" and "disk is full" in info["errorDescription"], info
        r = hub.admin.post("/participants", json={"name": "lateparticipant", "currency": "USD"})
        assert r.status_code == 503 and r.json()["errorInformation"]["errorCode"] == "2003", r.text
        assert health(hub.urls["admin"])["datastore"] == "DOWN"
        assert hub.admin.get(f"/participants/{payer}").status_code == 200  # reads still work

        filler.unlink()  # space returns: the writer's probe notices by itself
        wait_until(lambda: health(hub.urls["admin"])["datastore"] == "OK", TIMEOUT_S, what="the datastore OK again")
        assert scene.commit(Transfer(payer, payee, amount="1")).body["transferState"] == "COMMITTED"
        for transfer in [reserved, *accepted]:  # nothing answered 202 was lost: each one can commit now
            scene.dfsps.wait_for(payee, "POST", "/transfers", exact=True,
                                 where=lambda req, t=transfer: (req.body or {}).get("transferId") == t.id)
            mark = dfsps.mark(payer)
            r = scene.fulfil(transfer)
            assert r.status_code == 200, r.text
            assert dfsps.callback(payer, transfer.path, since=mark).body["transferState"] == "COMMITTED"
        scene.close()
    stderr = hub.stderr
    assert hub.stop() == 0, stderr
    assert "Traceback" not in stderr, stderr
    assert "the ledger cannot be written (the disk is full" in stderr and "can be written again" in stderr, stderr
    check = ledger_check(data_dir, hub.env)
    assert check.returncode == 0 and "ledger check: OK" in check.stdout, check.stdout + check.stderr


# --------------------------------------------------------------------------- read-only under the writer


def test_a_read_only_ledger_refuses_writes_with_2003_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    path = tmp_path / store.DB_FILE
    setup = store.connect(path)
    store.migrate(setup)
    setup.execute("CREATE TABLE probe_rows (n INTEGER)")
    setup.close()

    def insert_two(tx: Any) -> None:
        tx.conn.execute("INSERT INTO probe_rows VALUES (1)")
        tx.conn.execute("INSERT INTO probe_rows VALUES (2)")

    async def scenario() -> None:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        writer = Writer(conn)
        writer.start()
        try:
            with pytest.raises(LedgerUnavailable) as caught:
                await writer.run(insert_two)
            assert (caught.value.code, caught.value.status) == ("2003", 503)
            assert "read-only" in caught.value.description
            assert not writer.healthy and writer.running
        finally:
            await writer.stop()

    asyncio.run(scenario())
    check = sqlite3.connect(path)
    assert check.execute("SELECT COUNT(*) FROM probe_rows").fetchone()[0] == 0
    check.close()


# --------------------------------------------------------------------------- a payee that answers 500


class Answers500:
    """A DFSP whose server is broken: every request gets HTTP 500. Records what arrived."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        lock = threading.Lock()
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with lock:
                    requests.append((self.command, self.path))
                body = b'{"message": "internal error"}'
                self.send_response(500)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p in list(self.requests) if m == method and p == path)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


async def _events_while(url: str, subject: str, action: Callable[[], Any], until: Callable[[list[dict]], bool],
                        timeout: float) -> list[dict]:
    """Subscribe to `subject`, run `action` (in a thread), collect events until `until(events)`."""
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    events: list[dict] = []
    done = asyncio.Event()

    async def on_message(msg: Any) -> None:
        events.append(json.loads(msg.data))
        if until(events):
            done.set()

    try:
        await nc.subscribe(subject, cb=on_message)
        await nc.flush(timeout=5)
        await asyncio.to_thread(action)
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await nc.close()
    return events


def test_a_payee_answering_500_gets_bounded_retries_and_the_transfer_expires_with_3303(
        module_hubs: HubLauncher) -> None:
    hub = module_hubs.start(empty=True)
    hub.setup_currency()
    broken = Answers500()
    with TestDfsps() as dfsps:
        scene = Scene(hub, dfsps)
        payer = scene.dfsp("payer")
        payee = scene.dfsp("payee", endpoints=False)
        for endpoint_type, value in for_base_url(f"{broken.url}/{payee}").items():
            r = hub.admin.post(f"/participants/{payee}/endpoints", json={"type": endpoint_type, "value": value})
            assert r.status_code == 201, r.text
        payer_before, payee_before = scene.position(payer), scene.position(payee)
        transfer = Transfer(payer, payee, amount="7", expires_in=4)
        forward = ("POST", f"/{payee}/transfers")

        def prepare() -> None:
            r = scene.prepare(transfer)
            assert r.status_code == 202, r.text

        failed = asyncio.run(_events_while(
            hub.urls["nats"], f"ml.event.callback.{payee}.failed", prepare,
            lambda events: any(e["method"] == "POST" for e in events), TIMEOUT_S))
        (given_up,) = [e for e in failed if e["method"] == "POST"]
        assert given_up["type"] == "callback.failed" and "answered 500" in given_up["problem"], given_up
        assert broken.count(*forward) == 3  # three attempts (after 0.2 s and 1 s), then it gives up
        assert scene.position(payer) == payer_before + 7  # still reserved until it expires

        error = dfsps.error_callback(payer, transfer.path, timeout=TIMEOUT_S)
        assert error.error_code == "3303", error
        wait_until(lambda: scene.position(payer) == payer_before, TIMEOUT_S, what="the payer's position restored")
        assert scene.position(payee) == payee_before
        assert scene.transfer_state(payer, transfer.id) == "ABORTED"
        assert broken.count(*forward) == 3  # no attempt beyond the bound
        scene.close()
    broken.close()
