"""Request to pay: a merchant, agent or ATM asks a customer of another DFSP to pay it (payee-initiated).

Why: FSPIOP's payee-initiated use cases (merchant-initiated payment, agent and ATM cash-out) start
at the payee's DFSP, and the payer approves with a one-time password typed into the payee's
point of sale (FSPIOP.md §7). POST /<dfsp>/requestToPay on the payee's DFSP runs that from the
payee's side, as the POS or ATM would, and answers like /send: the final state, the ids, the
amounts and every message on the wire.

1. GET /parties/{Type}/{ID} of the payer -> PUT /parties (its DFSP);
2. POST /transactionRequests to the payer's DFSP (transactionType of the use case, authentication
   OTP unless "authentication": "none", an expiration at the end of the time allowed);
3. then it only reacts, until the deadline: the payer's DFSP answers PUT /transactionRequests/{ID}
   RECEIVED; it quotes (POST /quotes with transactionRequestId, answered by mobile_sim.payee as
   any quote); it asks GET /authorizations/{ID}?retriesLeft=N..., answered here with PUT
   /authorizations/{ID} {authenticationInfo: {OTP, value}, responseType: ENTERED} (the value the
   customer read from their phone, a literal one, or responseType REJECTED for "cancel"); it sends
   POST /transfers, fulfilled by mobile_sim.payee. The flow ends COMMITTED once the switch took
   our fulfilment; REJECTED when the payer's DFSP answers PUT /transactionRequests/{ID} REJECTED
   (customer declined, OTP wrong too often, cancelled); ABORTED on an error callback; TIMED_OUT
   at the deadline.

The messages of step 3 reach this flow through `tap` (mobile_sim.sim calls it for every message):
a message about a transaction request a flow is waiting for is logged and queued for it, and our
own answers to them (PUT /quotes, PUT /transfers) are logged by Simulator.reply. Everything is
bounded: flows at once, events queued, authorizations answered per flow.

With "otp": "ask" a person types the OTP at the till: the flow runs in the background and pauses
at each GET /authorizations (state WAITING_FOR_OTP, with the GET's retriesLeft); the POST, then
each PUT /<dfsp>/requestToPay/<ID> {"otp": "<digits>" | "cancel"} (`type_otp`), answers at the
next pause or at the end. GET /<dfsp>/requestToPay/<ID> (`current`) shows a flow while it runs
and the last FINISHED_KEPT finished ones per DFSP.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from miniloop import money
from miniloop.fspiop import ilp
from miniloop.fspiop.errors import FspiopError
from miniloop.services.oracles import PARTY_ID_TYPES
from mobile_sim import bodies, usecases
from mobile_sim.dfsp import Customer, SimDfsp
from mobile_sim.fspiop_client import Answer
from mobile_sim.payee import parties_path
from mobile_sim.pricing import text
from mobile_sim.send import (
    RUNNING,
    PausableFlow,
    Stop,
    _bad,
    _error_info,
    _identifier,
    money_of,
    note_of,
    ordering_customer,
    timeout_of,
)

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

FIELDS = ("from", "fromIdType", "payer", "amount", "currency", "useCase", "authentication", "otp", "note",
          "timeoutSeconds")
RTP_MAX = 200  # requests to pay running at once, all DFSPs together
EVENTS_MAX = 100  # messages queued for one flow
AUTHORIZATIONS_MAX = 10  # GET /authorizations one flow answers; past that it answers REJECTED
_OTP = re.compile(r"\d{3,10}")
WAITING_FOR_OTP = "WAITING_FOR_OTP"


@dataclass(frozen=True)
class RtpOrder:
    """A checked POST /<dfsp>/requestToPay body."""

    customer: Customer  # the payee: merchant, agent or ATM
    id_type: str  # the payer's party
    party_id: str
    amount: Decimal
    currency: str
    use_case: str
    authentication: str  # "OTP" or "none"
    otp: str  # "phone", "ask" (a person types it: PUT /<dfsp>/requestToPay/<ID>), "cancel" or the digits to type
    note: str | None
    timeout_s: float


def parse_order(dfsp: SimDfsp, body: dict[str, Any]) -> RtpOrder:
    """Check a /requestToPay body; FspiopError 3100 for bad input."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise _bad(f"{unknown[0]} is not a field of /requestToPay (fields: {', '.join(FIELDS)})")
    customer = ordering_customer(dfsp, body)
    payer = body.get("payer")
    if isinstance(payer, dict):
        if set(payer) - {"idType", "id"}:
            raise _bad('payer must be "TYPE/ID" or {"idType": ..., "id": ...}')
        id_type, party_id = payer.get("idType", "MSISDN"), payer.get("id")
    elif isinstance(payer, str):
        id_type, _, party_id = payer.rpartition("/")
        id_type = id_type or "MSISDN"
    else:
        raise _bad('payer is required: "TYPE/ID" of the customer to charge, such as "MSISDN/27720000001"')
    if id_type not in PARTY_ID_TYPES:
        raise _bad(f"the payer's id type must be one of {', '.join(PARTY_ID_TYPES)}")
    party_id = _identifier(party_id, "payer id")
    currency, amount = money_of(dfsp, body)
    use_case = body.get("useCase", "merchant-request")
    if use_case not in usecases.PAYEE_USE_CASES:
        raise _bad(f"useCase must be one of {', '.join(usecases.PAYEE_USE_CASES)}")
    authentication = body.get("authentication", "OTP")
    if authentication not in ("OTP", "none"):
        raise _bad('authentication must be "OTP" or "none"')
    otp = body.get("otp", "phone")
    if not isinstance(otp, str) or not (otp in ("phone", "ask", "cancel") or _OTP.fullmatch(otp)):
        raise _bad('otp must be "phone" (read from the payer\'s phone), "ask" (typed with PUT), "cancel", '
                   'or 3 to 10 digits to type')
    note = note_of(body)
    return RtpOrder(customer, id_type, party_id, amount, currency, use_case, authentication, otp, note,
                    timeout_of(body))


