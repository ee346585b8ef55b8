"""The simulated DFSPs' driving API and the positions, as the use-case tests read them."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx

TIMEOUT = 60  # a driving call answers when its flow ends (a /send's default deadline is 30 s)


def post(hub: Any, path: str, body: dict[str, Any]) -> httpx.Response:
    """POST to the sim port, e.g. post(hub, "/greenwallet/send", {...})."""
    return httpx.post(f"{hub.urls['sim']}{path}", json=body, timeout=TIMEOUT)


def get(hub: Any, path: str) -> httpx.Response:
    return httpx.get(f"{hub.urls['sim']}{path}", timeout=TIMEOUT)


def balance(hub: Any, dfsp: str, customer: str) -> Decimal:
    """A simulated customer's balance in its DFSP's books."""
    found = {c["id"]: c for c in get(hub, f"/{dfsp}/customers").json()}
    return Decimal(found[customer]["balance"])


def position(hub: Any, name: str) -> Decimal:
    """A participant's USD position, from the Admin API."""
    r = hub.admin.get(f"/participants/{name}/positions", params={"currency": "USD"})
    assert r.status_code == 200, r.text
    return Decimal(str(json.loads(r.text, parse_float=Decimal)["value"]))
