"""A reference DFSP: an FSPIOP v1.1 payee that does what the API asks of a DFSP, or breaks one rule.

Why: the conformance pack needs a DFSP it can trust (to tell a hub bug from a DFSP bug) and DFSPs
known to be broken (to show what a hub does with each breakage); users need a worked example of
the DFSP side. It runs alone, over real HTTP, and knows nothing of the hub's internals.

It answers each request at once (202; 200 for PUT/PATCH), then calls the hub back:
- GET /parties/{Type}/{ID} -> its party, or 3204 (not its own, or any SubId).
- POST /quotes -> PUT /quotes/{ID} with no payee fee: transferAmount = amount (a SEND with
  disclosed payer fees: amount - fees, per the API's equations), ILP packet and condition as
  Mojaloop's SDK makes them. Errors: 3204 not its payee, 5106 another currency, 3106 a reused id.
- GET /quotes/{ID} -> the same answer again, or 3205 "Quote ID not found" (the API's code).
- POST /transfers -> the fulfilment, if the transfer matches the packet and condition it issued;
  else 5105 (3303 the transfer expired, 3302 the quote did). Anything else is acknowledged only.
A resent request gets the same answer; the ILP secret comes from the name, so a restart still
fulfils old quotes. Bounded: the newest 10,000 quotes and transfers, at most 1,000 callbacks in
flight (more are dropped and logged, never queued). Callbacks answer in the request's version.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web

from miniloop import money
from miniloop.fspiop import ilp
from miniloop.fspiop.headers import child_traceparent, message_headers
from miniloop.fspiop.models import datetime_text
from mobile_sim.bodies import error, parse_timestamp
from mobile_sim.pricing import FeeRule, QuoteRefused, quote_terms, text

FAULTS = {
    "none": "behaves as FSPIOP v1.1 asks of a payee DFSP",
    "wrong-condition": "quotes a condition that is not sha256 of the fulfilment it later sends",
    "missing-header": "its callbacks omit the Date header",
    "late-fulfil": "sends the transfer's fulfilment only after the transfer expired (by about 1 s)",
    "silent": "answers 202 but never calls back",
    "wrong-error-code": "answers an unknown party with error 2001 instead of 3204",
    "bad-quote": "PUT /quotes without the mandatory expiration, and transferAmount = amount + 1",
    "sync-status": "answers the hub's GET and POST requests with 200 instead of 202",
}
DEFAULT_PARTIES = ("MSISDN/27790000001", "MSISDN/27790000002")  # the conformance pack's, unused by the demo hub
QUOTE_VALID_S = 60.0
LATE_BY_S = 1.0  # late-fulfil: how long after the transfer's expiration (the bound is 2 s)
QUOTES_MAX = TRANSFERS_MAX = 10_000
TASKS_MAX = 1_000  # callbacks in flight
LOG_MAX = 1_000  # entries kept in `received` and `sent`
SEND_TIMEOUT_S = 10.0
SEND_RETRY_DELAYS_S = (0.2, 1.0)  # a callback whose connection broke is sent again after these
BODY_MAX = 5_242_880  # FSPIOP's largest body
_VERSION = re.compile(r"version=(1\.[01])(?![\d.])")
_NAME_CHARS = re.compile(r"[^\w .,'-]")
_PARTY_KEYS = ("partyIdType", "partyIdentifier")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Seen:
    """A request the DFSP received, the status it answered, the errorCode it carried (if any)."""
    method: str
    path: str
    source: str | None
    status: int
    code: str | None
    at: float  # time.time()


@dataclass(frozen=True)
class Sent:
    """A callback sent, and the hub's answer: status (0: unreachable) and the start of its body."""
    method: str
    path: str
    destination: str
    body: dict[str, Any]
    status: int
    answer: str
    at: float  # time.time() when it was sent


@dataclass(frozen=True)
class Asker:
    """Whom a callback answers: their FSP id, the API version they spoke, their trace."""
    fsp: str
    version: str
    traceparent: str | None


Refused = QuoteRefused  # "I will not": an FSPIOP error code and a detail, for quotes and transfers


def secret_for(name: str) -> str:
    """The ILP secret, derived from the name so that a restart still fulfils old quotes."""
    return hashlib.sha256(f"miniloop reference DFSP {name}".encode()).hexdigest()


def answer_version(headers: Mapping[str, str]) -> str:
    """The FSPIOP version to answer in: the request's Content-Type (or Accept) version, else 1.1."""
    for name in ("Content-Type", "Accept"):
        found = _VERSION.findall(headers.get(name, ""))
        if found:
            return max(found)
    return "1.1"


