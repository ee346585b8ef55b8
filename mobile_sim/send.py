"""A simulated DFSP's customer sends money: lookup, quote, transfer, as the SDK's payer flow does.

Why: the wallet page and `miniloop scenario run p2p` need one call that drives a whole P2P
payment through the switch and shows what went over the wire. POST /<dfsp>/send does that:

1. GET /parties/{Type}/{ID}[/{SubId}] -> waits for PUT /parties/... (the payee and its DFSP);
2. POST /quotes (new quoteId and transactionId; TRANSFER / PAYER / CONSUMER) -> PUT /quotes/{ID};
3. reserves the transfer amount on the customer, then POST /transfers with transferId = the
   quote's transactionId (as the SDK does), the quote's ilpPacket and condition, and an
   expiration at the end of the time left -> waits for PUT /transfers/{ID}.

Each wait is bounded by one deadline for the whole flow (30 s unless "timeoutSeconds" says
otherwise). The books are settled by whichever callback arrives, waited for or not
(mobile_sim.payee.settle_books), so a transfer that commits after the flow timed out still
debits the customer, and one the switch expires releases the reservation.

Answers: 200 COMMITTED; 502 when the switch or the payee answered with an FSPIOP error (or
ABORTED); 504 TIMED_OUT; 400 with an error body for bad input. A customer without the money is
refused with **4000 "Generic Payer error"**: 4001 would be wrong, it means the payer *FSP's*
liquidity at the switch, which the hub itself reports, and the two must stay distinguishable.
If the shortfall shows only once the quote has added the payee's fee (RECEIVE), the answer is
400 with the full flow body, state ABORTED and that 4000 error.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from miniloop import money
from miniloop.fspiop import ilp
from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.headers import new_traceparent
from miniloop.services.oracles import PARTY_ID_TYPES
from mobile_sim import bodies
from mobile_sim.dfsp import BooksError, Customer, SimDfsp
from mobile_sim.payee import parties_path
from mobile_sim.pricing import text

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 300.0
SENDS_MAX = 500  # /send flows running at once, all DFSPs together
FIELDS = ("from", "fromIdType", "to", "amount", "currency", "amountType", "note", "timeoutSeconds")
STATUS = {"COMMITTED": 200, "ABORTED": 502, "TIMED_OUT": 504}


@dataclass(frozen=True)
class SendOrder:
    """A checked POST /<dfsp>/send body."""

    customer: Customer
    id_type: str
    party_id: str
    sub_id: str | None
    amount: Decimal
    currency: str
    amount_type: str
    note: str | None
    timeout_s: float


def _bad(detail: str) -> FspiopError:
    return FspiopError("3100", detail)


def _identifier(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 128 or "/" in value or value != value.strip():
        raise _bad(f"{field} must be 1 to 128 characters, without '/' or surrounding spaces")
    return value


def parse_order(dfsp: SimDfsp, body: dict[str, Any]) -> SendOrder:
    """Check a /send body; FspiopError 3100 for bad input, 4000 when the customer cannot pay."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise _bad(f"{unknown[0]} is not a field of /send (fields: {', '.join(FIELDS)})")
    from_type = body.get("fromIdType")
    if from_type is not None and from_type not in PARTY_ID_TYPES:
        raise _bad(f"fromIdType must be one of {', '.join(PARTY_ID_TYPES)}")
    customer = dfsp.books.find(_identifier(body.get("from"), "from"), from_type)
    if customer is None:
        raise _bad(f"{body.get('from')} is not a customer of {dfsp.name}")
    to = body.get("to")
    if not isinstance(to, dict) or set(to) - {"idType", "id", "subId"}:
        raise _bad('to must be {"idType": ..., "id": ..., "subId"?: ...}')
    id_type = to.get("idType", "MSISDN")
    if id_type not in PARTY_ID_TYPES:
        raise _bad(f"to.idType must be one of {', '.join(PARTY_ID_TYPES)}")
    party_id = _identifier(to.get("id"), "to.id")
    sub_id = None if to.get("subId") is None else _identifier(to.get("subId"), "to.subId")
    currency = body.get("currency", dfsp.currency)
    if currency != dfsp.currency:
        raise _bad(f"{dfsp.name} holds {dfsp.currency} only, not {currency}")
    raw_amount = body.get("amount")
    if isinstance(raw_amount, float):
        raise _bad("amount must be a string such as \"10.5\" (or an integer), never a float")
    try:
        amount = money.parse_amount(raw_amount)
    except money.AmountError as exc:
        raise _bad(f"amount: {exc}") from None
    exponent = ilp.CURRENCY_EXPONENTS.get(currency, money.SCALE)
    if amount <= 0 or amount != round(amount, exponent):
        raise _bad(f"amount must be greater than 0 with at most {exponent} decimals in {currency}")
    amount_type = body.get("amountType", "SEND")
    if amount_type not in ("SEND", "RECEIVE"):
        raise _bad("amountType must be SEND or RECEIVE")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or not 1 <= len(note) <= 128):
        raise _bad("note must be 1 to 128 characters")
    timeout_s = body.get("timeoutSeconds", DEFAULT_TIMEOUT_S)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 1 <= timeout_s <= MAX_TIMEOUT_S:
        raise _bad(f"timeoutSeconds must be a number from 1 to {MAX_TIMEOUT_S:g}")
    if customer.available < money.to_units(amount):
        raise FspiopError("4000", f"insufficient balance: customer {customer.id} has "
                                  f"{money.format_amount(customer.available)} {currency} available")
    return SendOrder(customer, id_type, party_id, sub_id, amount, currency, amount_type, note, float(timeout_s))


