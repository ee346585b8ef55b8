"""A simulated wallet as the payer of a transaction request: it asks its customer, quotes, takes the OTP, pays.

Why: in a payee-initiated transaction (FSPIOP.md §7) the payer's DFSP does most of the work. As a
DFSP running Mojaloop's SDK with an automatic backend would, on POST /transactionRequests it:

1. checks the request; one it cannot take gets PUT /transactionRequests/{ID}/error: 3204 the
   payer is not its customer, 4103 another currency, 4102 not a payee-initiated transactionType,
   3100 a body it cannot read or an authenticationType other than OTP, 3300 already expired,
   3106 the same id with another body, 2003 too many at once. A resend of the same body gets the
   state it has now;
2. answers PUT /transactionRequests/{ID} {transactionRequestState: RECEIVED} and texts the
   customer ("Corner Grocery asks you to pay 25 USD"). The customer's setting `requestToPay`
   decides: "approve" (default) goes on, "decline" answers REJECTED, "ignore" never answers, so
   the request expires at the payee; "ask" waits (state WAITING) for the customer to answer on
   their phone, POST /<dfsp>/customers/<id>/requests/<ID> {"answer": "approve"|"decline"}
   (`answer_request`; GET .../requests lists what waits, `waiting_for`), and then goes on as
   "approve" or "decline" would; no answer before the expiration is "ignore";
3. quotes: POST /quotes to the payee's DFSP with the transactionRequestId, the same
   transactionType, amountType RECEIVE (the payee gets what it asked for; fees come on top);
   a customer who cannot pay the transfer amount -> PUT /transactionRequests/{ID}/error 4000;
4. with authenticationType OTP: a 6-digit OTP goes to the customer's phone, then GET
   /authorizations/{ID}?authenticationType=OTP&retriesLeft=3&amount=<transfer amount>&currency=...
   to the payee's DFSP. A wrong value asks again with retriesLeft one less; after the try with
   retriesLeft=1, or responseType REJECTED, it answers PUT /transactionRequests/{ID} REJECTED.
   RESEND texts a new OTP (at most 3 times);
5. reserves the transfer amount and sends POST /transfers (transferId = the quote's
   transactionId), as /send does, and texts the customer the outcome.

A REJECTED answer carries the reason in its extensionList ({"key": "reason", "value": ...}); the
API's PUT /transactionRequests/{ID} has no error field. Every wait ends at the request's
expiration (60 s when it has none, 300 s at most). GET /transactionRequests/{ID} from the payee's
DFSP is answered with the state as the API names it, or 3206 for a request we do not know.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from miniloop import money
from miniloop.fspiop.errors import FspiopError
from mobile_sim import bodies, usecases
from mobile_sim.bodies import Refused
from mobile_sim.dfsp import Customer, SimDfsp
from mobile_sim.send import MAX_TIMEOUT_S, Stop, WireFlow, _usable_quote

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

log = logging.getLogger(__name__)

OTP_RETRIES = 3  # retriesLeft in the first GET /authorizations
OTP_DIGITS = 6
OTP_RESENDS_MAX = 3
DEFAULT_REQUEST_S = 60.0  # how long a request without an expiration is worked on
REQUESTS_IN_FLIGHT_MAX = 500  # transaction requests being worked on at once, all DFSPs together
STATUS_TIMEOUT_S = 10.0  # how long GET /<dfsp>/transactionStatus waits for PUT /transactions
ANSWER_FIELDS = ("answer",)
CUSTOMER_ANSWERS = ("approve", "decline")  # what a customer set to "ask" answers on their phone
REQUESTS_LISTED = 50  # requests GET /<dfsp>/customers/<id>/requests lists
API_STATE = {"RECEIVED": "RECEIVED", "PENDING": "PENDING", "WAITING": "PENDING", "ACCEPTED": "ACCEPTED",
             "COMPLETED": "ACCEPTED", "REJECTED": "REJECTED", "FAILED": "REJECTED", "EXPIRED": "REJECTED"}


class PayerRequest(WireFlow):
    """A transaction request received as payer, and what came of it.

    `state`: RECEIVED (being worked on), WAITING (for the answer of a customer set to "ask"),
    PENDING (waiting for a customer who does not answer),
    REJECTED (declined, OTP wrong, cancelled), ACCEPTED (transfer sent), COMPLETED (transfer
    committed), FAILED (an error, or no answer in time), EXPIRED (PENDING past its expiration).
    """

    def __init__(self, sim: Simulator, dfsp: SimDfsp, message: Incoming, customer: Customer, timeout_s: float) -> None:
        super().__init__(sim, dfsp, timeout_s, trace=message.traceparent)
        body = message.body or {}
        self.body = body
        self.request_id = str(body["transactionRequestId"])
        self.customer = customer
        payee = body["payee"]
        self.payee = payee
        self.payee_fsp = str(payee["partyIdInfo"].get("fspId") or message.source)
        self.payee_name = str(payee.get("name") or f"{payee['partyIdInfo'].get('partyIdType')} "
                                                   f"{payee['partyIdInfo'].get('partyIdentifier')}")
        self.received_at = bodies.timestamp()
        self.expires = datetime.now(UTC) + timedelta(seconds=timeout_s)
        self.state = "RECEIVED"
        self.reason: str | None = None
        self.quote_id: str | None = None
        self.transaction_id: str | None = None
        self.transfer_amount: dict[str, Any] | None = None
        self.otp: str | None = None
        self.otp_tries = 0
        self.finished = False
        self.customer_answer: asyncio.Future[str] | None = None  # while WAITING: the customer's answer

    # --- the flow --------------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await self._run()
        except Stop as stop:
            if self.state in ("RECEIVED", "ACCEPTED"):
                self.state = "FAILED"
                self.reason = self.reason or _describe(stop)
        finally:
            self.finished = True  # no task works on it any more (a PENDING one just waits to expire)

    async def _run(self) -> None:
        customer, amount = self.customer, self.body["amount"]
        asked = f"{amount['amount']} {amount['currency']}"
        await self._tell("PUT", f"/transactionRequests/{self.request_id}", {"transactionRequestState": "RECEIVED"},
                         self.payee_fsp)
        note = self.body.get("note")
        customer.text("request", f"{self.payee_name} asks you to pay {asked}" + (f" ({note})" if note else "") + ".",
                      transactionRequestId=self.request_id)
        decision = customer.request_to_pay
        if decision == "ask":
            decision = await self._ask()
        if decision == "decline":
            customer.text("declined", f"You declined to pay {asked} to {self.payee_name}.",
                          transactionRequestId=self.request_id)
            await self._reject("the customer declined the request")
            return
        if decision == "ignore":
            self.state = "EXPIRED" if self.state == "WAITING" else "PENDING"
            return

        # the quote, with the payee's DFSP
        self.quote_id, self.transaction_id = _new_id(), _new_id()
        request: dict[str, Any] = {
            "quoteId": self.quote_id,
            "transactionId": self.transaction_id,
            "transactionRequestId": self.request_id,
            "payee": self.payee,
            "payer": bodies.party(customer, self.dfsp.name),
            "amountType": "RECEIVE",
            "amount": amount,
            "transactionType": self.body["transactionType"],
        }
        if note:
            request["note"] = note
        try:
            answer = await self._exchange("POST", "/quotes", request, self.payee_fsp,
                                          (self.dfsp.name, "quotes", self.quote_id))
        except Stop as stop:
            if stop.error is not None and stop.state == "ABORTED":
                await self._fail(stop.error.get("errorCode", "5100"), "the quote failed: "
                                 + str(stop.error.get("errorDescription", "")).split(" - ", 1)[-1])
            raise
        quote = answer.body or {}
        units = _usable_quote(quote, self.dfsp.currency)
        if units is None:
            await self._fail("3100", "the payee's quote has no usable transferAmount, ilpPacket, condition or expiration")
            return
        self.transfer_amount = quote["transferAmount"]
        total = f"{quote['transferAmount']['amount']} {quote['transferAmount']['currency']}"
        if customer.available < units:
            customer.text("failed", f"You cannot pay {total} to {self.payee_name}: your balance is too low.",
                          transactionRequestId=self.request_id)
            await self._fail("4000", f"the payer has {money.format_amount(customer.available)} "
                                     f"{self.dfsp.currency} available, {total} is needed")
            return

        # the payer approves by typing the OTP into the payee's POS or ATM
        if self.body.get("authenticationType") == "OTP" and not await self._authorize(total):
            return

        # the transfer
        self.state = "ACCEPTED"
        try:
            await self._pay(customer, quote, units, self.payee_fsp, self.transaction_id, self.payee_name)
        except Stop as stop:
            if stop.error and self.dfsp.books.entry(self.transaction_id, "out") is None:  # the books said no
                await self._fail(str(stop.error.get("errorCode", "4000")),
                                 str(stop.error.get("errorDescription")).split(" - ", 1)[-1])
            raise
        self.state = "COMPLETED"

    async def _ask(self) -> str:
        """Wait for the customer's answer on their phone: "approve", "decline", or "ignore" at the expiration."""
        self.state = "WAITING"
        self.customer_answer = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(self.customer_answer, max(self.remaining(), 0))
        except TimeoutError:
            return "ignore"
        finally:
            self.customer_answer = None

    def take_answer(self, answer: str) -> bool:
        """The customer answered on their phone; False if the request no longer waits for them."""
        if self.state != "WAITING" or self.customer_answer is None or self.customer_answer.done():
            return False
        self.customer_answer.set_result(answer)
        self.state = "RECEIVED" if answer == "approve" else "REJECTED"
        return True

    async def _authorize(self, total: str) -> bool:
        """Ask the payee's DFSP for the OTP until it is right (True) or the request is rejected (False)."""
        retries_left, resends = OTP_RETRIES, 0
        self._text_otp(total)
        key = (self.dfsp.name, "authorizations", self.request_id)
        while True:
            query = urlencode({"authenticationType": "OTP", "retriesLeft": retries_left,
                               "amount": self.transfer_amount["amount"] if self.transfer_amount else "",
                               "currency": self.dfsp.currency})
            answer = await self._exchange("GET", f"/authorizations/{self.request_id}?{query}", None, self.payee_fsp,
                                          key)
            put = answer.body or {}
            response = put.get("responseType")
            if response == "ENTERED":
                self.otp_tries += 1
                info = put.get("authenticationInfo") if isinstance(put.get("authenticationInfo"), dict) else {}
                value = info.get("authenticationValue")
                if isinstance(value, str) and self.otp and hmac.compare_digest(value.encode(), self.otp.encode()):
                    return True
                retries_left -= 1
                if retries_left <= 0:
                    self.customer.text("failed", f"The payment of {total} to {self.payee_name} was refused: "
                                                 f"wrong OTP entered {OTP_RETRIES} times.",
                                       transactionRequestId=self.request_id)
                    await self._reject(f"wrong OTP entered {OTP_RETRIES} times")
                    return False
            elif response == "RESEND":
                resends += 1
                if resends > OTP_RESENDS_MAX:
                    await self._reject(f"more than {OTP_RESENDS_MAX} OTP resends")
                    return False
                self._text_otp(total)
            elif response == "REJECTED":
                await self._reject("the payer cancelled at the payee's device")
                return False
            else:
                await self._fail("3100", "PUT /authorizations needs responseType ENTERED, REJECTED or RESEND")
                return False

    def _text_otp(self, total: str) -> None:
        self.otp = "".join(secrets.choice("0123456789") for _ in range(OTP_DIGITS))
        self.customer.text("otp", f"{self.otp} is your OTP to pay {total} to {self.payee_name}. "
                                  "Give it only at their till or ATM.",
                           transactionRequestId=self.request_id, otp=self.otp)

    async def _reject(self, reason: str) -> None:
        self.state, self.reason = "REJECTED", reason
        await self._tell("PUT", f"/transactionRequests/{self.request_id}", {
            "transactionRequestState": "REJECTED",
            "extensionList": {"extension": [{"key": "reason", "value": reason[:128]}]},
        }, self.payee_fsp)

    async def _fail(self, code: str, detail: str) -> None:
        self.state, self.reason = "FAILED", f"{code} {detail}"
        await self._tell("PUT", f"/transactionRequests/{self.request_id}/error", bodies.error(code, detail),
                         self.payee_fsp)

    # --- what people see -------------------------------------------------------------------------

    def current_state(self) -> str:
        if self.state == "PENDING" and self.expires <= datetime.now(UTC):
            return "EXPIRED"
        return self.state

    def view(self) -> dict[str, Any]:
        return {
            "transactionRequestId": self.request_id, "customer": self.customer.id,
            "payee": {"name": self.payee_name, "fspId": self.payee_fsp}, "amount": self.body.get("amount"),
            "transactionType": self.body.get("transactionType"),
            "authenticationType": self.body.get("authenticationType"), "state": self.current_state(),
            "reason": self.reason, "quoteId": self.quote_id, "transactionId": self.transaction_id,
            "transferAmount": self.transfer_amount, "otpTries": self.otp_tries, "receivedAt": self.received_at,
            "expiresAt": bodies.timestamp(self.expires),
        }

    def phone_view(self) -> dict[str, Any]:
        """The request as the customer's phone lists it (GET /<dfsp>/customers/<id>/requests)."""
        amount = self.body.get("amount") if isinstance(self.body.get("amount"), dict) else {}
        transaction_type = self.body.get("transactionType")
        return {
            "transactionRequestId": self.request_id, "payee": {"name": self.payee_name, "fspId": self.payee_fsp},
            "amount": amount.get("amount"), "currency": amount.get("currency"), "note": self.body.get("note"),
            "useCase": _use_case_of(transaction_type), "transactionType": transaction_type,
            "authenticationType": self.body.get("authenticationType"), "state": self.current_state(),
            "receivedAt": self.received_at, "expiresAt": bodies.timestamp(self.expires),
        }


