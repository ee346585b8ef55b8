"""Payee-initiated payments and bulk quotes: routed between DFSPs by FSPIOP-Destination, not stored.

This is what Mojaloop's transaction-requests-service does for `/transactionRequests`,
`/authorizations` and `/transactions`, and its quoting-service in pass-through mode
(SIMPLE_ROUTING_MODE, the default) for `/bulkQuotes`: the hub checks who may talk to whom, forwards
the message unchanged to the destination's registered endpoint, and keeps nothing of it. It never
checks an OTP or a QR code, nor the state a DFSP reports: the two DFSPs own these conversations.

What the hub checks, on every message:
- FSPIOP-Destination must be a registered, active participant with an endpoint for the message
  (FSPIOP_CALLBACK_URL_TRX_REQ_SERVICE, ..._AUTHORIZATIONS or ..._BULK_QUOTES), else the sender
  gets 3201 "Destination FSP Error" as an error callback. An error callback that cannot be
  forwarded is dropped instead, so that two errors never chase each other.
- `POST /bulkQuotes` also makes the checks of `POST /quotes` (miniloop.services.quotes), in the
  currency of its first individual quote as the quoting-service does: the payer must be able to
  trade in it (3100), and so must the payee (3201).
A request (POST, GET) that cannot be delivered gives its sender 1001; a callback that cannot be
delivered is only recorded (miniloop.services.outbox).

Each step people follow is announced after commit (docs/events.md): a request to pay, its
answer, an authorization asked and answered, a transaction's outcome, a bulk quote and its
answer, and every error callback a DFSP sends. Events never carry an OTP or a voucher code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from miniloop.bus import subjects
from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.models import ErrorInformationObject
from miniloop.fspiop.request_models import (
    AuthorizationsIDPutResponse,
    AuthorizationsQuery,
    BulkQuotesIDPutResponse,
    BulkQuotesPostRequest,
    TransactionRequestsIDPutResponse,
    TransactionRequestsPostRequest,
    TransactionsIDPutResponse,
)
from miniloop.ledger import Ledger, Tx
from miniloop.services import outbox
from miniloop.services.outbox import Inbound
from miniloop.services.quotes import forward_request

# The resources this service routes, and the entity of their events (ml.event.<entity>.<id>.<what>).
ENTITIES = {
    "transactionRequests": "transactionRequest",
    "authorizations": "authorization",
    "transactions": "transaction",
    "bulkQuotes": "bulkQuote",
}
_SUBJECTS: dict[str, Callable[[str, str], str]] = {
    "transactionRequests": subjects.transaction_request,
    "authorizations": subjects.authorization,
    "transactions": subjects.transaction,
    "bulkQuotes": subjects.bulk_quote,
}
_ID_KEYS = {  # the field that names the id in each resource's events
    "transactionRequests": "transactionRequestId",
    "authorizations": "transactionRequestId",  # an authorization's {ID} is its transaction request's
    "transactions": "transactionId",
    "bulkQuotes": "bulkQuoteId",
}
_SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a path {ID} that is not one gets no event

Body = (TransactionRequestsIDPutResponse | AuthorizationsIDPutResponse | TransactionsIDPutResponse
        | BulkQuotesIDPutResponse | ErrorInformationObject | None)


class Requests:
    """The four routed resources; each method is one writer command, so a 202/200 means recorded."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def request_transaction(self, msg: Inbound, body: TransactionRequestsPostRequest) -> None:
        """POST /transactionRequests, from the payee's FSP to the payer's."""
        await self.ledger.write(request_transaction, msg, body)

    async def request_bulk_quote(self, msg: Inbound, body: BulkQuotesPostRequest) -> None:
        """POST /bulkQuotes, from the payer's FSP to the payee's."""
        await self.ledger.write(request_bulk_quote, msg, body)

    async def authorize(self, msg: Inbound, transaction_request_id: str, query: AuthorizationsQuery) -> None:
        """GET /authorizations/{ID}?authenticationType=..., from the payer's FSP to the payee's."""
        await self.ledger.write(authorize, msg, transaction_request_id, query)

    async def relay(self, msg: Inbound, method: str, resource: str, resource_id: str, body: Body = None) -> None:
        """Every other message of these resources: `GET /<resource>/{ID}` (no body), and the
        callbacks `PUT /<resource>/{ID}` and `PUT /<resource>/{ID}/error` (`body` decoded)."""
        await self.ledger.write(relay, msg, method, resource, resource_id, body)


# ---------------------------------------------------------------- writer commands


def request_transaction(tx: Tx, msg: Inbound, body: TransactionRequestsPostRequest) -> None:
    request_id = body.transaction_request_id
    if not forward_to_destination(tx, msg, "POST", f"/transactionRequests/{request_id}/error"):
        return
    tx.emit(subjects.transaction_request(request_id, "requested"), {
        "type": "transactionRequest.requested", "transactionRequestId": request_id,
        "payeeFsp": msg.source, "payerFsp": msg.destination,
        "amount": body.amount.amount, "currency": body.amount.currency,
        "scenario": body.transaction_type.scenario, "initiator": body.transaction_type.initiator,
        "initiatorType": body.transaction_type.initiator_type, "authenticationType": body.authentication_type,
    })


