"""A simulated DFSP's customer sends money: lookup, quote, transfer, as the SDK's payer flow does.

Why: the wallet page and `miniloop scenario run p2p` need one call that drives a whole P2P
payment through the switch and shows what went over the wire. POST /<dfsp>/send does that:

1. GET /parties/{Type}/{ID}[/{SubId}] -> waits for PUT /parties/... (the payee and its DFSP);
2. POST /quotes (new quoteId and transactionId; the transactionType of the body's "useCase",
   TRANSFER / PAYER / CONSUMER by default, see mobile_sim.usecases) -> PUT /quotes/{ID};
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

A refund ("useCase": "refund") names the transaction it gives money back for ("refundOf"); the
DFSP refuses one it was not paid in, one that paid another customer, or a refund larger than the
payment (400), and when "to" is left out it pays the original payer back. POST /<dfsp>/payQr (pay_qr) is a
merchant payment to the party a merchant QR names (mobile_sim.qr).

`WireFlow` is the machinery every flow of the simulators shares (this one, the payee's request
to pay in mobile_sim.rtp, the payer's side of it in mobile_sim.payer): one deadline, requests
sent with their callbacks waited for by id, and the wire log.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from miniloop import money
from miniloop.fspiop import ilp
from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.headers import new_traceparent
from miniloop.services.oracles import PARTY_ID_TYPES
from mobile_sim import bodies, feed, usecases
from mobile_sim.dfsp import BooksError, Customer, SimDfsp
from mobile_sim.fspiop_client import Answer
from mobile_sim.payee import parties_path
from mobile_sim.pricing import text
from mobile_sim.qr import QrError, read_payload
from mobile_sim.tasks import FlowRecords, Pauses, Stopping

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 300.0
SENDS_MAX = 500  # /send flows running at once, all DFSPs together
FIELDS = ("from", "fromIdType", "to", "amount", "currency", "amountType", "note", "timeoutSeconds",
          "useCase", "refundOf", "reason", "confirm")
QR_FIELDS = ("from", "fromIdType", "payload", "amount", "note", "timeoutSeconds", "confirm")
STATUS = {"COMMITTED": 200, "ABORTED": 502, "TIMED_OUT": 504, "CANCELLED": 200}
# "confirm": true pauses a /send twice, as the SDK's outbound transfers do without AUTO_ACCEPT_PARTY
# and AUTO_ACCEPT_QUOTES: (the state shown while paused, the answer that goes on, the step)
PAUSES = (("WAITING_FOR_PARTY_ACCEPTANCE", "acceptParty"), ("WAITING_FOR_QUOTE_ACCEPTANCE", "acceptQuote"))
RUNNING = "IN_PROGRESS"  # the state GET /<dfsp>/send/<id> shows of a flow between pauses
MESSAGES_MAX = 200  # messages kept in one flow's wire log
STOPPING = {"errorCode": "2003", "errorDescription": "Service currently unavailable - the simulator is stopping"}
CUT_SHORT = {"errorCode": "2003", "errorDescription": "Service currently unavailable - the flow was cut short "
                                                      "(the simulator stopped, or the caller went away)"}
_CORRELATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


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
    use_case: str = "p2p"
    transaction_type: dict[str, Any] = field(
        default_factory=lambda: {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"})
    payee_fsp: str | None = None  # the DFSP the payee must be at (a QR names it); None: any
    confirm: bool = False  # pause after the lookup and after the quote for the customer's acceptance


def _bad(detail: str) -> FspiopError:
    return FspiopError("3100", detail)


def usable_id(value: Any) -> bool:
    """An id that can name a party in an FSPIOP path: 1 to 128 printable characters (an HTTP
    request line cannot carry control characters), no '/', no surrounding spaces."""
    return (isinstance(value, str) and 1 <= len(value) <= 128 and "/" not in value and value == value.strip()
            and value.isprintable())


def _identifier(value: Any, field: str) -> str:
    if not usable_id(value):
        raise _bad(f"{field} must be 1 to 128 printable characters, without '/' or surrounding spaces")
    return value


def money_of(dfsp: SimDfsp, body: dict[str, Any]) -> tuple[str, Decimal]:
    """The body's currency (default: the DFSP's) and amount, checked; FspiopError 3100 if unusable."""
    currency = body.get("currency", dfsp.currency)
    if currency != dfsp.currency:
        raise _bad(f"{dfsp.name} holds {dfsp.currency} only, not {currency}")
    return currency, order_amount(body.get("amount"), currency)


def order_amount(raw: Any, currency: str, field: str = "amount", *, allow_zero: bool = False) -> Decimal:
    """An order's amount: a string or an integer, positive (or 0 with allow_zero), with at most the
    currency's decimals; else 3100 naming `field`."""
    if isinstance(raw, (float, bool)):
        raise _bad(f"{field} must be a string such as \"10.5\" (or an integer), never a float")
    try:
        amount = money.parse_amount(raw)
    except money.AmountError as exc:
        raise _bad(f"{field}: {exc}") from None
    exponent = ilp.CURRENCY_EXPONENTS.get(currency, money.SCALE)
    if (amount < 0 if allow_zero else amount <= 0) or amount != round(amount, exponent):
        least = "0 or more" if allow_zero else "greater than 0"
        raise _bad(f"{field} must be {least} with at most {exponent} decimals in {currency}")
    return amount


