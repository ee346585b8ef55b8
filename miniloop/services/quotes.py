"""Quotes: routed between payer and payee FSPs, stored, and checked for duplicates.

This is Mojaloop's quoting service in its persistent mode (SIMPLE_ROUTING_MODE=false): the hub
checks that both FSPs can trade in the currency, keeps each quote and the hash of its request,
and answers a resent quote by forwarding it again and a modified one with 3106. The payee's
answer (PUT /quotes/{ID}) is stored too, so the timeline of a payment can show its terms.
The hub never computes fees or ILP packets: the payee FSP does.
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

from miniloop import money
from miniloop.bus import subjects
from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.models import QuotesIDPutResponse, QuotesPostRequest
from miniloop.ledger import Ledger, Tx
from miniloop.services import outbox
from miniloop.services.outbox import Inbound
from miniloop.services.transfers import POSITION


class Quotes:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def request(self, msg: Inbound, body: QuotesPostRequest) -> None:
        await self.ledger.write(request, msg, body)

    async def answer(self, msg: Inbound, quote_id: str, body: QuotesIDPutResponse) -> None:
        await self.ledger.write(answer, msg, quote_id, body)

    async def relay(self, msg: Inbound, method: str, quote_id: str, error_code: str | None = None) -> None:
        """GET /quotes/{ID} and PUT /quotes/{ID}/error: forwarded to FSPIOP-Destination."""
        await self.ledger.write(relay, msg, method, quote_id, error_code)


def request(tx: Tx, msg: Inbound, body: QuotesPostRequest) -> None:
    """POST /quotes from the payer FSP: check, store, forward to the payee FSP."""
    quote_id = body.quote_id
    error_path = f"/quotes/{quote_id}/error"
    existing = tx.conn.execute("SELECT request_hash FROM quote WHERE id = ?", (quote_id,)).fetchone()
    if existing is not None:
        if existing["request_hash"] != msg.body_hash:
            outbox.reply_error(tx, msg, error_path, FspiopError("3106", "a quote with this id and a different body exists"))
        elif not outbox.forward(tx, msg, msg.destination or "", "POST", reply_error_to=error_path):
            outbox.reply_error(tx, msg, error_path, _no_endpoint(msg.destination))
        return

    currency = body.amount.currency
    payer = msg.source
    payee = msg.destination or ""
    if not forward_request(tx, msg, currency, error_path):
        return
    tx.conn.execute(
        "INSERT INTO quote (id, transaction_id, payer_fsp, payee_fsp, amount_type, amount, currency, request_hash, "
        "state, created_date, changed_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'RECEIVED', ?, ?)",
        (quote_id, body.transaction_id, payer, payee, body.amount_type,
         money.to_units(Decimal(body.amount.amount)), currency, msg.body_hash, tx.now, tx.now),
    )
    tx.emit(subjects.quote(quote_id, "requested"), {
        "type": "quote.requested", "quoteId": quote_id, "transactionId": body.transaction_id,
        "payerFsp": payer, "payeeFsp": payee, "amountType": body.amount_type,
        "amount": body.amount.amount, "currency": currency,
    })


def answer(tx: Tx, msg: Inbound, quote_id: str, body: QuotesIDPutResponse) -> None:
    """PUT /quotes/{ID} from the payee FSP: record the terms, forward to the payer FSP."""
    to = msg.destination or ""
    if not _from_the_payee(tx, msg, quote_id):
        return
    if not outbox.forward(tx, msg, to, "PUT"):
        outbox.reply_error(tx, msg, f"/quotes/{quote_id}/error", _no_endpoint(to))
        return
    answered = tx.conn.execute(
        "UPDATE quote SET state = 'ANSWERED', transfer_amount = ?, ilp_condition = ?, expiration = ?, "
        "changed_date = ? WHERE id = ? AND payee_fsp = ? AND payer_fsp = ? RETURNING id",
        (money.to_units(Decimal(body.transfer_amount.amount)), body.condition, body.expiration, tx.now, quote_id,
         msg.source, to),
    ).fetchone()
    if answered is None:  # not a quote the hub routed between these two: forwarded, not recorded
        return
    tx.emit(subjects.quote(quote_id, "answered"), {
        "type": "quote.answered", "quoteId": quote_id, "payeeFsp": msg.source, "payerFsp": to,
        "transferAmount": body.transfer_amount.amount, "currency": body.transfer_amount.currency,
        "payeeFspFee": body.payee_fsp_fee.amount if body.payee_fsp_fee else None,
        "expiration": body.expiration,
    })


def relay(tx: Tx, msg: Inbound, method: str, quote_id: str, error_code: str | None) -> None:
    to = msg.destination or ""
    if method == "PUT" and not _from_the_payee(tx, msg, quote_id):
        return
    reply_error_to = f"/quotes/{quote_id}/error" if method == "GET" else None
    if not outbox.forward(tx, msg, to, method, reply_error_to=reply_error_to):
        if method == "GET":
            outbox.reply_error(tx, msg, f"/quotes/{quote_id}/error", _no_endpoint(to))
        return
    rejected = error_code is not None and tx.conn.execute(
        "UPDATE quote SET state = 'REJECTED', error_code = ?, changed_date = ? WHERE id = ? AND payee_fsp = ? "
        "RETURNING id", (error_code, tx.now, quote_id, msg.source),
    ).fetchone()
    if rejected:
        tx.emit(subjects.quote(quote_id, "rejected"), {
            "type": "quote.rejected", "quoteId": quote_id, "by": msg.source, "errorCode": error_code,
        })


def _from_the_payee(tx: Tx, msg: Inbound, quote_id: str) -> bool:
    """A callback about a quote the hub routed comes from its payee FSP and goes to its payer FSP
    (as a fulfil must come from the transfer's payee); else 3100 to the sender, nothing forwarded.
    A quote the hub has not seen is routed by its headers, as in Mojaloop."""
    row = tx.conn.execute("SELECT payer_fsp, payee_fsp FROM quote WHERE id = ?", (quote_id,)).fetchone()
    if row is None:
        return True
    if msg.source != row["payee_fsp"]:
        problem = "FSPIOP-Source header should match the quote's Payee FSP"
    elif (msg.destination or "") != row["payer_fsp"]:
        problem = "FSPIOP-Destination header should match the quote's Payer FSP"
    else:
        return True
    outbox.reply_error(tx, msg, f"/quotes/{quote_id}/error", FspiopError("3100", problem))
    return False


def forward_request(tx: Tx, msg: Inbound, currency: str, error_path: str) -> bool:
    """A quote request (single or bulk) to the payee FSP, if both FSPs can trade in `currency`
    (3100 for the payer, 3201 for the payee) and the payee has an endpoint; else the error."""
    payer, payee = msg.source, msg.destination or ""
    problem = cannot_trade(tx, payer, currency)
    if problem:
        outbox.reply_error(tx, msg, error_path, FspiopError("3100", f"payer FSP {payer} {problem}"))
        return False
    problem = cannot_trade(tx, payee, currency)
    if problem:
        outbox.reply_error(tx, msg, error_path, FspiopError("3201", f"payee FSP {payee} {problem}"))
        return False
    if not outbox.forward(tx, msg, payee, "POST", reply_error_to=error_path):
        outbox.reply_error(tx, msg, error_path, _no_endpoint(payee))
        return False
    return True


def cannot_trade(tx: Tx, name: str, currency: str) -> str | None:
    """Why `name` cannot take part in a payment in `currency`, or None."""
    row: sqlite3.Row | None = tx.cached(("can trade", name, currency), lambda: tx.conn.execute(
        "SELECT p.is_active, a.is_active AS account_active FROM participant p LEFT JOIN account a "
        "ON a.participant_id = p.id AND a.currency = ? AND a.ledger_account_type_id = ? WHERE p.name = ?",
        (currency, POSITION, name),
    ).fetchone())
    if row is None:
        return "does not exist"
    if not row["is_active"]:
        return "is not active"
    if row["account_active"] is None:
        return f"has no {currency} account"
    if not row["account_active"]:
        return f"has no active {currency} account"
    return None


def _no_endpoint(name: str | None) -> FspiopError:
    return FspiopError("3201", f"{name} has registered no endpoint for this message")
