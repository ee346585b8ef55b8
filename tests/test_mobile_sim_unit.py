"""The simulated DFSPs without a hub: fee arithmetic, bodies, books, checks, and a toy switch.

The pure parts (mobile_sim.pricing, bodies, dfsp, payee's checks, send's input checks, the
outgoing headers) are tested directly. The last section runs the real sim app against a toy
switch, a few lines of aiohttp that forward each message by FSPIOP-Destination, so the
asynchronous plumbing (202 at once, callbacks matched by id, books settled by late callbacks)
is covered before and independently of the real switch.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web
from sanic import Sanic

from miniloop import hubfile
from miniloop.api.common import new_health
from miniloop.errors import ConfigError
from miniloop.fspiop import ilp
from miniloop.fspiop.errors import FspiopError
from mobile_sim import bodies, sim_app
from mobile_sim.dfsp import PHONE_MAX, Books, BooksError, Customer, SimDfsp, Transaction, secret_for, simulated
from mobile_sim.fspiop_client import request_headers
from mobile_sim.payee import TransferRefused, check_transfer, quote_answer
from mobile_sim.pricing import FeeRule, QuoteRefused, quote_terms, text
from mobile_sim.payer import Refused
from mobile_sim.payer import check as payer_check
from mobile_sim.qr import QrError, QrPayload, make_payload, read_payload
from mobile_sim.qr import ascii_art as qr_ascii
from mobile_sim.qr import svg as qr_svg
from mobile_sim.rtp import parse_order as parse_rtp
from mobile_sim.send import parse_order

D = Decimal
IMF_DATE = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")


def make_hub(*, fee_fixed: str = "0", fee_percent: str = "0") -> hubfile.HubFile:
    raw = {
        "currencies": ["USD"],
        "dfsps": [
            {"name": "payerfsp", "customers": [
                {"id": "111", "name": "Amara Okafor", "balance": "100"},
                {"id": "112", "name": "Thabo", "balance": "5.5"},
            ]},
            {"name": "payeefsp", "quote_fee_fixed": fee_fixed, "quote_fee_percent": fee_percent, "customers": [
                {"id": "221", "name": "Kwame Mensah", "balance": "10"},
                {"id_type": "BUSINESS", "id": "SHOP", "name": "Corner Shop Ltd", "balance": "0"},
            ]},
            {"name": "outside", "callback_url": "http://127.0.0.1:1", "customers": [{"id": "331", "name": "X"}]},
        ],
    }
    return msgspec.convert(raw, hubfile.HubFile)


def dfsps(**fees: str) -> dict[str, SimDfsp]:
    return simulated(make_hub(**fees))


# --------------------------------------------------------------------------- fee rules and arithmetic


def test_no_fee_send_and_receive_are_the_amount() -> None:
    for amount_type in ("SEND", "RECEIVE"):
        terms = quote_terms(amount_type, D("100"), FeeRule(), 2)
        assert (terms.transfer_amount, terms.payee_fsp_fee, terms.payee_receive_amount) == (100, 0, 100)


def test_send_takes_the_fee_out_of_what_the_payee_receives() -> None:
    terms = quote_terms("SEND", D("100"), FeeRule(D("0.5"), D("1")), 2)
    assert terms.transfer_amount == D("100")
    assert terms.payee_fsp_fee == D("1.5")
    assert terms.payee_receive_amount == D("98.5")


def test_receive_adds_the_fee_to_the_transfer_amount() -> None:
    terms = quote_terms("RECEIVE", D("100"), FeeRule(D("0.5"), D("1")), 2)
    assert terms.transfer_amount == D("101.5")
    assert terms.payee_fsp_fee == D("1.5")
    assert terms.payee_receive_amount == D("100")


def test_the_equation_holds_for_both_amount_types() -> None:
    rule = FeeRule(D("0.25"), D("2.5"))
    for amount_type in ("SEND", "RECEIVE"):
        for amount in ("1", "7.77", "12345.67"):
            t = quote_terms(amount_type, D(amount), rule, 2)
            assert t.payee_receive_amount == t.transfer_amount - t.payee_fsp_fee


def test_percent_fees_round_half_up_to_the_minor_unit() -> None:
    rule = FeeRule(percent=D("1"))
    assert rule.fee(D("10.50"), 2) == D("0.11")  # 0.105 -> 0.11
    assert rule.fee(D("10.40"), 2) == D("0.10")  # 0.104 -> 0.10
    assert rule.fee(D("150"), 0) == D("2")  # JPY: 1.5 -> 2
    assert rule.fee(D("10.5"), 3) == D("0.105")


def test_disclosed_payer_fees_reduce_a_send_transfer_amount() -> None:
    terms = quote_terms("SEND", D("100"), FeeRule(), 2, payer_fees=D("2"))
    assert terms.transfer_amount == D("98") and terms.payee_receive_amount == D("98")


def test_a_send_that_does_not_cover_the_fee_is_refused_with_5103() -> None:
    with pytest.raises(QuoteRefused) as exc:
        quote_terms("SEND", D("1"), FeeRule(D("1")), 2)
    assert exc.value.code == "5103"


def test_more_decimals_than_the_currency_has_is_3100() -> None:
    with pytest.raises(QuoteRefused) as exc:
        quote_terms("SEND", D("1.005"), FeeRule(), 2)
    assert exc.value.code == "3100"
    quote_terms("SEND", D("1.005"), FeeRule(), 3)  # fine in a 3-decimal currency


def test_unknown_amount_type_is_3100() -> None:
    with pytest.raises(QuoteRefused) as exc:
        quote_terms("BOTH", D("1"), FeeRule(), 2)
    assert exc.value.code == "3100"


def test_amounts_are_written_the_fspiop_way() -> None:
    assert [text(D(x)) for x in ("100.00", "12.50", "0.0", "1E+2")] == ["100", "12.5", "0", "100"]


# --------------------------------------------------------------------------- hub file fee fields


def write_hub(tmp_path: Path, dfsp_lines: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f'currencies = ["USD"]\n[[dfsps]]\nname = "fsp1"\n{dfsp_lines}\n')
    return path


def test_fee_fields_default_to_zero_and_load(tmp_path: Path) -> None:
    hub = hubfile.load(write_hub(tmp_path, ""))
    assert (hub.dfsps[0].quote_fee_fixed, hub.dfsps[0].quote_fee_percent) == ("0", "0")
    hub = hubfile.load(write_hub(tmp_path, 'quote_fee_fixed = "0.5"\nquote_fee_percent = "1.25"'))
    assert simulated(hub)["fsp1"].fees == FeeRule(D("0.5"), D("1.25"))


@pytest.mark.parametrize("lines, words", [
    ('quote_fee_percent = "101"', "at most 100"),
    ('quote_fee_percent = "-1"', "quote_fee_percent"),
    ('quote_fee_fixed = "abc"', "quote_fee_fixed"),
    ('quote_fee_fixed = "0.125"', "at most 2 decimals"),
    ("quote_fee_fixed = 1", "Expected `str`"),
])
def test_bad_fee_fields_are_refused(tmp_path: Path, lines: str, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        hubfile.load(write_hub(tmp_path, lines))


def test_the_demo_hub_loads_with_its_fee() -> None:
    sims = simulated(hubfile.load(None))
    assert sims["merchantbank"].fees == FeeRule(D("0"), D("1"))
    assert sims["greenwallet"].fees == FeeRule()


# --------------------------------------------------------------------------- which DFSPs are simulated


def test_only_dfsps_without_callback_url_are_simulated() -> None:
    sims = dfsps()
    assert set(sims) == {"payerfsp", "payeefsp"}
    assert sims["payerfsp"].currency == "USD"
    assert sims["payerfsp"].books.customer("MSISDN", "112").balance == 55_000  # 5.5 in 1/10,000 units
    assert simulated(None) == {}


def test_the_secret_is_stable_per_name() -> None:
    assert secret_for("a") == secret_for("a") != secret_for("b")
    assert dfsps()["payeefsp"].secret == secret_for("payeefsp")


# --------------------------------------------------------------------------- bodies


def test_a_person_gets_first_and_last_name() -> None:
    body = bodies.parties_put(Customer("111", "MSISDN", "Amara Okafor", 0), "payerfsp")
    assert body == {"party": {
        "partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": "111", "fspId": "payerfsp"},
        "name": "Amara Okafor",
        "personalInfo": {"complexName": {"firstName": "Amara", "lastName": "Okafor"}},
    }}


def test_a_one_word_name_has_no_last_name_and_a_business_no_personal_info() -> None:
    assert bodies.party(Customer("1", "MSISDN", "Thabo", 0), "f")["personalInfo"] == {
        "complexName": {"firstName": "Thabo"}}
    shop = bodies.party(Customer("SHOP", "BUSINESS", "Corner Shop Ltd", 0), "f")
    assert shop["name"] == "Corner Shop Ltd" and "personalInfo" not in shop


def test_error_bodies_and_timestamps() -> None:
    assert bodies.error("3204", "MSISDN 9 is not a customer of x") == {"errorInformation": {
        "errorCode": "3204", "errorDescription": "Party not found - MSISDN 9 is not a customer of x"}}
    assert len(bodies.error("5105", "x" * 500)["errorInformation"]["errorDescription"]) <= 128
    stamp = bodies.timestamp(datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC))
    assert stamp == "2024-05-01T12:00:00.123Z"
    assert bodies.parse_timestamp(stamp) == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert bodies.parse_timestamp("yesterday") is None
    assert bodies.fulfil("F" * 43, stamp) == {
        "fulfilment": "F" * 43, "completedTimestamp": stamp, "transferState": "COMMITTED"}


# --------------------------------------------------------------------------- books


def books() -> tuple[Books, Customer]:
    customer = Customer("1", "MSISDN", "A", 100_0000)
    return Books([customer]), customer


def test_reserve_then_commit_debits_once() -> None:
    b, c = books()
    b.reserve("t1", c, 30_0000, "other", "USD")
    assert (c.balance, c.reserved, c.available) == (100_0000, 30_0000, 70_0000)
    assert b.commit("t1") is True
    assert (c.balance, c.reserved) == (70_0000, 0)
    assert b.commit("t1") is False and b.release("t1") is False
    assert c.balance == 70_0000


def test_reserve_then_release_gives_it_back() -> None:
    b, c = books()
    b.reserve("t1", c, 30_0000, "other", "USD")
    assert b.release("t1") is True
    assert (c.balance, c.reserved) == (100_0000, 0)
    assert b.commit("t1") is False


def test_a_reservation_needs_the_money_available() -> None:
    b, c = books()
    b.reserve("t1", c, 80_0000, "other", "USD")
    with pytest.raises(BooksError, match="20 is available|has 20"):
        b.reserve("t2", c, 30_0000, "other", "USD")
    with pytest.raises(BooksError):
        b.reserve("t1", c, 1, "other", "USD")  # the same transfer twice


def test_a_credit_happens_once_and_can_be_reversed_once() -> None:
    b, c = books()
    assert b.credit("t9", c, 5_0000, "payer", "USD", {"x": 1}) is not None
    assert b.credit("t9", c, 5_0000, "payer", "USD", {"x": 1}) is None
    assert c.balance == 105_0000
    assert b.reverse("t9") is True and b.reverse("t9") is False
    assert c.balance == 100_0000


def test_recent_lists_newest_first() -> None:
    b, c = books()
    b.reserve("t1", c, 1, "p", "USD")
    b.credit("t2", c, 1, "p", "USD", {})
    assert [e["transferId"] for e in b.recent()] == ["t2", "t1"]
    assert b.recent()[1] == {"transferId": "t1", "direction": "out", "customer": "1", "amount": "0.0001",
                             "currency": "USD", "counterparty": "p", "state": "RESERVED"}


def test_customer_view_shows_amounts_as_text() -> None:
    assert Customer("1", "MSISDN", "A", 12_5000, 2_0000).view() == {
        "id": "1", "idType": "MSISDN", "name": "A", "balance": "12.5", "reserved": "2"}


# --------------------------------------------------------------------------- payee: quotes and transfers


def quote_request(amount: str = "100", amount_type: str = "SEND", payee: str = "221",
                  currency: str = "USD") -> dict[str, Any]:
    return {
        "quoteId": "0b8a0c3e-4a3c-4f0e-9d7e-3f1f0c1a2b3c",
        "transactionId": "9b8a0c3e-4a3c-4f0e-9d7e-3f1f0c1a2b3c",
        "payee": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": payee, "fspId": "payeefsp"}},
        "payer": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": "111", "fspId": "payerfsp"}},
        "amountType": amount_type,
        "amount": {"amount": amount, "currency": currency},
        "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
    }


def in_a_minute() -> str:
    return bodies.timestamp_in(60)


def test_a_quote_answer_carries_a_packet_for_the_transfer_amount() -> None:
    payee = dfsps(fee_fixed="1", fee_percent="0")["payeefsp"]
    quoted = quote_answer(payee, quote_request("100", "RECEIVE"), in_a_minute())
    answer = quoted.answer
    assert answer["transferAmount"] == {"amount": "101", "currency": "USD"}
    assert answer["payeeFspFee"] == {"amount": "1", "currency": "USD"}
    assert answer["payeeReceiveAmount"] == {"amount": "100", "currency": "USD"}
    assert quoted.receive_units == 100_0000
    transaction = ilp.transaction_from_packet(answer["ilpPacket"])
    assert transaction["amount"] == answer["transferAmount"]
    assert transaction["quoteId"] == quote_request()["quoteId"]
    assert transaction["expiration"] == answer["expiration"]
    assert ilp.condition_for(ilp.fulfilment_for(payee.secret, answer["ilpPacket"])) == answer["condition"]


@pytest.mark.parametrize("request_body, code", [
    (quote_request(payee="999"), "3204"),
    (quote_request(currency="EUR"), "5106"),
    (quote_request(amount="1.5.0"), "3100"),
    (quote_request(amount="0.001"), "3100"),
    ({"quoteId": "x"}, "3100"),
])
def test_quotes_the_payee_will_not_give(request_body: dict[str, Any], code: str) -> None:
    with pytest.raises(QuoteRefused) as exc:
        quote_answer(dfsps()["payeefsp"], request_body, in_a_minute())
    assert exc.value.code == code


def transfer_for(payee: SimDfsp, request: dict[str, Any], expiration: str | None = None) -> dict[str, Any]:
    quoted = quote_answer(payee, request, expiration or in_a_minute())
    payee.remember_quote(request["quoteId"], quoted)
    return {
        "transferId": request["transactionId"], "payerFsp": "payerfsp", "payeeFsp": "payeefsp",
        "amount": quoted.answer["transferAmount"], "ilpPacket": quoted.answer["ilpPacket"],
        "condition": quoted.answer["condition"], "expiration": in_a_minute(),
    }


def test_a_matching_transfer_is_fulfilled_and_pays_the_receive_amount() -> None:
    payee = dfsps(fee_percent="2")["payeefsp"]
    transfer = transfer_for(payee, quote_request("50"))
    customer, units, fulfilment = check_transfer(payee, transfer)
    assert customer.id == "221"
    assert units == 49_0000  # 50 less the 2 % fee
    assert ilp.fulfils(fulfilment, transfer["condition"])


def test_a_forgotten_quote_is_priced_again_as_send() -> None:
    payee = dfsps(fee_percent="2")["payeefsp"]
    transfer = transfer_for(payee, quote_request("50"))
    payee.quotes.clear()  # as after a restart
    _, units, _ = check_transfer(payee, transfer)
    assert units == 49_0000


@pytest.mark.parametrize("change, code", [
    (lambda t: t["amount"].update(amount="51"), "5105"),
    (lambda t: t.update(payerFsp="someoneelse"), "5105"),
    (lambda t: t.update(payeeFsp="payerfsp"), "5105"),
    (lambda t: t.update(condition="A" * 43), "5105"),
    (lambda t: t.update(ilpPacket="AAAA"), "5105"),
    (lambda t: t.pop("condition"), "5105"),
])
def test_a_transfer_that_does_not_match_is_refused(change: Callable[[dict[str, Any]], Any], code: str) -> None:
    payee = dfsps()["payeefsp"]
    transfer = transfer_for(payee, quote_request("50"))
    change(transfer)
    with pytest.raises(TransferRefused) as exc:
        check_transfer(payee, transfer)
    assert exc.value.code == code


def test_a_transfer_on_an_expired_quote_is_3302() -> None:
    payee = dfsps()["payeefsp"]
    transfer = transfer_for(payee, quote_request("50"), expiration=bodies.timestamp_in(-1))
    with pytest.raises(TransferRefused) as exc:
        check_transfer(payee, transfer)
    assert exc.value.code == "3302"
    later = datetime.now(UTC) - timedelta(seconds=5)
    check_transfer(payee, transfer, now=later)  # before the expiry it was fine


# --------------------------------------------------------------------------- send: input checks


def order_body(**changes: Any) -> dict[str, Any]:
    body = {"from": "111", "to": {"idType": "MSISDN", "id": "221"}, "amount": "10"}
    body.update(changes)
    return body


def test_a_good_order() -> None:
    order = parse_order(dfsps()["payerfsp"], order_body(amount=10, note="lunch", timeoutSeconds=5))
    assert (order.customer.id, order.id_type, order.party_id, order.sub_id) == ("111", "MSISDN", "221", None)
    assert (order.amount, order.currency, order.amount_type, order.note, order.timeout_s) == (
        D(10), "USD", "SEND", "lunch", 5.0)


@pytest.mark.parametrize("changes, code", [
    ({"from": "999"}, "3100"),
    ({"amount": 10.5}, "3100"),
    ({"amount": "0"}, "3100"),
    ({"amount": "-1"}, "3100"),
    ({"amount": "1.001"}, "3100"),
    ({"amount": "ten"}, "3100"),
    ({"currency": "EUR"}, "3100"),
    ({"amountType": "GIVE"}, "3100"),
    ({"to": {"idType": "PHONE", "id": "1"}}, "3100"),
    ({"to": {"idType": "MSISDN", "id": "a/b"}}, "3100"),
    ({"to": "221"}, "3100"),
    ({"timeoutSeconds": 0}, "3100"),
    ({"timeoutSeconds": 301}, "3100"),
    ({"note": ""}, "3100"),
    ({"colour": "red"}, "3100"),
    ({"amount": "100.01"}, "4000"),
])
def test_bad_orders(changes: dict[str, Any], code: str) -> None:
    with pytest.raises(FspiopError) as exc:
        parse_order(dfsps()["payerfsp"], order_body(**changes))
    assert exc.value.code == code
    assert exc.value.status == 400


# --------------------------------------------------------------------------- use cases, refunds, requests to pay


@pytest.mark.parametrize("use_case, expected", [
    ("p2p", ("TRANSFER", "PAYER", "CONSUMER")),
    ("merchant-pay", ("PAYMENT", "PAYER", "CONSUMER")),
    ("cash-in", ("DEPOSIT", "PAYER", "AGENT")),
    ("cash-out", ("WITHDRAWAL", "PAYER", "CONSUMER")),
])
def test_a_use_case_sets_the_transaction_type(use_case: str, expected: tuple[str, str, str]) -> None:
    order = parse_order(dfsps()["payerfsp"], order_body(useCase=use_case))
    assert order.use_case == use_case
    assert order.transaction_type == dict(zip(("scenario", "initiator", "initiatorType"), expected, strict=True))


def paid_in(dfsp: SimDfsp, customer_id: str = "SHOP", amount: str = "10") -> str:
    """Record a transaction `dfsp` was paid in (as payee.answer_transfer does); its transactionId."""
    transaction_id = "5f0b7a52-0d8c-4c42-9a61-2d1c8f1f4a10"
    customer = dfsp.books.find(customer_id)
    assert customer is not None
    dfsp.remember_transaction(Transaction(
        transaction_id, "t1", customer, "payerfsp",
        {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": "111", "fspId": "payerfsp"}},
        {"scenario": "PAYMENT", "initiator": "PAYER", "initiatorType": "CONSUMER"}, amount, "USD",
        bodies.timestamp()))
    return transaction_id


def test_a_refund_names_the_payment_and_goes_back_to_its_payer() -> None:
    payee = dfsps()["payeefsp"]
    payee.books.find("SHOP").balance = 100_0000  # type: ignore[union-attr]
    original = paid_in(payee)
    order = parse_order(payee, {"from": "SHOP", "useCase": "refund", "refundOf": original, "amount": "10",
                                "reason": "broken"})
    assert (order.id_type, order.party_id) == ("MSISDN", "111")
    assert order.transaction_type == {"scenario": "REFUND", "initiator": "PAYER", "initiatorType": "BUSINESS",
                                      "refundInfo": {"originalTransactionId": original, "refundReason": "broken"}}


@pytest.mark.parametrize("changes, code", [
    ({"refundOf": "5f0b7a52-0d8c-4c42-9a61-2d1c8f1f4a11"}, "3207"),
    ({"refundOf": "nope"}, "3100"),
    ({"from": "221"}, "3100"),
    ({"amount": "10.01"}, "3100"),
    ({"reason": ""}, "3100"),
])
def test_bad_refunds(changes: dict[str, Any], code: str) -> None:
    payee = dfsps()["payeefsp"]
    payee.books.find("SHOP").balance = 100_0000  # type: ignore[union-attr]
    body = {"from": "SHOP", "useCase": "refund", "refundOf": paid_in(payee), "amount": "10"}
    body.update(changes)
    with pytest.raises(FspiopError) as exc:
        parse_order(payee, body)
    assert exc.value.code == code


def test_refund_fields_need_the_refund_use_case() -> None:
    with pytest.raises(FspiopError, match="refund"):
        parse_order(dfsps()["payerfsp"], order_body(reason="why"))


def test_a_request_to_pay_order() -> None:
    order = parse_rtp(dfsps()["payeefsp"], {"from": "SHOP", "payer": "MSISDN/111", "amount": "5",
                                            "useCase": "atm-cash-out", "otp": "123456"})
    assert (order.customer.id, order.id_type, order.party_id, order.amount) == ("SHOP", "MSISDN", "111", D(5))
    assert (order.use_case, order.authentication, order.otp, order.timeout_s) == ("atm-cash-out", "OTP", "123456", 30.0)
    order = parse_rtp(dfsps()["payeefsp"], {"from": "SHOP", "payer": {"idType": "MSISDN", "id": "111"},
                                            "amount": 5, "authentication": "none"})
    assert (order.use_case, order.authentication, order.otp) == ("merchant-request", "none", "phone")


@pytest.mark.parametrize("changes", [
    {"payer": 111}, {"payer": "PHONE/1"}, {"payer": {"id": "1", "x": 1}}, {"useCase": "p2p"}, {"otp": "12"},
    {"otp": "abcdef"}, {"authentication": "QRCODE"}, {"amount": "0"}, {"note": ""}, {"colour": "red"},
    {"timeoutSeconds": 0},
])
def test_bad_requests_to_pay(changes: dict[str, Any]) -> None:
    body = {"from": "SHOP", "payer": "MSISDN/111", "amount": "5"}
    body.update(changes)
    with pytest.raises(FspiopError) as exc:
        parse_rtp(dfsps()["payeefsp"], body)
    assert exc.value.code == "3100"


def transaction_request(**changes: Any) -> dict[str, Any]:
    body = {
        "transactionRequestId": "1b8a0c3e-4a3c-4f0e-9d7e-3f1f0c1a2b3c",
        "payee": {"partyIdInfo": {"partyIdType": "BUSINESS", "partyIdentifier": "SHOP", "fspId": "payeefsp"}},
        "payer": {"partyIdType": "MSISDN", "partyIdentifier": "111", "fspId": "payerfsp"},
        "amount": {"amount": "5", "currency": "USD"},
        "transactionType": {"scenario": "PAYMENT", "initiator": "PAYEE", "initiatorType": "BUSINESS"},
        "authenticationType": "OTP",
        "expiration": bodies.timestamp_in(20),
    }
    body.update(changes)
    return body


def test_a_payer_dfsp_takes_a_good_transaction_request() -> None:
    customer, timeout_s = payer_check(dfsps()["payerfsp"], transaction_request())
    assert customer.id == "111" and 18 < timeout_s <= 20
    _, timeout_s = payer_check(dfsps()["payerfsp"], transaction_request(expiration=None))
    assert timeout_s == 60


@pytest.mark.parametrize("changes, code", [
    ({"payer": {"partyIdType": "MSISDN", "partyIdentifier": "999"}}, "3204"),
    ({"payer": "111"}, "3100"),
    ({"amount": {"amount": "5", "currency": "EUR"}}, "4103"),
    ({"amount": {"amount": "5.00", "currency": "USD"}}, "3100"),
    ({"transactionType": {"scenario": "PAYMENT", "initiator": "PAYER", "initiatorType": "CONSUMER"}}, "4102"),
    ({"transactionType": {"scenario": "GIFT", "initiator": "PAYEE", "initiatorType": "BUSINESS"}}, "3100"),
    ({"authenticationType": "QRCODE"}, "3100"),
    ({"expiration": "2020-01-01T00:00:00.000Z"}, "3300"),
    ({"payee": {}}, "3100"),
])
def test_transaction_requests_a_payer_dfsp_refuses(changes: dict[str, Any], code: str) -> None:
    with pytest.raises(Refused) as exc:
        payer_check(dfsps()["payerfsp"], transaction_request(**changes))
    assert exc.value.code == code


def test_a_transaction_record_answers_get_transactions() -> None:
    payee = dfsps()["payeefsp"]
    transaction = payee.transactions[paid_in(payee)]
    assert transaction.put_body() == {"transactionState": "COMPLETED", "completedTimestamp": transaction.completed}
    transaction.code, transaction.state = "ABCD2345", "REJECTED"
    assert transaction.put_body() == {"transactionState": "REJECTED", "code": "ABCD2345"}


def test_the_phone_keeps_the_newest_texts() -> None:
    customer = Customer("1", "MSISDN", "A", 0)
    for n in range(PHONE_MAX + 5):
        customer.text("info", f"text {n}")
    assert len(customer.phone) == PHONE_MAX
    assert customer.phone[-1]["text"] == f"text {PHONE_MAX + 4}" and customer.phone[-1]["id"] == PHONE_MAX + 5


# --------------------------------------------------------------------------- merchant QR


def test_a_qr_payload_round_trips() -> None:
    dynamic = QrPayload("merchantbank", "MSISDN", "27730000001", "Corner Grocery", "25.50", "USD", "INV 42/ü")
    assert dynamic.amount == "25.5" and dynamic.dynamic
    text_payload = make_payload(dynamic)
    assert text_payload == ("mlqr:1?fsp=merchantbank&type=MSISDN&id=27730000001&name=Corner%20Grocery"
                            "&amount=25.5&currency=USD&ref=INV%2042%2F%C3%BC")
    assert read_payload(text_payload) == dynamic
    assert make_payload(read_payload(text_payload)) == text_payload
    static = QrPayload("merchantbank", "DEVICE", "MBATM001", "Merchant Bank ATM")
    assert read_payload(make_payload(static)) == static and not static.dynamic
    assert make_payload(static) == "mlqr:1?fsp=merchantbank&type=DEVICE&id=MBATM001&name=Merchant%20Bank%20ATM"


@pytest.mark.parametrize("payload, words", [
    (None, "non-empty text"),
    ("", "non-empty text"),
    ("https://example.org", "must start with mlqr:1?"),
    ("mlqr:2?fsp=a&type=MSISDN&id=1&name=A", "version '2'"),
    ("mlqr:1", "no fields"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1", "no name"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name=A&name=B", "given twice"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name=A&colour=red", "not a field"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name", "not key=value"),
    ("mlqr:1?fsp=a&type=PHONE&id=1&name=A", "type must be one of"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1%2F2&name=A", "must not contain '/'"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name=A&amount=5", "must give its currency"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name=A&amount=0&currency=USD", "greater than 0"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name=A&amount=five&currency=USD", "amount"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name=A&currency=usd", "three capital letters"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name=%FF", "UTF-8"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name=%20A", "surrounding spaces"),
    ("mlqr:1?fsp=" + "a" * 33 + "&type=MSISDN&id=1&name=A", "fsp must be 1 to 32"),
    ("mlqr:1?fsp=a&type=MSISDN&id=1&name=A&ref=" + "x" * 600, "more than 512"),
])
def test_a_bad_qr_payload_says_what_is_wrong(payload: Any, words: str) -> None:
    with pytest.raises(QrError) as exc:
        read_payload(payload)
    assert words in str(exc.value)


def test_the_qr_pictures() -> None:
    text_payload = make_payload(QrPayload("merchantbank", "MSISDN", "27730000001", "Corner Grocery", "1", "USD"))
    picture = qr_svg(text_payload)
    assert picture.startswith("<svg") and picture.rstrip().endswith("</svg>") and 'fill="white"' in picture
    art = qr_ascii(text_payload).splitlines()
    assert len(art) > 10 and len({len(line) for line in art}) == 1  # a square of equal lines
    assert set("".join(art)) <= set(" \u2580\u2584\u2588")


# --------------------------------------------------------------------------- outgoing headers


def test_outgoing_headers() -> None:
    get = request_headers("GET", "/parties/MSISDN/1", source="payerfsp", destination=None)
    assert get["Accept"] == "application/vnd.interoperability.parties+json;version=1"
    assert get["Content-Type"] == "application/vnd.interoperability.parties+json;version=1.1"
    assert "FSPIOP-Destination" not in get
    assert IMF_DATE.fullmatch(get["Date"])
    assert (get["FSPIOP-Source"], get["FSPIOP-URI"], get["FSPIOP-HTTP-Method"]) == (
        "payerfsp", "/parties/MSISDN/1", "GET")
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", get["traceparent"])
    put = request_headers("PUT", "/transfers/1", source="b", destination="a", traceparent=get["traceparent"])
    assert "Accept" not in put and put["FSPIOP-Destination"] == "a"
    assert put["traceparent"].split("-")[1] == get["traceparent"].split("-")[1]  # same trace


# --------------------------------------------------------------------------- against a toy switch

Rule = Callable[[str, str, dict[str, str], bytes], Awaitable[bool]]


class ToySwitch:
    """Forwards every FSPIOP message to `<sim>/<FSPIOP-Destination><path>`; GET /parties to the owner.

    `rule(method, path, headers, body)` may take a message over (return True: not forwarded).
    """

    def __init__(self, hub: hubfile.HubFile) -> None:
        self.owners = {(c.id_type, c.id): d.name for d in hub.dfsps for c in d.customers}
        self.sim_url = ""
        self.rule: Rule | None = None
        self.seen: list[tuple[str, str, str]] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        self.seen.append((request.method, request.path, headers.get("FSPIOP-Source", "")))
        if request.method == "GET" and request.path.startswith("/parties/"):
            _, _, id_type, party_id = request.path.split("/")[:4]
            headers["FSPIOP-Destination"] = self.owners.get((id_type, party_id), "nobody")
        if self.rule is None or not await self.rule(request.method, request.path, headers, body):
            self.later(self.deliver(request.method, request.path, headers, body))
        return web.Response(status=202 if request.method in ("GET", "POST") else 200)

    def later(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def deliver(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        assert self.session is not None
        url = f"{self.sim_url}/{headers['FSPIOP-Destination']}{path}"
        async with self.session.request(method, url, data=body or None, headers=headers) as response:
            assert response.status in (200, 202), await response.text()

    async def hub_error(self, path: str, destination: str, code: str) -> None:
        """A hub-originated error callback, e.g. 3303 after expiry."""
        headers = {"Content-Type": "application/vnd.interoperability.transfers+json;version=1.1",
                   "Date": "Mon, 01 Jan 2024 00:00:00 GMT", "FSPIOP-Source": "Hub", "FSPIOP-Destination": destination}
        await self.deliver("PUT", path + "/error", headers, json.dumps(bodies.error(code)).encode())


def run_with_switch(test: Callable[[ToySwitch, aiohttp.ClientSession, str], Awaitable[None]], **fees: str) -> None:
    """Start the sim app and a toy switch on free ports, run `test`, stop both."""
    hub = make_hub(**fees)

    async def main() -> None:
        switch = ToySwitch(hub)
        switch_app = web.Application()
        switch_app.router.add_route("*", "/{tail:.*}", switch.handle)
        runner = web.AppRunner(switch_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        app = sim_app(hub, f"http://127.0.0.1:{port}", new_health(lambda: []))
        server = None
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))  # as the hub does: Sanic reads port=0 as "the default port"
        try:
            server = await app.create_server(sock=sock, return_asyncio_server=True)
            assert server is not None
            await server.startup()
            await server.before_start()
            await server.start_serving()
            await server.after_start()
            switch.sim_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            async with aiohttp.ClientSession() as session:
                switch.session = session
                await test(switch, session, switch.sim_url)
                for task in list(switch.tasks):
                    task.cancel()
        finally:
            if server is not None:
                await server.before_stop()
                await server.close()
                await server.after_stop()
            sock.close()
            await runner.cleanup()
            Sanic.unregister_app(app)

    asyncio.run(main())


async def customers(session: aiohttp.ClientSession, url: str, dfsp: str) -> dict[str, dict[str, str]]:
    async with session.get(f"{url}/{dfsp}/customers") as r:
        return {c["id"]: c for c in await r.json()}


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_a_send_goes_through_lookup_quote_and_transfer() -> None:
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        async with session.post(f"{url}/payerfsp/send", json={
            "from": "111", "to": {"idType": "MSISDN", "id": "221"}, "amount": "40", "amountType": "RECEIVE",
        }) as r:
            assert r.status == 200, await r.text()
            result = await r.json()
        assert result["state"] == "COMMITTED"
        assert result["quote"]["transferAmount"] == {"amount": "41", "currency": "USD"}  # 40 + 2.5 % rounded
        assert result["payee"]["partyIdInfo"]["fspId"] == "payeefsp"
        assert result["balances"] == {"customer": "111", "before": "100", "after": "59", "reserved": "0"}
        steps = [(m["direction"], m["method"], m["path"].split("/")[1]) for m in result["messages"]]
        assert steps == [("out", "GET", "parties"), ("in", "PUT", "parties"), ("out", "POST", "quotes"),
                         ("in", "PUT", "quotes"), ("out", "POST", "transfers"), ("in", "PUT", "transfers")]
        assert result["messages"][4]["body"]["transferId"] == result["transferId"]
        assert result["messages"][2]["body"]["transactionId"] == result["transferId"]
        assert (await customers(session, url, "payeefsp"))["221"]["balance"] == "50"
        async with session.get(f"{url}/payeefsp/transfers/recent") as r:
            recent = await r.json()
        assert recent["transfers"][0]["transferId"] == result["transferId"]

    run_with_switch(test, fee_fixed="0", fee_percent="2.5")


def test_an_unknown_party_is_a_502_with_the_error() -> None:
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        async def unknown(method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
            if method == "GET":  # the hub finds no owner and answers itself
                switch.later(switch.hub_error(path, headers["FSPIOP-Source"], "3200"))
                return True
            return False

        switch.rule = unknown
        async with session.post(f"{url}/payerfsp/send", json=order_body(to={"idType": "MSISDN", "id": "999"})) as r:
            assert r.status == 502
            result = await r.json()
        assert (result["state"], result["step"], result["error"]["errorCode"]) == ("ABORTED", "lookup", "3200")

    run_with_switch(test)


def test_a_payee_that_refuses_a_tampered_transfer_releases_the_payer() -> None:
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        async def tamper(method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
            if method == "POST" and path == "/transfers":
                transfer = json.loads(body)
                transfer["amount"]["amount"] = "11"
                switch.later(switch.deliver(method, path, headers, json.dumps(transfer).encode()))
                return True
            return False

        switch.rule = tamper
        async with session.post(f"{url}/payerfsp/send", json=order_body()) as r:
            assert r.status == 502
            result = await r.json()
        assert (result["state"], result["step"], result["error"]["errorCode"]) == ("ABORTED", "transfer", "5105")
        assert result["balances"]["after"] == "100" and result["balances"]["reserved"] == "0"
        assert (await customers(session, url, "payeefsp"))["221"]["balance"] == "10"

    run_with_switch(test)


def test_a_shortfall_found_only_after_the_fee_is_a_400_with_the_flow() -> None:
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        async with session.post(f"{url}/payerfsp/send", json=order_body(
                **{"from": "112", "amount": "5.5", "amountType": "RECEIVE"})) as r:
            assert r.status == 400
            result = await r.json()
        assert (result["state"], result["step"], result["error"]["errorCode"]) == ("ABORTED", "transfer", "4000")
        assert result["quote"]["transferAmount"]["amount"] == "6.5"
        assert [m["path"] for m in result["messages"]][-1].startswith("/quotes/")  # no transfer was sent

    run_with_switch(test, fee_fixed="1")


def test_a_refused_prepare_releases_the_reservation() -> None:
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        async def liquidity(method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
            if method == "POST" and path == "/transfers":
                switch.later(switch.hub_error(f"/transfers/{json.loads(body)['transferId']}", "payerfsp", "4001"))
                return True
            return False

        switch.rule = liquidity
        async with session.post(f"{url}/payerfsp/send", json=order_body()) as r:
            result = await r.json()
        assert r.status == 502 and result["error"]["errorCode"] == "4001"
        assert (result["balances"]["after"], result["balances"]["reserved"]) == ("100", "0")

    run_with_switch(test)


def test_a_timed_out_transfer_stays_reserved_until_the_hub_expires_it() -> None:
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        held: list[tuple[str, dict[str, str], bytes]] = []

        async def hold(method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
            if method == "POST" and path == "/transfers":
                held.append((path, headers, body))
                return True
            return False

        switch.rule = hold
        async with session.post(f"{url}/payerfsp/send", json=order_body(timeoutSeconds=1)) as r:
            assert r.status == 504
            result = await r.json()
        assert (result["state"], result["balances"]["reserved"]) == ("TIMED_OUT", "10")
        await switch.hub_error(f"/transfers/{result['transferId']}", "payerfsp", "3303")

        async def released() -> bool:
            return (await customers(session, url, "payerfsp"))["111"]["reserved"] == "0"

        await until(released)
        assert (await customers(session, url, "payerfsp"))["111"]["balance"] == "100"

    run_with_switch(test)


def test_an_abort_after_the_fulfil_takes_the_credit_back() -> None:
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        async def expire(method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
            if method == "PUT" and path.startswith("/transfers/") and headers["FSPIOP-Source"] == "payeefsp":
                switch.later(switch.hub_error(path, "payerfsp", "3303"))
                switch.later(switch.hub_error(path, "payeefsp", "3303"))
                return True
            return False

        switch.rule = expire
        async with session.post(f"{url}/payerfsp/send", json=order_body()) as r:
            result = await r.json()
        assert r.status == 502 and result["error"]["errorCode"] == "3303"

        async def reversed_() -> bool:
            return (await customers(session, url, "payeefsp"))["221"]["balance"] == "10"

        await until(reversed_)
        assert (await customers(session, url, "payerfsp"))["111"] == {
            "id": "111", "idType": "MSISDN", "name": "Amara Okafor", "balance": "100", "reserved": "0"}

    run_with_switch(test)


def test_a_request_to_pay_runs_over_the_toy_switch() -> None:
    """The payee-initiated plumbing without the hub: the payer's DFSP quotes, asks for the OTP it texted,
    the payee's flow types it in from the phone, the transfer commits; a wrong OTP is REJECTED."""
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        async with session.post(f"{url}/payeefsp/requestToPay", json={
                "from": "SHOP", "payer": "MSISDN/111", "amount": "20", "useCase": "merchant-request"}) as r:
            assert r.status == 200, await r.text()
            result = await r.json()
        assert result["state"] == "COMMITTED" and result["quote"]["transferAmount"]["amount"] == "21"  # fee 1
        assert [m["path"].split("/")[1] for m in result["messages"]] == [
            "parties", "parties", "transactionRequests", "transactionRequests", "quotes", "quotes",
            "authorizations", "authorizations", "transfers", "transfers"]
        assert (await customers(session, url, "payerfsp"))["111"]["balance"] == "79"
        assert (await customers(session, url, "payeefsp"))["SHOP"]["balance"] == "20"
        async with session.get(f"{url}/payerfsp/customers/111/messages") as r:
            assert [t["kind"] for t in (await r.json())["messages"]] == ["paid", "otp", "request"]

        async with session.post(f"{url}/payeefsp/requestToPay", json={
                "from": "SHOP", "payer": "MSISDN/111", "amount": "1", "otp": "999"}) as r:
            assert r.status == 502, await r.text()
            result = await r.json()
        assert result["state"] == "REJECTED" and len(result["authorizations"]) == 3
        assert (await customers(session, url, "payerfsp"))["111"]["balance"] == "79"

    run_with_switch(test, fee_fixed="1")


