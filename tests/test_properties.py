"""Property tests (hypothesis) of the amount rules (miniloop.money, the FSPIOP Amount type, minor
units) and of the ledger's position rules (prepares, fulfils and aborts of random amounts).

The Amount rule is restated here without a regular expression (`is_fspiop_amount`), from the
API's definition of the type: a string; the major part "0" or 1 to 18 digits without a leading
zero; optionally "." and 1 to 4 digits not ending in 0; no sign, no exponent, no spaces. Both
regular expressions the hub uses (money.AMOUNT_PATTERN and the Amount of the msgspec bodies) must
agree with it on any text.
"""

from __future__ import annotations

import asyncio
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from miniloop import money  # noqa: E402
from miniloop.fspiop import ilp, models  # noqa: E402
from miniloop.fspiop.errors import FspiopError  # noqa: E402
from miniloop.ledger.check import check_ledger  # noqa: E402

from tests.test_transfers_unit import PAYEE, PAYER, Deal, World  # noqa: E402

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DIGITS = "0123456789"


def is_fspiop_amount(text: str) -> bool:
    """The FSPIOP Amount rule, written out by hand."""
    major, dot, minor = text.partition(".")
    if not major or len(major) > 18 or any(c not in DIGITS for c in major):
        return False
    if len(major) > 1 and major[0] == "0":
        return False
    if not dot:
        return True
    return 1 <= len(minor) <= 4 and all(c in DIGITS for c in minor) and minor[-1] != "0"


# valid amounts, built from their parts (not from the pattern under test)
majors = st.one_of(st.just("0"), st.integers(1, 10**18 - 1).map(str))
minors = st.one_of(st.just(""), st.text(DIGITS, min_size=0, max_size=3).flatmap(
    lambda head: st.sampled_from("123456789").map(lambda last: "." + head + last)))
amounts = st.builds(lambda a, b: a + b, majors, minors)
within_hub = amounts.filter(lambda s: Decimal(s) <= money.MAX_AMOUNT)
# text near the rule: digits, points, signs, exponents, spaces
near_amounts = st.one_of(
    st.text("0123456789.+-eE _", max_size=24),
    amounts.flatmap(lambda s: st.sampled_from([
        "0" + s, s + "0", s + ".0", "+" + s, "-" + s, " " + s, s + " ", s + "\n", s + "e1", s + "E+2",
        s.replace(".", ","), s + ".", "." + s, s + "00000"])),
)

def body_accepts(text: str) -> bool:
    try:
        models.decode(models.Money, msgspec.json.encode({"currency": "USD", "amount": text}))
    except FspiopError:
        return False
    return True


# --------------------------------------------------------------------------- the Amount rule


@FAST
@given(text=st.one_of(amounts, near_amounts, st.text(max_size=24)))
def test_both_patterns_are_the_rule(text: str) -> None:
    rule = is_fspiop_amount(text)
    assert bool(money.AMOUNT_PATTERN.match(text)) == rule, text
    assert body_accepts(text) == rule, text


@FAST
@given(text=amounts)
def test_every_valid_amount_parses_to_its_value_or_is_beyond_the_hub(text: str) -> None:
    if Decimal(text) > money.MAX_AMOUNT:  # 15 to 18 digits: valid FSPIOP, beyond a 64-bit ledger
        with pytest.raises(money.AmountError):
            money.parse_amount(text, strict=True)
        return
    assert money.parse_amount(text, strict=True) == Decimal(text)


@FAST
@given(text=within_hub)
def test_amount_to_units_and_back_is_the_same_text(text: str) -> None:
    """A valid amount is in canonical form: to ledger units and back gives the very same text."""
    units = money.to_units(money.parse_amount(text, strict=True))
    assert units >= 0
    assert money.format_amount(units) == text


@FAST
@given(units=st.integers(-money.BALANCE_MAX_UNITS, money.BALANCE_MAX_UNITS))
def test_units_to_text_and_back(units: int) -> None:
    """Any balance reads as plain decimal text of its exact value; within one amount's bounds
    (MAX_AMOUNT) the hub reads it back, and a non-negative one is a valid FSPIOP Amount."""
    text = money.format_amount(units)
    assert "E" not in text and "e" not in text
    assert money.to_units(Decimal(text)) == units
    if abs(units) <= money.to_units(money.MAX_AMOUNT):
        assert money.to_units(money.parse_amount(text)) == units
        if units >= 0:
            assert is_fspiop_amount(text), text  # what the hub writes in a body is a valid Amount


@FAST
@given(text=near_amounts.filter(lambda s: not is_fspiop_amount(s)))
def test_strict_parsing_refuses_what_breaks_the_rule(text: str) -> None:
    with pytest.raises(money.AmountError):
        money.parse_amount(text, strict=True)


@FAST
@given(value=st.decimals(min_value=-money.MAX_AMOUNT, max_value=money.MAX_AMOUNT, places=4,
                         allow_nan=False, allow_infinity=False))
def test_admin_amounts_any_decimal_of_four_places(value: Decimal) -> None:
    """The Admin API's looser rule: any number of at most four decimals, as text or a JSON number."""
    assert money.parse_amount(str(value)) == value
    assert money.from_units(money.to_units(money.parse_amount(str(value)))) == value