class RequestToPay(PausableFlow):
    """One run of /requestToPay, from the payee's side."""

    FEED_KIND = "requestToPay"

    def __init__(self, sim: Simulator, dfsp: SimDfsp, order: RtpOrder) -> None:
        super().__init__(sim, dfsp, order.timeout_s, sim.rtp_records)
        self.order = order
        self.request_id = str(uuid.uuid4())
        self.transaction_type = usecases.transaction_type(order.use_case)
        self.events: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(maxsize=EVENTS_MAX)
        self.step = "lookup"
        self.payer: dict[str, Any] | None = None
        self.payer_fsp: str | None = None
        self.request_state: str | None = None
        self.quote_id: str | None = None
        self.transaction_id: str | None = None
        self.transfer_id: str | None = None
        self.quote: dict[str, Any] | None = None
        self.authorizations: list[dict[str, Any]] = []
        self.balance_before = order.customer.balance
        self.retries_left: int | None = None  # while WAITING_FOR_OTP: the retriesLeft the payer's DFSP gave

    @property
    def flow_id(self) -> str:
        return self.request_id

    # --- what the simulator hands us ------------------------------------------------------------

    def saw(self, message: Incoming) -> None:
        """A message about our transaction request arrived (called by the simulator's dispatch)."""
        self._record("in", message.method, message.path + (f"?{message.query}" if message.query else ""),
                     message.source, message.destination, message.body, at=message.at)
        self._queue(("in", message))

    def saw_reply(self, method: str, path: str, body: dict[str, Any] | None, destination: str,
                  answer: Answer) -> None:
        """Our DFSP answered a message about our transaction request (PUT /quotes, PUT /transfers)."""
        record = self._record("out", method, path, self.dfsp.name, destination, body)
        record["status"] = answer.status
        self._queue(("out", method, path, body, answer))

    def _queue(self, event: tuple[Any, ...]) -> None:
        try:
            self.events.put_nowait(event)
        except asyncio.QueueFull:
            pass  # a payer DFSP flooding us: the flow ends at its deadline anyway

    # --- the flow --------------------------------------------------------------------------------

    async def _run(self) -> None:
        order, dfsp = self.order, self.dfsp
        # 1. who is the payer, and at which DFSP?
        answer = await self._exchange("GET", parties_path(order.id_type, order.party_id, None), None, None,
                                      (dfsp.name, "parties", order.id_type, order.party_id, None))
        party = (answer.body or {}).get("party")
        if not isinstance(party, dict) or not isinstance(party.get("partyIdInfo"), dict):
            raise Stop("ABORTED", 502, {"errorCode": "3100", "errorDescription":
                                        "Generic validation error - the PUT /parties body has no party"})
        self.payer = party
        self.payer_fsp = str(party["partyIdInfo"].get("fspId") or answer.source)

        # 2. the transaction request
        self.step = "request"
        request: dict[str, Any] = {
            "transactionRequestId": self.request_id,
            "payee": bodies.party(order.customer, dfsp.name),
            "payer": party["partyIdInfo"],
            "amount": {"amount": text(order.amount), "currency": order.currency},
            "transactionType": self.transaction_type,
        }
        if order.note:
            request["note"] = order.note
        if order.authentication == "OTP":
            request["authenticationType"] = "OTP"
        request["expiration"] = bodies.timestamp_in(max(self.remaining(), 1.0))
        answer = await self._tell("POST", "/transactionRequests", request, self.payer_fsp)
        if not answer.accepted:
            raise Stop("ABORTED", 502, _error_info(answer.error), refused=True)

        # 3. react to the payer's DFSP until the transfer is ours, or it says no
        while True:
            event = await self._next()
            if event[0] == "in":
                await self._on_message(event[1])
            elif event[0] == "out" and self._on_reply(*event[1:]):
                return

    async def _next(self) -> tuple[Any, ...]:
        try:
            event = await asyncio.wait_for(self.events.get(), max(self.remaining(), 0))
        except TimeoutError:
            raise Stop("TIMED_OUT", 504, None) from None
        if event[0] == "stop":
            raise Stop("TIMED_OUT", 503, {"errorCode": "2003", "errorDescription":
                                          "Service currently unavailable - the simulator is stopping"})
        return event

    async def _on_message(self, message: Incoming) -> None:
        body = message.body or {}
        if message.resource == "transactionRequests":
            if message.is_error:
                raise Stop("ABORTED", 502, _error_info(body))
            self.request_state = body.get("transactionRequestState")
            if self.request_state == "REJECTED":
                reason = _reason(body)
                raise Stop("REJECTED", 502, {"errorCode": "4101", "errorDescription":
                                             "Payer rejected transaction request" + (f" - {reason}" if reason else "")})
        elif message.resource == "quotes":
            self.step = "quote"
            self.quote_id = body.get("quoteId")
            self.transaction_id = body.get("transactionId")
            self.quote = {"quoteId": self.quote_id, "amountType": body.get("amountType"), "amount": body.get("amount")}
        elif message.resource == "authorizations":
            self.step = "authorization"
            await self._authorize(message)
        elif message.resource == "transfers":
            self.step = "transfer"
            self.transfer_id = body.get("transferId")

    def _on_reply(self, method: str, path: str, body: dict[str, Any] | None, answer: Answer) -> bool:
        """Our answer to the payer's DFSP went out; True when it settles the flow as COMMITTED."""
        body = body or {}
        if path.startswith("/quotes/") and not path.endswith("/error") and self.quote is not None:
            self.quote.update({k: body[k] for k in ("transferAmount", "payeeFspFee", "payeeReceiveAmount",
                                                    "expiration", "condition") if k in body})
        elif path.startswith("/transfers/"):
            if path.endswith("/error"):
                raise Stop("ABORTED", 502, _error_info(body))
            if not answer.accepted:
                raise Stop("ABORTED", 502, _error_info(answer.error))
            return body.get("transferState") == "COMMITTED"
        return False

    async def _authorize(self, message: Incoming) -> None:
        """Answer GET /authorizations/{ID}: the customer types the OTP into our POS or ATM."""
        query = {k: v[0] for k, v in parse_qs(message.query).items()}
        attempt: dict[str, Any] = {k: query[k] for k in ("authenticationType", "retriesLeft", "amount", "currency")
                                   if k in query}
        self.authorizations.append(attempt)
        otp = self.order.otp
        if otp == "ask" and len(self.authorizations) <= AUTHORIZATIONS_MAX:
            otp = await self._ask_otp(attempt)
        elif otp == "phone":
            otp = self._otp_on_phone()
            if otp is None:
                attempt["problem"] = (f"no OTP on the phone of {self.order.id_type} {self.order.party_id}: "
                                      "its DFSP is not simulated here, or sent none; give the OTP as otp")
        if len(self.authorizations) > AUTHORIZATIONS_MAX or otp in (None, "cancel"):
            answer: dict[str, Any] = {"responseType": "REJECTED"}
        else:
            answer = {"authenticationInfo": {"authentication": "OTP", "authenticationValue": otp},
                      "responseType": "ENTERED"}
        attempt["responseType"] = answer["responseType"]
        if "authenticationInfo" in answer:
            attempt["entered"] = otp
        await self._tell("PUT", f"/authorizations/{self.request_id}", answer, message.source)

    async def _ask_otp(self, attempt: dict[str, Any]) -> str:
        """otp "ask": pause until the till types the OTP the customer reads out, or "cancel"."""
        retries = str(attempt.get("retriesLeft", ""))
        self.retries_left = int(retries) if retries.isdigit() else None
        try:
            otp = await self._pause("otp", WAITING_FOR_OTP, "no OTP was typed before the deadline")
        finally:
            self.retries_left = None
        self._announce(RUNNING)
        return str(otp)

    def _otp_on_phone(self) -> str | None:
        """The OTP the payer's DFSP texted to the payer for this request, as the customer reads it out."""
        payer_dfsp = self.sim.dfsps.get(self.payer_fsp or "")
        customer = payer_dfsp.books.customer(self.order.id_type, self.order.party_id) if payer_dfsp else None
        if customer is None:
            return None
        for text_message in reversed(customer.phone):
            if text_message.get("kind") == "otp" and text_message.get("transactionRequestId") == self.request_id:
                return text_message.get("otp")
        return None

    def result(self, state: str, error: dict[str, Any] | None = None) -> dict[str, Any]:
        customer = self.order.customer
        transaction = self.dfsp.transactions.get(self.transaction_id or "")
        body: dict[str, Any] = {
            "transactionRequestId": self.request_id,
            "useCase": self.order.use_case,
            "transactionType": self.transaction_type,
            "state": state,
            "step": self.step,
            "transactionRequestState": self.request_state,
            "payer": self.payer,
            "quoteId": self.quote_id,
            "transactionId": self.transaction_id,
            "transferId": self.transfer_id,
            "quote": self.quote,
            "authorizations": self.authorizations,
            "code": transaction.code if transaction is not None and state == "COMMITTED" else None,
            "messages": self.messages,
            "balances": {
                "customer": customer.id,
                "before": money.format_amount(self.balance_before),
                "after": money.format_amount(customer.balance),
                "reserved": money.format_amount(customer.reserved),
            },
        }
        if state == WAITING_FOR_OTP:
            body["retriesLeft"] = self.retries_left
        if error:
            body["error"] = error
        return body