def _use_case_of(transaction_type: Any) -> str | None:
    """The driving API's name of a payee-initiated transactionType (mobile_sim.usecases), if it has one."""
    if not isinstance(transaction_type, dict):
        return None
    key = (transaction_type.get("scenario"), transaction_type.get("initiator"), transaction_type.get("initiatorType"))
    return next((name for name, value in usecases.PAYEE_USE_CASES.items() if value == key), None)


def _new_id() -> str:
    return str(uuid.uuid4())


def _describe(stop: Stop) -> str:
    if stop.error:
        return f"{stop.error.get('errorCode')} {stop.error.get('errorDescription')}"
    return "no answer in time" if stop.state == "TIMED_OUT" else stop.state


# --- checks --------------------------------------------------------------------------------------


def check(dfsp: SimDfsp, body: dict[str, Any]) -> tuple[Customer, float]:
    """The customer asked to pay and the seconds left to work on it; Refused if we will not."""
    payer = body.get("payer")
    if not isinstance(payer, dict) or not isinstance(payer.get("partyIdType"), str) \
            or not isinstance(payer.get("partyIdentifier"), str):
        raise Refused("3100", "payer must be a PartyIdInfo with partyIdType and partyIdentifier")
    customer = dfsp.books.customer(payer["partyIdType"], payer["partyIdentifier"])
    if customer is None or payer.get("partySubIdOrType"):
        raise Refused("3204", f"{payer['partyIdType']} {payer['partyIdentifier']} is not a customer of {dfsp.name}")
    payee = body.get("payee")
    if not isinstance(payee, dict) or not isinstance(payee.get("partyIdInfo"), dict):
        raise Refused("3100", "payee must be a Party with partyIdInfo")
    bodies.check_amount(body.get("amount"), dfsp.currency, dfsp.name)
    problem = usecases.check_transaction_type(body.get("transactionType"))
    if problem:
        raise Refused("3100", problem)
    if body["transactionType"]["initiator"] != "PAYEE":
        raise Refused("4102", "a transaction request is payee-initiated: transactionType.initiator must be PAYEE")
    if body.get("authenticationType") not in (None, "OTP"):
        raise Refused("3100", f"authenticationType {body.get('authenticationType')} is not supported; use OTP or none")
    note = body.get("note")
    if note is not None and (not isinstance(note, str) or not 1 <= len(note) <= 128):
        raise Refused("3100", "note must be 1 to 128 characters")
    return customer, bodies.seconds_left(body.get("expiration"), DEFAULT_REQUEST_S, MAX_TIMEOUT_S,
                                         "the transaction request")