def request_bulk_quote(tx: Tx, msg: Inbound, body: BulkQuotesPostRequest) -> None:
    bulk_quote_id = body.bulk_quote_id
    error_path = f"/bulkQuotes/{bulk_quote_id}/error"
    currency = body.individual_quotes[0].amount.currency  # the quoting-service checks this one only
    payer, payee = msg.source, msg.destination or ""
    if not forward_request(tx, msg, currency, error_path):
        return
    tx.emit(subjects.bulk_quote(bulk_quote_id, "requested"), {
        "type": "bulkQuote.requested", "bulkQuoteId": bulk_quote_id, "payerFsp": payer, "payeeFsp": payee,
        "individualQuotes": len(body.individual_quotes),
        "currencies": sorted({quote.amount.currency for quote in body.individual_quotes}),
        "expiration": body.expiration,
    })


def authorize(tx: Tx, msg: Inbound, transaction_request_id: str, query: AuthorizationsQuery) -> None:
    if not forward_to_destination(tx, msg, "GET", f"/authorizations/{transaction_request_id}/error"):
        return
    if _SUBJECT_TOKEN.fullmatch(transaction_request_id):
        tx.emit(subjects.authorization(transaction_request_id, "requested"), {
            "type": "authorization.requested", "transactionRequestId": transaction_request_id,
            "payerFsp": msg.source, "payeeFsp": msg.destination,
            "authenticationType": query.authentication_type, "retriesLeft": query.retries_left,
            "amount": query.amount, "currency": query.currency,
        })


def relay(tx: Tx, msg: Inbound, method: str, resource: str, resource_id: str, body: Body) -> None:
    error_path = f"/{resource}/{resource_id}/error"
    if not forward_to_destination(tx, msg, method, None if isinstance(body, ErrorInformationObject) else error_path):
        return
    event = _event(resource, resource_id, msg, body)
    if event is not None and _SUBJECT_TOKEN.fullmatch(resource_id):
        what, fields = event
        tx.emit(_SUBJECTS[resource](resource_id, what), {
            "type": f"{ENTITIES[resource]}.{what}", _ID_KEYS[resource]: resource_id, **fields,
        })


def forward_to_destination(tx: Tx, msg: Inbound, method: str, error_path: str | None,
                           is_request: bool | None = None) -> bool:
    """Forward `msg` to FSPIOP-Destination if it is active and reachable; else 3201 to the sender.

    `error_path`: where the sender hears of a refusal, None for an error callback (dropped then).
    A request (by default GET and POST) also gets 1001 there if it cannot be delivered. The
    third-party routes (miniloop.services.thirdparty) forward the same way.
    """
    to = msg.destination or ""
    problem = _inactive(tx, to)
    if problem is None:
        request = method in ("GET", "POST") if is_request is None else is_request
        if outbox.forward(tx, msg, to, method, reply_error_to=error_path if request else None):
            return True
        problem = _no_endpoint(to)
    if error_path is not None:
        outbox.reply_error(tx, msg, error_path, problem)
    return False


def _inactive(tx: Tx, name: str) -> FspiopError | None:
    """3201 if `name` is not a registered, active participant."""
    row = tx.cached(("active", name), lambda: tx.conn.execute(
        "SELECT is_active FROM participant WHERE name = ?", (name,)).fetchone())
    if row is None:
        return FspiopError("3201", f"destination FSP {name} does not exist")
    if not row["is_active"]:
        return FspiopError("3201", f"destination FSP {name} is not active")
    return None


def _no_endpoint(name: str | None) -> FspiopError:
    return FspiopError("3201", f"{name} has registered no endpoint for this message")


def _event(resource: str, resource_id: str, msg: Inbound, body: Body) -> tuple[str, dict[str, Any]] | None:
    """What a forwarded GET or PUT announces: (what happened, fields), or None."""
    if isinstance(body, ErrorInformationObject):
        return "rejected", {"by": msg.source, "to": msg.destination,
                            "errorCode": body.error_information.error_code}
    sender, receiver = msg.source, msg.destination
    if body is None:  # a GET: only GET /transactions/{ID} is a step of its own; the others ask again
        if resource == "transactions":
            return "requested", {"payerFsp": sender, "payeeFsp": receiver}
        return None
    if isinstance(body, TransactionRequestsIDPutResponse):
        return "answered", {"payerFsp": sender, "payeeFsp": receiver,
                            "transactionRequestState": body.transaction_request_state,
                            "transactionId": body.transaction_id}
    if isinstance(body, AuthorizationsIDPutResponse):
        info = body.authentication_info
        return "answered", {"payeeFsp": sender, "payerFsp": receiver, "responseType": body.response_type,
                            "authenticationType": info.authentication if info else None}
    if isinstance(body, TransactionsIDPutResponse):
        return "answered", {"payeeFsp": sender, "payerFsp": receiver, "transactionState": body.transaction_state,
                            "completedTimestamp": body.completed_timestamp}
    results = body.individual_quote_results or []
    return "answered", {"payeeFsp": sender, "payerFsp": receiver, "individualQuoteResults": len(results),
                        "failed": sum(1 for result in results if result.error_information is not None),
                        "expiration": body.expiration}