def _reason(body: dict[str, Any]) -> str | None:
    """The reason a payer DFSP gave in its extensionList, if it gave one (ours does)."""
    extensions = (body.get("extensionList") or {}).get("extension") if isinstance(body.get("extensionList"), dict) \
        else None
    for extension in extensions if isinstance(extensions, list) else []:
        if isinstance(extension, dict) and extension.get("key") == "reason" and isinstance(extension.get("value"), str):
            return extension["value"]
    return None


# --- the simulator's hooks -------------------------------------------------------------------------


def request_of(message: Incoming) -> str | None:
    """The transactionRequestId a message to a payee DFSP belongs to, if it names one."""
    body = message.body or {}
    if message.resource == "transactionRequests" and message.method == "PUT":
        return message.ids[0]
    if message.resource == "authorizations" and message.method == "GET":
        return message.ids[0]
    if message.resource == "quotes" and message.method == "POST":
        request_id = body.get("transactionRequestId")
        return request_id if isinstance(request_id, str) else None
    if message.resource == "transfers" and message.method == "POST":
        try:
            quote_id = ilp.transaction_from_packet(body["ilpPacket"]).get("quoteId")
        except (ilp.IlpError, KeyError, TypeError):
            return None
        quoted = message.dfsp.quotes.get(str(quote_id))
        request_id = quoted.request.get("transactionRequestId") if quoted is not None else None
        return request_id if isinstance(request_id, str) else None
    return None


