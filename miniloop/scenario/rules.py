"""The specification's rules for a DFSP, checked on what a DFSP under test sent and answered.

Why here and not in scenario files: these rules hold for every message, whatever the story. A
scenario says what should happen (a COMMITTED transfer, a 3204 for an unknown party); these
functions say whether the DFSP got there the way FSPIOP v1.1 requires: its synchronous answers,
the headers and body of each callback, the quote's amounts and ILP packet, the fulfilment and its
timing. Each broken rule becomes a `Deviation` with a stable id, the rule in one sentence and the
section of the API Definition v1.1 that states it. Everything here is pure.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from miniloop.fspiop import ilp, models
from miniloop.fspiop.errors import ERROR_CODES, FspiopError
from miniloop.fspiop.headers import _parse_imf_date
from miniloop.scenario.results import Deviation, Message
from mobile_sim.fspiop_client import resource_of

SPEC = "FSPIOP API Definition v1.1"


class Rule:
    """One rule: id, sentence, where the specification says it."""

    def __init__(self, rule_id: str, text: str, section: str) -> None:
        self.id, self.text, self.ref = rule_id, text, f"{SPEC} §{section}"

    def broken(self, dfsp: str, detail: str) -> Deviation:
        return Deviation(dfsp, self.id, self.text, self.ref, detail)


RULES = {rule.id: rule for rule in (
    Rule("sync-202", "A request (GET, POST, DELETE) is answered at once with 202 Accepted; the result "
         "comes later as a callback.", "3.2.3.1, 3.2.4"),
    Rule("sync-200", "A callback (PUT) or notification (PATCH) is answered with 200 OK.", "3.2.3.4, 3.2.4"),
    Rule("answers-requests", "Every request gets its callback (PUT or PUT .../error) before the requester "
         "gives up.", "3.2.3.1"),
    Rule("content-type", "Every callback carries Content-Type application/vnd.interoperability.<resource>"
         "+json;version=<major.minor>.", "3.2.1.1"),
    Rule("callback-version", "A callback uses a version the request's Accept header asked for.", "3.3.4.2"),
    Rule("date-header", "Every message carries a Date header in the HTTP date format (IMF-fixdate).", "3.2.1.1"),
    Rule("source-header", "FSPIOP-Source is the sending DFSP's own FSP id.", "3.2.3.6"),
    Rule("destination-header", "A callback's FSPIOP-Destination is the FSP that sent the request.", "3.2.3.6"),
    Rule("accepted-by-hub", "Every callback passes the hub's header and schema checks.", "3.2.1, 6"),
    Rule("body-schema", "The callback body has every mandatory field, each in its data type.", "7"),
    Rule("error-code", "An error callback carries a four-digit error code from the API's list (or a "
         "scheme code of its category).", "7.6"),
    Rule("quote-amounts", "The quote's amounts follow the quote equations (payeeReceiveAmount = "
         "transferAmount - payeeFspFee + payeeFspCommission; SEND: transferAmount = amount - commission; "
         "RECEIVE: the payee receives the amount asked for).", "5.1.4"),
    Rule("quote-expiration", "PUT /quotes carries an expiration in the future.", "6.5.2.1"),
    Rule("ilp-packet", "The quote's ILP packet carries the transfer amount and the quote's transaction, "
         "addressed to the payee.", "4.5, 6.5.4.1"),
    Rule("ilp-condition", "The condition is the SHA-256 of the fulfilment the payee will release, 43 "
         "base64url characters.", "4.4"),
    Rule("fulfilment", "The fulfilment in PUT /transfers hashes (SHA-256) to the transfer's condition.", "4.4, 6.7.4.1"),
    Rule("transfer-state", "PUT /transfers from the payee says COMMITTED (or RESERVED to ask for a commit "
         "notification), with a completedTimestamp.", "6.7.4.1"),
    Rule("fulfil-in-time", "The payee fulfils before the transfer's expiration; a late fulfilment is "
         "refused and the payee must not have paid out.", "6.7.2.4"),
    Rule("checks-transfer", "The payee refuses a transfer that does not match its quote (amount, ILP "
         "packet) with an error callback.", "6.7.2.8"),
    Rule("idempotent", "A resent request with the same id and body gets the same answer.", "3.2.5"),
)}

_CONTENT_TYPE = re.compile(r"application/vnd\.interoperability\.([A-Za-z]+)\+json\s?;\s?version=(\d+\.\d+)")
_ACCEPT_VERSION = re.compile(r"version=(\d+)(?:\.(\d+))?")
_ERROR_CODE = re.compile(r"[1-9]\d{3}")
_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)")


def broken(rule_id: str, dfsp: str, detail: str) -> Deviation:
    return RULES[rule_id].broken(dfsp, detail)


# ------------------------------------------------------------------------------ per message


def sync_answer(message: Message, dfsp: str) -> list[Deviation]:
    """The DFSP's synchronous answer to a message the hub sent it."""
    expected = 200 if message.method in ("PUT", "PATCH") else 202
    if message.status is None:
        return [broken("sync-202" if expected == 202 else "sync-200", dfsp,
                       f"{message.title}: no answer ({message.note or 'connection failed'})")]
    if message.status != expected:
        return [broken("sync-202" if expected == 202 else "sync-200", dfsp,
                       f"{message.title} was answered {message.status}, not {expected}")]
    return []


