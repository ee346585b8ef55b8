"""What a simulated DFSP does as payee: answer lookups, quote, and fulfil transfers.

Why it works this way: it behaves like a DFSP running Mojaloop's SDK, so what the switch and the
payer see is what they would see of a real one.

- GET /parties -> PUT /parties/... with the customer, or PUT .../error 3204 when unknown.
- POST /quotes -> PUT /quotes/{ID} with the amounts (mobile_sim.pricing), an ILP packet, its
  condition and an expiration 60 s ahead; or PUT /quotes/{ID}/error: 3204 unknown payee, 5106
  another currency, 5103 an amount that does not cover the fee, 3100 a request we cannot read.
  A resent POST for a quote already answered gets the same answer again.
- POST /transfers -> checks the transfer against the packet it issued, recomputes the fulfilment,
  credits the customer and sends PUT /transfers/{ID} {fulfilment, completedTimestamp, COMMITTED}.
  A transfer that does not match is refused with PUT /transfers/{ID}/error **5105** "Payee FSP
  rejected transaction": the transfer is well formed (so not 3100, which the switch uses for
  broken requests and would be indistinguishable from it), it is the payee *FSP* that refuses it
  (not the customer, 5104), and 5103 is for quotes. An expired quote gets 3302 "Quote expired",
  as the API asks of the payee FSP. A resent POST gets the same PUT again; money moves once.
- Later news about a transfer (settle_books): the payer side commits or releases its reservation;
  the payee side takes a credit back if the switch aborted the transfer after all.
- GET /transactions/{ID} (from the payer's DFSP) -> PUT /transactions/{ID} {transactionState,
  completedTimestamp, code?} from the record kept when the transfer was fulfilled: COMPLETED, or
  REJECTED if the switch took it back. A WITHDRAWAL (cash-out) gets a `code` the customer shows
  to collect the cash. A transaction we were not paid in, or that another DFSP asks about, is
  PUT /transactions/{ID}/error **3207** "Transaction ID not found".
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from miniloop import money
from miniloop.fspiop import ilp
from mobile_sim import bodies
from mobile_sim.dfsp import Customer, Quoted, SimDfsp, Transaction
from mobile_sim.pricing import QuoteRefused, quote_terms, text

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

log = logging.getLogger(__name__)

QUOTE_VALID_S = 60.0
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read out over a counter
CODE_LENGTH = 8


# --- parties -------------------------------------------------------------------------------------


def parties_path(id_type: str, party_id: str, sub_id: str | None) -> str:
    return f"/parties/{id_type}/{party_id}" + (f"/{sub_id}" if sub_id else "")


async def answer_party(sim: Simulator, message: Incoming) -> None:
    id_type, party_id, sub_id = message.ids
    assert id_type is not None and party_id is not None
    dfsp = message.dfsp
    path = parties_path(id_type, party_id, sub_id)
    customer = dfsp.books.customer(id_type, party_id)
    if customer is None or sub_id:  # the simulators' customers have no sub-ids
        await sim.reply(message, "PUT", path + "/error",
                        bodies.error("3204", f"{id_type} {party_id} is not a customer of {dfsp.name}"))
    else:
        await sim.reply(message, "PUT", path, bodies.parties_put(customer, dfsp.name))


# --- quotes --------------------------------------------------------------------------------------


def quote_answer(dfsp: SimDfsp, request: dict[str, Any], expiration: str) -> Quoted:
    """The PUT /quotes/{ID} body for a POST /quotes body; QuoteRefused when we will not quote."""
    try:
        payee_info = request["payee"]["partyIdInfo"]
        id_type, party_id = payee_info["partyIdType"], payee_info["partyIdentifier"]
    except (KeyError, TypeError):
        raise QuoteRefused("3100", "payee.partyIdInfo with partyIdType and partyIdentifier is required") from None
    customer = dfsp.books.customer(id_type, party_id)
    if customer is None or payee_info.get("partySubIdOrType"):
        raise QuoteRefused("3204", f"{id_type} {party_id} is not a customer of {dfsp.name}")
    amount_type = request.get("amountType")
    amount, currency = _money(request.get("amount"), "amount")
    if currency != dfsp.currency:
        raise QuoteRefused("5106", f"{dfsp.name} holds {dfsp.currency} only, not {currency}")
    try:
        exponent = ilp.currency_exponent(currency)
    except ilp.IlpError:
        raise QuoteRefused("5106", f"{currency} has no minor-unit data for an ILP packet") from None
    payer_fees = Decimal(0)
    if request.get("fees") is not None:
        payer_fees, fee_currency = _money(request["fees"], "fees")
        if fee_currency != currency:
            raise QuoteRefused("3100", f"fees are in {fee_currency}, the amount in {currency}")
    terms = quote_terms(str(amount_type), amount, dfsp.fees, exponent, payer_fees)
    transfer_amount = {"amount": text(terms.transfer_amount), "currency": currency}
    try:
        transaction = ilp.transaction_object(request, transfer_amount, expiration)
        packet = ilp.packet_v1(transaction, dfsp.name)
        condition = ilp.condition_for(ilp.fulfilment_for(dfsp.secret, packet))
    except ilp.IlpError as exc:
        raise QuoteRefused("3100", f"no ILP packet can be made: {exc}") from None
    answer = {
        "transferAmount": transfer_amount,
        "payeeReceiveAmount": {"amount": text(terms.payee_receive_amount), "currency": currency},
        "payeeFspFee": {"amount": text(terms.payee_fsp_fee), "currency": currency},
        "expiration": expiration,
        "ilpPacket": packet,
        "condition": condition,
    }
    return Quoted(request, answer, money.to_units(terms.payee_receive_amount))


def _money(value: Any, field: str) -> tuple[Decimal, str]:
    """A Money object {amount, currency} as (Decimal, currency); QuoteRefused 3100 if it is not one."""
    if not isinstance(value, dict):
        raise QuoteRefused("3100", f"{field} must be an object with amount and currency")
    try:
        amount = money.parse_amount(value.get("amount"), strict=True)
    except money.AmountError as exc:
        raise QuoteRefused("3100", f"{field}.amount: {exc}") from None
    currency = value.get("currency")
    if not isinstance(currency, str):
        raise QuoteRefused("3100", f"{field}.currency is required")
    return amount, currency


async def answer_quote(sim: Simulator, message: Incoming) -> None:
    dfsp, request = message.dfsp, message.body or {}
    quote_id = request.get("quoteId")
    if not isinstance(quote_id, str) or not quote_id or "/" in quote_id:
        log.warning("%s: dropped POST /quotes without a usable quoteId", dfsp.name)
        return
    known = dfsp.quotes.get(quote_id)
    if known is not None and known.request == request:  # a resend: same answer
        await sim.reply(message, "PUT", f"/quotes/{quote_id}", known.answer)
        return
    try:
        quoted = quote_answer(dfsp, request, bodies.timestamp_in(QUOTE_VALID_S))
    except QuoteRefused as exc:
        await sim.reply(message, "PUT", f"/quotes/{quote_id}/error", bodies.error(exc.code, exc.detail))
        return
    dfsp.remember_quote(quote_id, quoted)
    await sim.reply(message, "PUT", f"/quotes/{quote_id}", quoted.answer)


# --- transfers -----------------------------------------------------------------------------------


class TransferRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code} {detail}")
        self.code = code
        self.detail = detail


def check_transfer(dfsp: SimDfsp, transfer: dict[str, Any], now: datetime | None = None) -> tuple[Customer, int, str]:
    """Whether this DFSP will fulfil POST /transfers: (customer, units to credit, fulfilment).

    TransferRefused (5105, or 3302 for an expired quote) when it will not.
    """
    payer_fsp, payee_fsp = transfer.get("payerFsp"), transfer.get("payeeFsp")
    amount = transfer.get("amount") if isinstance(transfer.get("amount"), dict) else {}
    packet, condition = transfer.get("ilpPacket"), transfer.get("condition")
    if not all(isinstance(v, str) for v in (payer_fsp, payee_fsp, packet, condition,
                                            amount.get("amount"), amount.get("currency"))):
        raise TransferRefused("5105", "payerFsp, payeeFsp, amount, ilpPacket and condition are required")
    if payee_fsp != dfsp.name:
        raise TransferRefused("5105", f"payeeFsp {payee_fsp} is not {dfsp.name}")
    mismatch = ilp.check_transfer_against_packet(
        packet, payer_fsp=payer_fsp, payee_fsp=payee_fsp, amount=amount["amount"], currency=amount["currency"]
    )
    if mismatch:
        raise TransferRefused("5105", mismatch)
    transaction = ilp.transaction_from_packet(packet)
    expires = bodies.parse_timestamp(transaction.get("expiration"))
    if expires is not None and expires <= (now or datetime.now(UTC)):
        raise TransferRefused("3302", f"the quote expired at {transaction['expiration']}")
    payee = transaction.get("payee")
    payee_info = payee.get("partyIdInfo") if isinstance(payee, dict) else None
    payee_info = payee_info if isinstance(payee_info, dict) else {}
    customer = dfsp.books.customer(str(payee_info.get("partyIdType")), str(payee_info.get("partyIdentifier")))
    if customer is None:
        raise TransferRefused("5105", "the payee in the ilpPacket is not a customer of " + dfsp.name)
    fulfilment = ilp.fulfilment_for(dfsp.secret, packet)
    if ilp.condition_for(fulfilment) != condition.rstrip("="):
        raise TransferRefused("5105", "the condition is not the one this DFSP quoted for the ilpPacket")
    return customer, _payout(dfsp, transaction, amount["amount"]), fulfilment


def _payout(dfsp: SimDfsp, transaction: dict[str, Any], transfer_amount: str) -> int:
    """Units the payee customer gets: the quote's payeeReceiveAmount.

    A quote we no longer remember (given before a restart) is priced again as SEND on the
    transfer amount; if even that fails, the customer gets the whole amount.
    """
    quoted = dfsp.quotes.get(str(transaction.get("quoteId")))
    if quoted is not None and quoted.answer["transferAmount"]["amount"] == transfer_amount:
        return quoted.receive_units
    amount = Decimal(transfer_amount)
    try:
        terms = quote_terms("SEND", amount, dfsp.fees, ilp.currency_exponent(dfsp.currency))
        return money.to_units(terms.payee_receive_amount)
    except (QuoteRefused, ilp.IlpError):
        return money.to_units(amount)


async def answer_transfer(sim: Simulator, message: Incoming) -> None:
    dfsp, transfer = message.dfsp, message.body or {}
    transfer_id = transfer.get("transferId")
    if not isinstance(transfer_id, str) or not transfer_id or "/" in transfer_id:
        log.warning("%s: dropped POST /transfers without a usable transferId", dfsp.name)
        return
    known = dfsp.books.entry(transfer_id, "in")
    if known is not None:  # a resend: the same answer, no second credit
        if known.state == "COMMITTED" and known.reply is not None:
            await sim.reply(message, "PUT", f"/transfers/{transfer_id}", known.reply)
        return
    try:
        customer, units, fulfilment = check_transfer(dfsp, transfer)
    except (TransferRefused, ilp.IlpError) as exc:
        code, detail = (exc.code, exc.detail) if isinstance(exc, TransferRefused) else ("5105", str(exc))
        log.info("%s refused transfer %s: %s %s", dfsp.name, transfer_id, code, detail)
        await sim.reply(message, "PUT", f"/transfers/{transfer_id}/error", bodies.error(code, detail))
        return
    reply = bodies.fulfil(fulfilment)
    credit(dfsp, transfer, customer, units, reply)
    answer = await sim.reply(message, "PUT", f"/transfers/{transfer_id}", reply)
    if 400 <= answer.status < 500:  # the switch refused the fulfil outright: nothing was paid
        reverse(dfsp, transfer_id)


def credit(dfsp: SimDfsp, transfer: dict[str, Any], customer: Customer, units: int, reply: dict[str, Any]) -> None:
    """Credit the payee for a transfer it fulfils (single or in a bulk), and remember the
    transaction it pays (for GET /transactions, refunds, and the text on the customer's phone)."""
    transaction = _transaction(dfsp, transfer, customer, reply["completedTimestamp"])
    label = _party_name(transaction.payer) if transaction else None
    dfsp.books.credit(str(transfer["transferId"]), customer, units, str(transfer["payerFsp"]), dfsp.currency, reply,
                      label=label or str(transfer["payerFsp"]),
                      transaction_id=transaction.transaction_id if transaction else None)
    if transaction is not None:
        dfsp.remember_transaction(transaction)


def _transaction(dfsp: SimDfsp, transfer: dict[str, Any], customer: Customer, completed: str) -> Transaction | None:
    """The record of the transaction a fulfilled transfer pays, from its ILP packet."""
    try:
        packed = ilp.transaction_from_packet(transfer["ilpPacket"])
    except (ilp.IlpError, KeyError, TypeError):
        return None
    transaction_id = packed.get("transactionId")
    if not isinstance(transaction_id, str) or not transaction_id:
        return None
    transaction_type = packed.get("transactionType") if isinstance(packed.get("transactionType"), dict) else {}
    code = None
    if transaction_type.get("scenario") == "WITHDRAWAL":
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return Transaction(
        transaction_id=transaction_id, transfer_id=str(transfer["transferId"]), customer=customer,
        payer_fsp=str(transfer["payerFsp"]), payer=packed.get("payer") if isinstance(packed.get("payer"), dict) else {},
        transaction_type=transaction_type, amount=transfer["amount"]["amount"], currency=transfer["amount"]["currency"],
        completed=completed, code=code,
    )


def _party_name(party: dict[str, Any]) -> str | None:
    name = party.get("name")
    if isinstance(name, str) and name:
        return name
    info = party.get("partyIdInfo")
    if isinstance(info, dict) and info.get("partyIdentifier"):
        return f"{info.get('partyIdType')} {info.get('partyIdentifier')}"
    return None


def reverse(dfsp: SimDfsp, transfer_id: str) -> None:
    """Take back a credit (the switch did not commit the transfer); its transaction is REJECTED."""
    if dfsp.books.reverse(transfer_id):
        entry = dfsp.books.entry(transfer_id, "in")
        transaction = dfsp.transactions.get(entry.transaction_id or "") if entry else None
        if transaction is not None:
            transaction.state = "REJECTED"


# --- transactions --------------------------------------------------------------------------------


async def answer_transaction(sim: Simulator, message: Incoming) -> None:
    """GET /transactions/{ID}: the state of a transaction we were paid in, for its payer's DFSP."""
    dfsp = message.dfsp
    transaction_id = message.ids[0]
    transaction = dfsp.transactions.get(str(transaction_id))
    if transaction is None or transaction.payer_fsp != message.source:
        await sim.reply(message, "PUT", f"/transactions/{transaction_id}/error",
                        bodies.error("3207", f"{dfsp.name} knows no transaction {transaction_id} of {message.source}"))
        return
    await sim.reply(message, "PUT", f"/transactions/{transaction_id}", transaction.put_body())


async def settle_books(sim: Simulator, message: Incoming) -> None:
    """Apply news about a transfer (PUT, PUT /error, PATCH) to both sides of the books.

    Payer side: COMMITTED debits the reservation; ABORTED or an error releases it.
    Payee side: ABORTED takes the credit back, and so does error 3303 (expired). Any other error
    is not proof that the transfer failed (3106, for one, leaves it as it was), so the DFSP asks
    the switch with GET /transfers/{ID} and acts on the state in its answer.
    """
    dfsp, body = message.dfsp, message.body or {}
    transfer_id = message.ids[0]
    assert transfer_id is not None
    books = dfsp.books
    if message.is_error:
        books.release(transfer_id)
        incoming = books.entry(transfer_id, "in")
        if incoming is not None and incoming.state == "COMMITTED":
            code = (body.get("errorInformation") or {}).get("errorCode")
            if code == "3303":
                reverse(dfsp, transfer_id)
            else:
                await sim.send(dfsp, "GET", f"/transfers/{transfer_id}", None,
                               destination=message.source, traceparent=message.traceparent)
        return
    state = body.get("transferState")
    if state == "COMMITTED":
        books.commit(transfer_id)
    elif state == "ABORTED":
        books.release(transfer_id)
        reverse(dfsp, transfer_id)
