"""Bulk payments in the simulators: payroll ("a business pays 1,000 employees across two DFSPs").

Why: a payroll is one business paying many people at other DFSPs. Paying them one /send at a time
costs a quote and a transfer round trip each; FSPIOP's bulk API puts up to 1,000 of them in one
POST /bulkQuotes and one POST /bulkTransfers per payee DFSP, and the hub prepares, commits or
aborts each individual transfer on its own. This module plays both sides of that, and makes the
employees to pay.

As payee (any simulated DFSP; dispatched from mobile_sim.sim):
- POST /bulkQuotes -> PUT /bulkQuotes/{ID}: each individual quote gets the terms a single quote
  gets (mobile_sim.payee.quote_answer: fee rule, ILP packet, condition), or an errorInformation in
  its own result (3204 for a payee who is not a customer) without failing the rest.
- POST /bulkTransfers -> PUT /bulkTransfers/{ID} {bulkTransferState COMPLETED, completedTimestamp,
  individualTransferResults}: each individual transfer is checked and credited like a single one
  (mobile_sim.payee.check_transfer), a fulfilment for the good ones, an errorInformation for the rest.
- The hub's final PUT /bulkTransfers/{ID} settles the books (settle_books): a credited transfer the
  hub reports as failed, or a REJECTED bulk, is reversed.

As payer, POST /<dfsp>/bulkPay (`pay`): look up every payee (GET /parties, at most
LOOKUPS_IN_FLIGHT at once), group them by payee DFSP, and per payee DFSP and per chunk of at
most 1,000: POST /bulkQuotes -> PUT /bulkQuotes, hold the chunk's total on the payer (one
reservation per individual transfer), POST /bulkTransfers (individual transferId = the quote's
transactionId, as the SDK does) -> the hub's PUT /bulkTransfers/{ID}. The books are settled by
that PUT whether or not the flow still waits for it (settle_books): committed ones are debited,
the rest released. One deadline bounds the whole run.

POST /<dfsp>/customers/generate (`generate`): N new customers at a simulated DFSP, registered in
the hub's oracle the way a DFSP registers its customers: POST /participants (up to
REGISTER_CHUNK parties each) on the FSPIOP API -> PUT /participants/{requestId}.

Every store is bounded: bulk records (BULKS_KEPT), flows at once, lookups and bulks in flight.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from miniloop import money
from miniloop.fspiop import ilp
from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.headers import new_traceparent
from miniloop.services.oracles import PARTY_ID_TYPES
from mobile_sim import bodies, payee
from mobile_sim.dfsp import BooksError, Customer, SimDfsp
from mobile_sim.payee import QUOTE_VALID_S, TransferRefused, check_transfer, parties_path, quote_answer
from mobile_sim.pricing import QuoteRefused, text
from mobile_sim.send import order_amount, usable_id

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

log = logging.getLogger(__name__)

RESOURCES = ("bulkQuotes", "bulkTransfers")
BULK_MAX = 1000  # FSPIOP: individual quotes or transfers in one bulk
PAYMENTS_MAX = 5000  # payments in one /bulkPay
LOOKUPS_IN_FLIGHT = 50  # GET /parties of one /bulkPay waiting at once
BULKS_IN_FLIGHT = 4  # bulks of one /bulkPay running at once
PAYS_MAX = 4  # /bulkPay flows running at once, all DFSPs together
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 600.0
FAILURES_LISTED = 50  # failures listed in an answer; the rest are counted
BULKS_KEPT = 200  # bulk transfers remembered (payer and payee side) to settle their books
GENERATE_MAX = 5000  # customers made by one /customers/generate
CUSTOMERS_MAX = 20_000  # customers a simulated DFSP may have in all
REGISTER_CHUNK = 1000  # parties per POST /participants
REGISTRATIONS_IN_FLIGHT = 2
GENERATES_MAX = 2  # /customers/generate flows running at once
GENERATE_TIMEOUT_S = 30.0
FINAL_STATES = ("COMPLETED", "REJECTED")
PAY_FIELDS = ("from", "fromIdType", "payments", "currency", "reference", "timeoutSeconds")
GENERATE_FIELDS = ("count", "prefix", "namePrefix", "balance", "timeoutSeconds")
STATUS = {"COMPLETED": 200, "PARTIAL": 200, "FAILED": 502, "TIMED_OUT": 504}
_NAME = re.compile(r"^[\w .,'-]{1,100}$")


def _error_info(body: dict[str, Any] | None) -> dict[str, Any] | None:
    info = (body or {}).get("errorInformation")
    if not isinstance(info, dict):
        return None
    return {k: info[k] for k in ("errorCode", "errorDescription") if k in info}


def _error(code: str, detail: str) -> dict[str, Any]:
    """An errorInformation object (without the wrapper), as FSPIOP describes the code."""
    info: dict[str, Any] = bodies.error(code, detail)["errorInformation"]
    return info


# --- the bulks a simulator remembers -------------------------------------------------------------


@dataclass
class BulkRecord:
    """A bulk transfer one simulated DFSP takes part in: "out" as payer, "in" as payee.

    `transfer_ids`: payer side, every individual transfer reserved for it; payee side, every one
    credited. `reply`: payee side, the PUT /bulkTransfers body we sent (resent on a duplicate POST).
    """

    dfsp: str
    direction: str
    bulk_id: str
    transfer_ids: list[str]
    reply: dict[str, Any] | None = None
    done: bool = False


class BulkState:
    """The bulk records of all simulated DFSPs (at most `limit`), and the flows running."""

    def __init__(self, limit: int = BULKS_KEPT) -> None:
        self.limit = limit
        self.records: OrderedDict[tuple[str, str, str], BulkRecord] = OrderedDict()
        self.pays_running = 0
        self.generates_running = 0

    def get(self, dfsp: str, direction: str, bulk_id: str) -> BulkRecord | None:
        return self.records.get((dfsp, direction, bulk_id))

    def remember(self, record: BulkRecord, *, force: bool = False) -> bool:
        """Keep `record`, forgetting the oldest finished ones beyond the limit.

        When every kept record is unfinished: False (the caller refuses the bulk), unless `force`,
        which forgets the oldest anyway (a payee must answer what the hub sent it).
        """
        while len(self.records) >= self.limit:
            finished = next((key for key, old in self.records.items() if old.done), None)
            if finished is None:
                if not force:
                    return False
                finished = next(iter(self.records))
                log.warning("forgetting unfinished bulk %s: more than %d bulks in flight", finished, self.limit)
            del self.records[finished]
        self.records[(record.dfsp, record.direction, record.bulk_id)] = record
        return True


# --- as payee ------------------------------------------------------------------------------------

INDIVIDUAL_QUOTE_FIELDS = ("quoteId", "transactionId", "payee", "amountType", "amount", "fees",
                           "transactionType", "note")


def quote_result(dfsp: SimDfsp, payer: Any, individual: Any, expiration: str) -> dict[str, Any] | None:
    """One IndividualQuoteResult for one IndividualQuote; None if it has no usable quoteId.

    The individual quote is priced as the single POST /quotes made of it and the bulk's payer
    would be, and remembered the same way (its transfer pays out as a single one would).
    """
    if not isinstance(individual, dict) or not usable_id(individual.get("quoteId")):
        return None
    quote_id: str = individual["quoteId"]
    request = {k: individual[k] for k in INDIVIDUAL_QUOTE_FIELDS if k in individual}
    request["payer"] = payer
    known = dfsp.quotes.get(quote_id)
    if known is not None and known.request == request:  # a resend: the same answer
        answer = known.answer
    else:
        try:
            quoted = quote_answer(dfsp, request, expiration)
        except QuoteRefused as exc:
            return {"quoteId": quote_id, "errorInformation": _error(exc.code, exc.detail)}
        dfsp.remember_quote(quote_id, quoted)
        answer = quoted.answer
    result = {"quoteId": quote_id, "payee": request["payee"]}
    result.update({k: v for k, v in answer.items() if k != "expiration"})
    return result


def bulk_quote_answer(dfsp: SimDfsp, request: dict[str, Any]) -> dict[str, Any]:
    """The PUT /bulkQuotes/{ID} body for a POST /bulkQuotes body (individualQuotes checked)."""
    expiration = bodies.timestamp_in(QUOTE_VALID_S)
    results = []
    for individual in request["individualQuotes"]:
        result = quote_result(dfsp, request.get("payer"), individual, expiration)
        if result is not None:
            results.append(result)
    # a resent bulk reuses the quotes already given: the bulk expires with the first of them
    used = [dfsp.quotes[r["quoteId"]].answer["expiration"] for r in results
            if "errorInformation" not in r and r["quoteId"] in dfsp.quotes]
    return {"individualQuoteResults": results, "expiration": min(used, default=expiration)}


async def answer_bulk_quote(sim: Simulator, message: Incoming) -> None:
    dfsp, request = message.dfsp, message.body or {}
    bulk_id = request.get("bulkQuoteId")
    if not usable_id(bulk_id):
        log.warning("%s: dropped POST /bulkQuotes without a usable bulkQuoteId", dfsp.name)
        return
    quotes = request.get("individualQuotes")
    if not isinstance(quotes, list) or not 1 <= len(quotes) <= BULK_MAX:
        await sim.reply(message, "PUT", f"/bulkQuotes/{bulk_id}/error",
                        bodies.error("3100", f"individualQuotes must hold 1 to {BULK_MAX} quotes"))
        return
    await sim.reply(message, "PUT", f"/bulkQuotes/{bulk_id}", bulk_quote_answer(dfsp, request))


def transfer_results(dfsp: SimDfsp, bulk: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Check and credit each individual transfer of a POST /bulkTransfers body (checked).

    Returns (individualTransferResults, the ids credited). Each transfer is the single POST
    /transfers made of it and the bulk's payerFsp and payeeFsp, and is checked and credited as one.
    """
    results: list[dict[str, Any]] = []
    credited: list[str] = []
    payer_fsp = bulk.get("payerFsp")
    for item in bulk["individualTransfers"]:
        if not isinstance(item, dict) or not usable_id(item.get("transferId")):
            continue
        transfer_id: str = item["transferId"]
        if dfsp.books.entry(transfer_id, "in") is not None:
            results.append({"transferId": transfer_id, "errorInformation": _error(
                "5105", f"transfer {transfer_id} was received before")})
            continue
        single = {"transferId": transfer_id, "payerFsp": payer_fsp, "payeeFsp": bulk.get("payeeFsp"),
                  "amount": item.get("transferAmount"), "ilpPacket": item.get("ilpPacket"),
                  "condition": item.get("condition")}
        try:
            customer, units, fulfilment = check_transfer(dfsp, single)
        except (TransferRefused, ilp.IlpError) as exc:
            code, detail = (exc.code, exc.detail) if isinstance(exc, TransferRefused) else ("5105", str(exc))
            results.append({"transferId": transfer_id, "errorInformation": _error(code, detail)})
            continue
        reply = bodies.fulfil(fulfilment)
        payee.credit(dfsp, single, customer, units, reply)  # recorded as a single incoming transfer is
        credited.append(transfer_id)
        results.append({"transferId": transfer_id, "fulfilment": fulfilment})
    return results, credited


