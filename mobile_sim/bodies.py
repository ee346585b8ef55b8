"""The FSPIOP bodies a simulated DFSP writes, as pure functions.

Why apart: these shapes are what other DFSPs and the switch see of our simulators, so they are
kept in one place, small and unit-tested: a party, an error, a fulfil, and the timestamps in
the forms FSPIOP uses (DateTime with milliseconds and Z).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from miniloop import money
from miniloop.fspiop.errors import FspiopError
from mobile_sim.dfsp import Customer

NAME_MAX = 128  # FSPIOP PartyName, FirstName, LastName: 1..128 characters
_NAME_PART = re.compile(r"[^\w .,'-]")  # characters FSPIOP's Name pattern does not allow


def timestamp(moment: datetime | None = None) -> str:
    """An FSPIOP DateTime: UTC, milliseconds, `Z` (2024-05-01T12:00:00.000Z)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def timestamp_in(seconds: float) -> str:
    """The DateTime `seconds` from now (an expiration)."""
    return timestamp(datetime.now(UTC) + timedelta(seconds=seconds))


def parse_timestamp(text: Any) -> datetime | None:
    """An FSPIOP DateTime back to an aware datetime; None if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _name_part(text: str) -> str:
    return _NAME_PART.sub("", text).strip()[:NAME_MAX]


def party(customer: Customer, fsp_id: str, sub_id: str | None = None) -> dict[str, Any]:
    """A Party object: the id, the DFSP, the display name and, for a person, first and last name.

    A BUSINESS or DEVICE party gets no personalInfo: a company or an ATM has no first and last name.
    """
    info: dict[str, Any] = {"partyIdType": customer.id_type, "partyIdentifier": customer.id}
    if sub_id:
        info["partySubIdOrType"] = sub_id
    info["fspId"] = fsp_id
    body: dict[str, Any] = {"partyIdInfo": info}
    name = customer.name.strip()[:NAME_MAX]
    if name:
        body["name"] = name
    if customer.id_type not in ("BUSINESS", "DEVICE"):
        first, _, last = customer.name.strip().partition(" ")
        complex_name = {"firstName": _name_part(first)}
        if _name_part(last):
            complex_name["lastName"] = _name_part(last)
        if complex_name["firstName"]:
            body["personalInfo"] = {"complexName": complex_name}
    return body


def parties_put(customer: Customer, fsp_id: str, sub_id: str | None = None) -> dict[str, Any]:
    """The body of PUT /parties/{Type}/{ID}[/{SubId}]."""
    return {"party": party(customer, fsp_id, sub_id)}


def error(code: str, detail: str | None = None) -> dict[str, Any]:
    """An ErrorInformationObject, `{"errorInformation": {...}}`, described the way Mojaloop does."""
    body = FspiopError(code, detail[:100] if detail else None).body()
    info = body["errorInformation"]
    info["errorDescription"] = info["errorDescription"][:128]
    return body


def fulfil(fulfilment: str, completed: str | None = None) -> dict[str, Any]:
    """The body of the payee's PUT /transfers/{ID}: fulfilled and COMMITTED."""
    return {"fulfilment": fulfilment, "completedTimestamp": completed or timestamp(), "transferState": "COMMITTED"}


class Refused(Exception):
    """A request this DFSP will not take (a transaction request, a third-party request): the code
    and detail of the error callback it answers with."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code} {detail}")
        self.code = code
        self.detail = detail


def check_amount(amount: Any, currency: str, holder: str) -> None:
    """A requested Money object this DFSP can pay from: its currency, a positive FSPIOP amount."""
    if not isinstance(amount, dict):
        raise Refused("3100", "amount must be an object with amount and currency")
    if amount.get("currency") != currency:
        raise Refused("4103", f"{holder} holds {currency} only, not {amount.get('currency')}")
    try:
        value = money.parse_amount(amount.get("amount"), strict=True)
    except money.AmountError as exc:
        raise Refused("3100", f"amount: {exc}") from None
    if value <= 0:
        raise Refused("3100", "amount must be greater than 0")


def seconds_left(expiration: Any, default_s: float, max_s: float, what: str) -> float:
    """How long to work on a request with this `expiration` (None: `default_s`), bounded to 1 s ..
    `max_s`; 3300 if it has expired already."""
    if expiration is None:
        return min(max(default_s, 1.0), max_s)
    expires = parse_timestamp(expiration)
    if expires is None:
        raise Refused("3100", "expiration is not a DateTime")
    left = (expires - datetime.now(UTC)).total_seconds()
    if left <= 0:
        raise Refused("3300", f"{what} expired at {expiration}")
    return min(max(left, 1.0), max_s)
