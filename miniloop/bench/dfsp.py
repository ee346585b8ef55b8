"""One simulated DFSP of `miniloop bench`, in its own process: payer and payee over real HTTP.

As a payer it starts payments (closed loop: a fixed number in flight; open loop: a fixed rate)
and times each from its first request to the PUT callback that tells it the outcome. As a payee
it answers what the hub forwards: GET /parties with the party, POST /quotes with an ILP packet
and condition, POST /transfers with the fulfilment. Every DFSP pays every other one in turn.

The fulfilment of a transfer is HMAC-SHA256(payee secret, transferId), the way the SDK derives
it from its secret, so the payee can fulfil without remembering anything. In the transfer flow
the payer computes the condition from the payee's secret itself (standing in for the quote it
would have had); in the full flow the condition comes from the payee's quote.

The controller (miniloop.bench.run) talks to this process over a pipe: "ready" with the port,
then "go" with the start and end times and the URL to send to, "progress" twice a second,
"result" once its own payments are over; it keeps answering as a payee until "stop". While the
load runs the controller may also send "hub" with a new URL (the hub was restarted on other
ports) and "end" (stop starting payments now).

Chaos mode (`miniloop bench --chaos`, miniloop.bench.chaos): the hub is killed and restarted
under the load, so this DFSP keeps a record instead of a stopwatch. As a payer it notes every
transfer the hub answered 202 (and when), and every final state it is told, for each of its
transfers, whether anyone is still waiting for it or not; it does not hammer a hub that is down.
As a payee it fulfils with transferState RESERVED, so that the hub tells it the outcome (a
PATCH), notes every outcome it is told, and sends its fulfilment again (the same body) while the
hub cannot be reached, for a bounded time, as a DFSP's SDK would. It also rejects one transfer
in 50 (5104) and leaves one in 50 unanswered, to expire: aborted transfers cross the kills too.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
import time
import uuid
import zlib
from array import array
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from miniloop.bench.wire import Client, HttpError, serve
from miniloop.fspiop import ilp
from miniloop.fspiop.headers import imf_date

CURRENCY = "USD"
AMOUNT = "1"
EXPIRY_S = 60  # a transfer's expiration, after its prepare
CALLBACK_TIMEOUT_S = 30.0  # a step with no callback by then counts as an error
IN_FLIGHT_MAX = 20_000  # open loop: beyond this, payments are not started (and counted)
PROGRESS_EVERY_S = 0.5
DRAIN_S = 15.0  # after the end, how long payments in flight may take to finish
PARTIES = 1_000  # MSISDNs each DFSP owns in the full flow
CONNECTIONS = 64  # to the hub, per DFSP, as an SDK keeps a pool: requests beyond wait their turn
CHAOS_EXPIRY_S = 10  # chaos mode: a transfer whose fulfilment never arrived expires soon
CHAOS_CALLBACK_WAIT_S = 2.0  # chaos mode: a payer slot waits this long, then starts the next payment
CHAOS_DOWN_PAUSE_S = 0.05  # chaos mode: after failing to reach the hub, a slot pauses this long
CHAOS_FULFIL_RETRY_S = 6.0  # chaos mode: a payee sends its fulfilment again while the hub is down, this long
CHAOS_FULFIL_RETRY_EVERY_S = 0.1
CHAOS_UNANSWERED_ONE_IN = 50  # chaos mode: the payee leaves this share of transfers unanswered (they expire)
CHAOS_REJECTED_ONE_IN = 50  # ... and rejects this share (5104): aborts go through the kills too
CHAOS_SETTLE_S = CHAOS_EXPIRY_S + 30  # chaos mode: how long to wait for the outcome of every accepted transfer

_json = msgspec.json.Decoder()


@dataclass
class Plan:
    """What the controller asks of one DFSP process."""

    name: str
    index: int  # makes its MSISDNs unique
    peers: list[str]  # the DFSPs it pays, in turn
    peer_indexes: list[int]
    flow: str  # "transfer" or "full"
    concurrency: int = 0  # closed loop: payments in flight (0 with a rate)
    rate: float = 0.0  # open loop: payments started per second
    chaos: bool = False  # the hub is killed under the load: keep a record (see the module's doc)
    # an https hub (--url with --tls-cert/--tls-key/--tls-ca): the files, as text (a context
    # cannot cross to the process); None each: not given
    tls_files: tuple[str | None, str | None, str | None] | None = None


def secret_for(name: str) -> bytes:
    return hashlib.sha256(b"miniloop-bench:" + name.encode()).digest()


def msisdn(dfsp_index: int, i: int) -> str:
    return f"99{dfsp_index:03d}{i:06d}"


def fulfilment_for(secret: bytes, transfer_id: str) -> str:
    return _b64(hmac.new(secret, transfer_id.encode(), hashlib.sha256).digest())


def condition_for(secret: bytes, transfer_id: str) -> str:
    return _b64(hashlib.sha256(hmac.new(secret, transfer_id.encode(), hashlib.sha256).digest()).digest())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _utc(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Clock:
    """The Date header and timestamps, formatted at most once per 100 ms."""

    def __init__(self, expiry_s: float = EXPIRY_S) -> None:
        self._at = 0.0
        self._expiry_s = expiry_s
        self.date = self.now = self.expiration = ""

    def tick(self) -> None:
        moment = time.monotonic()
        if moment - self._at < 0.1:
            return
        self._at = moment
        now = datetime.now(UTC)
        self.date = imf_date(now)
        self.now = _utc(now)
        self.expiration = _utc(now + timedelta(seconds=self._expiry_s))


class Dfsp:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.name = plan.name
        self.prefix = f"/{plan.name}".encode()
        self.secret = secret_for(plan.name)
        self.peer_secrets = {peer: secret_for(peer) for peer in plan.peers}
        self.hub: Client | None = None  # set by "go": the FSPIOP API the load goes to
        self.ssl_context = None
        if plan.tls_files is not None:  # checked by the controller already
            from pathlib import Path

            from miniloop.tls import tool_context

            self.ssl_context = tool_context(*(Path(f) if f else None for f in plan.tls_files))
        self.end_at = float("inf")  # set by "go"; "end" brings it forward
        self.clock = _Clock(CHAOS_EXPIRY_S if plan.chaos else EXPIRY_S)
        self.waiting: dict[str, asyncio.Future[Any]] = {}
        self.done_at = array("d")
        self.latency = array("d")
        self.errors: Counter[str] = Counter()
        self.started = 0
        self.completed = 0
        self.in_flight = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self._turn = 0
        self._packets = {peer: self._packet(peer, index) for peer, index in zip(plan.peers, plan.peer_indexes)}
        # chaos mode's record
        self.mine: set[str] = set()  # transfers this DFSP sent as the payer
        self.accepted: dict[str, float] = {}  # transferId -> when the hub answered 202 (time.monotonic)
        self.last_accepted = 0.0
        self.told: dict[str, list[str]] = {}  # as payer: transferId -> the final states it was told
        self.payee_told: dict[str, list[str]] = {}  # as payee: transferId -> the outcomes it was told
        self.fulfil_unsent = 0  # fulfilments the hub never answered, even sent again
        self.fulfilments: dict[str, bytes] = {}  # as payee: the body of each fulfilment, to send the same again

    def switch_hub(self, url: str) -> None:
        """The hub was restarted on another URL: send everything there from now on."""
        old, self.hub = self.hub, Client(url, limit=CONNECTIONS, ssl_context=self.ssl_context)
        if old is not None:
            old.close()

    def _packet(self, peer: str, index: int) -> str:
        quote = {
            "quoteId": str(uuid.uuid4()), "transactionId": str(uuid.uuid4()),
            "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
            "payee": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": msisdn(index, 0), "fspId": peer}},
            "payer": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": msisdn(self.plan.index, 0),
                                      "fspId": self.name}},
        }
        return ilp.packet_v1(ilp.transaction_object(quote, {"amount": AMOUNT, "currency": CURRENCY}, None), peer)

    # ------------------------------------------------------------------------ requests to the hub

    def _headers(self, resource: str, destination: str | None) -> bytes:
        media = f"application/vnd.interoperability.{resource}+json;version=1.1"
        lines = f"accept: {media}\r\ncontent-type: {media}\r\ndate: {self.clock.date}\r\nfspiop-source: {self.name}\r\n"
        if destination:
            lines += f"fspiop-destination: {destination}\r\n"
        return lines.encode()

    async def _send(self, method: bytes, path: str, resource: str, destination: str | None, body: bytes = b"") -> bool:
        self.clock.tick()
        assert self.hub is not None
        try:
            status, answer = await self.hub.request(method, path.encode(), self._headers(resource, destination), body)
        except (OSError, HttpError, asyncio.TimeoutError) as exc:
            self.errors[f"cannot reach the hub ({type(exc).__name__})"] += 1
            return False
        if status >= 300:
            code = ""
            try:
                code = " " + _json.decode(answer)["errorInformation"]["errorCode"]
            except Exception:
                pass
            self.errors[f"HTTP {status}{code} on {method.decode()} /{resource}"] += 1
            return False
        return True

    async def _ask(self, key: str, what: str, method: bytes, path: str, resource: str, destination: str | None,
                   body: bytes = b"") -> Any:
        """Send a request and wait for the callback it causes (registered for before sending, so it
        cannot arrive unseen); None if either failed, counted as an error."""
        future = self.waiting[key] = asyncio.get_running_loop().create_future()
        if self.plan.chaos and what == "transfer":
            self.mine.add(key)
        if not await self._send(method, path, resource, destination, body):
            self.waiting.pop(key, None)
            if self.plan.chaos:  # the hub may be down: do not spin
                await asyncio.sleep(CHAOS_DOWN_PAUSE_S)
            return None
        if self.plan.chaos and what == "transfer":
            self.accepted[key] = self.last_accepted = time.monotonic()
        timeout = CHAOS_CALLBACK_WAIT_S if self.plan.chaos else CALLBACK_TIMEOUT_S
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            if not self.plan.chaos:  # in chaos mode the outcome is checked at the end, not here
                self.errors[f"no {what} callback within {CALLBACK_TIMEOUT_S:.0f} s"] += 1
            return None
        finally:
            self.waiting.pop(key, None)

    # ------------------------------------------------------------------------ one payment

    async def pay(self) -> None:
        peers = self.plan.peers
        payee_index = self._turn % len(peers)
        self._turn += 1
        payee = peers[payee_index]
        self.started += 1
        self.in_flight += 1
        began = time.monotonic()
        try:
            if self.plan.flow == "full":
                ok = await self._full(payee, self.plan.peer_indexes[payee_index])
            else:
                transfer_id = str(uuid.uuid4())
                ok = await self._transfer(payee, transfer_id, condition_for(self.peer_secrets[payee], transfer_id),
                                          self._packets[payee])
        finally:
            self.in_flight -= 1
        if ok:
            finished = time.monotonic()
            self.completed += 1
            self.done_at.append(finished)
            self.latency.append(finished - began)

    async def _transfer(self, payee: str, transfer_id: str, condition: str, packet: str) -> bool:
        self.clock.tick()
        body = (f'{{"transferId":"{transfer_id}","payerFsp":"{self.name}","payeeFsp":"{payee}",'
                f'"amount":{{"amount":"{AMOUNT}","currency":"{CURRENCY}"}},"ilpPacket":"{packet}",'
                f'"condition":"{condition}","expiration":"{self.clock.expiration}"}}').encode()
        state = await self._ask(transfer_id, "transfer", b"POST", "/transfers", "transfers", payee, body)
        if state is None:
            return False
        if state != "COMMITTED":
            if not self.plan.chaos:  # in chaos mode the payee aborts some on purpose
                self.errors[f"transfer {state}"] += 1
            return False
        return True

    async def _full(self, payee: str, payee_index: int) -> bool:
        # 1. who owns this number?
        number = msisdn(payee_index, self._turn % PARTIES)
        key = f"party {number}"
        if key in self.waiting:  # the same number is being looked up: take another turn
            number = msisdn(payee_index, (self._turn * 7919) % PARTIES)
            key = f"party {number}"
            if key in self.waiting:
                self.errors["every MSISDN busy: raise PARTIES"] += 1
                return False
        party = await self._ask(key, "party", b"GET", f"/parties/MSISDN/{number}", "parties", None)
        if party is None:
            return False
        fsp = party["party"]["partyIdInfo"].get("fspId")
        if fsp != payee:
            self.errors[f"lookup of {number} answered {fsp}"] += 1
            return False
        # 2. the quote
        quote_id, transaction_id = str(uuid.uuid4()), str(uuid.uuid4())
        body = msgspec.json.encode({
            "quoteId": quote_id, "transactionId": transaction_id,
            "payee": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": number, "fspId": payee}},
            "payer": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": msisdn(self.plan.index, 0),
                                      "fspId": self.name}},
            "amountType": "SEND", "amount": {"amount": AMOUNT, "currency": CURRENCY},
            "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
        })
        quote = await self._ask(quote_id, "quote", b"POST", "/quotes", "quotes", payee, body)
        if quote is None:
            return False
        # 3. the transfer, with the quote's packet and condition
        return await self._transfer(payee, transaction_id, quote["condition"], quote["ilpPacket"])

    # ------------------------------------------------------------------------ callbacks from the hub

    def on_request(self, method: bytes, path: bytes, head: bytes, body: bytes) -> int:
        if not path.startswith(self.prefix):
            return 404
        parts = path[len(self.prefix):].split(b"/")  # ["", resource, ...]
        resource = parts[1] if len(parts) > 1 else b""
        if self.plan.chaos and resource == b"transfers" and method in (b"PUT", b"PATCH") and len(parts) > 2:
            self._note(parts[2].decode(), len(parts) > 3, body)
        if method == b"PUT":
            if resource == b"transfers":
                key = parts[2].decode()
                if len(parts) > 3:  # .../error
                    outcome = "error " + _error_code(body)
                else:
                    outcome = _json.decode(body).get("transferState", "?")
                self._resolve(key, outcome)
            elif resource == b"quotes":
                key = parts[2].decode()
                self._resolve(key, _json.decode(body) if len(parts) == 3 else None, error=_error_code(body))
            elif resource == b"parties":
                key = "party " + parts[3].decode()
                self._resolve(key, _json.decode(body) if len(parts) == 4 else None, error=_error_code(body))
            return 200
        if method == b"PATCH" or resource == b"participants":
            return 200
        source = _header(head, b"fspiop-source")
        if method == b"POST" and resource == b"transfers":
            transfer_id = _json.decode(body)["transferId"]
            if self.plan.chaos:
                pick = zlib.crc32(transfer_id.encode())
                if pick % CHAOS_UNANSWERED_ONE_IN == 0:
                    return 202  # never answered: the hub expires it
                if pick % CHAOS_REJECTED_ONE_IN == 1:
                    self._spawn(self._answer_transfer(transfer_id, source, self._rejection()))
                    return 202
            self._spawn(self._fulfil(transfer_id, source))
            return 202
        if method == b"GET" and resource == b"parties":
            self._spawn(self._answer_party(parts[3].decode(), source))
            return 202
        if method == b"POST" and resource == b"quotes":
            self._spawn(self._answer_quote(_json.decode(body), source))
            return 202
        return 404

    def _note(self, transfer_id: str, error: bool, body: bytes) -> None:
        """Chaos mode: record an outcome told about a transfer, as its payer or as its payee.

        Any error callback to the payer ends its transfer. A payee is told an expiry with 3303;
        another error answers one of its own messages (a fulfilment the hub refused) and is
        counted, not taken for the transfer's outcome."""
        payer = transfer_id in self.mine
        if error:
            code = _error_code(body)
            if not payer and code != "3303":
                self.errors[f"payee got error {code} for its fulfilment"] += 1
                return
            state = "ABORTED"
        else:
            state = str(_json.decode(body).get("transferState", "?"))
        if state not in ("COMMITTED", "ABORTED"):
            return  # not final (a resend answered RESERVED): nothing to record
        record = self.told if payer else self.payee_told
        record.setdefault(transfer_id, []).append(state)

    def _resolve(self, key: str, value: Any, error: str = "") -> None:
        future = self.waiting.get(key)
        if future is None or future.done():
            return
        if value is None:
            self.errors[f"error callback {error}".strip()] += 1
        future.set_result(value)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _fulfil(self, transfer_id: str, payer: str) -> None:
        self.clock.tick()
        state = "RESERVED" if self.plan.chaos else "COMMITTED"  # RESERVED: the hub tells us the outcome
        body = (f'{{"fulfilment":"{fulfilment_for(self.secret, transfer_id)}",'
                f'"completedTimestamp":"{self.clock.now}","transferState":"{state}"}}').encode()
        if self.plan.chaos:
            await self._answer_transfer(transfer_id, payer, body)
        else:
            await self._send(b"PUT", f"/transfers/{transfer_id}", "transfers", payer, body)

    def _rejection(self) -> bytes:
        return b'{"errorInformation":{"errorCode":"5104","errorDescription":"Payee rejected transaction"}}'

    async def _answer_transfer(self, transfer_id: str, payer: str, body: bytes) -> None:
        """Chaos mode: the payee's answer, sent again (bounded) while the hub cannot be reached."""
        # idempotent: a prepare delivered twice (at least once) gets the same answer again, which
        # the hub answers with the transfer's state; a different body would be refused (3106)
        body = self.fulfilments.setdefault(transfer_id, body)
        path = f"/transfers/{transfer_id}" + ("/error" if body.startswith(b'{"errorInformation"') else "")
        deadline = time.monotonic() + CHAOS_FULFIL_RETRY_S
        while not await self._send(b"PUT", path, "transfers", payer, body):
            if time.monotonic() > deadline:  # the transfer will expire; the hub tells both sides
                self.fulfil_unsent += 1
                return
            await asyncio.sleep(CHAOS_FULFIL_RETRY_EVERY_S)

    async def _answer_party(self, number: str, requester: str) -> None:
        body = msgspec.json.encode({"party": {
            "partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": number, "fspId": self.name},
            "name": "Bench Customer",
        }})
        await self._send(b"PUT", f"/parties/MSISDN/{number}", "parties", requester, body)

    async def _answer_quote(self, request: dict[str, Any], payer: str) -> None:
        self.clock.tick()
        transaction_id = request["transactionId"]
        body = msgspec.json.encode({
            "transferAmount": request["amount"], "expiration": self.clock.expiration,
            "ilpPacket": self._packets.get(payer) or next(iter(self._packets.values())),
            "condition": condition_for(self.secret, transaction_id),
        })
        await self._send(b"PUT", f"/quotes/{request['quoteId']}", "quotes", payer, body)

    # ------------------------------------------------------------------------ the run

    async def load(self, start_at: float, end_at: float) -> None:
        self.end_at = end_at
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        if self.plan.rate > 0:
            await self._open_loop()
        else:
            await asyncio.gather(*(self._slot() for _ in range(self.plan.concurrency)))

    async def _slot(self) -> None:
        while time.monotonic() < self.end_at:
            await self.pay()

    async def _open_loop(self) -> None:
        began = time.monotonic()
        while (now := time.monotonic()) < self.end_at:
            due = int((now - began) * self.plan.rate) - self.started - self.errors["not started: too many in flight"]
            for _ in range(max(0, due)):
                if self.in_flight >= IN_FLIGHT_MAX:
                    self.errors["not started: too many in flight"] += 1
                    continue
                self._spawn(self.pay())
            await asyncio.sleep(0.002)

    async def drain(self) -> int:
        """Wait (bounded) for payments in flight; return how many did not finish."""
        deadline = time.monotonic() + DRAIN_S
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.in_flight

    async def settle(self) -> None:
        """Chaos mode: wait (bounded) until the payer was told the outcome of every accepted transfer."""
        deadline = time.monotonic() + CHAOS_SETTLE_S
        while time.monotonic() < deadline and any(t not in self.told for t in self.accepted):
            await asyncio.sleep(0.1)


