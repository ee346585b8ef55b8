"""The wallet port's HTTP client to the hub's own APIs: the sim port's driving API (proxied for the
page), the Admin API and the Settlement API (read for the hub pane).

Why a proxy at all: the page is served from the wallet port only, so a phone on a workshop's LAN
needs nothing but that one address; the other ports may listen on loopback or be firewalled.

One aiohttp session, opened when the server starts and closed when it stops. A driving call may
wait up to 600 s (a /bulkPay's `timeoutSeconds`; a /send's is 300 s at most), so a forwarded request
may take a little longer;
a read of the Admin or Settlement API takes at most READ_TIMEOUT_S.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp
from yarl import URL

from miniloop import money
from miniloop.fspiop.errors import FspiopError

FORWARD_TIMEOUT_S = 610.0  # the longest driving call (/bulkPay) waits 600 s, then answers
READ_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0


class Upstream:
    def __init__(self, admin_token: str | None = None) -> None:
        self.session: aiohttp.ClientSession | None = None
        # get_json reads only the Admin and Settlement APIs: they may need the hub's admin token
        self._read_headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}

    async def open(self) -> None:
        # no proxy from the environment (trust_env=False): everything is on this machine
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            connector=aiohttp.TCPConnector(limit=200), trust_env=False)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            raise FspiopError("2003", "the wallet server is stopping", status=503)
        return self.session

    async def forward(self, method: str, url: str, body: bytes | None) -> tuple[int, bytes, str | None]:
        """`method url` with a JSON body as it came: (status, body, content type) as answered."""
        headers = {"Content-Type": "application/json"} if body else {}
        try:
            async with self._session().request(method, URL(url, encoded=True), data=body or None,
                                               headers=headers, allow_redirects=False) as response:
                return response.status, await response.read(), response.headers.get("Content-Type")
        except TimeoutError:
            raise FspiopError("2004", "the simulated DFSPs did not answer in time", status=504) from None
        except aiohttp.ClientError as exc:
            raise FspiopError("2003", f"the simulated DFSPs cannot be reached ({exc})", status=503) from None

    async def get_json(self, url: str, what: str) -> tuple[int, Any]:
        """GET `url`: (status, JSON body with JSON numbers as Decimal, never float)."""
        try:
            async with self._session().get(url, headers=self._read_headers,
                                           timeout=aiohttp.ClientTimeout(total=READ_TIMEOUT_S)) as response:
                text = await response.text()
                status = response.status
        except TimeoutError:
            raise FspiopError("2004", f"the {what} did not answer in time", status=504) from None
        except aiohttp.ClientError as exc:
            raise FspiopError("2003", f"the {what} cannot be reached ({exc})", status=503) from None
        try:
            return status, json.loads(text, parse_float=Decimal) if text else None
        except ValueError:
            raise FspiopError("2001", f"the {what} answered something that is not JSON") from None


def amount_text(value: Any) -> str | None:
    """An Admin API amount (a JSON number) as FSPIOP text: 10000 -> "10000", -12.50 -> "-12.5"."""
    if value is None:
        return None
    return money.format_amount(money.to_units(money.parse_amount(value)))


async def hub_view(upstream: Upstream, admin_url: str, settlement_url: str) -> dict[str, Any]:
    """GET /api/hub: every DFSP's position, Net Debit Cap and settlement balance per currency, and
    the open settlement window. The Hub and participants without a POSITION account (centralAuth)
    are left out."""
    status, participants = await upstream.get_json(f"{admin_url}/participants", "Admin API")
    if status != 200 or not isinstance(participants, list):
        raise FspiopError("2001", f"the Admin API answered GET /participants with {status}")
    dfsps = [p for p in participants if p.get("name") != "Hub" and any(
        a.get("ledgerAccountType") == "POSITION" for a in p.get("accounts") or [])]
    views, window = await asyncio.gather(
        asyncio.gather(*(_participant(upstream, admin_url, p) for p in dfsps)),
        _open_window(upstream, settlement_url))
    return {"participants": [row for rows in views for row in rows], "window": window}


async def _participant(upstream: Upstream, admin_url: str, participant: dict[str, Any]) -> list[dict[str, Any]]:
    name = participant["name"]
    (s1, positions), (s2, limits), (s3, accounts) = await asyncio.gather(
        upstream.get_json(f"{admin_url}/participants/{name}/positions", "Admin API"),
        upstream.get_json(f"{admin_url}/participants/{name}/limits", "Admin API"),
        upstream.get_json(f"{admin_url}/participants/{name}/accounts", "Admin API"))
    if (s1, s2, s3) != (200, 200, 200):
        raise FspiopError("2001", f"the Admin API did not give {name}'s positions, limits and accounts")
    rows = []
    for account in accounts:
        if account.get("ledgerAccountType") != "POSITION":
            continue
        currency = account["currency"]
        position = next((p["value"] for p in positions if p.get("currency") == currency), None)
        ndc = next((limit["limit"]["value"] for limit in limits if limit.get("currency") == currency
                    and limit.get("limit", {}).get("type") == "NET_DEBIT_CAP"), None)
        settlement = next((a["value"] for a in accounts if a.get("currency") == currency
                           and a.get("ledgerAccountType") == "SETTLEMENT"), None)
        rows.append({
            "name": name, "currency": currency, "position": amount_text(position), "ndc": amount_text(ndc),
            # the SETTLEMENT account's value as the Admin API and the events give it: negative
            # when money is deposited; liquidity is what the DFSP has there (-value)
            "settlementBalance": amount_text(settlement),
            "liquidity": None if settlement is None else amount_text(-money.parse_amount(settlement)),
            "active": bool(participant.get("isActive")) and bool(account.get("isActive")),
        })
    return rows


async def _open_window(upstream: Upstream, settlement_url: str) -> dict[str, Any] | None:
    status, windows = await upstream.get_json(f"{settlement_url}/settlementWindows?state=OPEN", "Settlement API")
    if status != 200 or not isinstance(windows, list) or not windows:
        return None  # the Settlement API answers 400 when no window matches
    window = max(windows, key=lambda w: int(w.get("settlementWindowId") or w.get("id") or 0))
    return {"id": window.get("settlementWindowId", window.get("id")), "state": window.get("state"),
            "createdDate": window.get("createdDate")}