@FAST
@given(value=st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False))
def test_more_than_four_decimals_is_refused(value: Decimal) -> None:
    if value == round(value, money.SCALE):
        return
    with pytest.raises(money.AmountError):
        money.to_units(money.parse_amount(str(value)))


# --------------------------------------------------------------------------- minor units

known_currencies = st.sampled_from(sorted(ilp.CURRENCY_EXPONENTS))


@FAST
@given(currency=known_currencies, minor=st.integers(0, 10**14))
def test_minor_units_round_trip(currency: str, minor: int) -> None:
    exponent = ilp.currency_exponent(currency)
    amount = money.format_amount(minor * 10 ** (money.SCALE - exponent))  # the amount of `minor` units
    assert Decimal(amount) == Decimal(minor).scaleb(-exponent)
    assert ilp.minor_units(amount, currency) == minor
    # the ledger's 1/10,000 and the currency's minor unit agree
    assert money.to_units(money.parse_amount(amount)) == minor * 10 ** (money.SCALE - exponent)


@FAST
@given(currency=known_currencies, text=within_hub)
def test_minor_units_refuse_what_the_currency_cannot_hold(currency: str, text: str) -> None:
    exponent = ilp.currency_exponent(currency)
    decimals = len(text.partition(".")[2])
    if decimals > exponent:
        with pytest.raises(ilp.IlpError):
            ilp.minor_units(text, currency)
    else:
        assert ilp.minor_units(text, currency) == int(Decimal(text).scaleb(exponent))


def test_currency_exponents() -> None:
    assert {c: ilp.currency_exponent(c) for c in ("USD", "JPY", "KWD", "CLF", "EUR", "XOF")} == {
        "USD": 2, "JPY": 0, "KWD": 3, "CLF": 4, "EUR": 2, "XOF": 0}
    assert set(ilp.CURRENCY_EXPONENTS.values()) <= {0, 2, 3, 4}  # never finer than the ledger's 4
    with pytest.raises(ilp.IlpError):
        ilp.currency_exponent("XTS")


# --------------------------------------------------------------------------- the ledger

NDC = {PAYER: "1000", PAYEE: "1000"}  # World's: both DFSPs have an NDC of 1000 and funds of 1000
step = st.tuples(
    st.sampled_from(["prepare", "prepare", "fulfil", "reject"]),
    st.booleans(),  # prepare: from PAYER (True) or from PAYEE; fulfil/reject: which open transfer
    st.one_of(st.integers(1, 60_000), st.integers(1, 2000 * money.UNITS_PER_MAJOR)).map(lambda u: money.format_amount(u)),
    st.integers(0, 10**6),
)


async def _run_steps(tmp: Path, steps: list[tuple[str, bool, str, int]]) -> None:
    world = await World.open(tmp)
    try:
        names = (PAYER, PAYEE)
        start = {n: await world.position(n) for n in names}
        cap = {n: money.to_units(money.parse_amount(NDC[n])) for n in names}
        expected = dict(start)
        open_: list[Deal] = []
        for kind, flag, amount, pick in steps:
            if kind == "prepare":
                payer, payee = names if flag else names[::-1]
                deal = Deal(amount=amount, payer=payer, payee=payee)
                units = money.to_units(money.parse_amount(amount))
                await world.prepare(deal)
                state = await world.state(deal.transfer_id)
                fits = expected[payer] + units <= cap[payer]
                assert state == ("RESERVED" if fits else "ABORTED_REJECTED"), (state, expected, units)
                if fits:
                    expected[payer] += units
                    open_.append(deal)
            elif open_:
                deal = open_.pop(pick % len(open_))
                units = money.to_units(money.parse_amount(deal.amount))
                if kind == "fulfil":
                    await world.fulfil(deal)
                    assert await world.state(deal.transfer_id) == "COMMITTED"
                    expected[deal.payee] -= units
                else:
                    await world.reject(deal)
                    assert await world.state(deal.transfer_id) == "ABORTED_ERROR"
                    expected[deal.payer] -= units
            actual = {n: await world.position(n) for n in names}
            assert actual == expected
            for n in names:  # never beyond the Net Debit Cap
                assert actual[n] <= cap[n]
            # conserved: what the positions moved, all together, is what is still reserved
            reserved = sum(money.to_units(money.parse_amount(d.amount)) for d in open_)
            assert sum(actual[n] - start[n] for n in names) == reserved
        moved = await world.ledger.fetch_one("SELECT coalesce(sum(change), 0) AS s FROM position_change "
                                             "WHERE transfer_id IN (SELECT id FROM transfer WHERE kind = 'FSPIOP')")
        assert moved is not None and int(moved["s"]) == sum(
            money.to_units(money.parse_amount(d.amount)) for d in open_)
        report = check_ledger(world.ledger.path, grace_s=3600)
        assert report.ok, report.problems
    finally:
        await world.close()


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_positions_follow_prepares_fulfils_and_aborts(steps: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run_steps(Path(tmp), steps))