def amount_type_of(body: dict[str, Any]) -> str:
    """An order's amountType: SEND (the default) or RECEIVE; else 3100."""
    amount_type = body.get("amountType", "SEND")
    if amount_type not in ("SEND", "RECEIVE"):
        raise _bad("amountType must be SEND or RECEIVE")
    return str(amount_type)


def note_of(body: dict[str, Any]) -> str | None:
    """An order's optional note: 1 to 128 characters; else 3100."""
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or not 1 <= len(note) <= 128):
        raise _bad("note must be 1 to 128 characters")
    return note


def timeout_of(body: dict[str, Any]) -> float:
    timeout_s = body.get("timeoutSeconds", DEFAULT_TIMEOUT_S)
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 1 <= timeout_s <= MAX_TIMEOUT_S:
        raise _bad(f"timeoutSeconds must be a number from 1 to {MAX_TIMEOUT_S:g}")
    return float(timeout_s)


def ordering_customer(dfsp: SimDfsp, body: dict[str, Any]) -> Customer:
    """The customer an order's `from` (and `fromIdType`) names at this DFSP; 3100 if none."""
    from_type = body.get("fromIdType")
    if from_type is not None and from_type not in PARTY_ID_TYPES:
        raise _bad(f"fromIdType must be one of {', '.join(PARTY_ID_TYPES)}")
    customer = dfsp.books.find(_identifier(body.get("from"), "from"), from_type)
    if customer is None:
        raise _bad(f"{body.get('from')} is not a customer of {dfsp.name}")
    return customer