def test_requests_are_answered_at_once_and_bad_ones_refused() -> None:
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        headers = {"FSPIOP-Source": "payerfsp", "Content-Type": "application/json"}
        async with session.get(f"{url}/payeefsp/parties/MSISDN/221", headers=headers) as r:
            assert r.status == 202 and await r.read() == b""
        async with session.put(f"{url}/payeefsp/quotes/q1", headers=headers, data=b"{}") as r:
            assert r.status == 200
        async with session.patch(f"{url}/payeefsp/transfers/t1", headers=headers, data=b"{}") as r:
            assert r.status == 200
        async with session.post(f"{url}/payeefsp/quotes", headers=headers, data=b"not json") as r:
            assert r.status == 400 and (await r.json())["errorInformation"]["errorCode"] == "3101"
        async with session.get(f"{url}/payeefsp/parties/MSISDN/221") as r:
            assert r.status == 400 and (await r.json())["errorInformation"]["errorCode"] == "3102"
        async with session.get(f"{url}/outside/parties/MSISDN/331", headers=headers) as r:
            assert r.status == 404 and (await r.json())["errorInformation"]["errorCode"] == "3002"
        async with session.post(f"{url}/payerfsp/send", json=order_body(amount="1000")) as r:
            assert r.status == 400 and (await r.json())["errorInformation"]["errorCode"] == "4000"
        async with session.get(f"{url}/dfsps") as r:
            assert [d["name"] for d in await r.json()] == ["payerfsp", "payeefsp"]

        async def answered() -> bool:  # the lookup above was answered in the background
            return ("PUT", "/parties/MSISDN/221", "payeefsp") in switch.seen

        await until(answered)

        async def recorded() -> bool:  # callbacks nobody waits for are kept for inspection
            async with session.get(f"{url}/payeefsp/transfers/recent") as r:
                unmatched = (await r.json())["unmatchedCallbacks"]
            return {(u["method"], u["path"], u["source"]) for u in unmatched} == {
                ("PUT", "/quotes/q1", "payerfsp"), ("PATCH", "/transfers/t1", "payerfsp")}

        await until(recorded)

    run_with_switch(test)


def test_empty_hub_serves_health_only() -> None:
    app = sim_app(None, "http://127.0.0.1:1", new_health(lambda: []))
    try:
        paths = {route.path for route in app.router.routes}
        assert paths == {"health"}
    finally:
        Sanic.unregister_app(app)
