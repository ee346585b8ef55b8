"""Merchant QR codes: the text a QR carries (make_payload / read_payload) and its pictures.

Why our own format: FSPIOP has no QR payload of its own (merchant QR schemes such as EMVCo's are
national and long); a sandbox needs one that a person can read and a wallet can check. It is a
URI-like text, one line, values percent-encoded (UTF-8), keys in this order:

    mlqr:1?fsp=merchantbank&type=MSISDN&id=27730000001&name=Corner%20Grocery&amount=25&currency=USD&ref=INV-42

| key | required | meaning |
|---|---|---|
| fsp | yes | the merchant's DFSP (FspId, 1..32 characters) |
| type | yes | the merchant's party id type (MSISDN, BUSINESS, DEVICE, ...) |
| id | yes | the merchant's party id (1..128 characters, no '/') |
| name | yes | the merchant's name, shown to the payer (1..128 characters) |
| amount | no | a dynamic QR's amount (an FSPIOP Amount, > 0); a static QR has none |
| currency | with amount | ISO 4217 code; may also be given alone |
| ref | no | the merchant's reference (invoice, till), 1..128 characters; becomes the quote's note |

`read_payload` refuses anything else with a QrError that says what is wrong: another prefix or
version, an unknown or repeated key, a missing or bad value, more than 512 characters.
`make_payload(read_payload(text))` gives back the text; `read_payload(make_payload(x)) == x`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import quote, unquote

import qrcode
import qrcode.image.svg

from miniloop import money
from miniloop.services.oracles import PARTY_ID_TYPES

PREFIX = "mlqr:"
VERSION = "1"
PAYLOAD_MAX = 512
KEYS = ("fsp", "type", "id", "name", "amount", "currency", "ref")
_CURRENCY = re.compile(r"[A-Z]{3}")


class QrError(ValueError):
    """A payload that is not a usable merchant QR; the message says why."""


@dataclass(frozen=True)
class QrPayload:
    """What a merchant QR says: who to pay, and for a dynamic QR how much."""

    fsp: str
    id_type: str
    party_id: str
    name: str
    amount: str | None = None  # normalised FSPIOP Amount text ("25", "12.5")
    currency: str | None = None
    reference: str | None = None

    def __post_init__(self) -> None:
        _text(self.fsp, "fsp", 32)
        if self.id_type not in PARTY_ID_TYPES:
            raise QrError(f"type must be one of {', '.join(PARTY_ID_TYPES)}, not {self.id_type!r}")
        _text(self.party_id, "id", 128)
        if "/" in self.party_id:
            raise QrError("id must not contain '/'")
        _text(self.name, "name", 128)
        if self.reference is not None:
            _text(self.reference, "ref", 128)
        if self.currency is not None and not _CURRENCY.fullmatch(self.currency):
            raise QrError(f"currency must be three capital letters (ISO 4217), not {self.currency!r}")
        if self.amount is not None:
            if self.currency is None:
                raise QrError("a QR with an amount must give its currency")
            try:
                amount = money.parse_amount(self.amount)
            except money.AmountError as exc:
                raise QrError(f"amount: {exc}") from None
            if amount <= 0:
                raise QrError("amount must be greater than 0")
            object.__setattr__(self, "amount", money.format_amount(money.to_units(Decimal(amount))))

    @property
    def dynamic(self) -> bool:
        """A dynamic QR names the amount; a static one lets the payer type it."""
        return self.amount is not None


def _text(value: object, key: str, limit: int) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= limit or value != value.strip():
        raise QrError(f"{key} must be 1 to {limit} characters without surrounding spaces")
    if any(ord(c) < 32 for c in value):
        raise QrError(f"{key} must not contain control characters")


def make_payload(qr: QrPayload) -> str:
    """The text to put in the QR code."""
    values = {"fsp": qr.fsp, "type": qr.id_type, "id": qr.party_id, "name": qr.name, "amount": qr.amount,
              "currency": qr.currency, "ref": qr.reference}
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in values.items() if value is not None)
    text = f"{PREFIX}{VERSION}?{query}"
    if len(text) > PAYLOAD_MAX:
        raise QrError(f"the payload would be {len(text)} characters, more than {PAYLOAD_MAX}")
    return text


def read_payload(text: object) -> QrPayload:
    """The QrPayload a scanned text carries; QrError when it is not a valid merchant QR."""
    if not isinstance(text, str) or not text:
        raise QrError("the payload must be a non-empty text")
    if len(text) > PAYLOAD_MAX:
        raise QrError(f"the payload is {len(text)} characters, more than {PAYLOAD_MAX}")
    if not text.startswith(PREFIX):
        raise QrError(f"not a miniloop merchant QR: it must start with {PREFIX}{VERSION}?")
    version, sep, query = text[len(PREFIX):].partition("?")
    if version != VERSION:
        raise QrError(f"QR version {version!r} is not supported (only {VERSION})")
    if not sep or not query:
        raise QrError("the payload has no fields after '?'")
    values: dict[str, str] = {}
    for part in query.split("&"):
        key, eq, raw = part.partition("=")
        if not eq:
            raise QrError(f"{part!r} is not key=value")
        if key not in KEYS:
            raise QrError(f"{key!r} is not a field of a merchant QR (fields: {', '.join(KEYS)})")
        if key in values:
            raise QrError(f"{key} is given twice")
        try:
            values[key] = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise QrError(f"{key} is not percent-encoded UTF-8") from None
    for key in ("fsp", "type", "id", "name"):
        if key not in values:
            raise QrError(f"the payload has no {key}")
    return QrPayload(values["fsp"], values["type"], values["id"], values["name"], values.get("amount"),
                     values.get("currency"), values.get("ref"))


def svg(text: str) -> str:
    """The QR code of `text` as an SVG document (black on white, a 4-module quiet zone)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathFillImage, border=4)
    out = image.to_string(encoding="unicode")
    return out if isinstance(out, str) else out.decode()


def ascii_art(text: str) -> str:
    """The QR code of `text` in block characters, two modules per character cell.

    Light modules are drawn solid, so the code scans on a terminal with a dark background.
    """
    code = qrcode.QRCode(border=2)
    code.add_data(text)
    code.make(fit=True)
    out = io.StringIO()
    code.print_ascii(out=out, invert=True)
    return out.getvalue().replace("\xa0", " ")  # qrcode draws "empty" as a no-break space