def parse_order(dfsp: SimDfsp, body: dict[str, Any]) -> SendOrder:
    """Check a /send body; FspiopError 3100 for bad input, 4000 when the customer cannot pay."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise _bad(f"{unknown[0]} is not a field of /send (fields: {', '.join(FIELDS)})")
    customer = ordering_customer(dfsp, body)
    use_case = body.get("useCase", "p2p")
    if use_case not in usecases.PAYER_USE_CASES:
        raise _bad(f"useCase must be one of {', '.join(usecases.PAYER_USE_CASES)}")
    refund_info = None
    if use_case == "refund":
        refund_info, original_payer = _refund(dfsp, customer, body)
        if body.get("to") is None:
            if original_payer is None:
                raise _bad(f"transaction {body['refundOf']} names no payer to pay back: give to")
            body = {**body, "to": original_payer}
    elif "refundOf" in body or "reason" in body:
        raise _bad('refundOf and reason go with "useCase": "refund" only')
    to = body.get("to")
    if not isinstance(to, dict) or set(to) - {"idType", "id", "subId"}:
        raise _bad('to must be {"idType": ..., "id": ..., "subId"?: ...}')
    id_type = to.get("idType", "MSISDN")
    if id_type not in PARTY_ID_TYPES:
        raise _bad(f"to.idType must be one of {', '.join(PARTY_ID_TYPES)}")
    party_id = _identifier(to.get("id"), "to.id")
    sub_id = None if to.get("subId") is None else _identifier(to.get("subId"), "to.subId")
    currency, amount = money_of(dfsp, body)
    amount_type = amount_type_of(body)
    note = note_of(body)
    timeout_s = timeout_of(body)
    confirm = body.get("confirm", False)
    if not isinstance(confirm, bool):
        raise _bad("confirm must be true or false")
    if refund_info is not None:
        original = dfsp.transactions[refund_info["originalTransactionId"]]
        if amount > money.parse_amount(original.amount):
            raise _bad(f"a refund of {text(amount)} is more than the {original.amount} {original.currency} "
                       f"of transaction {original.transaction_id}")
    if customer.available < money.to_units(amount):
        raise FspiopError("4000", f"insufficient balance: customer {customer.id} has "
                                  f"{money.format_amount(customer.available)} {currency} available")
    return SendOrder(customer, id_type, party_id, sub_id, amount, currency, amount_type, note, timeout_s,
                     use_case, usecases.transaction_type(use_case, refund_info), confirm=confirm)


def _refund(dfsp: SimDfsp, customer: Customer, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A refund's refundInfo, and the original payer as a "to": only for a transaction we were paid in."""
    original_id = body.get("refundOf")
    if not isinstance(original_id, str) or not _CORRELATION_ID.fullmatch(original_id):
        raise _bad("a refund needs refundOf: the transactionId (a UUID) of the payment it gives back")
    original = dfsp.transactions.get(original_id)
    if original is None:
        raise FspiopError("3207", f"{dfsp.name} was never paid in transaction {original_id}")
    if original.customer is not customer:
        raise _bad(f"transaction {original_id} paid {original.customer.id}, not {customer.id}")
    if original.state != "COMPLETED":
        raise _bad(f"transaction {original_id} is {original.state}: there is nothing to refund")
    refund_info: dict[str, Any] = {"originalTransactionId": original_id}
    reason = body.get("reason")
    if reason is not None:
        if not isinstance(reason, str) or not 1 <= len(reason) <= 128:
            raise _bad("reason must be 1 to 128 characters")
        refund_info["refundReason"] = reason
    payer = original.payer.get("partyIdInfo") if isinstance(original.payer, dict) else None
    payer = payer if isinstance(payer, dict) else {}
    if not payer.get("partyIdType") or not payer.get("partyIdentifier"):
        return refund_info, None
    to = {"idType": payer.get("partyIdType"), "id": payer.get("partyIdentifier")}
    if payer.get("partySubIdOrType"):
        to["subId"] = payer["partySubIdOrType"]
    return refund_info, to


def parse_qr_order(dfsp: SimDfsp, body: dict[str, Any]) -> SendOrder:
    """Check a /payQr body and turn it into the merchant payment it asks for."""
    unknown = sorted(set(body) - set(QR_FIELDS))
    if unknown:
        raise _bad(f"{unknown[0]} is not a field of /payQr (fields: {', '.join(QR_FIELDS)})")
    try:
        qr = read_payload(body.get("payload"))
    except QrError as exc:
        raise _bad(f"payload: {exc}") from None
    amount = body.get("amount")
    if qr.amount is not None:
        if amount is not None:
            try:
                same = money.parse_amount(amount) == money.parse_amount(qr.amount)
            except money.AmountError:
                same = False
            if not same:
                raise _bad(f"the QR asks for {qr.amount} {qr.currency}; amount must be left out or the same")
        amount = qr.amount
    elif amount is None:
        raise _bad("this QR is static (it has no amount): give amount")
    order_body: dict[str, Any] = {
        "from": body.get("from"), "to": {"idType": qr.id_type, "id": qr.party_id}, "amount": amount,
        "useCase": "merchant-pay",
    }
    if "fromIdType" in body:
        order_body["fromIdType"] = body["fromIdType"]
    if qr.currency is not None:
        order_body["currency"] = qr.currency
    note = body.get("note", f"{qr.name} {qr.reference}" if qr.reference else None)
    if note is not None:
        order_body["note"] = note[:128] if isinstance(note, str) else note
    for key in ("timeoutSeconds", "confirm"):
        if key in body:
            order_body[key] = body[key]
    order = parse_order(dfsp, order_body)
    return SendOrder(**{**order.__dict__, "payee_fsp": qr.fsp})


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