def callback_headers(message: Message, dfsp: str, requester: str | None, accept: str | None) -> list[Deviation]:
    """The headers of a callback the DFSP sent to the hub (as the hub received them)."""
    found: list[Deviation] = []
    headers = message.headers
    resource = resource_of(message.path)
    content_type = headers.get("content-type")
    match = _CONTENT_TYPE.fullmatch(content_type or "")
    if content_type is None:
        found.append(broken("content-type", dfsp, f"{message.title} has no Content-Type"))
    elif match is None or match[1] != resource:
        found.append(broken("content-type", dfsp, f"{message.title} has Content-Type {content_type!r}"))
    elif accept and not _version_accepted(match[2], accept):
        found.append(broken("callback-version", dfsp,
                            f"{message.title} is version {match[2]}, the request accepted {accept!r}"))
    date = headers.get("date")
    if date is None:
        found.append(broken("date-header", dfsp, f"{message.title} has no Date header"))
    elif _parse_imf_date(date) is None:
        found.append(broken("date-header", dfsp, f"{message.title} has Date {date!r}"))
    source = headers.get("fspiop-source")
    if source != dfsp:
        found.append(broken("source-header", dfsp, f"{message.title} has FSPIOP-Source {source!r}, not {dfsp!r}"))
    destination = headers.get("fspiop-destination")
    if requester and destination != requester:
        found.append(broken("destination-header", dfsp,
                            f"{message.title} has FSPIOP-Destination {destination!r}, not {requester!r}"))
    return found


def _version_accepted(version: str, accept: str) -> bool:
    for major, minor in _ACCEPT_VERSION.findall(accept):
        if version.split(".")[0] == major and (not minor or version == f"{major}.{minor}"):
            return True
    return "version=" not in accept  # a bare media type accepts any version


_SCHEMAS: list[tuple[re.Pattern[str], type]] = [
    (re.compile(r"/[A-Za-z]+/.+/error"), models.ErrorInformationObject),
    (re.compile(r"/parties/.+"), models.PartiesTypeIDPutResponse),
    (re.compile(r"/quotes/[^/]+"), models.QuotesIDPutResponse),
    (re.compile(r"/transfers/[^/]+"), models.TransfersIDPutResponse),
]


def callback_body(message: Message, dfsp: str) -> list[Deviation]:
    """The body of a PUT callback against the API's schema; an error code against the code list."""
    for pattern, model in _SCHEMAS:
        if pattern.fullmatch(message.path):
            break
    else:
        return []
    try:
        models.decode(model, msgspec.json.encode(message.body) if message.body is not None else b"")
    except FspiopError as exc:
        return [broken("body-schema", dfsp, f"{message.title}: {exc.description}")]
    code = message.error_code
    if model is models.ErrorInformationObject and code is not None and not _known_code(code):
        return [broken("error-code", dfsp, f"{message.title} carries error code {code}, which the API does not define")]
    return []


def _known_code(code: str) -> bool:
    if not _ERROR_CODE.fullmatch(code):
        return False
    return code in ERROR_CODES or int(code[2:]) >= 40  # xx40 and above: scheme-specific


def refused(message: Message, dfsp: str, already: list[Deviation]) -> list[Deviation]:
    """A callback the hub refused: reported unless a header rule already explains it."""
    if "refused by the hub" not in message.note or already:
        return []
    return [broken("accepted-by-hub", dfsp, f"{message.title}: {message.note}")]


# ------------------------------------------------------------------------------ quotes and transfers


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _amount(body: dict[str, Any], key: str) -> Decimal | None:
    money = body.get(key)
    return _decimal(money.get("amount")) if isinstance(money, dict) else None