def party_body(fsp: str, id_type: str, party_id: str) -> dict[str, Any]:
    """PUT /parties body: the id echoed, this FSP, and a name made from the id."""
    name = f"Party {_NAME_CHARS.sub('', party_id)}".strip()[:128]
    return {"party": {
        "partyIdInfo": {"partyIdType": id_type, "partyIdentifier": party_id, "fspId": fsp},
        "name": name, "personalInfo": {"complexName": {"firstName": "Reference", "lastName": name}},
    }}


def _money(value: Any, field: str) -> tuple[Decimal, str]:
    if not isinstance(value, dict) or not isinstance(value.get("currency"), str):
        raise Refused("3100", f"{field} must be an object with amount and currency")
    try:
        return money.parse_amount(value.get("amount"), strict=True), value["currency"]
    except money.AmountError as exc:
        raise Refused("3100", f"{field}.amount: {exc}") from None


def _usable_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 64 and "/" not in value


class ReferenceDfsp:
    """One reference DFSP: an aiohttp server for the hub's requests, a client for its callbacks."""

    def __init__(self, name: str, hub_url: str, *, parties: Sequence[str] = DEFAULT_PARTIES,
                 currency: str = "USD", fault: str = "none", host: str = "127.0.0.1", port: int = 0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        """`ssl_context`: for an https hub (miniloop.tls.tool_context: its client certificate)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
        if any(p.count("/") != 1 or not all(p.split("/")) for p in parties):
            raise ValueError("parties are written TYPE/ID, e.g. MSISDN/27730000001")
        ilp.currency_exponent(currency)  # IlpError (a ValueError) for a currency no packet can carry
        self.name, self.hub_url, self.currency, self.fault = name, hub_url.rstrip("/"), currency, fault
        self.parties, self.host, self.port = frozenset(parties), host, port
        self.ssl_context = ssl_context
        self.secret = secret_for(name)
        self.received: deque[Seen] = deque(maxlen=LOG_MAX)  # for debugging and tests
        self.sent: deque[Sent] = deque(maxlen=LOG_MAX)
        self.dropped = 0  # callbacks not sent because TASKS_MAX were in flight
        self._quotes: OrderedDict[str, tuple[dict[str, Any], str, dict[str, Any]]] = OrderedDict()
        self._transfers: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._url = ""

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        """The base URL it serves FSPIOP at ("" until started)."""
        return self._url

    async def start(self) -> str:
        """Listen on (host, port); return the base URL to register for every callback type."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_S), skip_auto_headers=("Accept",),
            connector=aiohttp.TCPConnector(ssl=self.ssl_context if self.ssl_context is not None else True))
        app = web.Application(client_max_size=BODY_MAX)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        try:
            await self._runner.setup()
            await web.TCPSite(self._runner, self.host, self.port).start()
        except BaseException:  # e.g. the port is taken: leave nothing open behind
            await self.stop()
            raise
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        return self._url

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._runner = self._session = None

    # ---------------------------------------------------------------- the hub's requests

    async def _handle(self, request: web.Request) -> web.Response:
        method, path, body = request.method, request.raw_path.split("?", 1)[0], None
        if request.can_read_body:
            try:
                body = json.loads(await request.read())
            except ValueError:
                pass
        status = 200 if method in ("PUT", "PATCH") or self.fault == "sync-status" else 202
        headers = request.headers
        asker = Asker(headers.get("FSPIOP-Source", ""), answer_version(headers), headers.get("traceparent"))
        info = body.get("errorInformation") if isinstance(body, dict) else None
        code = info.get("errorCode") if isinstance(info, dict) else None
        self.received.append(Seen(method, path, asker.fsp or None, status, code, time.time()))
        if self.fault != "silent" and asker.fsp:  # without FSPIOP-Source nobody can be answered
            job = self._route(method, path, body if isinstance(body, dict) else {}, asker)
            if job is not None:
                self._spawn(job)
        return web.Response(status=status)

    def _route(self, method: str, path: str, body: dict[str, Any], asker: Asker) -> Coroutine[Any, Any, None] | None:
        match method, [unquote(p) for p in path.split("/") if p]:
            case "GET", ["parties", id_type, party_id, *sub] if len(sub) <= 1:
                return self._party(asker, path, f"{id_type}/{party_id}", bool(sub))
            case "POST", ["quotes"]:
                return self._quote(asker, body)
            case "GET", ["quotes", quote_id]:
                return self._quote_again(asker, quote_id)
            case "POST", ["transfers"]:
                return self._transfer(asker, body)
        return None

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        if len(self._tasks) >= TASKS_MAX:
            job.close()
            self.dropped += 1
            log.warning("%s: %d callbacks in flight; one dropped", self.name, TASKS_MAX)
            return
        task = asyncio.get_running_loop().create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, job: Coroutine[Any, Any, None]) -> None:
        try:
            await job
        except Exception:  # a bug here must not stop the server; it is logged
            log.exception("%s: answering a request failed", self.name)

    # ---------------------------------------------------------------- parties and quotes

    def _not_found(self) -> str:
        return "2001" if self.fault == "wrong-error-code" else "3204"

    async def _party(self, asker: Asker, path: str, key: str, has_sub_id: bool) -> None:
        if has_sub_id or key not in self.parties:
            body = error(self._not_found(), f"{key} is not a party of {self.name}")
            await self._send(asker, "PUT", path + "/error", body)
        else:
            await self._send(asker, "PUT", path, party_body(self.name, *key.split("/", 1)))

    async def _quote(self, asker: Asker, request: dict[str, Any]) -> None:
        quote_id = request.get("quoteId")
        if not _usable_id(quote_id):
            log.warning("%s: dropped POST /quotes without a usable quoteId", self.name)
            return
        known = self._quotes.get(quote_id)
        if known is not None and known[0] != request:
            await self._send(asker, "PUT", f"/quotes/{quote_id}/error", error("3106", "another quote has this id"))
            return
        if known is None:
            try:
                known = (request, f"/quotes/{quote_id}", self.quote_answer(request))
            except Refused as exc:
                known = (request, f"/quotes/{quote_id}/error", error(exc.code, exc.detail))
            _remember(self._quotes, quote_id, known, QUOTES_MAX)
        await self._send(asker, "PUT", known[1], known[2])

    async def _quote_again(self, asker: Asker, quote_id: str) -> None:
        _, path, body = self._quotes.get(quote_id) or ({}, f"/quotes/{quote_id}/error", error("3205", quote_id))
        await self._send(asker, "PUT", path, body)

    def quote_answer(self, request: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
        """The PUT /quotes/{ID} body for a POST /quotes body; Refused if it will not quote."""
        payee = request.get("payee")
        info = payee.get("partyIdInfo") if isinstance(payee, dict) else None
        if not isinstance(info, dict) or not all(isinstance(info.get(k), str) for k in _PARTY_KEYS):
            raise Refused("3100", "payee.partyIdInfo with partyIdType and partyIdentifier is required")
        key = f"{info['partyIdType']}/{info['partyIdentifier']}"
        if key not in self.parties or info.get("partySubIdOrType"):
            raise Refused(self._not_found(), f"{key} is not a party of {self.name}")
        amount, currency = _money(request.get("amount"), "amount")
        fees, fee_currency = _money(request["fees"], "fees") if request.get("fees") else (Decimal(0), currency)
        if currency != self.currency:
            raise Refused("5106", f"{self.name} holds {self.currency} only, not {currency}")
        if fee_currency != currency:
            raise Refused("3100", f"fees are in {fee_currency}, the amount in {currency}")
        exponent = ilp.currency_exponent(currency)
        terms = quote_terms(str(request.get("amountType")), amount, FeeRule(), exponent, fees)
        wrong = Decimal(1) if self.fault == "bad-quote" else Decimal(0)
        transfer = {"amount": text(terms.transfer_amount + wrong), "currency": currency}
        expiration = datetime_text((now or datetime.now(UTC)) + timedelta(seconds=QUOTE_VALID_S))
        try:
            packet = ilp.packet_v1(ilp.transaction_object(request, transfer, expiration), self.name)
        except ilp.IlpError as exc:
            raise Refused("3100", f"no ILP packet can be made: {exc}") from None
        answer = {
            "transferAmount": transfer,
            "payeeReceiveAmount": {"amount": text(terms.payee_receive_amount), "currency": currency},
            "payeeFspFee": {"amount": "0", "currency": currency},
            "expiration": expiration, "ilpPacket": packet, "condition": self.condition(packet),
        }
        if self.fault == "bad-quote":
            del answer["expiration"]
        return answer

    def condition(self, packet: str) -> str:
        """The condition quoted for a packet: sha256 of its fulfilment (wrong-condition: of another)."""
        secret = self.secret + (" wrong" if self.fault == "wrong-condition" else "")
        return ilp.condition_for(ilp.fulfilment_for(secret, packet))

    # ---------------------------------------------------------------- transfers

    async def _transfer(self, asker: Asker, transfer: dict[str, Any]) -> None:
        transfer_id = transfer.get("transferId")
        if not _usable_id(transfer_id):
            log.warning("%s: dropped POST /transfers without a usable transferId", self.name)
            return
        known = self._transfers.get(transfer_id)
        if known is None:
            try:
                fulfilment, expires = self.check_transfer(transfer)
            except (Refused, ilp.IlpError) as exc:
                code, detail = (exc.code, exc.detail) if isinstance(exc, Refused) else ("5105", str(exc))
                known = (f"/transfers/{transfer_id}/error", error(code, detail))
            else:
                if self.fault == "late-fulfil":
                    await asyncio.sleep(max(0.0, expires.timestamp() - time.time() + LATE_BY_S))
                state = {"fulfilment": fulfilment, "completedTimestamp": datetime_text(), "transferState": "COMMITTED"}
                known = (f"/transfers/{transfer_id}", state)
            _remember(self._transfers, transfer_id, known, TRANSFERS_MAX)
        await self._send(asker, "PUT", *known)

    def check_transfer(self, transfer: dict[str, Any], now: datetime | None = None) -> tuple[str, datetime]:
        """The fulfilment for a POST /transfers body, and the transfer's expiration; Refused if none."""
        now = now or datetime.now(UTC)
        amount = transfer.get("amount") if isinstance(transfer.get("amount"), dict) else {}
        fields = (transfer.get("payerFsp"), transfer.get("payeeFsp"), amount.get("amount"),
                  amount.get("currency"), transfer.get("ilpPacket"), transfer.get("condition"))
        if not all(isinstance(v, str) for v in fields):
            raise Refused("5105", "payerFsp, payeeFsp, amount, ilpPacket and condition are required")
        payer_fsp, payee_fsp, value, currency, packet, condition = fields
        if payee_fsp != self.name:
            raise Refused("5105", f"payeeFsp {payee_fsp} is not {self.name}")
        mismatch = ilp.check_transfer_against_packet(
            packet, payer_fsp=payer_fsp, payee_fsp=payee_fsp, amount=value, currency=currency)
        if mismatch:
            raise Refused("5105", mismatch)
        expires = parse_timestamp(transfer.get("expiration"))
        if expires is None or expires <= now:
            raise Refused("3303", f"the transfer expired at {transfer.get('expiration')}")
        transaction = ilp.transaction_from_packet(packet)
        quote_expires = parse_timestamp(transaction.get("expiration"))
        if quote_expires is not None and quote_expires <= now:
            raise Refused("3302", f"the quote expired at {transaction['expiration']}")
        if self.condition(packet) != condition.rstrip("="):
            raise Refused("5105", "the condition is not the one this DFSP quoted for the ilpPacket")
        return ilp.fulfilment_for(self.secret, packet), expires

    # ---------------------------------------------------------------- callbacks

    async def _send(self, asker: Asker, method: str, path: str, body: dict[str, Any]) -> None:
        """One callback to the hub; a network problem is logged and recorded (status 0), not raised."""
        assert self._session is not None
        headers = message_headers(path.split("/")[1], asker.version, source=self.name, destination=asker.fsp,
                                  method=method, uri=path, traceparent=child_traceparent(asker.traceparent))
        if self.fault == "missing-header":
            del headers["Date"]
        at = time.time()
        data = json.dumps(body, separators=(",", ":")).encode()
        for delay in (*SEND_RETRY_DELAYS_S, None):
            try:
                async with self._session.request(method, self.hub_url + path, data=data, headers=headers) as r:
                    status, answer = r.status, (await r.content.read(2048)).decode(errors="replace")
                break
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                # the hub ignores a callback it already has, so sending again is safe; a DFSP
                # that gives up after one broken connection would leave the payer waiting
                status, answer = 0, str(exc) or type(exc).__name__
                log.warning("%s: %s %s to the hub failed: %s", self.name, method, path, answer)
                if delay is None or isinstance(exc, TimeoutError):  # a timeout may have been delivered
                    break
                await asyncio.sleep(delay)
        self.sent.append(Sent(method, path, asker.fsp, body, status, answer, at))


def _remember(store: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    store[key] = value
    store.move_to_end(key)
    while len(store) > limit:
        store.popitem(last=False)


async def serve(name: str, hub_url: str, *, parties: Sequence[str] = DEFAULT_PARTIES, currency: str = "USD",
                fault: str = "none", host: str = "127.0.0.1", port: int = 0,
                ssl_context: ssl.SSLContext | None = None) -> None:
    """Run a reference DFSP until cancelled (Ctrl-C), then stop it."""
    dfsp = ReferenceDfsp(name, hub_url, parties=parties, currency=currency, fault=fault, host=host, port=port,
                         ssl_context=ssl_context)
    url = await dfsp.start()
    print(f"reference DFSP {name} listening on {url} (fault: {fault})", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await dfsp.stop()
