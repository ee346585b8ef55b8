"""ILP packets, conditions and fulfilments, built the way Mojaloop's SDK builds them.

Why this exists: the switch itself only needs one ILP rule, "sha256(fulfilment) == condition"
(`fulfils`). The simulated DFSPs need the rest. A payee answers a quote with an ilpPacket and a
condition, later receives the transfer, checks it against the packet and releases the fulfilment.
Real DFSPs do this with the Mojaloop SDK (sdk-standard-components), so our simulators produce the
same bytes it does. A packet made here and one made by a real DFSP look alike in logs, and the
known vectors in tests/data/ilp-test-vectors.json prove it.

How the SDK builds the packet, stated here in our own words:
- transaction object: the quote's ids, type, payee and payer, the quote response's expiration and
  note, and amount = the transfer amount. It is serialised as compact JSON with sorted keys.
- ILP v1 packet (the default): type 0x01, then an OER length and the contents: UInt64 amount in
  minor units, var-octet ASCII address `g.<fsp>.<type>.<id>[.<sub>]`, var-octet data, 0x00 (no
  extensions). The data octets are the *text* of base64url(JSON).
- v1 fulfilment: HMAC-SHA256 with key = ASCII of base64(secret text) and message = ASCII of the
  packet's base64url text. Mojaloop hashes the texts, not the raw bytes.
- ILP v4 packet (FSPIOP 2.0): an ILPv4 Prepare (type 0x0C) that carries the condition. The
  fulfilment therefore cannot hash the packet; it is an HMAC over base64(JSON) instead.
- condition = base64url(sha256(fulfilment bytes)). Both are 32 bytes and written as 43 characters.

Everything here is pure (no I/O). Malformed input raises `IlpError`, except `fulfils` and
`check_transfer_against_packet`, which answer instead of raising. Money is Decimal and int only.
FX packets (amount 0, a conversion address) are not built here.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

__all__ = [
    "CURRENCY_EXPONENTS",
    "ILP_V4_ADDRESS",
    "MAX_PACKET_BYTES",
    "MAX_PACKET_TEXT",
    "IlpError",
    "IlpPaymentV1",
    "IlpPrepareV4",
    "check_transfer_against_packet",
    "condition_for",
    "currency_exponent",
    "decode_v1",
    "decode_v4",
    "encode_v1",
    "encode_v4",
    "fulfilment_for",
    "fulfilment_v4_for",
    "fulfils",
    "ilp_address",
    "minor_units",
    "packet_v1",
    "packet_v4",
    "raw_fulfilment",
    "stable_json",
    "transaction_from_packet",
    "transaction_object",
]


class IlpError(ValueError):
    """A packet, amount, currency, fulfilment or condition that cannot be used."""


# --- currencies ---------------------------------------------------------------------------------

# ISO 4217 minor units for the currencies the SDK's bundled currency.json lists (the same 166
# codes, with the same exponents). Like the SDK, an unlisted code has no default: the SDK refuses
# to build a packet ("no decimal place data") and `currency_exponent` raises IlpError. Among
# FSPIOP v1.1's currencies, GGP, IMP, JEP, MRO, SPL, STD, TVD, VEF, XDR, XTS, XXX and ZWD are
# such codes.
_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_4 = "CLF UYW"
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP "
    "GBP GEL GHS GIP GMD GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT "
    "LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO "
    "NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLL SOS SRD "
    "SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VES WST XCD YER ZAR "
    "ZMW ZWL"
)
CURRENCY_EXPONENTS: dict[str, int] = {
    code: exponent
    for exponent, codes in ((0, _EXPONENT_0), (2, _EXPONENT_2), (3, _EXPONENT_3), (4, _EXPONENT_4))
    for code in codes.split()
}

UINT64_LIMIT = 2**64


def currency_exponent(currency: str) -> int:
    """Number of minor-unit digits of `currency` (USD 2, JPY 0, KWD 3); IlpError when unknown."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        raise IlpError(f"no minor-unit data for currency {currency!r}") from None