# --- the simulator's hook ------------------------------------------------------------------------


async def answer(sim: Simulator, message: Incoming) -> None:
    """POST /transactionRequests, or GET /transactionRequests/{ID}, to this DFSP as payer."""
    dfsp, body = message.dfsp, message.body or {}
    if message.method == "GET":
        request_id = str(message.ids[0])
        known = dfsp.requests.get(request_id)
        if known is None or known.payee_fsp != message.source:
            await sim.reply(message, "PUT", f"/transactionRequests/{request_id}/error",
                            bodies.error("3206", f"{dfsp.name} knows no transaction request {request_id}"))
        else:
            await sim.reply(message, "PUT", f"/transactionRequests/{request_id}", _state_body(known))
        return
    request_id = body.get("transactionRequestId")
    if not isinstance(request_id, str) or not request_id or "/" in request_id:
        log.warning("%s: dropped POST /transactionRequests without a usable transactionRequestId", dfsp.name)
        return
    known = dfsp.requests.get(request_id)
    if known is not None:  # a resend gets the state; the same id for another request is 3106
        if known.body == body:
            await sim.reply(message, "PUT", f"/transactionRequests/{request_id}", _state_body(known))
        else:
            await sim.reply(message, "PUT", f"/transactionRequests/{request_id}/error",
                            bodies.error("3106", f"transaction request {request_id} was sent before with other data"))
        return
    try:
        customer, timeout_s = check(dfsp, body)
        if sim.payer_requests_in_flight >= REQUESTS_IN_FLIGHT_MAX:
            raise Refused("2003", f"{REQUESTS_IN_FLIGHT_MAX} transaction requests are already being worked on")
    except Refused as exc:
        await sim.reply(message, "PUT", f"/transactionRequests/{request_id}/error", bodies.error(exc.code, exc.detail))
        return
    request = PayerRequest(sim, dfsp, message, customer, timeout_s)
    dfsp.remember_request(request_id, request)
    sim.payer_requests_in_flight += 1
    try:
        await request.run()
    finally:
        sim.payer_requests_in_flight -= 1


