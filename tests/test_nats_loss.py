"""The NATS connection lost and restored (issue 11): payments go on, events catch up.

Why: the ledger never depends on NATS, so a nats-server that dies (the hub's own child, or an
external one given with --nats-url) must not stop a single payment; /health must say the broker
is DOWN while it is, and OK after; and the events of changes made while NATS was away must be
published once it is back (the hub keeps them in a bounded queue: docs/events.md, docs/reliability.md
"Faults").

How: an empty hub, two DFSPs played by the test DFSP server (tests/fspiop_dfsp.py), transfers
committed end to end (prepare, forward, fulfil, the payer's PUT). Which events arrived is read
back from the hub's JetStream stream (file-backed, it survives the nats-server restart), so a
test subscriber that reconnects later than the hub cannot miss anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from fspiop_dfsp import Scene, TestDfsps, Transfer

from conftest import Hub, HubLauncher, nats_children, pid_gone, wait_until
from miniloop.bus.nats_server import find_binary

TIMEOUT_S = 20.0
READY_S = 10.0


# --------------------------------------------------------------------------- helpers


def health(hub: Hub) -> dict[str, str]:
    """The /health services by name: {"datastore": "OK", "broker": "DOWN"}."""
    r = httpx.get(hub.urls["admin"] + "/health", timeout=10)
    assert r.status_code in (200, 502), r.text
    return {s["name"]: s["status"] for s in r.json()["services"]}


def broker_is(hub: Hub, status: str) -> bool:
    return health(hub)["broker"] == status


async def _stream_subjects(url: str, wanted: set[str], timeout: float) -> set[str]:
    """The subjects of ml.event.transfer.> in the JetStream stream, read until `wanted` are all seen."""
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    seen: set[str] = set()
    try:
        sub = await nc.jetstream(timeout=5).subscribe("ml.event.transfer.>", ordered_consumer=True)
        deadline = time.monotonic() + timeout
        while not wanted <= seen:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                msg = await sub.next_msg(timeout=min(left, 2.0))
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            seen.add(msg.subject)
    finally:
        await nc.close()
    return seen


def committed_events_missing(url: str, transfer_ids: list[str], timeout: float = TIMEOUT_S) -> list[str]:
    wanted = {f"ml.event.transfer.{t}.COMMITTED" for t in transfer_ids}
    seen = asyncio.run(_stream_subjects(url, wanted, timeout))
    return sorted(wanted - seen)


async def _live_event(url: str, scene: Scene, payer: str, payee: str, timeout: float) -> str:
    """Subscribe (core NATS), commit one transfer, return the subject of its COMMITTED event."""
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        transfer = Transfer(payer, payee, amount="1")
        wanted = f"ml.event.transfer.{transfer.id}.COMMITTED"
        arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        async def on_message(msg: Any) -> None:
            if msg.subject == wanted and not arrived.done():
                arrived.set_result(msg.subject)

        await nc.subscribe("ml.event.transfer.>", cb=on_message)
        await nc.flush(timeout=5)
        await asyncio.to_thread(scene.commit, transfer)
        return await asyncio.wait_for(arrived, timeout)
    finally:
        await nc.close()


class Payments:
    """Transfers committed one after the other in a thread until stopped; ids of the committed."""

    def __init__(self, scene: Scene, payer: str, payee: str) -> None:
        self.scene, self.payer, self.payee = scene, payer, payee
        self.committed: list[str] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="payments", daemon=True)

    def __enter__(self) -> Payments:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                transfer = Transfer(self.payer, self.payee, amount="1")
                callback = self.scene.commit(transfer)
                assert callback.body["transferState"] == "COMMITTED", callback
                self.committed.append(transfer.id)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc

    def wait_for_more(self, count: int, timeout: float = TIMEOUT_S) -> None:
        target = len(self.committed) + count
        wait_until(lambda: len(self.committed) >= target or self.error is not None, timeout,
                   what=f"{count} more committed transfers")
        assert self.error is None, self.error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT_S)
        assert not self._thread.is_alive(), "the payments thread did not stop"
        assert self.error is None, self.error


@pytest.fixture
def dfsps() -> Iterator[TestDfsps]:
    with TestDfsps() as server:
        yield server


def ready_scene(hub: Hub, dfsps: TestDfsps) -> tuple[Scene, str, str]:
    hub.setup_currency()
    scene = Scene(hub, dfsps)
    return scene, scene.dfsp("payer"), scene.dfsp("payee")


class ExternalNats:
    """A nats-server of the test's own (JetStream on, loopback), stoppable and restartable on its port."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = -1
        self.process: subprocess.Popen[bytes] | None = None
        (base / "ports").mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        ports = self.base / "ports"
        for stale in ports.glob("*.ports"):
            stale.unlink()
        with open(self.base / "nats-server.log", "ab") as log:
            self.process = subprocess.Popen(
                [str(find_binary()), "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.base / "js"),
                 "--ports_file_dir", str(ports)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        ports_file = ports / f"nats-server_{self.process.pid}.ports"

        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, (self.base / "nats-server.log").read_text()
            try:
                url = json.loads(ports_file.read_text())["nats"][0]
            except (FileNotFoundError, ValueError, KeyError, IndexError):
                return False
            self.port = int(url.rsplit(":", 1)[1])
            return True

        wait_until(ready, READY_S, what="the external nats-server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(READY_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(READY_S)
        self.process = None


@pytest.fixture
def external_nats(tmp_path: Path) -> Iterator[ExternalNats]:
    server = ExternalNats(tmp_path / "external-nats")
    server.start()
    yield server
    server.stop()


# --------------------------------------------------------------------------- the hub's own nats-server


def test_a_killed_nats_server_child_payments_go_on_and_no_event_is_lost(hubs: HubLauncher, dfsps: TestDfsps) -> None:
    hub = hubs.start(empty=True)
    scene, payer, payee = ready_scene(hub, dfsps)
    old = hub.nats_pid
    assert old is not None
    with Payments(scene, payer, payee) as payments:
        payments.wait_for_more(5)
        os.kill(old, signal.SIGKILL)
        new = wait_until(lambda: [p for p in nats_children(hub.pid) if p != old and not pid_gone(p)], READY_S,
                         what="the supervisor's new nats-server")[0]
        hub.nats_pid = new  # the teardown checks it too
        wait_until(lambda: broker_is(hub, "OK"), TIMEOUT_S, what="the broker OK again")
        payments.wait_for_more(5)  # payments never stopped (the thread fails on any error)
    assert payments.committed
    assert committed_events_missing(hub.urls["nats"], payments.committed) == []
    # and a subscriber that connects now gets the events of what happens now
    subject = asyncio.run(_live_event(hub.urls["nats"], scene, payer, payee, TIMEOUT_S))
    assert subject.endswith(".COMMITTED")
    assert "restarting it" in hub.stderr
    scene.close()


# --------------------------------------------------------------------------- an external nats-server


def test_an_external_nats_server_stopped_and_started_again(hubs: HubLauncher, dfsps: TestDfsps,
                                                          external_nats: ExternalNats) -> None:
    hub = hubs.start("--nats-url", external_nats.url, empty=True)
    assert hub.nats_pid is None  # no child of its own
    scene, payer, payee = ready_scene(hub, dfsps)
    before = Transfer(payer, payee, amount="1")
    scene.commit(before)
    assert health(hub) == {"datastore": "OK", "broker": "OK"}

    external_nats.stop()
    wait_until(lambda: broker_is(hub, "DOWN"), TIMEOUT_S, what="the broker DOWN on /health")
    r = httpx.get(hub.urls["admin"] + "/health", timeout=10)
    assert r.status_code == 502 and r.json()["status"] == "DOWN", r.text
    while_down = [Transfer(payer, payee, amount="1") for _ in range(5)]
    for transfer in while_down:  # payments go on without NATS
        assert scene.commit(transfer).body["transferState"] == "COMMITTED"
    assert broker_is(hub, "DOWN")

    external_nats.start()  # the same port
    wait_until(lambda: broker_is(hub, "OK"), TIMEOUT_S, what="the broker OK again")
    ids = [before.id] + [t.id for t in while_down]
    assert committed_events_missing(external_nats.url, ids) == []
    subject = asyncio.run(_live_event(external_nats.url, scene, payer, payee, TIMEOUT_S))
    assert subject.endswith(".COMMITTED")
    assert "lost the connection to NATS" in hub.stderr and "reconnected to NATS" in hub.stderr
    scene.close()


# --------------------------------------------------------------------------- the bound, without a server


class FakeClient:
    """What EventBus uses of a nats-py client; `connected` is the test's switch."""

    def __init__(self) -> None:
        self.connected = False
        self.is_closed = False
        self.sent: list[str] = []

    @property
    def is_connected(self) -> bool:
        return self.connected

    async def publish(self, subject: str, payload: bytes) -> None:
        if not self.connected:
            raise nats.errors.OutboundBufferLimitError
        self.sent.append(subject)

    async def flush(self, timeout: float) -> None:
        if not self.connected:
            raise nats.errors.ConnectionClosedError

    async def close(self) -> None:
        self.is_closed = True


def test_events_wait_while_nats_is_away_and_the_oldest_are_dropped_beyond_the_bound(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from miniloop.bus import events as events_module

    monkeypatch.setattr(events_module, "PENDING_MAX", 10)

    async def scenario() -> None:
        client = FakeClient()
        bus = events_module.EventBus(client, "nats://test")  # type: ignore[arg-type]
        bus._disconnected()
        for n in range(8):  # 8 batches of 2 events: 16 > 10, the 3 oldest batches go
            bus.publish_batch([(f"ml.event.test.{n}.a", {}), (f"ml.event.test.{n}.b", {})])
        await asyncio.sleep(0.2)  # the sender runs meanwhile and must publish nothing
        assert client.sent == []
        assert (bus.pending, bus.dropped) == (10, 6)
        client.connected = True
        bus._reconnected()
        for _ in range(200):
            if len(client.sent) == 10:
                break
            await asyncio.sleep(0.01)
        assert client.sent == [f"ml.event.test.{n}.{x}" for n in range(3, 8) for x in "ab"]  # in order
        assert (bus.pending, bus.published, bus.dropped) == (0, 10, 6)
        await bus.close()

    with caplog.at_level("WARNING", logger="miniloop.bus.events"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records]
    assert any("lost the connection to NATS" in line for line in lines), lines
    assert sum("dropping the oldest" in line for line in lines) == 1, lines  # one line, not one per drop
    assert any("publishing 10 waiting events (6 older ones were dropped" in line for line in lines), lines


def test_a_nats_server_that_keeps_dying_makes_the_hub_give_up_with_one_line(hubs: HubLauncher) -> None:
    """The supervisor's bound: at most 5 restarts within 60 s, each a little later; a restart that
    fails (here: killed while it starts) counts and is tried again; the 6th death stops the hub."""
    hub = hubs.start(empty=True)

    def next_child(old: int) -> int:
        return wait_until(lambda: [p for p in nats_children(hub.pid) if p != old and not pid_gone(p)], TIMEOUT_S,
                          what="the supervisor's new nats-server")[0]

    def kill_and_wait(ready: bool = True) -> None:
        old = hub.nats_pid
        assert old is not None
        os.kill(old, signal.SIGKILL)
        hub.nats_pid = next_child(old)
        if ready:
            wait_until(lambda: broker_is(hub, "OK"), TIMEOUT_S, what="the broker OK again")

    kill_and_wait()  # death 1
    kill_and_wait(ready=False)  # death 2, and its new child killed at once (likely while starting):
    kill_and_wait()  # death 3, a failed restart: counted, tried again, not a give-up
    kill_and_wait()  # death 4
    kill_and_wait()  # death 5: the last restart allowed within the window
    assert hub.running
    assert hub.nats_pid is not None
    os.kill(hub.nats_pid, signal.SIGKILL)  # death 6
    assert hub.process is not None
    assert hub.process.wait(TIMEOUT_S) == 1, hub.stderr
    assert "miniloop: nats-server keeps failing; see nats-server.log in the data directory" in hub.stderr
    assert "restart 5 of at most 5" in hub.stderr and "Traceback" not in hub.stderr, hub.stderr
    assert nats_children(hub.pid) == []