async def answer_bulk_transfer(sim: Simulator, message: Incoming) -> None:
    dfsp, bulk = message.dfsp, message.body or {}
    bulk_id = bulk.get("bulkTransferId")
    if not usable_id(bulk_id):
        log.warning("%s: dropped POST /bulkTransfers without a usable bulkTransferId", dfsp.name)
        return
    path = f"/bulkTransfers/{bulk_id}"
    known = sim.bulk.get(dfsp.name, "in", bulk_id)
    if known is not None:  # a resend: the same answer, no second credit
        if known.reply is not None:
            await sim.reply(message, "PUT", path, known.reply)
        return
    transfers = bulk.get("individualTransfers")
    if not isinstance(transfers, list) or not 1 <= len(transfers) <= BULK_MAX:
        await sim.reply(message, "PUT", path + "/error",
                        bodies.error("3100", f"individualTransfers must hold 1 to {BULK_MAX} transfers"))
        return
    results, credited = transfer_results(dfsp, bulk)
    reply = {"bulkTransferState": "COMPLETED", "completedTimestamp": bodies.timestamp(),
             "individualTransferResults": results}
    record = BulkRecord(dfsp.name, "in", bulk_id, credited, reply)
    sim.bulk.remember(record, force=True)
    answer = await sim.reply(message, "PUT", path, reply)
    if 400 <= answer.status < 500:  # the switch refused the fulfil outright: nothing was paid
        for transfer_id in credited:
            payee.reverse(dfsp, transfer_id)
        record.done = True


