"""Checks on the fields of Admin API bodies, with the errors Mojaloop's validation gives.

central-ledger validates its Admin API with Joi and answers every failed check with 400 and error
3101, "Malformed syntax - " and a sentence naming the field (`"name" is required`). The hub file
goes through the same checks, so a bad value there gets the same explanation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from miniloop import money
from miniloop.fspiop.currencies import CURRENCIES
from miniloop.fspiop.errors import FspiopError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{2,30}$")  # also a valid NATS subject token
UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[1-7][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ULID_PATTERN = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def malformed(detail: str) -> FspiopError:
    """The error every failed check gives: 3101 Malformed syntax, as Joi's failAction does."""
    return FspiopError("3101", detail)


def required(body: dict[str, Any], field: str, label: str | None = None) -> Any:
    """body[field]; `label` names the field in the error when it is nested ('"limit.value"')."""
    if field not in body or body[field] is None:
        raise malformed(f"{label or repr_field(field)} is required")
    return body[field]


def repr_field(field: str) -> str:
    return f'"{field}"'


def text(value: Any, field: str, *, max_length: int = 256) -> str:
    if not isinstance(value, str) or not value.strip():
        raise malformed(f'"{field}" must be a non-empty string')
    if len(value) > max_length:
        raise malformed(f'"{field}" must be at most {max_length} characters long')
    return value


def participant_name(value: Any) -> str:
    if value is None:
        raise malformed('"name" is required')
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise malformed('"name" must be 2 to 30 letters, digits, "-" or "_"')
    return value


def currency(value: Any, field: str = "currency") -> str:
    if value is None:
        raise malformed(f'"{field}" is required')
    if not isinstance(value, str) or value not in CURRENCIES:
        raise malformed(f'"{field}" must be an ISO 4217 currency code, not {value!r}')
    return value


def boolean(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise malformed(f'"{field}" must be a boolean')


def one_of(value: Any, field: str, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise malformed(f'"{field}" must be one of [{", ".join(allowed)}]')
    return value


def amount(value: Any, field: str, *, allow_negative: bool = False) -> Decimal:
    try:
        parsed = money.parse_amount(value)
    except money.AmountError as exc:
        raise malformed(f'"{field}": {exc}') from None
    if parsed < 0 and not allow_negative:
        raise malformed(f'"{field}" must be greater than or equal to 0')
    return parsed


def correlation_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not (UUID_PATTERN.match(value) or ULID_PATTERN.match(value)):
        raise malformed(f'"{field}" must be a UUID (lower case) or a ULID')
    return value


def no_other_fields(body: dict[str, Any], allowed: Iterable[str]) -> None:
    extra = sorted(set(body) - set(allowed))
    if extra:
        raise malformed(f'"{extra[0]}" is not allowed')