def parse_datetime(text: Any) -> datetime | None:
    if not isinstance(text, str) or not _DATETIME.fullmatch(text):
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def quote_answer(request: dict[str, Any], answer: dict[str, Any], dfsp: str, now: datetime | None = None) -> list[Deviation]:
    """PUT /quotes/{ID} against the POST /quotes it answers."""
    found: list[Deviation] = []
    transfer, receive = _amount(answer, "transferAmount"), _amount(answer, "payeeReceiveAmount")
    fee, commission = _amount(answer, "payeeFspFee") or Decimal(0), _amount(answer, "payeeFspCommission") or Decimal(0)
    asked = _amount(request, "amount")
    if transfer is not None and receive is not None and receive != transfer - fee + commission:
        found.append(broken("quote-amounts", dfsp, f"payeeReceiveAmount {receive} is not transferAmount {transfer} "
                                                   f"- fee {fee} + commission {commission}"))
    if transfer is not None and asked is not None:
        if request.get("amountType") == "SEND" and "fees" not in request and transfer != asked - commission:
            found.append(broken("quote-amounts", dfsp, f"SEND {asked}: transferAmount is {transfer}, not {asked - commission}"))
        if request.get("amountType") == "RECEIVE" and transfer - fee + commission != asked:
            found.append(broken("quote-amounts", dfsp, f"RECEIVE {asked}: the payee would receive "
                                                       f"{transfer - fee + commission}"))
    currency = (request.get("amount") or {}).get("currency")
    if isinstance(answer.get("transferAmount"), dict) and answer["transferAmount"].get("currency") != currency:
        found.append(broken("quote-amounts", dfsp, f"transferAmount is in {answer['transferAmount'].get('currency')}, "
                                                   f"the quote asked for {currency}"))
    expiration = parse_datetime(answer.get("expiration"))
    if expiration is None:
        found.append(broken("quote-expiration", dfsp, f"expiration is {answer.get('expiration')!r}"))
    elif expiration <= (now or datetime.now(timezone.utc)):
        found.append(broken("quote-expiration", dfsp, f"expiration {answer['expiration']} has already passed"))
    found += _ilp_packet(request, answer, dfsp, transfer)
    return found


def _ilp_packet(request: dict[str, Any], answer: dict[str, Any], dfsp: str, transfer: Decimal | None) -> list[Deviation]:
    condition, packet = answer.get("condition"), answer.get("ilpPacket")
    found: list[Deviation] = []
    if not isinstance(condition, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}", condition):
        found.append(broken("ilp-condition", dfsp, f"condition {condition!r} is not 43 base64url characters"))
    if not isinstance(packet, str):
        return found + [broken("ilp-packet", dfsp, "there is no ilpPacket")]
    try:
        payment = ilp.decode_v1(_unbase64(packet))
        transaction = ilp.transaction_from_packet(packet)
    except (ilp.IlpError, ValueError, binascii.Error) as exc:
        return found + [broken("ilp-packet", dfsp, f"the ILP packet cannot be read as an ILP v1 payment: {exc}")]
    currency = (answer.get("transferAmount") or {}).get("currency") or ""
    if transfer is not None:
        try:
            expected = ilp.minor_units(transfer, currency)
        except ilp.IlpError:
            expected = None
        if expected is not None and payment.amount != expected:
            found.append(broken("ilp-packet", dfsp, f"the packet's amount is {payment.amount} minor units, "
                                                    f"transferAmount {transfer} {currency} is {expected}"))
    if not payment.account.startswith(f"g.{dfsp.lower()}."):
        found.append(broken("ilp-packet", dfsp, f"the packet is addressed to {payment.account}, not the payee "
                                                f"g.{dfsp.lower()}..."))
    for key in ("quoteId", "transactionId"):
        if transaction.get(key) != request.get(key):
            found.append(broken("ilp-packet", dfsp, f"the packet's transaction has {key} {transaction.get(key)!r}, "
                                                    f"the quote {request.get(key)!r}"))
    return found


def _unbase64(text: str) -> bytes:
    """The bytes of a base64 or base64url packet (padding optional)."""
    return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))


def fulfil(answer: dict[str, Any], condition: str | None, dfsp: str) -> list[Deviation]:
    """PUT /transfers/{ID} from the payee: state, timestamp, fulfilment against the condition."""
    found: list[Deviation] = []
    state = answer.get("transferState")
    if state not in ("COMMITTED", "RESERVED"):
        found.append(broken("transfer-state", dfsp, f"transferState is {state!r}"))
    if parse_datetime(answer.get("completedTimestamp")) is None:
        found.append(broken("transfer-state", dfsp, f"completedTimestamp is {answer.get('completedTimestamp')!r}"))
    fulfilment = answer.get("fulfilment")
    if condition and isinstance(fulfilment, str) and not ilp.fulfils(fulfilment, condition):
        found.append(broken("fulfilment", dfsp, "the fulfilment does not hash to the condition of the quote"))
    return found
