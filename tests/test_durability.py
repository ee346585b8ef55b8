"""A SIGKILL in the middle of a stream of transfers loses none of them (issue 3's "Done when").

Why: the switch answers 202 only once a prepare is committed to the ledger, and every message it
owes a DFSP is written to the outbox in the same transaction, to be re-sent after a restart. If
either promise breaks, a crash leaves a transfer the payer was told about stuck RESERVED, money
reserved on a position with no transfer to show for it, or a payer who never hears the outcome.

The test plays both DFSPs in this process: one small HTTP server gets the hub's callbacks. The
payee fulfils every POST /transfers it gets (it knows the fulfilment of every condition the payer
sent, as a payee that made the quote would) and keeps retrying, bounded, when the hub is down,
always at the hub's current URL (ports change across a restart). The payer records the PUT
callbacks. A few threads send N transfers; the hub is killed with SIGKILL after some of them were
answered 202, restarted on the same data directory, and the stream goes on. Then every transfer
answered 202 must end COMMITTED or ABORTED, the payer must have been told which, nothing may be
left RESERVED, and the positions must equal what the committed transfers moved.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import signal
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from conftest import HubLauncher, pid_gone, unique_name, wait_until
from miniloop.fspiop.endpoints import for_base_url
from miniloop.fspiop.headers import imf_date

TRANSFERS = 200
KILL_AFTER = 80  # 202s seen before the hub is killed
SENDERS = 4
AMOUNT = Decimal("1.5")
EXPIRES_IN_S = 10.0  # a transfer the payee could not fulfil expires within the test's bounds
HTTP_TIMEOUT_S = 10.0
FULFIL_RETRY_FOR_S = 25.0  # the payee keeps trying to reach the (restarting) hub this long
FULFIL_RETRY_EVERY_S = 0.1
RESTART_TIMEOUT_S = 30.0  # senders wait at most this long for the restarted hub
SETTLE_TIMEOUT_S = 45.0  # every answered transfer has its outcome at the payer within this
FINAL_STATES = {"COMMITTED", "ABORTED_REJECTED", "ABORTED_ERROR", "EXPIRED_PREPARED", "EXPIRED_RESERVED", "INVALID"}
TRANSFERS_V1 = "application/vnd.interoperability.transfers+json;version=1"
TRANSFERS_V1_1 = "application/vnd.interoperability.transfers+json;version=1.1"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def expiration_in(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fspiop_headers(source: str, destination: str) -> dict[str, str]:
    return {
        "Accept": TRANSFERS_V1, "Content-Type": TRANSFERS_V1_1, "Date": imf_date(),
        "FSPIOP-Source": source, "FSPIOP-Destination": destination,
    }


# --------------------------------------------------------------------------- the two test DFSPs


class HubTarget:
    """Where the DFSPs send to: the hub's current FSPIOP URL, and whether it is up."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()
        self.up = threading.Event()
        self.up.set()

    @property
    def url(self) -> str:
        with self._lock:
            return self._url

    def switch(self, url: str) -> None:
        with self._lock:
            self._url = url
        self.up.set()