def _error_code(body: bytes) -> str:
    try:
        return str(_json.decode(body)["errorInformation"]["errorCode"])
    except Exception:
        return ""


def _header(head: bytes, name: bytes) -> str:
    lower = head.lower()
    at = lower.find(b"\r\n" + name + b":")
    if at < 0:
        return ""
    start = at + len(name) + 3
    stop = lower.find(b"\r\n", start)
    return head[start: stop if stop >= 0 else len(head)].strip().decode()


async def _main(plan: Plan, pipe: Connection) -> None:
    dfsp = Dfsp(plan)
    server = await serve(dfsp.on_request)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    pipe.send(("ready", port))
    command, start_at, end_at, hub_url = await loop.run_in_executor(None, pipe.recv)
    assert command == "go"
    dfsp.switch_hub(hub_url)
    stopped = asyncio.Event()

    def on_control(message: tuple[Any, ...]) -> None:  # the controller's messages during the run
        if message[0] == "hub":
            dfsp.switch_hub(message[1])
        elif message[0] == "end":
            dfsp.end_at = min(dfsp.end_at, time.monotonic())
        elif message[0] == "stop":
            stopped.set()

    def listen() -> None:
        """A thread reading the pipe (blocking: the event loop's reader would make the pipe
        non-blocking, and a large "result" would then fail to send)."""
        while True:
            try:
                message = pipe.recv()
            except (EOFError, OSError):
                message = ("stop",)  # the controller is gone
            loop.call_soon_threadsafe(on_control, message)
            if message[0] == "stop":
                return

    threading.Thread(target=listen, name="control", daemon=True).start()

    async def report() -> None:
        while True:
            pipe.send(("progress", dfsp.completed, sum(dfsp.errors.values()), dfsp.in_flight, len(dfsp.accepted),
                       dfsp.last_accepted))
            await asyncio.sleep(PROGRESS_EVERY_S)

    reporter = loop.create_task(report())
    await dfsp.load(start_at, end_at)
    unfinished = await dfsp.drain()
    if plan.chaos:
        await dfsp.settle()
    reporter.cancel()
    if unfinished and not plan.chaos:
        dfsp.errors["unfinished at the end"] += unfinished
    result = {
        "name": plan.name, "started": dfsp.started, "completed": dfsp.completed,
        "done_at": dfsp.done_at.tobytes(), "latency": dfsp.latency.tobytes(), "errors": dict(dfsp.errors),
    }
    pipe.send(("result", result))
    # other DFSPs may still be paying this one: keep answering until every DFSP is done
    await stopped.wait()
    if plan.chaos:  # the record, once the controller has seen the hub deliver everything it owed
        pipe.send(("record", {"accepted": dfsp.accepted, "told": dfsp.told, "payee_told": dfsp.payee_told,
                              "fulfil_unsent": dfsp.fulfil_unsent, "errors": dict(dfsp.errors)}))
    if dfsp.tasks:
        await asyncio.wait(list(dfsp.tasks), timeout=DRAIN_S)
    server.close()
    dfsp.hub.close()


def run(plan: Plan, pipe: Connection) -> None:
    """The process's entry point (multiprocessing, spawn)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_main(plan, pipe))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_main(plan, pipe))