def _usable_quote(quote: dict[str, Any], currency: str) -> int | None:
    """The quote's transfer amount in units, or None if the payer cannot build a transfer from it."""
    transfer_amount = quote.get("transferAmount")
    if not isinstance(transfer_amount, dict) or transfer_amount.get("currency") != currency:
        return None
    if not all(isinstance(quote.get(k), str) for k in ("ilpPacket", "condition", "expiration")):
        return None
    try:
        return money.to_units(money.parse_amount(transfer_amount.get("amount"), strict=True))
    except money.AmountError:
        return None


class Stop(Exception):
    """The flow ends before COMMITTED: its state, HTTP status and the error to report."""

    def __init__(self, state: str, status: int, error: dict[str, Any] | None = None, *, refused: bool = False) -> None:
        super().__init__(state)
        self.state = state
        self.status = status
        self.error = error
        self.refused = refused  # the switch answered the request itself with an HTTP error


def _error_info(body: dict[str, Any] | None) -> dict[str, Any] | None:
    info = (body or {}).get("errorInformation")
    if not isinstance(info, dict):
        return None
    return {k: info[k] for k in ("errorCode", "errorDescription") if k in info}


class Flow:
    """One run of /send: its ids, the messages exchanged, and what it learnt on the way."""

    def __init__(self, sim: Simulator, dfsp: SimDfsp, order: SendOrder) -> None:
        self.sim, self.dfsp, self.order = sim, dfsp, order
        self.started = time.monotonic()
        self.deadline = self.started + order.timeout_s
        self.trace = new_traceparent()
        self.quote_id = str(uuid.uuid4())
        self.transfer_id = str(uuid.uuid4())  # also the transactionId, as the SDK does
        self.step = "lookup"
        self.payee: dict[str, Any] | None = None
        self.quote: dict[str, Any] | None = None
        self.messages: list[dict[str, Any]] = []
        self.balance_before = order.customer.balance

    async def run(self) -> tuple[int, dict[str, Any]]:
        try:
            await self._run()
        except Stop as stop:
            return stop.status, self.result(stop.state, stop.error)
        return 200, self.result("COMMITTED")

    async def _run(self) -> None:
        order, dfsp = self.order, self.dfsp
        # 1. who is the payee, and at which DFSP?
        path = parties_path(order.id_type, order.party_id, order.sub_id)
        answer = await self._exchange("GET", path, None, None,
                                      (dfsp.name, "parties", order.id_type, order.party_id, order.sub_id))
        party = (answer.body or {}).get("party")
        if not isinstance(party, dict) or not isinstance(party.get("partyIdInfo"), dict):
            raise Stop("ABORTED", 502, {"errorCode": "3100", "errorDescription":
                                        "Generic validation error - the PUT /parties body has no party"})
        self.payee = party
        payee_fsp = party["partyIdInfo"].get("fspId") or answer.source

        # 2. the quote
        self.step = "quote"
        customer = order.customer
        request: dict[str, Any] = {
            "quoteId": self.quote_id,
            "transactionId": self.transfer_id,
            "payee": party,
            "payer": bodies.party(customer, dfsp.name),
            "amountType": order.amount_type,
            "amount": {"amount": text(order.amount), "currency": order.currency},
            "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
        }
        if order.note:
            request["note"] = order.note
        answer = await self._exchange("POST", "/quotes", request, payee_fsp, (dfsp.name, "quotes", self.quote_id))
        quote = answer.body or {}
        transfer_amount = quote.get("transferAmount")
        units = _usable_quote(quote, order.currency)
        if units is None:
            raise Stop("ABORTED", 502, {"errorCode": "3100", "errorDescription":
                                        "Generic validation error - the payee's quote has no usable transferAmount, "
                                        "ilpPacket, condition or expiration"})
        self.quote = {"quoteId": self.quote_id, "amountType": order.amount_type, "amount": request["amount"]}
        self.quote.update({k: quote[k] for k in ("transferAmount", "payeeFspFee", "payeeReceiveAmount",
                                                 "expiration", "condition") if k in quote})

        # 3. hold the money, then the transfer
        self.step = "transfer"
        try:
            dfsp.books.reserve(self.transfer_id, customer, units, str(payee_fsp), order.currency)
        except BooksError as exc:
            error = bodies.error(exc.code, str(exc))["errorInformation"]
            raise Stop("ABORTED", 400 if exc.code == "4000" else 503, error) from None
        transfer = {
            "transferId": self.transfer_id,
            "payerFsp": dfsp.name,
            "payeeFsp": payee_fsp,
            "amount": transfer_amount,
            "ilpPacket": quote["ilpPacket"],
            "condition": quote["condition"],
            "expiration": bodies.timestamp_in(max(self.remaining(), 1.0)),
        }
        key = (dfsp.name, "transfers", self.transfer_id)
        try:
            answer = await self._exchange("POST", "/transfers", transfer, payee_fsp, key)
        except Stop as stop:
            if stop.refused:  # the switch said no at once: it holds nothing, neither do we
                dfsp.books.release(self.transfer_id)
            raise
        while not answer.is_error and (answer.body or {}).get("transferState") not in ("COMMITTED", "ABORTED"):
            answer = await self._wait_for(key)  # RESERVED is not an answer for the payer; keep waiting
        if (answer.body or {}).get("transferState") != "COMMITTED":
            raise Stop("ABORTED", 502, None)

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def _exchange(self, method: str, path: str, body: dict[str, Any] | None, destination: str | None,
                        key: tuple[Any, ...]) -> Incoming:
        """Send one request and wait for its callback (registered first: it may beat the 202)."""
        future = self.sim.waiters.expect(key)
        if future is None:
            raise Stop("ABORTED", 503, {"errorCode": "2003", "errorDescription": "Service currently unavailable - "
                                        "too many flows are waiting for callbacks"})
        try:
            record = self._record("out", method, path, self.dfsp.name, destination, body)
            answer = await self.sim.send(self.dfsp, method, path, body, destination=destination, traceparent=self.trace)
            record["status"] = answer.status
            if not answer.accepted:
                raise Stop("ABORTED", 502, _error_info(answer.error), refused=400 <= answer.status < 600)
            return await self._wait(future)
        finally:
            self.sim.waiters.forget(key, future)

    async def _wait_for(self, key: tuple[Any, ...]) -> Incoming:
        future = self.sim.waiters.expect(key)
        if future is None:
            raise Stop("TIMED_OUT", 503, None)
        try:
            return await self._wait(future)
        finally:
            self.sim.waiters.forget(key, future)

    async def _wait(self, future: asyncio.Future[Any]) -> Incoming:
        try:
            message: Incoming = await asyncio.wait_for(future, max(self.remaining(), 0))
        except TimeoutError:
            raise Stop("TIMED_OUT", 504, None) from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise Stop("TIMED_OUT", 503, {"errorCode": "2003", "errorDescription":
                                          "Service currently unavailable - the simulator is stopping"}) from None
        self._record("in", message.method, message.path, message.source, message.destination, message.body,
                     at=message.at)
        if message.is_error:
            raise Stop("ABORTED", 502, _error_info(message.body))
        return message

    def _record(self, direction: str, method: str, path: str, source: str, destination: str | None,
                body: dict[str, Any] | None, at: float | None = None) -> dict[str, Any]:
        record = {
            "direction": direction, "method": method, "path": path, "source": source,
            "destination": destination, "elapsedMs": round(((at or time.monotonic()) - self.started) * 1000, 1),
            "body": body,
        }
        self.messages.append(record)
        return record

    def result(self, state: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        customer = self.order.customer
        body: dict[str, Any] = {
            "transferId": self.transfer_id,
            "state": state,
            "step": self.step,
            "payee": self.payee,
            "quote": self.quote,
            "messages": self.messages,
            "balances": {
                "customer": customer.id,
                "before": money.format_amount(self.balance_before),
                "after": money.format_amount(customer.balance),
                "reserved": money.format_amount(customer.reserved),
            },
        }
        if error:
            body["error"] = error
        return body


async def send(sim: Simulator, dfsp: SimDfsp, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /<dfsp>/send: (HTTP status, JSON body). Bad input raises FspiopError (400)."""
    order = parse_order(dfsp, body)
    if sim.sends_in_flight >= SENDS_MAX:
        raise FspiopError("2003", f"{SENDS_MAX} sends are already running", status=503)
    sim.sends_in_flight += 1
    try:
        return await Flow(sim, dfsp, order).run()
    finally:
        sim.sends_in_flight -= 1
