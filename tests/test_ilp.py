"""ILP packets, fulfilments and conditions: the known vectors byte for byte, then the edges.

The vectors (tests/data/ilp-test-vectors.json) come from the API definition's own example,
central-ledger's tests and a run of the Mojaloop SDK (sdk-standard-components 19.19.1). If our
simulated DFSPs reproduce them, a real DFSP and ours produce the same packets.
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from pathlib import Path

import pytest

from miniloop.fspiop.ilp import (
    CURRENCY_EXPONENTS,
    MAX_PACKET_BYTES,
    IlpError,
    IlpPaymentV1,
    IlpPrepareV4,
    check_transfer_against_packet,
    condition_for,
    currency_exponent,
    decode_v1,
    decode_v4,
    encode_v1,
    encode_v4,
    fulfilment_for,
    fulfilment_v4_for,
    fulfils,
    ilp_address,
    minor_units,
    packet_v1,
    packet_v4,
    raw_fulfilment,
    transaction_from_packet,
    transaction_object,
)

VECTORS = json.loads((Path(__file__).parent / "data" / "ilp-test-vectors.json").read_text("utf-8"))
SPEC = VECTORS["spec_v1_1_end_to_end_example"]
SDK = VECTORS["sdk_standard_components_19_19_1"]
SDK_IN = SDK["input"]
SDK_TX = SDK["transactionObject_in_packet_data"]
V1, V4 = SDK["ilp_v1"], SDK["ilp_v4"]


def b64url_decode(text: str) -> bytes:
    text = text.rstrip("=")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def sdk_transaction() -> dict:
    answer = SDK_IN["partialQuoteResponse"]
    return transaction_object(SDK_IN["quoteRequest"], answer["transferAmount"], answer["expiration"])


# --- the vectors --------------------------------------------------------------------------------


def test_spec_example_raw_hmac():
    fulfilment = raw_fulfilment(b64url_decode(SPEC["secret_base64url"]), b64url_decode(SPEC["ilpPacket"]))
    assert b64url(fulfilment) == SPEC["fulfilment"]
    assert condition_for(SPEC["fulfilment"]) == SPEC["condition"]
    assert fulfils(SPEC["fulfilment"], SPEC["condition"])


@pytest.mark.parametrize("name", ["central_ledger_test_pair", "central_ledger_validator_pair"])
def test_central_ledger_pairs(name):
    pair = VECTORS[name]
    assert condition_for(pair["fulfilment"]) == pair["condition"]
    assert fulfils(pair["fulfilment"], pair["condition"])


def test_sdk_transaction_object():
    transaction = sdk_transaction()
    assert transaction == SDK_TX
    assert "note" not in transaction  # the request's note is not the answer's note


def test_sdk_v1_packet_fulfilment_condition():
    packet = packet_v1(sdk_transaction(), "payeefsp")
    assert packet == V1["ilpPacket"]
    assert b64url_decode(packet).hex().startswith(V1["packet_hex_prefix"])
    assert fulfilment_for(SDK_IN["secret"], packet) == V1["fulfilment"]
    assert condition_for(V1["fulfilment"]) == V1["condition"]
    assert fulfils(V1["fulfilment"], V1["condition"])


def test_sdk_v1_decoded():
    payment = decode_v1(b64url_decode(V1["ilpPacket"]))
    assert payment.amount == int(V1["decoded"]["amount"])
    assert payment.account == V1["decoded"]["address"]
    assert transaction_from_packet(V1["ilpPacket"]) == SDK_TX
    assert encode_v1(payment) == b64url_decode(V1["ilpPacket"])


def test_sdk_v4_packet_fulfilment_condition():
    transaction = sdk_transaction()
    fulfilment = fulfilment_v4_for(SDK_IN["secret"], transaction)
    assert fulfilment == V4["fulfilment"]
    condition = condition_for(fulfilment)
    assert condition == V4["condition"]
    packet = packet_v4(transaction, condition, transaction["expiration"])
    assert packet == V4["ilpPacket"]
    assert b64url_decode(packet).hex().startswith(V4["packet_hex_prefix"])


def test_sdk_v4_decoded():
    prepare = decode_v4(b64url_decode(V4["ilpPacket"]))
    assert prepare.amount == int(V4["decoded"]["amount"])
    assert prepare.destination == V4["decoded"]["address"]
    assert prepare.expires_at == "20300101000000000"
    assert prepare.execution_condition == base64.b64decode(V4["decoded"]["executionCondition"])
    assert transaction_from_packet(V4["ilpPacket"]) == SDK_TX
    assert encode_v4(prepare) == b64url_decode(V4["ilpPacket"])


def test_v4_expiry_is_converted_to_utc():
    transaction = sdk_transaction()
    condition = V4["condition"]
    same = packet_v4(transaction, condition, "2030-01-01T02:00:00.000+02:00")
    assert same == V4["ilpPacket"]
    with pytest.raises(IlpError):
        packet_v4(transaction, condition, "2030-01-01T00:00:00")  # no zone
    with pytest.raises(IlpError):
        packet_v4(transaction, condition, "tomorrow")


# --- fulfils: the switch's check ----------------------------------------------------------------

GOOD_F, GOOD_C = V1["fulfilment"], V1["condition"]


def test_fulfils_accepts_padded_condition_and_fulfilment():
    assert fulfils(GOOD_F, GOOD_C + "=")
    assert fulfils(GOOD_F + "=", GOOD_C)


@pytest.mark.parametrize(
    ("fulfilment", "condition"),
    [
        (GOOD_F, V4["condition"]),  # someone else's condition
        (GOOD_F, GOOD_C[:-1]),
        (GOOD_F[:-1], GOOD_C),  # 42 characters: 31 bytes
        (GOOD_F + "AA", GOOD_C),  # 45 characters
        (b64url(b64url_decode(GOOD_F) + b"\x00"), GOOD_C),  # 33 bytes
        (b64url(b64url_decode(GOOD_F)[:31]), GOOD_C),  # 31 bytes
        ("", GOOD_C),
        ("!" * 43, GOOD_C),  # not base64
        (GOOD_F[:-2] + "+/", GOOD_C),  # the standard alphabet is not base64url
        (GOOD_F[:10] + " " + GOOD_F[11:], GOOD_C),
        ("é" * 43, GOOD_C),
        (GOOD_F, "é" * 43),
        (GOOD_F, ""),
        (None, GOOD_C),
        (GOOD_F, None),
        (123, 456),
        (b64url_decode(GOOD_F), GOOD_C),  # bytes, not text
    ],
)
def test_fulfils_false(fulfilment, condition):
    assert fulfils(fulfilment, condition) is False


@pytest.mark.parametrize("bad", ["", "abc", GOOD_F[:-1], "*" * 43, None])
def test_condition_for_refuses_non_preimages(bad):
    with pytest.raises(IlpError):
        condition_for(bad)


def test_fulfilment_depends_on_secret_and_packet():
    packet = V1["ilpPacket"]
    assert fulfilment_for("other secret", packet) != V1["fulfilment"]
    assert fulfilment_for("secret", packet[:-1] + "B") != V1["fulfilment"]
    assert len(b64url_decode(fulfilment_for("secret", packet))) == 32


# --- OER encoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "prefix"),
    [(0, "00"), (127, "7f"), (128, "8180"), (200, "81c8"), (255, "81ff"), (256, "820100"), (300, "82012c")],
)
def test_oer_data_length_prefix(size, prefix):
    payment = IlpPaymentV1(amount=1, account="g.x", data=b"d" * size)
    raw = encode_v1(payment)
    data_at = 1 + len(_envelope_prefix(raw)) + 8 + 1 + len("g.x")
    assert raw[data_at : data_at + len(prefix) // 2].hex() == prefix
    assert raw[-1] == 0  # no extensions
    assert decode_v1(raw) == payment


def _envelope_prefix(raw: bytes) -> bytes:
    first = raw[1]
    return raw[1:2] if first < 0x80 else raw[1 : 2 + (first & 0x7F)]


def test_envelope_length_is_long_form_when_needed():
    short = encode_v1(IlpPaymentV1(5, "g.a", b"x"))
    assert short[:2] == bytes([0x01, len(short) - 2])
    long = encode_v1(IlpPaymentV1(5, "g.a", b"x" * 300))
    assert long[:2] == b"\x01\x82" and int.from_bytes(long[2:4], "big") == len(long) - 4


@pytest.mark.parametrize(
    "payment",
    [
        IlpPaymentV1(0, "g.payeefsp.msisdn.1", b""),
        IlpPaymentV1(2**64 - 1, "g.a", b"\x00\xff" * 100),
        IlpPaymentV1(10000, "g." + "a" * 1000, bytes(range(256))),
        IlpPaymentV1(42, "", b"z" * 20000),
    ],
)
def test_v1_round_trip(payment):
    assert decode_v1(encode_v1(payment)) == payment


def test_v4_round_trip():
    prepare = IlpPrepareV4(7, "20250102030405678", bytes(range(32)), "g.mojaloop", b"a" * 500)
    assert decode_v4(encode_v4(prepare)) == prepare


GOOD_RAW = encode_v1(IlpPaymentV1(100, "g.a.b.c", b"data"))


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x01",
        b"\x0c" + GOOD_RAW[1:],  # wrong type
        b"\x02" + GOOD_RAW[1:],
        GOOD_RAW[:-1],  # truncated
        GOOD_RAW + b"\x00",  # trailing byte
        GOOD_RAW[:1] + bytes([GOOD_RAW[1] + 1]) + GOOD_RAW[2:],  # envelope longer than the bytes
        GOOD_RAW[:-1] + b"\x01",  # extensions
        b"\x01\x80",  # indefinite length
        b"\x01\x81\x05" + GOOD_RAW[2:7],  # long form for a short length
        b"\x01\x82\x00\x80" + b"\x00" * 128,  # leading zero in the length
        b"\x01\x89" + b"\xff" * 9,  # nine length bytes
        b"\x01\x84\xff\xff\xff\xff",  # length far past the end
        b"\x01\x0b" + b"\x00" * 8 + b"\x01\xe9" + b"\x00",  # non-ASCII account
        b"\x01" + b"\x00" * MAX_PACKET_BYTES,  # too big
        "text, not bytes",
    ],
)
def test_decode_v1_rejects_malformed(raw):
    with pytest.raises(IlpError):
        decode_v1(raw)


def test_decode_v4_rejects_malformed():
    good = b64url_decode(V4["ilpPacket"])
    for raw in (good[:-1], good + b"\x00", b"\x01" + good[1:], good[:12] + b"x" + good[13:]):
        with pytest.raises(IlpError):
            decode_v4(raw)


@pytest.mark.parametrize(
    "payment",
    [
        IlpPaymentV1(-1, "g.a", b""),
        IlpPaymentV1(2**64, "g.a", b""),
        IlpPaymentV1(True, "g.a", b""),
        IlpPaymentV1(1.5, "g.a", b""),  # type: ignore[arg-type]
        IlpPaymentV1(1, "g.é", b""),
        IlpPaymentV1(1, "g.a", b"x" * MAX_PACKET_BYTES),
    ],
)
def test_encode_v1_refuses(payment):
    with pytest.raises(IlpError):
        encode_v1(payment)


# --- reading packets back -----------------------------------------------------------------------


def test_transaction_from_packet_accepts_padding_and_standard_alphabet():
    raw = b64url_decode(V1["ilpPacket"])
    assert transaction_from_packet(base64.b64encode(raw).decode()) == SDK_TX


@pytest.mark.parametrize(
    "packet",
    [
        "",
        "not base64!",
        "A",
        "A" * 40000,
        b64url(encode_v1(IlpPaymentV1(1, "g.a", b"***"))),  # data not base64
        b64url(encode_v1(IlpPaymentV1(1, "g.a", b64url(b"{nope").encode()))),  # not JSON
        b64url(encode_v1(IlpPaymentV1(1, "g.a", b64url(b"[1,2]").encode()))),  # not an object
        b64url(encode_v1(IlpPaymentV1(1, "g.a", b"\xff\xfe"))),  # data not ASCII
        SPEC["ilpPacket"],  # the API definition's early layout is not an ilp-packet v1 payment
    ],
)
def test_transaction_from_packet_rejects(packet):
    with pytest.raises(IlpError):
        transaction_from_packet(packet)


# --- the payee's check ------------------------------------------------------------------------

MATCHING = {"payer_fsp": "payerfsp", "payee_fsp": "payeefsp", "amount": "100", "currency": "USD"}


@pytest.mark.parametrize("packet", [V1["ilpPacket"], V4["ilpPacket"]])
def test_payee_check_matches(packet):
    assert check_transfer_against_packet(packet, **MATCHING) is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"payer_fsp": "otherfsp"}, "payerFsp"),
        ({"payee_fsp": "otherfsp"}, "payeeFsp"),
        ({"currency": "EUR"}, "currency"),
        ({"amount": "101"}, "amount"),
        ({"amount": "100.0"}, "amount"),  # FSPIOP amounts have one written form; the SDK compares texts
    ],
)
def test_payee_check_mismatch(change, named):
    reason = check_transfer_against_packet(V1["ilpPacket"], **{**MATCHING, **change})
    assert reason is not None and named in reason


@pytest.mark.parametrize("packet", ["", "%%%", V1["ilpPacket"][:-20], None])
def test_payee_check_unreadable_packet(packet):
    reason = check_transfer_against_packet(packet, **MATCHING)
    assert reason is not None and "ilpPacket" in reason


def test_payee_check_packet_without_parties():
    data = b64url(b'{"amount":{"amount":"100","currency":"USD"}}').encode()
    packet = b64url(encode_v1(IlpPaymentV1(10000, "g.a", data)))
    assert "payerFsp" in check_transfer_against_packet(packet, **MATCHING)


# --- currencies, amounts, addresses, the transaction object ---------------------------------


def test_currency_exponents():
    assert (currency_exponent("USD"), currency_exponent("JPY"), currency_exponent("KWD")) == (2, 0, 3)
    assert currency_exponent("CLF") == 4
    assert len(CURRENCY_EXPONENTS) == 166
    for unknown in ("XXX", "usd", "", None):
        with pytest.raises(IlpError):
            currency_exponent(unknown)


@pytest.mark.parametrize(
    ("amount", "currency", "units"),
    [("100", "USD", 10000), ("99", "USD", 9900), ("100.5", "USD", 10050), ("0.01", "USD", 1),
     ("100", "JPY", 100), ("1.234", "KWD", 1234), (Decimal("12.3"), "EUR", 1230), (7, "USD", 700),
     ("0", "USD", 0), ("184467440737095516.15", "USD", 2**64 - 1), ("1E+2", "USD", 10000)],
)
def test_minor_units(amount, currency, units):
    assert minor_units(amount, currency) == units


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("1.234", "USD"), ("0.5", "JPY"), ("-1", "USD"), ("NaN", "USD"), ("Infinity", "USD"),
     ("abc", "USD"), (1.5, "USD"), ("1.0000000000000000000000000001", "USD"), ("1e-30", "USD"), ("1e999999999", "USD"),
     ("1e-999999999", "USD"), (True, "USD"), (None, "USD"), ("184467440737095516.16", "USD"),
     ("1", "XXX")],
)
def test_minor_units_refuses(amount, currency):
    with pytest.raises(IlpError):
        minor_units(amount, currency)


def test_ilp_address():
    assert ilp_address("payeefsp", "MSISDN", "123456789") == "g.payeefsp.msisdn.123456789"
    assert ilp_address("PayeeFSP", "ACCOUNT_ID", "AbC", "Sub") == "g.PayeeFSP.account_id.abc.sub"
    assert ilp_address("fsp", "MSISDN", "1", "") == "g.fsp.msisdn.1"


def _quote(payee: dict, **extra) -> dict:
    request = json.loads(json.dumps(SDK_IN["quoteRequest"]))
    request["payee"] = {"partyIdInfo": payee}
    request.update(extra)
    return request


def test_packet_v1_address_uses_sub_id_and_falls_back_to_payee_fsp():
    amount = {"amount": "250", "currency": "JPY"}
    quote = _quote({"partyIdType": "MSISDN", "partyIdentifier": "27713803912", "partySubIdOrType": "Wallet"})
    packet = packet_v1(transaction_object(quote, amount, None), "bankb")
    payment = decode_v1(b64url_decode(packet))
    assert payment.account == "g.bankb.msisdn.27713803912.wallet"
    assert payment.amount == 250  # JPY has no minor units
    with pytest.raises(IlpError):
        packet_v1(transaction_object(_quote({"partyIdType": "MSISDN"}), amount, None), "bankb")
    with pytest.raises(IlpError):
        packet_v1(transaction_object(quote, {"amount": "1.5", "currency": "JPY"}, None), "bankb")


def test_transaction_object_fields():
    request = _quote({"fspId": "b", "partyIdType": "MSISDN", "partyIdentifier": "1"}, extra="dropped")
    tx = transaction_object(request, {"amount": "5", "currency": "USD"}, None, note="thanks")
    assert set(tx) == {"quoteId", "transactionId", "transactionType", "payee", "payer", "amount", "note"}
    assert tx["note"] == "thanks"
    assert "note" not in transaction_object(request, {"amount": "5", "currency": "USD"}, None, note="")
    tx["payee"]["partyIdInfo"]["fspId"] = "changed"
    assert request["payee"]["partyIdInfo"]["fspId"] == "b"  # a copy, not a view


def test_non_ascii_party_names_survive_the_packet():
    quote = _quote({"fspId": "b", "partyIdType": "MSISDN", "partyIdentifier": "1"})
    quote["payer"]["name"] = "Zoë Ñandú 日本"
    tx = transaction_object(quote, {"amount": "5", "currency": "USD"}, "2030-01-01T00:00:00.000Z")
    packet = packet_v1(tx, "b")
    assert transaction_from_packet(packet) == tx
    assert check_transfer_against_packet(
        packet, payer_fsp="payerfsp", payee_fsp="b", amount="5", currency="USD"
    ) is None
    assert fulfils(fulfilment_for("s3cret", packet), condition_for(fulfilment_for("s3cret", packet)))


def test_packets_stay_within_the_fspiop_limit():
    quote = _quote({"fspId": "b", "partyIdType": "MSISDN", "partyIdentifier": "1"})
    amount = {"amount": "5", "currency": "USD"}
    fits = packet_v1(transaction_object(quote, amount, None, note="n" * 10000), "b")
    assert len(fits) <= 32768
    with pytest.raises(IlpError):  # the JSON is base64-encoded twice: 20 kB of note is too much
        packet_v1(transaction_object(quote, amount, None, note="n" * 20000), "b")


def test_transaction_must_be_plain_json():
    quote = _quote({"fspId": "b", "partyIdType": "MSISDN", "partyIdentifier": "1"})
    for odd in (float("nan"), Decimal("1"), object()):
        quote["payer"]["odd"] = odd
        with pytest.raises(IlpError):
            packet_v1(transaction_object(quote, {"amount": "5", "currency": "USD"}, None), "b")