class Dfsps:
    """One HTTP server playing the payer and the payee under /<name>/..."""

    def __init__(self, payer: str, payee: str, target: HubTarget) -> None:
        self.payer, self.payee, self.target = payer, payee, target
        self.fulfilments: dict[str, str] = {}  # transferId -> fulfilment, shared with the sender
        self.lock = threading.Lock()
        self.payer_callbacks: dict[str, list[tuple[str, Any]]] = defaultdict(list)  # id -> [(path kind, body)]
        self.fulfil_outcomes: dict[str, int | str] = {}  # id -> last sync status of the payee's PUT
        self.unexpected: list[str] = []
        self._stop = threading.Event()
        self._fulfillers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="payee-fulfil")
        self._client = httpx.Client(timeout=HTTP_TIMEOUT_S)
        dfsps = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length > 0 else b""
                self.send_response(200 if self.command in ("PUT", "PATCH") else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                dfsps.received(self.command, self.path, raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="test-dfsps", daemon=True)
        self._thread.start()

    def base_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        self._fulfillers.shutdown(wait=True, cancel_futures=True)
        self._client.close()

    # ---------------------------------------------------------------- what the hub sends

    def received(self, method: str, path: str, raw: bytes) -> None:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        parts = path.strip("/").split("/")  # <dfsp>, transfers, [id], [error]
        if parts[0] == self.payee and method == "POST" and parts[1:] == ["transfers"] and body:
            self._fulfillers.submit(self._fulfil, body["transferId"])
        elif parts[0] == self.payer and method == "PUT" and len(parts) >= 3 and parts[1] == "transfers":
            kind = "error" if parts[3:] == ["error"] else "put"
            with self.lock:
                self.payer_callbacks[parts[2]].append((kind, body))
        elif parts[0] == self.payee and method in ("PUT", "PATCH") and len(parts) >= 3:
            pass  # answers to the payee's own resends (duplicate fulfil, expiry): not what we check
        else:
            with self.lock:
                self.unexpected.append(f"{method} {path} {raw[:200]!r}")

    def _fulfil(self, transfer_id: str) -> None:
        """The payee's answer: PUT /transfers/{ID} COMMITTED, retried (bounded) while the hub is down."""
        with self.lock:
            fulfilment = self.fulfilments.get(transfer_id)
        if fulfilment is None:
            with self.lock:
                self.unexpected.append(f"POST /transfers for an unknown transfer {transfer_id}")
            return
        body = json.dumps({"fulfilment": fulfilment, "completedTimestamp": expiration_in(0),
                           "transferState": "COMMITTED"}).encode()
        deadline = time.monotonic() + FULFIL_RETRY_FOR_S
        outcome: int | str = "not sent"
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                response = self._client.put(f"{self.target.url}/transfers/{transfer_id}", content=body,
                                            headers=fspiop_headers(self.payee, self.payer))
                outcome = response.status_code
                if response.status_code < 500:
                    break
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            self._stop.wait(FULFIL_RETRY_EVERY_S)
        with self.lock:
            self.fulfil_outcomes[transfer_id] = outcome

    # ---------------------------------------------------------------- what the payer learnt

    def outcome(self, transfer_id: str) -> set[str]:
        """The final states the payer was told for a transfer: COMMITTED and/or ABORTED."""
        with self.lock:
            callbacks = list(self.payer_callbacks.get(transfer_id, []))
        told = set()
        for kind, body in callbacks:
            if kind == "error":
                told.add("ABORTED")
            elif isinstance(body, dict) and body.get("transferState") in ("COMMITTED", "ABORTED"):
                told.add(body["transferState"])
        return told


# --------------------------------------------------------------------------- sending the stream


class Stream:
    """N transfers sent from a few threads; records which were answered 202."""

    def __init__(self, dfsps: Dfsps, target: HubTarget, count: int) -> None:
        self.dfsps, self.target = dfsps, target
        self.todo: queue.Queue[str] = queue.Queue()
        self.bodies: dict[str, bytes] = {}
        for _ in range(count):
            transfer_id = str(uuid.uuid4())
            secret = os.urandom(32)
            dfsps.fulfilments[transfer_id] = b64url(secret)
            self.bodies[transfer_id] = json.dumps({
                "transferId": transfer_id, "payerFsp": dfsps.payer, "payeeFsp": dfsps.payee,
                "amount": {"amount": str(AMOUNT), "currency": "USD"},
                "ilpPacket": b64url(os.urandom(48)),
                "condition": b64url(hashlib.sha256(secret).digest()),
                "expiration": "",  # set when sent
            }).encode()
            self.todo.put(transfer_id)
        self.lock = threading.Lock()
        self.accepted: list[str] = []
        self.other: dict[str, int | str] = {}
        self.kill_now = threading.Event()  # set at the KILL_AFTER-th 202, while the others keep sending

    def accepted_count(self) -> int:
        with self.lock:
            return len(self.accepted)

    def send_all(self) -> None:
        """One sender thread: take transfers until none are left."""
        with httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
            while True:
                try:
                    transfer_id = self.todo.get_nowait()
                except queue.Empty:
                    return
                outcome = self._send(client, transfer_id)
                with self.lock:
                    if outcome == 202:
                        self.accepted.append(transfer_id)
                        if len(self.accepted) >= KILL_AFTER:
                            self.kill_now.set()
                    else:
                        self.other[transfer_id] = outcome

    def _send(self, client: httpx.Client, transfer_id: str) -> int | str:
        if not self.target.up.wait(RESTART_TIMEOUT_S):
            return "hub not back"
        body = json.loads(self.bodies[transfer_id])
        body["expiration"] = expiration_in(EXPIRES_IN_S)
        try:
            response = client.post(f"{self.target.url}/transfers", content=json.dumps(body).encode(),
                                   headers=fspiop_headers(self.dfsps.payer, self.dfsps.payee))
        except httpx.HTTPError as exc:  # the hub died under it: outcome unknown to the payer
            return type(exc).__name__
        return response.status_code if response.status_code == 202 else f"{response.status_code} {response.text}"


# --------------------------------------------------------------------------- the ledger file


def read_ledger(db: Path, payer: str, payee: str) -> dict[str, Any]:
    """States, positions and position changes, read from the stopped hub's SQLite file."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        states = {r["id"]: (r["state"], r["amount"]) for r in conn.execute(
            "SELECT id, state, amount FROM transfer WHERE kind = 'FSPIOP'")}
        accounts = {r["name"]: r["id"] for r in conn.execute(
            "SELECT p.name, a.id FROM account a JOIN participant p ON p.id = a.participant_id "
            "WHERE a.ledger_account_type_id = 1 AND a.currency = 'USD' AND p.name IN (?, ?)", (payer, payee))}
        positions = {name: conn.execute("SELECT value FROM position WHERE account_id = ?", (account,)).fetchone()[0]
                     for name, account in accounts.items()}
        change_sums = {name: conn.execute("SELECT coalesce(sum(change), 0) FROM position_change WHERE account_id = ?",
                                          (account,)).fetchone()[0]
                       for name, account in accounts.items()}
        net_by_transfer = {
            (r["transfer_id"], r["account_id"]): (r["net"], r["n"]) for r in conn.execute(
                "SELECT transfer_id, account_id, sum(change) AS net, count(*) AS n FROM position_change "
                "WHERE transfer_id IS NOT NULL GROUP BY transfer_id, account_id")
        }
        history = defaultdict(list)
        for r in conn.execute("SELECT transfer_id, state FROM transfer_state_change ORDER BY id"):
            history[r["transfer_id"]].append(r["state"])
    finally:
        conn.close()
    return {"states": states, "accounts": accounts, "positions": positions, "change_sums": change_sums,
            "net": net_by_transfer, "history": history}


# --------------------------------------------------------------------------- the test


def test_sigkill_during_a_stream_of_transfers_loses_none(hubs: HubLauncher) -> None:
    hub = hubs.start(empty=True)
    hub.setup_currency()
    payer, payee = unique_name("payer"), unique_name("payee")
    hub.onboard(payer, ndc=100000, funds=100000)
    hub.onboard(payee, ndc=100000, funds=100000)

    target = HubTarget(hub.urls["fspiop"])
    dfsps = Dfsps(payer, payee, target)
    senders = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="payer-send")
    try:
        for name in (payer, payee):
            for endpoint_type, value in for_base_url(dfsps.base_url(name)).items():
                r = hub.admin.post(f"/participants/{name}/endpoints", json={"type": endpoint_type, "value": value})
                assert r.status_code == 201, r.text

        stream = Stream(dfsps, target, TRANSFERS)
        running = [senders.submit(stream.send_all) for _ in range(SENDERS)]
        deadline = time.monotonic() + 60
        while not stream.kill_now.wait(0.05):  # wakes at once when set: the kill lands mid-stream
            if all(f.done() for f in running) or time.monotonic() > deadline:
                raise AssertionError(f"{KILL_AFTER} transfers were not answered 202: {stream.other}")

        # the crash: no chance to finish a batch, deliver the outbox or flush anything
        target.up.clear()
        nats_pid = hub.nats_pid
        assert hub.kill() == -signal.SIGKILL
        accepted_before = stream.accepted_count()
        if nats_pid is not None:
            wait_until(lambda: pid_gone(nats_pid), timeout=10, what="the killed hub's nats-server to exit")
        hub2 = hubs.start(empty=True, data_dir=hub.data_dir)
        target.switch(hub2.urls["fspiop"])

        for future in running:
            future.result(timeout=120)
        accepted = list(stream.accepted)
        assert len(accepted) > accepted_before, f"no transfer was accepted after the restart: {stream.other}"
        assert len(set(accepted)) == len(accepted)

        # every transfer answered 202 reaches an outcome the payer hears about (bounded)
        def unsettled() -> list[str]:
            return [t for t in accepted if not dfsps.outcome(t)]

        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while unsettled() and time.monotonic() < deadline:
            time.sleep(0.1)

        # the positions the operator sees (Admin API), while the hub runs
        def position(name: str) -> Decimal:
            r = hub2.admin.get(f"/participants/{name}/positions", params={"currency": "USD"})
            assert r.status_code == 200, r.text
            return Decimal(str(r.json()["value"]))

        api_positions = {name: position(name) for name in (payer, payee)}
        missing = unsettled()
        assert hub2.stop() == 0, hub2.stderr
    finally:
        senders.shutdown(wait=False, cancel_futures=True)
        target.up.set()  # release any sender still waiting
        dfsps.close()

    ledger = read_ledger(hub.data_dir / "miniloop.db", payer, payee)
    states = ledger["states"]
    report = {t: (states.get(t), dfsps.fulfil_outcomes.get(t), dfsps.payer_callbacks.get(t)) for t in missing}
    assert not missing, f"{len(missing)} transfers answered 202 never reached the payer's outcome: {report}"
    assert not dfsps.unexpected, dfsps.unexpected

    # nothing answered 202 was lost, and nothing is left half-way
    lost = [t for t in accepted if t not in states]
    assert not lost, f"{len(lost)} transfers answered 202 are not in the ledger after the crash: {lost[:5]}"
    unfinished = {t: s for t, (s, _) in states.items() if s not in FINAL_STATES}
    assert not unfinished, f"transfers left unfinished: {unfinished}"
    assert all(s != "RESERVED" for s, _ in states.values())
    unknown = set(states) - set(stream.bodies)
    assert not unknown, f"the ledger holds transfers nobody sent: {unknown}"

    # what the payer was told agrees with the ledger
    for transfer_id in accepted:
        told = dfsps.outcome(transfer_id)
        final = "COMMITTED" if states[transfer_id][0] == "COMMITTED" else "ABORTED"
        assert told == {final}, (transfer_id, told, states[transfer_id], ledger["history"][transfer_id])

    # positions: the payer owes what was committed, the payee is owed it; every change is on record
    committed = [t for t, (s, _) in states.items() if s == "COMMITTED"]
    assert committed, "no transfer committed at all"
    committed_units = sum(states[t][1] for t in committed)
    assert ledger["positions"][payer] == committed_units, ledger["positions"]
    assert ledger["positions"][payee] == -committed_units, ledger["positions"]
    assert ledger["change_sums"] == ledger["positions"]
    units_per_major = 10_000  # miniloop.money's scale
    assert api_positions == {payer: Decimal(committed_units) / units_per_major,
                             payee: Decimal(-committed_units) / units_per_major}, api_positions

    # each transfer moved each position once: a committed one +amount / -amount, an aborted one nets to 0
    payer_account, payee_account = ledger["accounts"][payer], ledger["accounts"][payee]
    for transfer_id, (state, amount) in states.items():
        payer_net = ledger["net"].get((transfer_id, payer_account), (0, 0))
        payee_net = ledger["net"].get((transfer_id, payee_account), (0, 0))
        history = ledger["history"][transfer_id]
        if state == "COMMITTED":
            assert (payer_net, payee_net) == ((amount, 1), (-amount, 1)), (transfer_id, history)
            assert history == ["RECEIVED_PREPARE", "RESERVED", "RECEIVED_FULFIL", "COMMITTED"], history
        else:
            assert payer_net[0] == 0 and payee_net == (0, 0), (transfer_id, state, history)