class WireFlow:
    """A flow of FSPIOP messages under one deadline: requests, their callbacks, and the wire log."""

    def __init__(self, sim: Simulator, dfsp: SimDfsp, timeout_s: float, trace: str | None = None) -> None:
        self.sim, self.dfsp = sim, dfsp
        self.started = time.monotonic()
        self.deadline = self.started + timeout_s
        self.trace = trace or new_traceparent()
        self.messages: list[dict[str, Any]] = []

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    async def _tell(self, method: str, path: str, body: dict[str, Any] | None, destination: str | None) -> Answer:
        """Send one message that needs no callback (an answer, a notification), and log it."""
        record = self._record("out", method, path, self.dfsp.name, destination, body)
        answer = await self.sim.send(self.dfsp, method, path, body, destination=destination, traceparent=self.trace)
        record["status"] = answer.status
        return answer

    async def _pay(self, customer: Customer, quote: dict[str, Any], units: int, payee_fsp: str, transfer_id: str,
                   label: str) -> None:
        """Hold `units` on the customer, then POST /transfers from a usable quote and wait for its outcome.

        Returns when the transfer is COMMITTED; raises Stop otherwise (400 for a customer without
        the money, with nothing sent).
        """
        dfsp = self.dfsp
        try:
            dfsp.books.reserve(transfer_id, customer, units, payee_fsp, dfsp.currency, label=label)
        except BooksError as exc:
            error = bodies.error(exc.code, str(exc))["errorInformation"]
            raise Stop("ABORTED", 400 if exc.code == "4000" else 503, error) from None
        transfer = {
            "transferId": transfer_id,
            "payerFsp": dfsp.name,
            "payeeFsp": payee_fsp,
            "amount": quote["transferAmount"],
            "ilpPacket": quote["ilpPacket"],
            "condition": quote["condition"],
            "expiration": bodies.timestamp_in(max(self.remaining(), 1.0)),
        }
        key = (dfsp.name, "transfers", transfer_id)
        try:
            answer = await self._exchange("POST", "/transfers", transfer, payee_fsp, key)
        except Stop as stop:
            if stop.refused:  # the switch said no at once: it holds nothing, neither do we
                dfsp.books.release(transfer_id)
            raise
        while not answer.is_error and (answer.body or {}).get("transferState") not in ("COMMITTED", "ABORTED"):
            answer = await self._wait_for(key)  # RESERVED is not an answer for the payer; keep waiting
        if (answer.body or {}).get("transferState") != "COMMITTED":
            raise Stop("ABORTED", 502, None)

    async def _exchange(self, method: str, path: str, body: dict[str, Any] | None, destination: str | None,
                        key: tuple[Any, ...]) -> Incoming:
        """Send one request and wait for its callback (registered first: it may beat the 202)."""
        future = self.sim.waiters.expect(key)
        if future is None:
            raise Stop("ABORTED", 503, {"errorCode": "2003", "errorDescription": "Service currently unavailable - "
                                        "too many flows are waiting for callbacks"}, refused=True)  # nothing sent
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
        if len(self.messages) < MESSAGES_MAX:
            self.messages.append(record)
        return record