async def settle_books(sim: Simulator, message: Incoming) -> bool:
    """Apply the hub's news about a bulk transfer (PUT /bulkTransfers/{ID} or its /error).

    Payer side: each individual transfer with a fulfilment is debited; the rest (an
    errorInformation, not listed, or a REJECTED bulk) are released. An /error releases them all.
    Payee side: a credited transfer the hub reports with an errorInformation, or all of a REJECTED
    bulk, is taken back. An /error is not proof that the transfers failed, so the DFSP asks the
    hub GET /bulkTransfers/{ID} and acts on its answer (as payee.settle_books does for one).
    Intermediate states (ACCEPTED, PROCESSING ...) change nothing.

    True when the message was news for a bulk's payee only: no flow waits for it.
    """
    dfsp, body = message.dfsp, message.body or {}
    bulk_id = message.ids[0]
    assert bulk_id is not None
    state = body.get("bulkTransferState")
    results = body.get("individualTransferResults")
    by_id = {r.get("transferId"): r for r in results if isinstance(r, dict)} if isinstance(results, list) else {}

    def fulfilled(transfer_id: str) -> bool:
        result = by_id.get(transfer_id) or {}
        return state == "COMPLETED" and bool(result.get("fulfilment")) and not result.get("errorInformation")

    payer = sim.bulk.get(dfsp.name, "out", bulk_id)
    if payer is not None and not payer.done and (message.is_error or state in FINAL_STATES):
        for transfer_id in payer.transfer_ids:
            if not message.is_error and fulfilled(transfer_id):
                dfsp.books.commit(transfer_id)
            else:
                dfsp.books.release(transfer_id)
        payer.done = True
    received = sim.bulk.get(dfsp.name, "in", bulk_id)
    if received is not None and not received.done:
        if message.is_error:
            await sim.send(dfsp, "GET", f"/bulkTransfers/{bulk_id}", None, destination=message.source,
                           traceparent=message.traceparent)
        elif state in FINAL_STATES:
            for transfer_id in received.transfer_ids:
                failed = (by_id.get(transfer_id) or {}).get("errorInformation")
                if state == "REJECTED" or failed:
                    payee.reverse(dfsp, transfer_id)
            received.done = True
    return received is not None and payer is None


# --- as payer: POST /<dfsp>/bulkPay --------------------------------------------------------------


def _bad(detail: str) -> FspiopError:
    return FspiopError("3100", detail)