def _state_body(request: PayerRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"transactionRequestState": API_STATE[request.current_state()]}
    if request.transaction_id and request.state in ("ACCEPTED", "COMPLETED"):
        body["transactionId"] = request.transaction_id
    return body


async def transaction_status(sim: Simulator, dfsp: SimDfsp, transaction_id: str) -> tuple[int, dict[str, Any]]:
    """GET /<dfsp>/transactionStatus/<ID>: ask the payee's DFSP GET /transactions/{ID} about a payment we made."""
    entry = dfsp.books.entry(transaction_id, "out")
    if entry is None:
        raise FspiopError("3207", f"{dfsp.name} made no payment with transactionId {transaction_id}")
    flow = WireFlow(sim, dfsp, STATUS_TIMEOUT_S)
    body: dict[str, Any] = {"transactionId": transaction_id, "payeeFsp": entry.counterparty, "transactionState": None}
    try:
        answer = await flow._exchange("GET", f"/transactions/{transaction_id}", None, entry.counterparty,
                                      (dfsp.name, "transactions", transaction_id))
    except Stop as stop:
        body["messages"] = flow.messages
        if stop.error:
            body["error"] = stop.error
        return stop.status, body
    found = answer.body or {}
    body.update({k: found[k] for k in ("transactionState", "completedTimestamp", "code") if k in found})
    body["messages"] = flow.messages
    return 200, body


