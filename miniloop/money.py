"""Money as integers: every amount in the ledger is a count of 1/10,000 of a currency unit.

Why integers: positions and Net Debit Caps are compared in SQL (`UPDATE ... WHERE value + ? <= cap`),
sums must be exact, and floats are never allowed near money. Four decimals is the largest scale
the FSPIOP Amount type allows (and central-ledger's DECIMAL(18,4)), so any valid amount converts
without loss. SQLite integers are 64-bit, which bounds a single value at about 9.2e14 units of
currency; amounts beyond `MAX_AMOUNT` are refused as invalid rather than allowed to overflow.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

SCALE = 4
UNITS_PER_MAJOR = 10**SCALE
MAX_AMOUNT = Decimal("100000000000000")  # 1e14 for one amount
BALANCE_MAX_UNITS = 2**62  # for a balance: half of what a 64-bit integer holds, so sums never overflow

# The FSPIOP Amount pattern: no leading zeros, at most four decimals, no trailing zero.
AMOUNT_PATTERN = re.compile(r"^([0]|([1-9][0-9]{0,17}))([.][0-9]{0,3}[1-9])?\Z")


class AmountError(ValueError):
    """An amount that is not a valid non-negative decimal with at most four decimals."""


def parse_amount(value: object, *, strict: bool = False) -> Decimal:
    """Read an amount from an API body.

    strict=True applies the FSPIOP Amount pattern exactly (a string, no trailing zeros); the
    Admin API is looser, as Mojaloop's is, and also takes JSON numbers such as 10000 or 12.50.
    """
    if isinstance(value, bool) or value is None:
        raise AmountError(f"{value!r} is not an amount")
    if strict:
        if not isinstance(value, str) or not AMOUNT_PATTERN.match(value):
            raise AmountError(f"{value!r} is not a valid amount")
    if isinstance(value, float):
        value = repr(value)  # JSON numbers arrive as floats; their shortest repr is the text sent
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise AmountError(f"{value!r} is not a number") from None
    if not amount.is_finite():
        raise AmountError(f"{value!r} is not a finite number")
    if abs(amount) > MAX_AMOUNT:
        raise AmountError(f"{value} is larger than miniloop allows ({MAX_AMOUNT})")
    if amount.as_tuple().exponent < -SCALE and amount != round(amount, SCALE):
        raise AmountError(f"{value} exceeds allowed scale of {SCALE}")
    return amount


def to_units(amount: Decimal) -> int:
    """Decimal currency amount -> integer ledger units."""
    units = amount * UNITS_PER_MAJOR
    if units != units.to_integral_value():
        raise AmountError(f"{amount} exceeds allowed scale of {SCALE}")
    return int(units)


def from_units(units: int) -> Decimal:
    """Integer ledger units -> Decimal, normalised (no trailing zeros, no exponent)."""
    amount = Decimal(units).scaleb(-SCALE)
    normal = amount.normalize()
    # normalize() turns 100 into 1E+2; quantize back to an integer in that case
    return normal.quantize(Decimal(1)) if normal == normal.to_integral_value() else normal


def format_amount(units: int) -> str:
    """Integer ledger units -> the FSPIOP Amount text ("100", "12.5", "-3.25")."""
    return str(from_units(units))