def _timeout(body: dict[str, Any], default: float, most: float) -> float:
    value = body.get("timeoutSeconds", default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= most:
        raise _bad(f"timeoutSeconds must be a number from 1 to {most:g}")
    return float(value)


@dataclass(frozen=True)
class Payment:
    """One line of a payroll."""

    index: int
    id_type: str
    party_id: str
    amount: Decimal

    @property
    def to(self) -> str:
        return f"{self.id_type}/{self.party_id}"


@dataclass(frozen=True)
class PayOrder:
    """A checked POST /<dfsp>/bulkPay body."""

    customer: Customer
    payments: list[Payment]
    currency: str
    reference: str | None
    timeout_s: float

    @property
    def total(self) -> int:
        return sum(money.to_units(p.amount) for p in self.payments)


def parse_pay(dfsp: SimDfsp, body: dict[str, Any]) -> PayOrder:
    """Check a /bulkPay body: 3100 for bad input, 4000 when the payer cannot pay the total."""
    unknown = sorted(set(body) - set(PAY_FIELDS))
    if unknown:
        raise _bad(f"{unknown[0]} is not a field of /bulkPay (fields: {', '.join(PAY_FIELDS)})")
    from_type = body.get("fromIdType")
    if from_type is not None and from_type not in PARTY_ID_TYPES:
        raise _bad(f"fromIdType must be one of {', '.join(PARTY_ID_TYPES)}")
    payer_id = body.get("from")
    customer = dfsp.books.find(payer_id, from_type) if usable_id(payer_id) else None
    if customer is None:
        raise _bad(f"from: {payer_id} is not a customer of {dfsp.name}")
    currency = body.get("currency", dfsp.currency)
    if currency != dfsp.currency:
        raise _bad(f"{dfsp.name} holds {dfsp.currency} only, not {currency}")
    reference = body.get("reference")
    if reference is not None and (not isinstance(reference, str) or not 1 <= len(reference) <= 128):
        raise _bad("reference must be 1 to 128 characters")
    raw = body.get("payments")
    if not isinstance(raw, list) or not 1 <= len(raw) <= PAYMENTS_MAX:
        raise _bad(f"payments must be a list of 1 to {PAYMENTS_MAX} payments")
    payments = []
    for index, item in enumerate(raw):
        where = f"payments[{index}]"
        if not isinstance(item, dict) or set(item) != {"to", "amount"}:
            raise _bad(f'{where} must be {{"to": "TYPE/ID", "amount": "12.5"}}')
        to = item["to"]
        id_type, _, party_id = to.partition("/") if isinstance(to, str) else ("", "", "")
        if id_type not in PARTY_ID_TYPES or not usable_id(party_id) or party_id != party_id.strip():
            raise _bad(f"{where}.to must be TYPE/ID with a party id type, such as MSISDN/27711000001")
        payments.append(Payment(index, id_type, party_id, order_amount(item["amount"], currency, f"{where}.amount")))
    order = PayOrder(customer, payments, currency, reference, _timeout(body, DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S))
    if customer.available < order.total:
        raise FspiopError("4000", f"insufficient balance: the payments total {money.format_amount(order.total)} "
                                  f"{currency}, customer {customer.id} has "
                                  f"{money.format_amount(customer.available)} {currency} available")
    return order


class TimedOut(Exception):
    """A wait reached the flow's deadline."""


class Failed(Exception):
    """A request or a wait ended with an error: `error` is its {errorCode, errorDescription}."""

    def __init__(self, error: dict[str, Any] | None, *, refused: bool = False) -> None:
        super().__init__(str(error))
        self.error = error or {"errorDescription": "no error information was given"}
        self.refused = refused  # the switch answered the request itself with an HTTP error


class Exchanges:
    """The request/callback plumbing a payer flow shares: deadline, trace, compact wire log."""

    def __init__(self, sim: Simulator, dfsp: SimDfsp, timeout_s: float) -> None:
        self.sim, self.dfsp = sim, dfsp
        self.started = time.monotonic()
        self.deadline = self.started + timeout_s
        self.trace = new_traceparent()
        self.messages: list[dict[str, Any]] = []
        self.timed_out = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed_ms(self, at: float | None = None) -> float:
        return round(((at or time.monotonic()) - self.started) * 1000, 1)

    async def exchange(self, method: str, path: str, body: dict[str, Any] | None, destination: str | None,
                       key: tuple[Any, ...], *, log_items: int | None = None) -> Incoming:
        """Send one request and wait for its callback (registered first: it may beat the 202).

        `log_items`: log the request (and its answer) in the wire log with this many items.
        """
        future = self.sim.waiters.expect(key)
        if future is None:
            raise Failed(_error("2003", "too many flows are waiting for callbacks"))
        try:
            line: dict[str, Any] = {"direction": "out", "method": method, "path": path, "source": self.dfsp.name,
                                    "destination": destination, "items": log_items, "elapsedMs": self.elapsed_ms()}
            if log_items is not None:
                self.messages.append(line)
            answer = await self.sim.send(self.dfsp, method, path, body, destination=destination,
                                         traceparent=self.trace)
            line["status"] = answer.status
            if not answer.accepted:
                raise Failed(_error_info(answer.error), refused=400 <= answer.status < 600)
            return await self.wait(future, logged=log_items is not None)
        finally:
            self.sim.waiters.forget(key, future)

    async def wait_for(self, key: tuple[Any, ...]) -> Incoming:
        future = self.sim.waiters.expect(key)
        if future is None:
            raise Failed(_error("2003", "too many flows are waiting for callbacks"))
        try:
            return await self.wait(future, logged=True)
        finally:
            self.sim.waiters.forget(key, future)

    async def wait(self, future: asyncio.Future[Any], *, logged: bool) -> Incoming:
        try:
            message: Incoming = await asyncio.wait_for(future, max(self.remaining(), 0))
        except TimeoutError:
            self.timed_out = True
            raise TimedOut() from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise Failed(_error("2003", "the simulator is stopping")) from None
        if logged:
            self.log_in(message)
        if message.is_error:
            raise Failed(_error_info(message.body))
        return message

    def log_in(self, message: Incoming) -> None:
        body = message.body or {}
        line: dict[str, Any] = {"direction": "in", "method": message.method, "path": message.path,
                                "source": message.source, "destination": message.destination,
                                "elapsedMs": self.elapsed_ms(message.at)}
        for field_name in ("individualQuoteResults", "individualTransferResults", "partyList"):
            if isinstance(body.get(field_name), list):
                line["items"] = len(body[field_name])
                line["errors"] = sum(1 for r in body[field_name] if isinstance(r, dict) and r.get("errorInformation"))
        if "bulkTransferState" in body:
            line["state"] = body["bulkTransferState"]
        error = _error_info(body)
        if error:
            line["error"] = error
        self.messages.append(line)


@dataclass
class Bulk:
    """One bulk of a payroll: the payments to one payee DFSP, at most 1,000."""

    payee_fsp: str
    payments: list[Payment]
    bulk_quote_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    bulk_transfer_id: str | None = None
    state: str = "PENDING"  # COMPLETED, PARTIAL, FAILED, TIMED_OUT
    paid: int = 0
    failed: int = 0
    unknown: int = 0  # sent, outcome not known by the deadline
    error: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        view: dict[str, Any] = {
            "payeeFsp": self.payee_fsp, "bulkQuoteId": self.bulk_quote_id, "bulkTransferId": self.bulk_transfer_id,
            "state": self.state, "payments": len(self.payments), "paid": self.paid, "failed": self.failed,
        }
        if self.unknown:
            view["unknown"] = self.unknown
        if self.error:
            view["error"] = self.error
        return view


class PayFlow(Exchanges):
    """One run of /bulkPay."""

    def __init__(self, sim: Simulator, dfsp: SimDfsp, order: PayOrder) -> None:
        super().__init__(sim, dfsp, order.timeout_s)
        self.order = order
        self.parties: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}  # (type, id) -> (party, fspId)
        self.failures: list[tuple[int, dict[str, Any]]] = []  # (index in the payments, failure)
        self.bulks: list[Bulk] = []
        self.paid_units = 0
        self.paid = 0
        self.unknown = 0
        self.lookups: dict[str, Any] = {}
        self.balance_before = order.customer.balance

    def fail(self, payment: Payment, step: str, error: dict[str, Any] | None) -> None:
        failure: dict[str, Any] = {"to": payment.to, "amount": text(payment.amount), "step": step}
        failure.update(error or {"errorDescription": "no answer before the deadline"})
        self.failures.append((payment.index, failure))

    async def run(self) -> tuple[int, dict[str, Any]]:
        await self._look_up_all()
        by_fsp: dict[str, list[Payment]] = {}
        for payment in self.order.payments:
            found = self.parties.get((payment.id_type, payment.party_id))
            if found is not None:
                by_fsp.setdefault(found[1], []).append(payment)
        for payee_fsp, payments in by_fsp.items():
            for start in range(0, len(payments), BULK_MAX):
                self.bulks.append(Bulk(payee_fsp, payments[start:start + BULK_MAX]))
        limit = asyncio.Semaphore(BULKS_IN_FLIGHT)

        async def one(bulk: Bulk) -> None:
            async with limit:
                await self._pay_bulk(bulk)

        await asyncio.gather(*(one(bulk) for bulk in self.bulks))
        if self.timed_out or self.unknown:
            state = "TIMED_OUT"
        elif not self.failures:
            state = "COMPLETED"
        else:
            state = "PARTIAL" if self.paid else "FAILED"
        return STATUS[state], self.result(state)

    # 1. lookups ------------------------------------------------------------------------------

    async def _look_up_all(self) -> None:
        wanted = list(dict.fromkeys((p.id_type, p.party_id) for p in self.order.payments))
        errors: dict[tuple[str, str], dict[str, Any] | None] = {}
        limit = asyncio.Semaphore(LOOKUPS_IN_FLIGHT)

        async def one(id_type: str, party_id: str) -> None:
            async with limit:
                try:
                    self.parties[(id_type, party_id)] = await self._look_up(id_type, party_id)
                except Failed as failed:
                    errors[(id_type, party_id)] = failed.error
                except TimedOut:
                    errors[(id_type, party_id)] = None

        started = time.monotonic()
        await asyncio.gather(*(one(*key) for key in wanted))
        for payment in self.order.payments:
            key = (payment.id_type, payment.party_id)
            if key in errors:
                self.fail(payment, "lookup", errors[key])
        self.lookups = {"parties": len(wanted), "found": len(self.parties), "failed": len(errors),
                        "elapsedMs": round((time.monotonic() - started) * 1000, 1)}

    async def _look_up(self, id_type: str, party_id: str) -> tuple[dict[str, Any], str]:
        if self.remaining() <= 0:
            self.timed_out = True
            raise TimedOut()
        answer = await self.exchange("GET", parties_path(id_type, party_id, None), None, None,
                                     (self.dfsp.name, "parties", id_type, party_id, None))
        party = (answer.body or {}).get("party")
        if not isinstance(party, dict) or not isinstance(party.get("partyIdInfo"), dict):
            raise Failed(_error("3100", "the PUT /parties body has no party"))
        return party, str(party["partyIdInfo"].get("fspId") or answer.source)

    # 2. one bulk: quotes, then transfers --------------------------------------------------------

    async def _pay_bulk(self, bulk: Bulk) -> None:
        try:
            self._before_sending(bulk, bulk.payments, "quote")
            transfers = await self._quote(bulk)
            if transfers:
                await self._transfer(bulk, transfers)
        except TimedOut:
            pass
        if bulk.unknown:
            bulk.state = "TIMED_OUT"
        elif bulk.paid == len(bulk.payments):
            bulk.state = "COMPLETED"
        else:
            bulk.state = "PARTIAL" if bulk.paid else "FAILED"

    def _before_sending(self, bulk: Bulk, payments: list[Payment], step: str) -> None:
        """TimedOut (and the payments failed) if the deadline has passed: nothing more is sent."""
        if self.remaining() <= 0:
            self.timed_out = True
            self._fail_all(bulk, payments, step, None)
            raise TimedOut()

    def _fail_all(self, bulk: Bulk, payments: list[Payment], step: str, error: dict[str, Any] | None) -> None:
        bulk.error = error or {"errorDescription": "no answer before the deadline"}
        for payment in payments:
            self.fail(payment, step, error)
        bulk.failed += len(payments)

    async def _quote(self, bulk: Bulk) -> list[tuple[Payment, dict[str, Any]]]:
        """POST /bulkQuotes -> the usable individual transfers, each with its payment."""
        customer, order = self.order.customer, self.order
        initiator_type = "BUSINESS" if customer.id_type == "BUSINESS" else "CONSUMER"
        quotes = []
        for payment in bulk.payments:
            quote: dict[str, Any] = {
                "quoteId": str(uuid.uuid4()), "transactionId": str(uuid.uuid4()),
                "payee": self.parties[(payment.id_type, payment.party_id)][0], "amountType": "SEND",
                "amount": {"amount": text(payment.amount), "currency": order.currency},
                "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": initiator_type},
            }
            if order.reference:
                quote["note"] = order.reference
            quotes.append(quote)
        request = {"bulkQuoteId": bulk.bulk_quote_id, "payer": bodies.party(customer, self.dfsp.name),
                   "individualQuotes": quotes}
        try:
            answer = await self.exchange("POST", "/bulkQuotes", request, bulk.payee_fsp,
                                         (self.dfsp.name, "bulkQuotes", bulk.bulk_quote_id), log_items=len(quotes))
        except Failed as failed:
            self._fail_all(bulk, bulk.payments, "quote", failed.error)
            return []
        except TimedOut:
            self._fail_all(bulk, bulk.payments, "quote", None)
            raise
        results = (answer.body or {}).get("individualQuoteResults")
        by_id = {r.get("quoteId"): r for r in results if isinstance(r, dict)} if isinstance(results, list) else {}
        usable = []
        for payment, quote in zip(bulk.payments, quotes, strict=True):
            result = by_id.get(quote["quoteId"])
            if result is None:
                self.fail(payment, "quote", {"errorDescription": "the bulk quote has no result for this payment"})
            elif _error_info(result):
                self.fail(payment, "quote", _error_info(result))
            elif _transfer_units(result, order.currency) is None:
                self.fail(payment, "quote", _error("3100", "the quote result has no usable transferAmount, "
                                                           "ilpPacket or condition"))
            else:
                usable.append((payment, {"transferId": quote["transactionId"],
                                         "transferAmount": result["transferAmount"],
                                         "ilpPacket": result["ilpPacket"], "condition": result["condition"]}))
                continue
            bulk.failed += 1
        return usable

    async def _transfer(self, bulk: Bulk, transfers: list[tuple[Payment, dict[str, Any]]]) -> None:
        """Hold the bulk's total, POST /bulkTransfers, wait for the hub's final PUT."""
        dfsp, customer, books = self.dfsp, self.order.customer, self.dfsp.books
        payments = [payment for payment, _ in transfers]
        self._before_sending(bulk, payments, "transfer")
        units = [_transfer_units(t, self.order.currency) or 0 for _, t in transfers]
        if customer.available < sum(units):
            self._fail_all(bulk, payments, "transfer", _error("4000", (
                f"customer {customer.id} has {money.format_amount(customer.available)} available, "
                f"the bulk needs {money.format_amount(sum(units))}")))
            return
        reserved: list[str] = []
        try:
            for (payment, transfer), amount in zip(transfers, units, strict=True):
                name = self.parties[(payment.id_type, payment.party_id)][0].get("name")
                books.reserve(transfer["transferId"], customer, amount, bulk.payee_fsp, self.order.currency,
                              label=name if isinstance(name, str) and name else payment.to)
                reserved.append(transfer["transferId"])
        except BooksError as exc:
            for transfer_id in reserved:
                books.release(transfer_id)
            self._fail_all(bulk, payments, "transfer", _error(exc.code, str(exc)))
            return
        bulk.bulk_transfer_id = str(uuid.uuid4())
        record = BulkRecord(dfsp.name, "out", bulk.bulk_transfer_id, reserved)
        if not self.sim.bulk.remember(record):
            for transfer_id in reserved:
                books.release(transfer_id)
            self._fail_all(bulk, payments, "transfer", _error("2003", f"{BULKS_KEPT} bulks are already in flight"))
            return
        request = {
            "bulkTransferId": bulk.bulk_transfer_id, "bulkQuoteId": bulk.bulk_quote_id,
            "payerFsp": dfsp.name, "payeeFsp": bulk.payee_fsp,
            "individualTransfers": [transfer for _, transfer in transfers],
            "expiration": bodies.timestamp_in(max(self.remaining(), 1.0)),
        }
        key = (dfsp.name, "bulkTransfers", bulk.bulk_transfer_id)
        try:
            answer = await self.exchange("POST", "/bulkTransfers", request, bulk.payee_fsp, key,
                                         log_items=len(transfers))
            while (answer.body or {}).get("bulkTransferState") not in FINAL_STATES:
                answer = await self.wait_for(key)  # ACCEPTED, PROCESSING ...: not the end yet
        except Failed as failed:
            if failed.refused and not record.done:  # the switch said no at once: it holds nothing
                for transfer_id in reserved:
                    books.release(transfer_id)
                record.done = True
            self._fail_all(bulk, payments, "transfer", failed.error)
            return
        except TimedOut:
            bulk.unknown = len(payments)
            self.unknown += len(payments)
            bulk.error = {"errorDescription": "no final PUT /bulkTransfers before the deadline"}
            raise
        body = answer.body or {}
        state = body.get("bulkTransferState")
        results = body.get("individualTransferResults")
        by_id = {r.get("transferId"): r for r in results if isinstance(r, dict)} if isinstance(results, list) else {}
        for (payment, transfer), amount in zip(transfers, units, strict=True):
            result = by_id.get(transfer["transferId"]) or {}
            if state == "COMPLETED" and result.get("fulfilment") and not result.get("errorInformation"):
                bulk.paid += 1
                self.paid += 1
                self.paid_units += amount
            else:
                bulk.failed += 1
                error = _error_info(result) or {"errorDescription": (
                    f"the bulk transfer was {state}" if state != "COMPLETED"
                    else "the hub's final PUT /bulkTransfers has no result for this transfer")}
                self.fail(payment, "transfer", error)

    def result(self, state: str) -> dict[str, Any]:
        customer, order = self.order.customer, self.order
        return {
            "state": state,
            "from": customer.id,
            "currency": order.currency,
            "counts": {"payments": len(order.payments), "paid": self.paid,
                       "failed": len(self.failures), "unknown": self.unknown},
            "total": {"requested": money.format_amount(order.total), "paid": money.format_amount(self.paid_units)},
            "lookups": self.lookups,
            "bulks": [bulk.view() for bulk in self.bulks],
            "failures": [failure for _, failure in sorted(self.failures, key=lambda f: f[0])[:FAILURES_LISTED]],
            "failuresNotListed": max(len(self.failures) - FAILURES_LISTED, 0),
            "messages": self.messages,
            "balances": {"customer": customer.id, "before": money.format_amount(self.balance_before),
                         "after": money.format_amount(customer.balance),
                         "reserved": money.format_amount(customer.reserved)},
            "elapsedMs": self.elapsed_ms(),
        }