class PausableFlow(WireFlow):
    """A flow of the driving API that a person can pause (/send with confirm, /requestToPay with otp "ask").

    It runs to its end whatever the HTTP calls driving it do: each pause and the end go to whoever
    waits in `pauses.next()`, the flow is found by id in `records` while it runs (and its final
    answer for a while after), and every start, pause and end is announced on the feed. Subclasses
    give FEED_KIND, `flow_id`, `order` (with its customer), `step`, `_run()` and `result()`.
    """

    FEED_KIND = ""

    def __init__(self, sim: Simulator, dfsp: SimDfsp, timeout_s: float, records: FlowRecords) -> None:
        super().__init__(sim, dfsp, timeout_s)
        self.records = records
        self.pauses = Pauses()
        self.showing = RUNNING  # the state GET shows while it runs: IN_PROGRESS or the pause's

    flow_id: str
    order: Any
    step: str

    async def _run(self) -> None:
        raise NotImplementedError

    def result(self, state: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        raise NotImplementedError

    async def run(self) -> tuple[int, dict[str, Any]]:
        """Run to the end; whoever waits in `pauses.next()` gets each pause and the final answer."""
        self.records.started(self.dfsp.name, self.flow_id, self)
        self._announce(RUNNING)
        status, body = 503, self.result("TIMED_OUT", CUT_SHORT)  # unless it gets to an end of its own
        try:
            await self._run()
            status, body = 200, self.result("COMMITTED")
        except Stop as stop:
            status, body = stop.status, self.result(stop.state, stop.error)
        except Exception:
            status, body = 500, self.result("ABORTED", {"errorCode": "2001", "errorDescription":
                                                        "Internal server error - the simulator failed"})
            raise
        finally:
            self.records.ended(self.dfsp.name, self.flow_id, status, body)
            self._announce(body["state"])
            self.pauses.end(status, body)
        return status, body

    def view(self) -> dict[str, Any]:
        """GET /<dfsp>/<flow>/<id> of a flow still running: its body as it is now."""
        return self.result(self.showing)

    def _announce(self, state: str) -> None:
        self.sim.feed.publish(feed.flow(self.dfsp.name, self.FEED_KIND, self.flow_id, self.order.customer.id,
                                        state, self.step))

    async def _pause(self, what: str, state: str, too_late: str) -> Any:
        """Show `state` to the caller waiting and wait for the answer to `what` until the deadline.

        No answer in time: TIMED_OUT (2004, `too_late` says what did not come); the simulator
        stopping: TIMED_OUT (2003). The caller announces RUNNING again when it goes on.
        """
        self.showing = state
        self._announce(state)
        try:
            return await self.pauses.ask(what, 200, self.result(state), self.remaining())
        except TimeoutError:
            raise Stop("TIMED_OUT", 504, bodies.error("2004", too_late)["errorInformation"]) from None
        except Stopping:
            raise Stop("TIMED_OUT", 503, STOPPING) from None
        finally:
            self.showing = RUNNING


class Flow(PausableFlow):
    """One run of /send: its ids, the messages exchanged, and what it learnt on the way.

    With `confirm` it runs in the background and stops at PAUSES for the customer's answer
    (`pauses`); the POST and each PUT /<dfsp>/send/<id> wait for its next pause or its end.
    """

    FEED_KIND = "send"

    def __init__(self, sim: Simulator, dfsp: SimDfsp, order: SendOrder) -> None:
        super().__init__(sim, dfsp, order.timeout_s, sim.send_flows)
        self.order = order
        self.quote_id = str(uuid.uuid4())
        self.transfer_id = str(uuid.uuid4())  # also the transactionId, as the SDK does
        self.step = "lookup"
        self.payee: dict[str, Any] | None = None
        self.quote: dict[str, Any] | None = None
        self.balance_before = order.customer.balance

    @property
    def flow_id(self) -> str:
        return self.transfer_id

    async def _confirm(self, state: str, accept: str) -> None:
        """With `confirm`: pause until the customer accepts (go on) or declines (CANCELLED).

        Nothing is held while paused; the wait ends at the flow's deadline (TIMED_OUT).
        """
        if not self.order.confirm:
            return
        accepted = await self._pause(accept, state, f"no {accept} before the deadline: nothing was held or sent")
        if not accepted:
            raise Stop("CANCELLED", 200, None)
        self._announce(RUNNING)

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
        if order.payee_fsp is not None and payee_fsp != order.payee_fsp:
            raise Stop("ABORTED", 502, {"errorCode": "3100", "errorDescription":
                                        f"Generic validation error - the QR names {order.payee_fsp} but "
                                        f"{order.id_type} {order.party_id} is at {payee_fsp}: not paid"})
        await self._confirm(*PAUSES[0])

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
            "transactionType": order.transaction_type,
        }
        if order.note:
            request["note"] = order.note
        answer = await self._exchange("POST", "/quotes", request, payee_fsp, (dfsp.name, "quotes", self.quote_id))
        quote = answer.body or {}
        units = _usable_quote(quote, order.currency)
        if units is None:
            raise Stop("ABORTED", 502, {"errorCode": "3100", "errorDescription":
                                        "Generic validation error - the payee's quote has no usable transferAmount, "
                                        "ilpPacket, condition or expiration"})
        self.quote = {"quoteId": self.quote_id, "amountType": order.amount_type, "amount": request["amount"]}
        self.quote.update({k: quote[k] for k in ("transferAmount", "payeeFspFee", "payeeReceiveAmount",
                                                 "expiration", "condition") if k in quote})
        await self._confirm(*PAUSES[1])

        # 3. hold the money, then the transfer
        self.step = "transfer"
        await self._pay(customer, quote, units, str(payee_fsp), self.transfer_id,
                        str(party.get("name") or order.party_id))

    def result(self, state: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        customer = self.order.customer
        body: dict[str, Any] = {
            "transferId": self.transfer_id,
            "transactionId": self.transfer_id,
            "useCase": self.order.use_case,
            "transactionType": self.order.transaction_type,
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
    return await run_order(sim, dfsp, parse_order(dfsp, body))


async def pay_qr(sim: Simulator, dfsp: SimDfsp, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /<dfsp>/payQr: a merchant payment to the party of a QR payload, answered as /send."""
    return await run_order(sim, dfsp, parse_qr_order(dfsp, body))


async def run_order(sim: Simulator, dfsp: SimDfsp, order: SendOrder) -> tuple[int, dict[str, Any]]:
    """Run a checked order: in this request, or with `confirm` in the background up to its first pause."""
    if sim.sends_in_flight >= SENDS_MAX:
        raise FspiopError("2003", f"{SENDS_MAX} sends are already running", status=503)
    flow = Flow(sim, dfsp, order)
    sim.sends_in_flight += 1
    if order.confirm:
        if not sim.pool.start(_in_background(sim, flow), f"/send {flow.transfer_id} of {dfsp.name}"):
            sim.sends_in_flight -= 1
            raise FspiopError("2003", "the simulated DFSPs are busy", status=503)
        return await flow.pauses.next()
    try:
        return await flow.run()
    finally:
        sim.sends_in_flight -= 1


async def _in_background(sim: Simulator, flow: Flow) -> None:
    """A confirmed /send outlives the HTTP calls that drive it; it counts as in flight until it ends."""
    try:
        await flow.run()
    finally:
        sim.sends_in_flight -= 1


def _decision(body: dict[str, Any]) -> tuple[str, bool]:
    """A PUT /<dfsp>/send/<id> body: exactly {"acceptParty": bool} or {"acceptQuote": bool}; else 3100."""
    if len(body) != 1:
        raise _bad('the body must be exactly {"acceptParty": true|false} or {"acceptQuote": true|false}')
    (what, value), = body.items()
    if what not in ("acceptParty", "acceptQuote") or not isinstance(value, bool):
        raise _bad('the body must be exactly {"acceptParty": true|false} or {"acceptQuote": true|false}')
    return what, value


async def decide(sim: Simulator, dfsp: SimDfsp, transfer_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """PUT /<dfsp>/send/<transferId>: the customer's answer to a paused /send; then its next pause or end."""
    flow = sim.send_flows.running_flow(dfsp.name, transfer_id)
    if flow is None:
        raise FspiopError("3208", f"{dfsp.name} has no /send {transfer_id} running", status=404)
    what, accepted = _decision(body)
    if not flow.pauses.answer(what, accepted):
        waiting = flow.pauses.waiting_for
        raise _bad(f"/send {transfer_id} waits for " + (f"{waiting}, not {what}" if waiting else "no confirmation now"))
    return await flow.pauses.next()


def current(sim: Simulator, dfsp: SimDfsp, transfer_id: str) -> dict[str, Any]:
    """GET /<dfsp>/send/<transferId>: the flow's body now (running, or one of the last finished)."""
    body = sim.send_flows.body_of(dfsp.name, transfer_id)
    if body is None:
        raise FspiopError("3208", f"{dfsp.name} has no /send {transfer_id} (it keeps the last "
                                  f"{sim.send_flows.kept} finished ones)", status=404)
    return body