def waiting_for(dfsp: SimDfsp, customer: Customer) -> list[dict[str, Any]]:
    """GET /<dfsp>/customers/<id>/requests: the requests waiting for this customer's answer, newest first."""
    waiting = []
    for request in reversed(dfsp.requests.values()):
        if len(waiting) >= REQUESTS_LISTED:
            break
        if request.customer is customer and request.state == "WAITING":
            waiting.append(request.phone_view())
    return waiting


def answer_request(dfsp: SimDfsp, customer: Customer, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST /<dfsp>/customers/<id>/requests/<ID>: the customer approves or declines on their phone.

    404 / 3206 for a request that is not this customer's or no longer waits; 400 / 3100 for a bad body.
    """
    request = dfsp.requests.get(request_id)
    if request is None or request.customer is not customer or request.state != "WAITING":
        raise FspiopError("3206", f"no request {request_id} waits for the answer of {customer.id}", status=404)
    unknown = sorted(set(body) - set(ANSWER_FIELDS))
    answer = body.get("answer")
    if unknown or answer not in CUSTOMER_ANSWERS:
        raise FspiopError("3100", 'the body must be {"answer": "approve"} or {"answer": "decline"}')
    if not request.take_answer(answer):
        raise FspiopError("3206", f"request {request_id} no longer waits for an answer", status=404)
    return {"transactionRequestId": request_id, "answer": answer, "state": request.current_state()}


def recent(dfsp: SimDfsp, limit: int = 50) -> list[dict[str, Any]]:
    """The newest transaction requests received as payer, first."""
    return [request.view() for request in list(dfsp.requests.values())[::-1][:limit]]