def tap(sim: Simulator, message: Incoming) -> bool:
    """Hand a message to the request to pay it belongs to; True if one took it."""
    if not sim.rtp_flows:
        return False
    request_id = request_of(message)
    flow = sim.rtp_flows.get((message.dfsp.name, request_id)) if request_id else None
    if flow is None:
        return False
    message.flow = flow
    flow.saw(message)
    return True


async def answer_authorization(sim: Simulator, message: Incoming) -> None:
    """GET /authorizations/{ID} that no request to pay of ours waits for: 3206, not found."""
    if message.flow is None:
        request_id = message.ids[0]
        await sim.reply(message, "PUT", f"/authorizations/{request_id}/error",
                        bodies.error("3206", f"{message.dfsp.name} is not waiting for transaction request {request_id}"))


def stop_all(sim: Simulator) -> None:
    """The server is stopping: end every request to pay now."""
    for flow in list(sim.rtp_flows.values()):
        flow._queue(("stop",))
        flow.pauses.stop()


async def request_to_pay(sim: Simulator, dfsp: SimDfsp, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /<dfsp>/requestToPay: (HTTP status, JSON body). Bad input raises FspiopError (400)."""
    order = parse_order(dfsp, body)
    if len(sim.rtp_flows) >= RTP_MAX:
        raise FspiopError("2003", f"{RTP_MAX} requests to pay are already running", status=503)
    flow = RequestToPay(sim, dfsp, order)
    sim.rtp_records.started(dfsp.name, flow.request_id, flow)  # counted at once (run() registers it too)
    if order.otp != "ask":
        return await flow.run()
    # a person types the OTP: the flow outlives this call, which answers at its first pause or its end
    if not sim.pool.start(flow.run(), f"/requestToPay {flow.request_id} of {dfsp.name}"):
        sim.rtp_records.ended(dfsp.name, flow.request_id)
        raise FspiopError("2003", "the simulated DFSPs are busy", status=503)
    return await flow.pauses.next()


def _typed(body: dict[str, Any]) -> str:
    """A PUT /<dfsp>/requestToPay/<ID> body: exactly {"otp": "<3 to 10 digits>"} or {"otp": "cancel"}; else 3100."""
    otp = body.get("otp")
    if set(body) != {"otp"} or not isinstance(otp, str) or not (otp == "cancel" or _OTP.fullmatch(otp)):
        raise _bad('the body must be exactly {"otp": "<3 to 10 digits>"} or {"otp": "cancel"}')
    return otp


async def type_otp(sim: Simulator, dfsp: SimDfsp, request_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """PUT /<dfsp>/requestToPay/<ID>: the till types the OTP (or cancels); then the next pause or the end."""
    flow = sim.rtp_records.running_flow(dfsp.name, request_id)
    if flow is None:
        raise FspiopError("3206", f"{dfsp.name} has no /requestToPay {request_id} running", status=404)
    otp = _typed(body)
    if not flow.pauses.answer("otp", otp):
        raise _bad(f"/requestToPay {request_id} waits for no OTP now ({flow.showing})")
    return await flow.pauses.next()


def current(sim: Simulator, dfsp: SimDfsp, request_id: str) -> dict[str, Any]:
    """GET /<dfsp>/requestToPay/<ID>: the flow's body now (running, or one of the last finished)."""
    body = sim.rtp_records.body_of(dfsp.name, request_id)
    if body is None:
        raise FspiopError("3206", f"{dfsp.name} has no /requestToPay {request_id} (it keeps the last "
                                  f"{sim.rtp_records.kept} finished ones)", status=404)
    return body

