"""What a simulated payee DFSP quotes: its fee rule and the SEND/RECEIVE arithmetic.

Why a module of its own: the numbers in PUT /quotes are the part of a quote people check by hand
("I sent 100, why did the shop get 99?"), so the rule lives here as pure functions with unit tests,
apart from the HTTP plumbing.

The rule (hub file fields `quote_fee_fixed` and `quote_fee_percent`, see docs/hub-file.md):
payeeFspFee = fixed + percent/100 of the amount the payee FSP handles, rounded half-up to the
currency's minor unit. That amount is the transfer amount for SEND (what arrives from the payer
FSP) and the amount the payee receives for RECEIVE. The simulators never pay a commission
(payeeFspCommission is 0 and left out), so the FSPIOP quote equations reduce to:

- SEND (amount = what leaves the payer, the payer FSP's disclosed `fees` included):
  transferAmount = amount - fees; payeeReceiveAmount = transferAmount - payeeFspFee.
- RECEIVE (amount = what the payee gets):
  transferAmount = amount + payeeFspFee; payeeReceiveAmount = amount.

A quote the payee cannot honour is refused with an FSPIOP code: 5106 for another currency, 5103
when a SEND amount does not cover the fee, 3100 for an amount the currency cannot express.
Amounts are Decimal throughout, never float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from miniloop import money


class QuoteRefused(Exception):
    """The payee FSP will not quote: `code` is the FSPIOP error code for PUT /quotes/{ID}/error."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code} {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class FeeRule:
    """payeeFspFee = fixed + percent % of the base amount, in the currency's minor unit."""

    fixed: Decimal = Decimal(0)
    percent: Decimal = Decimal(0)

    @classmethod
    def from_text(cls, fixed: str, percent: str) -> FeeRule:
        """From the hub file's strings (already checked by miniloop.hubfile)."""
        return cls(Decimal(fixed), Decimal(percent))

    def fee(self, base: Decimal, exponent: int) -> Decimal:
        minor_unit = Decimal(1).scaleb(-exponent)
        return (self.fixed + base * self.percent / 100).quantize(minor_unit, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class QuoteTerms:
    """The three amounts of a PUT /quotes answer, as Decimals in the quote's currency."""

    transfer_amount: Decimal
    payee_fsp_fee: Decimal
    payee_receive_amount: Decimal


def quote_terms(
    amount_type: str,
    amount: Decimal,
    rule: FeeRule,
    exponent: int,
    payer_fees: Decimal = Decimal(0),
) -> QuoteTerms:
    """The payee's terms for a quote request of `amount` (SEND or RECEIVE).

    `exponent` is the currency's number of minor-unit digits (USD 2): an amount with more decimals
    cannot go into an ILP packet. `payer_fees` is the payer FSP's disclosed `fees` (SEND only).
    """
    for name, value in (("amount", amount), ("fees", payer_fees)):
        if value < 0:
            raise QuoteRefused("3100", f"{name} {value} is negative")
        if value != round(value, exponent):
            raise QuoteRefused("3100", f"{name} {value} has more decimals than the currency allows ({exponent})")
    if amount_type == "SEND":
        transfer = amount - payer_fees
        if transfer <= 0 and amount > 0:
            raise QuoteRefused("5103", f"the payer FSP's fees {payer_fees} take the whole amount {amount}")
        fee = rule.fee(transfer, exponent)
        receive = transfer - fee
        if fee > 0 and receive <= 0:
            raise QuoteRefused("5103", f"amount {transfer} does not cover the payee FSP fee of {fee}")
        return QuoteTerms(transfer, fee, receive)
    if amount_type == "RECEIVE":
        fee = rule.fee(amount, exponent)
        return QuoteTerms(amount + fee, fee, amount)
    raise QuoteRefused("3100", f"amountType {amount_type!r} is not SEND or RECEIVE")


def text(amount: Decimal) -> str:
    """A Decimal as an FSPIOP Amount string: no exponent, no trailing zeros ("100", "12.5")."""
    return money.format_amount(money.to_units(amount))
