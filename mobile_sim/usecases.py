"""The FSPIOP use cases the simulated DFSPs drive, and the transactionType each one puts on the wire.

Why a table: the use case is what a person picks ("cash-out at an agent"), the transactionType is
what FSPIOP carries (scenario / initiator / initiatorType, FSPIOP.md §6, spec §5.3). Keeping the
mapping in one place makes the driving API, the docs and the tests agree.

- Payer-initiated (POST /<dfsp>/send "useCase", and /payQr): the payer's DFSP quotes with it.
- Payee-initiated (POST /<dfsp>/requestToPay "useCase"): the payee's DFSP puts it in its
  POST /transactionRequests, and the payer's DFSP quotes with the same one.
"""

from __future__ import annotations

from typing import Any

PAYER_USE_CASES: dict[str, tuple[str, str, str]] = {
    "p2p": ("TRANSFER", "PAYER", "CONSUMER"),
    "merchant-pay": ("PAYMENT", "PAYER", "CONSUMER"),
    "cash-in": ("DEPOSIT", "PAYER", "AGENT"),
    "cash-out": ("WITHDRAWAL", "PAYER", "CONSUMER"),
    "refund": ("REFUND", "PAYER", "BUSINESS"),
}

PAYEE_USE_CASES: dict[str, tuple[str, str, str]] = {
    "merchant-request": ("PAYMENT", "PAYEE", "BUSINESS"),
    "agent-cash-out": ("WITHDRAWAL", "PAYEE", "AGENT"),
    "atm-cash-out": ("WITHDRAWAL", "PAYEE", "DEVICE"),
}

SCENARIOS = ("DEPOSIT", "WITHDRAWAL", "TRANSFER", "PAYMENT", "REFUND")
INITIATORS = ("PAYER", "PAYEE")
INITIATOR_TYPES = ("CONSUMER", "AGENT", "BUSINESS", "DEVICE")


def transaction_type(use_case: str, refund_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The TransactionType object of a use case (a key of PAYER_USE_CASES or PAYEE_USE_CASES)."""
    scenario, initiator, initiator_type = PAYER_USE_CASES.get(use_case) or PAYEE_USE_CASES[use_case]
    body: dict[str, Any] = {"scenario": scenario, "initiator": initiator, "initiatorType": initiator_type}
    if refund_info is not None:
        body["refundInfo"] = refund_info
    return body


def check_transaction_type(value: Any) -> str | None:
    """Why a TransactionType object is unusable, or None when it is fine."""
    if not isinstance(value, dict):
        return "transactionType must be an object"
    if value.get("scenario") not in SCENARIOS:
        return f"transactionType.scenario must be one of {', '.join(SCENARIOS)}"
    if value.get("initiator") not in INITIATORS:
        return "transactionType.initiator must be PAYER or PAYEE"
    if value.get("initiatorType") not in INITIATOR_TYPES:
        return f"transactionType.initiatorType must be one of {', '.join(INITIATOR_TYPES)}"
    return None