def minor_units(amount: str | int | Decimal, currency: str) -> int:
    """An FSPIOP amount ("100.5") in the currency's minor units (10050), as a packet's UInt64."""
    exponent = currency_exponent(currency)
    if isinstance(amount, (bool, float)) or not isinstance(amount, (str, int, Decimal)):
        raise IlpError(f"amount {amount!r} must be a decimal string")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise IlpError(f"amount {amount!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise IlpError(f"amount {amount!r} must be a finite, non-negative number")
    if value.adjusted() >= 20 or value.as_tuple().exponent < -64:  # keeps the exact sum below small
        raise IlpError(f"amount {amount!r} is out of range")
    units = Fraction(value) * 10**exponent  # exact: Decimal arithmetic would round at 28 digits
    if units.denominator != 1:
        raise IlpError(f"amount {amount} has more decimals than {currency} allows ({exponent})")
    if units >= UINT64_LIMIT:
        raise IlpError(f"amount {amount} {currency} does not fit in a UInt64")
    return int(units)


# --- the transaction object ---------------------------------------------------------------------


def ilp_address(
    fsp_id: str, party_id_type: str, party_identifier: str, sub_id: str | None = None
) -> str:
    """The payee's ILP address: `g.<fsp>.<type>.<id>[.<sub>]`, all but the FSP in lower case."""
    address = f"g.{fsp_id}.{party_id_type.lower()}.{party_identifier.lower()}"
    return f"{address}.{sub_id.lower()}" if sub_id else address


def transaction_object(
    quote_request: dict, transfer_amount: dict, expiration: str | None, *, note: str | None = None
) -> dict:
    """The transaction the payee packs into the ILP packet.

    `quote_request` is the POST /quotes body as received. `transfer_amount`, `expiration` and
    `note` come from the payee's PUT /quotes answer. The SDK takes the note from the answer, not
    from the request. Keys the request lacks, a None expiration and an empty note are left out,
    as the SDK's JSON leaves out undefined values.
    """
    transaction = {
        key: copy.deepcopy(quote_request[key])
        for key in ("quoteId", "transactionId", "transactionType", "payee", "payer")
        if key in quote_request
    }
    if expiration is not None:
        transaction["expiration"] = expiration
    transaction["amount"] = copy.deepcopy(transfer_amount)
    if note:
        transaction["note"] = note
    return transaction


def stable_json(value: Any) -> str:
    """Compact JSON with sorted keys, the serialisation the SDK hashes and packs."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise IlpError(f"transaction is not JSON: {exc}") from None


def _packet_data(transaction: dict) -> bytes:
    """The data octets: ASCII of base64url(stable JSON); the packet's own base64url wraps it again."""
    return _b64url(stable_json(transaction).encode("utf-8")).encode("ascii")


def _amount_of(transaction: dict) -> int:
    amount = transaction.get("amount")
    if not isinstance(amount, dict):
        raise IlpError("transaction has no amount object")
    return minor_units(amount.get("amount"), amount.get("currency"))


# --- base64 -------------------------------------------------------------------------------------

MAX_PACKET_TEXT = 32768  # FSPIOP's IlpPacket: at most 32768 characters of base64url
MAX_PACKET_BYTES = 32768  # a generous bound for raw packets (the text limit allows 24576)
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_B64_ANY = re.compile(r"[A-Za-z0-9_+/-]*={0,2}")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _packet_text(raw: bytes) -> str:
    text = _b64url(raw)
    if len(text) > MAX_PACKET_TEXT:
        raise IlpError(f"ilpPacket would be {len(text)} characters; FSPIOP allows {MAX_PACKET_TEXT}")
    return text


def _b64decode(text: str, *, url_only: bool, limit: int) -> bytes:
    """Decode base64 text, padding optional. With url_only=False '+' and '/' also pass, as in Node."""
    if not isinstance(text, str) or len(text) > limit:
        raise IlpError("not a base64 string of acceptable length")
    if not (_B64URL if url_only else _B64_ANY).fullmatch(text):
        raise IlpError("not base64url text")
    body = text.rstrip("=")
    if len(body) % 4 == 1:
        raise IlpError("base64 text has an impossible length")
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise IlpError("not base64url text") from None


# --- OER building blocks ------------------------------------------------------------------------


def _oer_length(n: int) -> bytes:
    """OER length prefix: one byte below 128, else 0x80|k followed by k big-endian bytes."""
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _var_octets(raw: bytes) -> bytes:
    return _oer_length(len(raw)) + raw


class _Reader:
    """Reads a packet front to back, refusing anything that runs past the end."""

    def __init__(self, raw: bytes) -> None:
        self.raw, self.pos = raw, 0

    def take(self, n: int) -> bytes:
        if n > len(self.raw) - self.pos:
            raise IlpError("packet is truncated")
        chunk = self.raw[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def length(self) -> int:
        first = self.take(1)[0]
        if first < 0x80:
            return first
        size = first & 0x7F
        if not 1 <= size <= 8:
            raise IlpError("bad OER length prefix")
        body = self.take(size)
        n = int.from_bytes(body, "big")
        if body[0] == 0 or n < 0x80:
            raise IlpError("OER length is not in its shortest form")
        return n

    def var_octets(self) -> bytes:
        return self.take(self.length())

    def done(self) -> bool:
        return self.pos == len(self.raw)


def _envelope(type_byte: int, contents: bytes) -> bytes:
    packet = bytes([type_byte]) + _var_octets(contents)
    if len(packet) > MAX_PACKET_BYTES:
        raise IlpError(f"packet would be {len(packet)} bytes; at most {MAX_PACKET_BYTES}")
    return packet


def _open_envelope(packet: bytes, type_byte: int) -> _Reader:
    if not isinstance(packet, (bytes, bytearray)) or not 0 < len(packet) <= MAX_PACKET_BYTES:
        raise IlpError("packet must be 1..32768 bytes")
    outer = _Reader(bytes(packet))
    if outer.take(1)[0] != type_byte:
        raise IlpError(f"packet type is not {type_byte:#04x}")
    contents = outer.var_octets()
    if not outer.done():
        raise IlpError("bytes after the end of the packet")
    return _Reader(contents)


def _ascii(raw: bytes, what: str) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise IlpError(f"{what} is not ASCII") from None


def _ascii_bytes(text: str, what: str) -> bytes:
    try:
        return text.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        raise IlpError(f"{what} must be an ASCII string") from None


def _check_uint64(amount: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount < UINT64_LIMIT:
        raise IlpError(f"amount {amount!r} is not a UInt64")


# --- ILP v1 (IlpPayment) ------------------------------------------------------------------------


@dataclass(frozen=True)
class IlpPaymentV1:
    """An ILP v1 payment: amount in minor units, the payee's ILP address, opaque data."""

    amount: int
    account: str
    data: bytes


def encode_v1(payment: IlpPaymentV1) -> bytes:
    """OER bytes of an ILP v1 payment (type 0x01, no extensions)."""
    _check_uint64(payment.amount)
    contents = (
        payment.amount.to_bytes(8, "big")
        + _var_octets(_ascii_bytes(payment.account, "account"))
        + _var_octets(bytes(payment.data))
        + b"\x00"
    )
    return _envelope(0x01, contents)


def decode_v1(packet: bytes) -> IlpPaymentV1:
    """Parse OER bytes of an ILP v1 payment; IlpError unless it is exactly one well-formed packet."""
    reader = _open_envelope(packet, 0x01)
    amount = int.from_bytes(reader.take(8), "big")
    account = _ascii(reader.var_octets(), "account")
    data = reader.var_octets()
    if reader.take(1) != b"\x00" or not reader.done():
        raise IlpError("ILP v1 extensions are not supported")
    return IlpPaymentV1(amount=amount, account=account, data=data)


def packet_v1(transaction: dict, payee_fsp: str) -> str:
    """The base64url ILP v1 packet the SDK sends in PUT /quotes for this transaction.

    The address names the payee party. Its FSP is payee.partyIdInfo.fspId (as in the SDK) or,
    when the quote did not name one, `payee_fsp`.
    """
    try:
        party = transaction["payee"]["partyIdInfo"]
        address = ilp_address(
            party.get("fspId") or payee_fsp,
            party["partyIdType"],
            party["partyIdentifier"],
            party.get("partySubIdOrType"),
        )
    except (KeyError, TypeError, AttributeError):
        raise IlpError("transaction has no payee.partyIdInfo with partyIdType and partyIdentifier") from None
    payment = IlpPaymentV1(_amount_of(transaction), address, _packet_data(transaction))
    return _packet_text(encode_v1(payment))


# --- ILP v4 (Prepare) ---------------------------------------------------------------------------

ILP_V4_ADDRESS = "g.mojaloop"  # the fixed destination the SDK writes; parties are not addresses


@dataclass(frozen=True)
class IlpPrepareV4:
    """An ILPv4 Prepare: amount, expiry as `YYYYMMDDHHmmssSSS` (UTC), condition, address, data."""

    amount: int
    expires_at: str
    execution_condition: bytes
    destination: str
    data: bytes


_V4_TIME = re.compile(r"\d{17}")


def encode_v4(prepare: IlpPrepareV4) -> bytes:
    """OER bytes of an ILPv4 Prepare (type 0x0C)."""
    _check_uint64(prepare.amount)
    if not isinstance(prepare.expires_at, str) or not _V4_TIME.fullmatch(prepare.expires_at):
        raise IlpError("expires_at must be 17 digits, YYYYMMDDHHmmssSSS")
    if len(prepare.execution_condition) != 32:
        raise IlpError("execution condition must be 32 bytes")
    contents = (
        prepare.amount.to_bytes(8, "big")
        + prepare.expires_at.encode("ascii")
        + bytes(prepare.execution_condition)
        + _var_octets(_ascii_bytes(prepare.destination, "destination"))
        + _var_octets(bytes(prepare.data))
    )
    return _envelope(0x0C, contents)


def decode_v4(packet: bytes) -> IlpPrepareV4:
    """Parse OER bytes of an ILPv4 Prepare; IlpError unless it is exactly one well-formed packet."""
    reader = _open_envelope(packet, 0x0C)
    amount = int.from_bytes(reader.take(8), "big")
    expires_at = _ascii(reader.take(17), "expiresAt")
    if not _V4_TIME.fullmatch(expires_at):
        raise IlpError("expiresAt is not 17 digits")
    condition = reader.take(32)
    destination = _ascii(reader.var_octets(), "destination")
    data = reader.var_octets()
    if not reader.done():
        raise IlpError("bytes after the Prepare's data")
    return IlpPrepareV4(amount, expires_at, condition, destination, data)


def _v4_time(expires_at: str) -> str:
    """An ISO 8601 date-time as ILPv4's `YYYYMMDDHHmmssSSS` in UTC (milliseconds, like JS Date)."""
    try:
        moment = datetime.fromisoformat(expires_at)
    except (TypeError, ValueError):
        raise IlpError(f"expiration {expires_at!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise IlpError(f"expiration {expires_at!r} has no time zone")
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


def packet_v4(transaction: dict, condition: str, expires_at: str) -> str:
    """The base64url ILPv4 Prepare the SDK sends (FSPIOP 2.0) for this transaction and condition."""
    condition_bytes = _b64decode(condition, url_only=False, limit=64)
    prepare = IlpPrepareV4(
        _amount_of(transaction), _v4_time(expires_at), condition_bytes, ILP_V4_ADDRESS,
        _packet_data(transaction),
    )
    return _packet_text(encode_v4(prepare))


# --- reading a packet back ----------------------------------------------------------------------


def transaction_from_packet(packet_b64: str) -> dict:
    """The transaction object inside a base64(url) ILP packet (v1, or v4 by its type byte)."""
    raw = _b64decode(packet_b64, url_only=False, limit=MAX_PACKET_TEXT)
    data = decode_v4(raw).data if raw[:1] == b"\x0c" else decode_v1(raw).data
    text = _b64decode(_ascii(data, "packet data"), url_only=True, limit=MAX_PACKET_BYTES)
    try:
        transaction = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise IlpError("packet data is not base64url JSON") from None
    if not isinstance(transaction, dict):
        raise IlpError("packet data is not a JSON object")
    return transaction


def check_transfer_against_packet(
    packet_b64: str, *, payer_fsp: str, payee_fsp: str, amount: str, currency: str
) -> str | None:
    """The payee's check of POST /transfers against the packet it issued: None, or why not.

    As in the SDK, the transfer's payerFsp, payeeFsp, currency and amount must equal the
    packet's transaction. Amounts are compared as texts: FSPIOP amounts have exactly one written
    form (no trailing zeros), so equal amounts are always equal texts.
    """
    try:
        transaction = transaction_from_packet(packet_b64)
    except IlpError as exc:
        return f"ilpPacket cannot be read: {exc}"

    def field(*path: str) -> Any:
        value: Any = transaction
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    checks = (
        ("payerFsp", payer_fsp, field("payer", "partyIdInfo", "fspId")),
        ("payeeFsp", payee_fsp, field("payee", "partyIdInfo", "fspId")),
        ("amount.currency", currency, field("amount", "currency")),
        ("amount.amount", amount, field("amount", "amount")),
    )
    for name, given, packed in checks:
        if given != packed:
            return f"{name} {given!r} does not match the ilpPacket ({packed!r})"
    return None


# --- fulfilment and condition -------------------------------------------------------------------


def _sdk_hmac(secret: str, message: str) -> str:
    """The SDK's HMAC: key = ASCII of base64(secret text), message = ASCII text; base64url out."""
    key = base64.b64encode(secret.encode("utf-8"))
    return _b64url(hmac.new(key, _ascii_bytes(message, "message"), hashlib.sha256).digest())


def fulfilment_for(secret: str, packet_b64: str) -> str:
    """The v1 fulfilment a payee with `secret` releases for the packet it issued (base64url)."""
    return _sdk_hmac(secret, packet_b64)


def fulfilment_v4_for(secret: str, transaction: dict) -> str:
    """The v4 fulfilment: an HMAC over base64 (standard, padded) of the transaction's JSON."""
    encoded = base64.b64encode(stable_json(transaction).encode("utf-8")).decode("ascii")
    return _sdk_hmac(secret, encoded)


def raw_fulfilment(secret_bytes: bytes, packet: bytes) -> bytes:
    """HMAC-SHA256 over raw packet bytes with a raw secret: the API definition's own example."""
    return hmac.new(secret_bytes, packet, hashlib.sha256).digest()


def _preimage(fulfilment_b64: str) -> bytes:
    # Like central-ledger (Node's decoder), unused low bits of the last character are ignored.
    preimage = _b64decode(fulfilment_b64, url_only=True, limit=64)
    if len(preimage) != 32:
        raise IlpError("a fulfilment must be exactly 32 bytes")
    return preimage


def condition_for(fulfilment_b64: str) -> str:
    """base64url(sha256(fulfilment)); IlpError unless the fulfilment is 32 bytes of base64url."""
    return _b64url(hashlib.sha256(_preimage(fulfilment_b64)).digest())


def fulfils(fulfilment_b64: str, condition_b64: str) -> bool:
    """The switch's check: does this fulfilment hash to this condition? Never raises."""
    if not isinstance(condition_b64, str):
        return False
    try:
        computed = condition_for(fulfilment_b64)
    except IlpError:
        return False
    return computed == condition_b64.rstrip("=")
