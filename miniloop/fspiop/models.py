"""The FSPIOP v1.1 message bodies as msgspec Structs, with the API's patterns, lengths and enums.

Why msgspec: every FSPIOP request body is decoded and validated here, on the hot path, and
msgspec does both in one pass in C. The rules of each data type are declared once, on the type
(`Amount`, `DateTime`, `CorrelationId` ...), so a body that breaks one is refused before any
service sees it, with a description that names the field by its JSON path, as Mojaloop's do
("Generic validation error - amount.amount does not match the Amount pattern").

Attributes are snake_case; on the wire they are the API's camelCase (`quote_id` is `quoteId`).
Amounts and date-times stay strings: their pattern is the rule, and callers convert them with
`miniloop.money` and `datetime.fromisoformat`. v1.1 lets a sender add fields the API does not
define, so unknown fields are ignored. Optional fields default to None and are left out when
encoding.

The regular expressions are the API's, written with `[0-9]` (Python's `\\d` also matches the
digits of other scripts) and `\\A...\\Z` (Python's `$` also matches before a final newline).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

from miniloop.fspiop.currencies import CURRENCIES
from miniloop.fspiop.errors import ERROR_CODES, FspiopError

T = TypeVar("T")

# ------------------------------------------------------------------------------ simple types
# A pattern type carries its name as a title, so that a validation error can name the type.

_DAY = (  # the month-day pairs of every year
    "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
)
_LEAP_YEAR = "(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26])00)"
_DATE = f"(?:[1-9][0-9]{{3}}-{_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9][.][0-9]{3}(?:Z|[+-][01][0-9]:[0-5][0-9])"
_BASE64URL = "[A-Za-z0-9_-]"

Amount = Annotated[str, Meta(title="Amount", pattern=r"\A(?:0|[1-9][0-9]{0,17})(?:[.][0-9]{0,3}[1-9])?\Z")]
Currency = Annotated[Literal[tuple(sorted(CURRENCIES))], Meta(title="Currency")]  # type: ignore[valid-type]
DateTime = Annotated[str, Meta(title="DateTime", pattern=rf"\A{_DATE}T{_TIME}\Z")]
Date = Annotated[str, Meta(title="Date", pattern=rf"\A{_DATE}\Z")]
CorrelationId = Annotated[str, Meta(
    title="CorrelationId", pattern=r"\A[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")]
IlpPacket = Annotated[str, Meta(title="IlpPacket", pattern=rf"\A{_BASE64URL}+={{0,2}}\Z", max_length=32768)]
IlpCondition = Annotated[str, Meta(title="IlpCondition", pattern=rf"\A{_BASE64URL}{{43}}\Z", max_length=48)]
IlpFulfilment = Annotated[str, Meta(title="IlpFulfilment", pattern=rf"\A{_BASE64URL}{{43}}\Z", max_length=48)]
ErrorCode = Annotated[str, Meta(title="ErrorCode", pattern=r"\A[1-9][0-9]{3}\Z")]
MerchantClassificationCode = Annotated[str, Meta(title="MerchantClassificationCode", pattern=r"\A[0-9]{1,4}\Z")]
BalanceOfPayments = Annotated[str, Meta(title="BalanceOfPayments", pattern=r"\A[1-9][0-9]{2}\Z")]
TransactionSubScenario = Annotated[str, Meta(title="TransactionSubScenario", pattern=r"\A[A-Z_]{1,32}\Z")]
Latitude = Annotated[str, Meta(
    title="Latitude", pattern=r"\A[+-]?(?:90(?:\.0{1,6})?|(?:[0-9]|[1-8][0-9])(?:\.[0-9]{1,6})?)\Z")]
Longitude = Annotated[str, Meta(
    title="Longitude", pattern=r"\A[+-]?(?:180(?:\.0{1,6})?|(?:[0-9]|[1-9][0-9]|1[0-7][0-9])(?:\.[0-9]{1,6})?)\Z")]
FspId = Annotated[str, Meta(min_length=1, max_length=32)]
ExtensionKey = Annotated[str, Meta(min_length=1, max_length=32)]
# PartyIdentifier, PartySubIdOrType, PartyName, Note, RefundReason, ErrorDescription, ExtensionValue,
# and FirstName, MiddleName, LastName (whose characters `PartyComplexName` checks) are 1..128 long.
Text128 = Annotated[str, Meta(min_length=1, max_length=128)]

PartyIdType = Literal["MSISDN", "EMAIL", "PERSONAL_ID", "BUSINESS", "DEVICE", "ACCOUNT_ID", "IBAN", "ALIAS"]
AmountType = Literal["SEND", "RECEIVE"]
TransactionScenario = Literal["DEPOSIT", "WITHDRAWAL", "TRANSFER", "PAYMENT", "REFUND"]
TransactionInitiator = Literal["PAYER", "PAYEE"]
TransactionInitiatorType = Literal["CONSUMER", "AGENT", "BUSINESS", "DEVICE"]
TransferState = Literal["RECEIVED", "RESERVED", "COMMITTED", "ABORTED"]

_NAME_CHARACTERS = frozenset(" .,'-\u200c\u200d")  # with ZWNJ and ZWJ, the Join_Control characters


def is_person_name(value: str) -> bool:
    """The API's rule for first, middle and last names.

    Letters, marks, decimal digits, connector punctuation, ZWNJ/ZWJ and ` .,'-`, not only spaces.
    The API writes it with Unicode property classes that Python's `re` does not know, so it is
    checked here against each character's Unicode category; this is the exact rule, not an
    approximation.
    """
    if not value.strip():
        return False
    for char in value:
        category = unicodedata.category(char)
        if not (category[0] in "LM" or category in ("Nd", "Pc") or char in _NAME_CHARACTERS):
            return False
    return True


def datetime_text(moment: datetime | None = None) -> str:
    """A DateTime for a body (completedTimestamp ...): UTC, with the milliseconds the API requires.

    A naive `moment` is taken to be UTC.
    """
    moment = moment or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# ------------------------------------------------------------------------------ structures


class _Body(msgspec.Struct, rename="camel", omit_defaults=True):
    """Base of every body: camelCase on the wire, unknown fields ignored, None fields omitted.

    Fields are in the API's order; a class where a required field follows an optional one says
    `kw_only=True` (msgspec applies that option to the fields of the class that sets it).
    """


class Extension(_Body):
    key: ExtensionKey
    value: Text128


class ExtensionList(_Body):
    extension: Annotated[list[Extension], Meta(min_length=1, max_length=16)]


class Money(_Body):
    currency: Currency
    amount: Amount


class PartyIdInfo(_Body):
    party_id_type: PartyIdType
    party_identifier: Text128
    party_sub_id_or_type: Text128 | None = None
    fsp_id: FspId | None = None
    extension_list: ExtensionList | None = None


class PartyComplexName(_Body):
    first_name: Text128 | None = None
    middle_name: Text128 | None = None
    last_name: Text128 | None = None

    def __post_init__(self) -> None:
        for field, value in (("firstName", self.first_name), ("middleName", self.middle_name),
                             ("lastName", self.last_name)):
            if value is not None and not is_person_name(value):
                # msgspec adds " - at `$.<path of this object>`"; `decode` joins the two
                raise ValueError(f"{field} does not match the {field[0].upper()}{field[1:]} pattern")


class PartyPersonalInfo(_Body):
    complex_name: PartyComplexName | None = None
    date_of_birth: Date | None = None


class Party(_Body):
    party_id_info: PartyIdInfo
    merchant_classification_code: MerchantClassificationCode | None = None
    name: Text128 | None = None
    personal_info: PartyPersonalInfo | None = None


class Refund(_Body):
    original_transaction_id: CorrelationId
    refund_reason: Text128 | None = None


class TransactionType(_Body, kw_only=True):
    scenario: TransactionScenario
    sub_scenario: TransactionSubScenario | None = None
    initiator: TransactionInitiator
    initiator_type: TransactionInitiatorType
    refund_info: Refund | None = None
    balance_of_payments: BalanceOfPayments | None = None


class GeoCode(_Body):
    latitude: Latitude
    longitude: Longitude


class ErrorInformation(_Body):
    error_code: ErrorCode
    error_description: Text128
    extension_list: ExtensionList | None = None


class ErrorInformationObject(_Body):
    """The body of every `PUT .../error` callback."""

    error_information: ErrorInformation


class QuotesPostRequest(_Body, kw_only=True):
    quote_id: CorrelationId
    transaction_id: CorrelationId
    transaction_request_id: CorrelationId | None = None
    payee: Party
    payer: Party
    amount_type: AmountType
    amount: Money
    fees: Money | None = None
    transaction_type: TransactionType
    geo_code: GeoCode | None = None
    note: Text128 | None = None
    expiration: DateTime | None = None
    extension_list: ExtensionList | None = None


class QuotesIDPutResponse(_Body, kw_only=True):
    transfer_amount: Money
    payee_receive_amount: Money | None = None
    payee_fsp_fee: Money | None = None
    payee_fsp_commission: Money | None = None
    expiration: DateTime
    geo_code: GeoCode | None = None
    ilp_packet: IlpPacket
    condition: IlpCondition
    extension_list: ExtensionList | None = None


class TransfersPostRequest(_Body):
    transfer_id: CorrelationId
    payee_fsp: FspId
    payer_fsp: FspId
    amount: Money
    ilp_packet: IlpPacket
    condition: IlpCondition
    expiration: DateTime
    extension_list: ExtensionList | None = None


class TransfersIDPutResponse(_Body, kw_only=True):
    fulfilment: IlpFulfilment | None = None
    completed_timestamp: DateTime | None = None
    transfer_state: TransferState
    extension_list: ExtensionList | None = None


class TransfersIDPatchResponse(_Body):
    completed_timestamp: DateTime
    transfer_state: TransferState
    extension_list: ExtensionList | None = None


class PartiesTypeIDPutResponse(_Body):
    party: Party


class ParticipantsTypeIDSubIDPostRequest(_Body):
    """POST /participants/{Type}/{ID}[/{SubId}]."""

    fsp_id: FspId
    currency: Currency | None = None
    extension_list: ExtensionList | None = None


class ParticipantsPostRequest(_Body):
    """POST /participants: register many parties at once."""

    request_id: CorrelationId
    party_list: Annotated[list[PartyIdInfo], Meta(min_length=1, max_length=10000)]
    currency: Currency | None = None


class ParticipantsTypeIDPutResponse(_Body):
    fsp_id: FspId | None = None


class PartyResult(_Body):
    party_id: PartyIdInfo
    error_information: ErrorInformation | None = None


class ParticipantsIDPutResponse(_Body):
    """PUT /participants/{requestId}: the outcome of a bulk registration, party by party."""

    party_list: Annotated[list[PartyResult], Meta(min_length=1, max_length=10000)]
    currency: Currency | None = None


# ------------------------------------------------------------------------------ decode / encode

_encoder = msgspec.json.Encoder()
_JSON_KINDS = {"str": "a string", "int": "a number", "float": "a number", "bool": "a boolean",
               "null": "null", "array": "an array", "object": "an object"}
_LENGTH = re.compile(r"Expected `(str|array)` of length ([<>]=) ([0-9]+)")
_KIND = re.compile(r"Expected `([a-z]+)`[^,]*, got `([a-z]+)`")


@cache
def _decoder(model: type[T]) -> msgspec.json.Decoder[T]:
    return msgspec.json.Decoder(model)


def decode(model: type[T], raw: bytes) -> T:
    """Decode and validate a request body, or raise the FspiopError the request deserves.

    Empty: 3102. Not JSON, or not a JSON object: 3101. Against the schema: 3100 naming the field
    by its JSON path. A quote request without a payer is 3101, as Mojaloop answers.
    """
    if not raw.strip():
        raise FspiopError("3102", "the body is required")
    try:
        return _decoder(model).decode(raw)
    except msgspec.ValidationError as exc:
        problem, _, where = str(exc).partition(" - at `$")
        if not where and problem.startswith("Expected `object`"):
            raise FspiopError("3101", "the body must be a JSON object") from None
        if model is QuotesPostRequest and "payer" not in msgspec.json.decode(raw):
            raise FspiopError("3101", "payer is required") from None
        detail = _describe(model, where.rstrip("`").lstrip("."), problem)
        raise FspiopError("3100", _fit("3100", detail)) from None
    except msgspec.DecodeError:
        raise FspiopError("3101", "the body is not valid JSON") from None


def encode(value: Any) -> bytes:
    """The JSON bytes of a body: a Struct, or plain dicts and lists."""
    return _encoder.encode(value)


def _describe(model: type, path: str, problem: str) -> str:
    """msgspec's message about the value at `path` (`amount.amount`), as a sentence naming it."""
    if problem.startswith("Object missing required field `"):
        field = problem.split("`")[1]
        return f"{path}.{field} is required" if path else f"{field} is required"
    if problem.startswith("Expected `str` matching regex"):
        return f"{path} does not match the {_field(model, path)[0] or 'API'} pattern"
    if problem.startswith("Invalid enum value "):
        value = problem.removeprefix("Invalid enum value ")
        title, info = _field(model, path)
        if title:
            return f"{path} is not a valid {title}: {value}"
        return f"{path} must be one of {', '.join(info.values)}, not {value}"
    if match := _LENGTH.match(problem):
        kind, op, limit = match.groups()
        if op == ">=" and limit == "1":
            return f"{path} must not be empty"
        bound = "at least" if op == ">=" else "at most"
        return f"{path} must have {bound} {limit} {'characters' if kind == 'str' else 'items'}"
    if match := _KIND.match(problem):
        expected, got = match.groups()
        return f"{path} must be {_JSON_KINDS.get(expected, expected)}, not {_JSON_KINDS.get(got, got)}"
    if problem[:1].islower():  # our own checks name a field of the object at `path`
        return f"{path}.{problem}" if path else problem
    return f"{path}: {problem.replace('`', '')}" if path else problem.replace("`", "")


def _field(model: type, path: str) -> tuple[str | None, Any]:
    """The title (None if untitled) and msgspec.inspect type of the field at a JSON path."""
    title, info = _unwrap(msgspec.inspect.type_info(model))
    for part in re.findall(r"[^.\[\]]+|\[[0-9]+\]", path):
        if part.startswith("["):
            info = info.item_type
        else:
            info = next(field.type for field in info.fields if field.encode_name == part)
        title, info = _unwrap(info)
    return title, info


def _unwrap(info: Any) -> tuple[str | None, Any]:
    """Look through `X | None` and a Meta wrapper; keep the wrapper's title."""
    title = None
    while True:
        if isinstance(info, msgspec.inspect.UnionType):
            info = next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
        elif isinstance(info, msgspec.inspect.Metadata):
            title = (info.extra_json_schema or {}).get("title", title)
            info = info.type
        else:
            return title, info


def _fit(code: str, detail: str) -> str:
    """Cut a detail so that the whole errorDescription stays within the API's 128 characters."""
    room = 128 - len(ERROR_CODES[code][0]) - len(" - ")
    return detail if len(detail) <= room else detail[: room - 3] + "..."