def _transfer_units(result: dict[str, Any], currency: str) -> int | None:
    """The units of a quote result's (or individual transfer's) transferAmount, or None if unusable."""
    amount = result.get("transferAmount")
    if not isinstance(amount, dict) or amount.get("currency") != currency:
        return None
    if not all(isinstance(result.get(k), str) for k in ("ilpPacket", "condition")):
        return None
    try:
        return money.to_units(money.parse_amount(amount.get("amount"), strict=True))
    except money.AmountError:
        return None


async def pay(sim: Simulator, dfsp: SimDfsp, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /<dfsp>/bulkPay: (HTTP status, JSON body). Bad input raises FspiopError (400)."""
    order = parse_pay(dfsp, body)
    if sim.bulk.pays_running >= PAYS_MAX:
        raise FspiopError("2003", f"{PAYS_MAX} bulk payments are already running", status=503)
    sim.bulk.pays_running += 1
    try:
        return await PayFlow(sim, dfsp, order).run()
    finally:
        sim.bulk.pays_running -= 1


# --- POST /<dfsp>/customers/generate -------------------------------------------------------------


@dataclass(frozen=True)
class GenerateOrder:
    ids: list[str]
    width: int  # digits of the counter after the prefix
    name_prefix: str
    balance: int
    timeout_s: float


def parse_generate(dfsp: SimDfsp, body: dict[str, Any]) -> GenerateOrder:
    unknown = sorted(set(body) - set(GENERATE_FIELDS))
    if unknown:
        raise _bad(f"{unknown[0]} is not a field of /customers/generate (fields: {', '.join(GENERATE_FIELDS)})")
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= GENERATE_MAX:
        raise _bad(f"count must be an integer from 1 to {GENERATE_MAX}")
    prefix = body.get("prefix")
    width = max(4, len(str(count)))
    if not isinstance(prefix, str) or not re.fullmatch(r"[1-9][0-9]*", prefix) or len(prefix) + width > 15:
        raise _bad(f"prefix must be digits, not starting with 0, at most {15 - width} of them "
                   f"(an MSISDN has at most 15 digits; {width} are added)")
    name_prefix = body.get("namePrefix", "Employee")
    if not isinstance(name_prefix, str) or not _NAME.match(name_prefix) or not name_prefix.strip():
        raise _bad("namePrefix must be 1 to 100 letters, digits, spaces or .,'-")
    balance = money.to_units(order_amount(body.get("balance", "0"), dfsp.currency, "balance", allow_zero=True))
    ids = [f"{prefix}{n:0{width}d}" for n in range(1, count + 1)]
    taken = next((i for i in ids if dfsp.books.customer("MSISDN", i) is not None), None)
    if taken is not None:
        raise _bad(f"MSISDN {taken} is already a customer of {dfsp.name}: choose another prefix")
    if len(dfsp.books.customers) + count > CUSTOMERS_MAX:
        raise _bad(f"{dfsp.name} would have more than {CUSTOMERS_MAX} customers")
    return GenerateOrder(ids, width, name_prefix.strip(), balance, _timeout(body, GENERATE_TIMEOUT_S, MAX_TIMEOUT_S))


async def register(flow: Exchanges, ids: list[str], failures: list[dict[str, Any]]) -> int:
    """POST /participants for `ids` -> PUT /participants/{requestId}; how many were registered.

    Each id the hub refused, or that had no answer before the deadline, is added to `failures` as
    {id, errorCode?, errorDescription}. Shared by /customers/generate and by a customer who joins
    (mobile_sim.join).
    """
    dfsp = flow.dfsp
    request_id = str(uuid.uuid4())
    request = {"requestId": request_id, "currency": dfsp.currency,
               "partyList": [{"partyIdType": "MSISDN", "partyIdentifier": i, "fspId": dfsp.name} for i in ids]}
    try:
        answer = await flow.exchange("POST", "/participants", request, None, (dfsp.name, "participants", request_id),
                                     log_items=len(ids))
    except Failed as failed:
        failures.extend({"id": i, **failed.error} for i in ids)
        return 0
    except TimedOut:
        failures.extend({"id": i, "errorDescription": "no PUT /participants before the deadline"} for i in ids)
        return 0
    results = (answer.body or {}).get("partyList")
    failed_ids: dict[str, dict[str, Any]] = {}
    for result in results if isinstance(results, list) else []:
        party = result.get("partyId") if isinstance(result, dict) else None
        error = _error_info(result) if isinstance(result, dict) else None
        if isinstance(party, dict) and error:
            failed_ids[str(party.get("partyIdentifier"))] = error
    for i in ids:
        if i in failed_ids:
            failures.append({"id": i, **failed_ids[i]})
    return len(ids) - sum(1 for i in ids if i in failed_ids)


async def generate(sim: Simulator, dfsp: SimDfsp, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /<dfsp>/customers/generate: make the customers, then register them in the hub's oracle."""
    order = parse_generate(dfsp, body)
    if sim.bulk.generates_running >= GENERATES_MAX:
        raise FspiopError("2003", f"{GENERATES_MAX} customer generations are already running", status=503)
    sim.bulk.generates_running += 1
    try:
        for number, party_id in enumerate(order.ids, 1):
            customer = Customer(party_id, "MSISDN", f"{order.name_prefix} {number:0{order.width}d}", order.balance)
            dfsp.books.add(customer)  # watched like every customer (texts and balances on the live feed)
        flow = Exchanges(sim, dfsp, order.timeout_s)
        failures: list[dict[str, Any]] = []
        limit = asyncio.Semaphore(REGISTRATIONS_IN_FLIGHT)

        async def one(chunk: list[str]) -> int:
            async with limit:
                return await register(flow, chunk, failures)

        chunks = [order.ids[i:i + REGISTER_CHUNK] for i in range(0, len(order.ids), REGISTER_CHUNK)]
        registered = sum(await asyncio.gather(*(one(chunk) for chunk in chunks)))
    finally:
        sim.bulk.generates_running -= 1
    state = "TIMED_OUT" if flow.timed_out else "REGISTERED" if not failures else "FAILED"
    status = {"REGISTERED": 200, "FAILED": 502, "TIMED_OUT": 504}[state]
    return status, {
        "state": state, "dfsp": dfsp.name, "idType": "MSISDN", "created": len(order.ids), "registered": registered,
        "first": order.ids[0], "last": order.ids[-1], "balance": money.format_amount(order.balance),
        "failures": failures[:FAILURES_LISTED], "failuresNotListed": max(len(failures) - FAILURES_LISTED, 0),
        "messages": flow.messages, "elapsedMs": flow.elapsed_ms(),
    }
