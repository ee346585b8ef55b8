"""A stand-in for tui.client.HubClient with fixed answers, for the dashboard's snapshot tests.

Why: a snapshot must look the same on every run, and a real hub has new ids, times and ports
each time. `FakeClient` has HubClient's interface (wallet_url, urls, config, the requests, the
event stream) and answers from fixed data: a demo hub's DFSPs, one committed payment with its
FSPIOP messages, one refused past the Net Debit Cap, one between DFSPs outside the simulators,
and a refused request. The behaviour over a real hub is tested in tests/test_tui_core.py.

`FrozenState` is a HubState whose throughput does not move with the clock.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from tui.client import Answer
from tui.state import THROUGHPUT_S, HubState

WALLET = "http://hub.example:3080"
URLS = {"fspiop": "http://hub.example:3000", "admin": "http://hub.example:3001",
        "settlement": "http://hub.example:3007/v2", "sim": "http://hub.example:3090", "wallet": WALLET}

PAID = "8eb61adf-c671-4299-a228-7d3fd6ab08dd"  # greenwallet pays bluewallet 25 USD: committed
REFUSED = "3c1f2a4b-5c6d-4e7f-8a9b-0c1d2e3f4a5b"  # bluewallet pays greenwallet 900: past its NDC (4200)
OUTSIDE = "d4e7ab41-b5ed-4fba-aa40-25fe52852391"  # yourdfsp pays merchantbank: no simulated messages
TRACE_PAID = "9e57b51c98d507cb873beb530d173a68"
TRACE_REFUSED = "1a2b3c4d5e6f708192a3b4c5d6e7f809"
QUOTE = "a48d65ff-7a28-4295-9669-91d8e28032f2"

PARTICIPANTS = [
    {"name": "greenwallet", "currency": "USD", "position": "25", "ndc": "50", "settlementBalance": "-100000",
     "liquidity": "100000", "active": True},
    {"name": "bluewallet", "currency": "USD", "position": "-25", "ndc": "1000", "settlementBalance": "-100000",
     "liquidity": "100000", "active": True},
    {"name": "merchantbank", "currency": "USD", "position": "850", "ndc": "1000", "settlementBalance": "-200000",
     "liquidity": "200000", "active": True},
    {"name": "yourdfsp", "currency": "USD", "position": "0", "ndc": "5000", "settlementBalance": "-5000",
     "liquidity": "5000", "active": False},
]
WINDOW = {"id": 3, "state": "OPEN", "createdDate": "2026-12-06T08:00:00.000Z"}

CONFIG = {
    "dfsps": [
        {"name": "greenwallet", "currency": "USD", "quoteFeePercent": "0", "quoteFeeFixed": "0", "customers": [
            {"id": "27710000001", "idType": "MSISDN", "name": "Amara Okafor", "balance": "2475", "reserved": "0"}]},
        {"name": "bluewallet", "currency": "USD", "quoteFeePercent": "0", "quoteFeeFixed": "0", "customers": [
            {"id": "27720000001", "idType": "MSISDN", "name": "Kwame Mensah", "balance": "3025", "reserved": "0"}]},
        {"name": "merchantbank", "currency": "USD", "quoteFeePercent": "1", "quoteFeeFixed": "0", "customers": [
            {"id": "27730000001", "idType": "MSISDN", "name": "Corner Grocery", "balance": "10000",
             "reserved": "0"}]},
    ],
    "pisps": ["budgetapp"], "joinUrl": "http://192.168.1.20:3080/join", "urls": URLS,
}


def _headers(source: str, destination: str | None, trace: str, kind: str, at: str) -> dict[str, str]:
    headers = {"FSPIOP-Source": source, "Date": "Sun, 06 Dec 2026 09:01:55 GMT",
               "traceparent": f"00-{trace}-0123456789abcdef-01",
               "Content-Type": f"application/vnd.interoperability.{kind}+json;version=1.1"}
    if destination:
        headers["FSPIOP-Destination"] = destination
    return headers


def _wire(seq: int, at: str, dfsp: str, direction: str, method: str, path: str, source: str,
          destination: str | None, status: int, trace: str, body: Any, error: str | None = None) -> dict[str, Any]:
    kind = path.split("/")[1]
    return {"kind": "wire", "dfsp": dfsp, "direction": direction, "method": method, "path": path, "source": source,
            "destination": destination, "status": status, "traceId": trace, "errorCode": error, "body": body,
            "headers": _headers(source, destination, trace, kind, at), "seq": seq, "at": at}


def _both(seq: int, at_out: str, at_in: str, payer: str, payee: str, method: str, path: str, status: int,
          trace: str, body: Any, *, reply: bool = False, error: str | None = None) -> list[dict[str, Any]]:
    """A message as both simulators report it: sent by one DFSP, then delivered to the other."""
    source, destination = (payee, payer) if reply else (payer, payee)
    return [_wire(seq, at_out, source, "out", method, path, source, destination, status, trace, body, error),
            _wire(seq + 1, at_in, destination, "in", method, path, source, destination, status, trace, body, error)]


PARTY = {"party": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": "27720000001",
                                   "fspId": "bluewallet"}, "name": "Kwame Mensah"}}
QUOTE_BODY = {"quoteId": QUOTE, "transactionId": PAID, "amountType": "SEND",
              "amount": {"amount": "25", "currency": "USD"}}
TRANSFER_BODY = {"transferId": PAID, "payerFsp": "greenwallet", "payeeFsp": "bluewallet",
                 "amount": {"amount": "25", "currency": "USD"}, "expiration": "2026-12-06T09:02:55.729Z"}
REFUSED_BODY = {"transferId": REFUSED, "payerFsp": "bluewallet", "payeeFsp": "greenwallet",
                "amount": {"amount": "900", "currency": "USD"}, "expiration": "2026-12-06T09:03:10.000Z"}
NDC_ERROR = {"errorInformation": {"errorCode": "4200", "errorDescription":
                                  "Payer limit error - the payer's Net Debit Cap is 1000 USD and its position -25"}}

WIRE = [
    *_both(1, "2026-12-06T09:01:55.719Z", "2026-12-06T09:01:55.720Z", "greenwallet", "bluewallet", "GET",
           "/parties/MSISDN/27720000001", 202, TRACE_PAID, None),
    *_both(3, "2026-12-06T09:01:55.721Z", "2026-12-06T09:01:55.722Z", "greenwallet", "bluewallet", "PUT",
           "/parties/MSISDN/27720000001", 200, TRACE_PAID, PARTY, reply=True),
    *_both(5, "2026-12-06T09:01:55.723Z", "2026-12-06T09:01:55.724Z", "greenwallet", "bluewallet", "POST",
           "/quotes", 202, TRACE_PAID, QUOTE_BODY),
    *_both(7, "2026-12-06T09:01:55.725Z", "2026-12-06T09:01:55.726Z", "greenwallet", "bluewallet", "PUT",
           f"/quotes/{QUOTE}", 200, TRACE_PAID, {"transferAmount": {"amount": "25", "currency": "USD"}}, reply=True),
    *_both(9, "2026-12-06T09:01:55.728Z", "2026-12-06T09:01:55.729Z", "greenwallet", "bluewallet", "POST",
           "/transfers", 202, TRACE_PAID, TRANSFER_BODY),
    *_both(11, "2026-12-06T09:01:55.731Z", "2026-12-06T09:01:55.732Z", "greenwallet", "bluewallet", "PUT",
           f"/transfers/{PAID}", 200, TRACE_PAID, {"fulfilment": "py5UrqL41SKrYcY2D3opEG4fsgG3ySVgi54xqFAdePo",
                                                   "completedTimestamp": "2026-12-06T09:01:55.731Z",
                                                   "transferState": "COMMITTED"}, reply=True),
    _wire(13, "2026-12-06T09:02:10.100Z", "bluewallet", "out", "POST", "/transfers", "bluewallet", "greenwallet",
          202, TRACE_REFUSED, REFUSED_BODY),
    _wire(14, "2026-12-06T09:02:10.104Z", "bluewallet", "in", "PUT", f"/transfers/{REFUSED}/error", "switch",
          "bluewallet", 200, TRACE_REFUSED, NDC_ERROR, "4200"),
]


def _transfer_event(transfer_id: str, state: str, transfer_state: str, payer: str, payee: str, amount: str,
                    at: str, **extra: str) -> dict[str, Any]:
    return {"subject": f"ml.event.transfer.{transfer_id}.{state}", "type": f"transfer.{state}",
            "transferId": transfer_id, "state": state, "transferState": transfer_state, "payerFsp": payer,
            "payeeFsp": payee, "amount": amount, "currency": "USD", "at": at, **extra}


HUB_EVENTS = [
    _transfer_event(PAID, "RESERVED", "RESERVED", "greenwallet", "bluewallet", "25", "2026-12-06T09:01:55.729Z"),
    _transfer_event(PAID, "COMMITTED", "COMMITTED", "greenwallet", "bluewallet", "25", "2026-12-06T09:01:55.733Z"),
    _transfer_event(REFUSED, "ABORTED_REJECTED", "ABORTED", "bluewallet", "greenwallet", "900",
                    "2026-12-06T09:02:10.102Z", errorCode="4200",
                    errorDescription=NDC_ERROR["errorInformation"]["errorDescription"]),
    _transfer_event(OUTSIDE, "RESERVED", "RESERVED", "yourdfsp", "merchantbank", "850", "2026-12-06T09:03:00.000Z"),
    {"subject": "ml.event.request.yourdfsp.refused", "type": "request.refused", "at": "2026-12-06T09:03:30.500Z",
     "method": "PUT", "path": "/parties/MSISDN/27790000001", "status": 400, "errorCode": "3102",
     "errorDescription": "Missing mandatory element - date is required", "source": "yourdfsp",
     "destination": "greenwallet"},
]

EVENTS: list[tuple[str, Any]] = [("hello", {"wire": WIRE}), *(("hub", e) for e in HUB_EVENTS)]

# what the screens ask for: (method, URL) -> Answer; the URL of a sim call is WALLET/api/sim/...
ROUTES: dict[tuple[str, str], Answer] = {
    ("GET", f"{URLS['admin']}/participants"): Answer(200, [
        {"name": "Hub", "id": f"{URLS['admin']}/participants/Hub", "created": "2026-12-06T08:00:00.000Z",
         "isActive": 1, "links": {"self": f"{URLS['admin']}/participants/Hub"}, "isProxy": False, "accounts": [
             {"id": 1, "ledgerAccountType": "HUB_RECONCILIATION", "currency": "USD", "isActive": 1,
              "createdDate": "2026-12-06T08:00:00.000Z", "createdBy": "seeds"},
             {"id": 2, "ledgerAccountType": "HUB_MULTILATERAL_SETTLEMENT", "currency": "USD", "isActive": 1,
              "createdDate": "2026-12-06T08:00:00.000Z", "createdBy": "seeds"}]},
        *({"name": p["name"], "id": f"{URLS['admin']}/participants/{p['name']}", "created": "2026-12-06T08:00:00.000Z",
           "isActive": int(p["active"]), "links": {"self": f"{URLS['admin']}/participants/{p['name']}"},
           "isProxy": False, "accounts": [
               {"id": n * 2 + 3, "ledgerAccountType": "POSITION", "currency": "USD", "isActive": 1,
                "createdDate": "2026-12-06T08:00:00.000Z", "createdBy": "seeds"},
               {"id": n * 2 + 4, "ledgerAccountType": "SETTLEMENT", "currency": "USD", "isActive": 1,
                "createdDate": "2026-12-06T08:00:00.000Z", "createdBy": "seeds"}]}
          for n, p in enumerate(PARTICIPANTS))]),
    ("GET", f"{URLS['admin']}/settlementModels"): Answer(200, [
        {"settlementModelId": 1, "name": "DEFERREDNET", "isActive": True, "settlementGranularity": "NET",
         "settlementInterchange": "MULTILATERAL", "settlementDelay": "DEFERRED", "currency": "USD",
         "requireLiquidityCheck": True, "ledgerAccountTypeId": "POSITION", "settlementAccountTypeId": "SETTLEMENT",
         "autoPositionReset": True}]),
    ("GET", f"{URLS['settlement']}/settlementWindows"): Answer(200, [
        {"id": 3, "settlementWindowId": 3, "state": "OPEN", "reason": "end of day 2",
         "createdDate": "2026-12-06T08:00:00.000Z", "changedDate": "2026-12-06T08:00:00.000Z", "content": []},
        {"id": 2, "settlementWindowId": 2, "state": "CLOSED", "reason": "end of day 2",
         "createdDate": "2026-12-05T08:00:00.000Z", "changedDate": "2026-12-06T08:00:00.000Z", "content": [
             {"id": 2, "settlementWindowId": 2, "state": "CLOSED", "ledgerAccountType": "POSITION",
              "currencyId": "USD", "createdDate": "2026-12-05T08:00:00.000Z",
              "changedDate": "2026-12-06T08:00:00.000Z"}]},
        {"id": 1, "settlementWindowId": 1, "state": "SETTLED", "reason": "All settlement window content is SETTLED",
         "createdDate": "2026-12-04T08:00:00.000Z", "changedDate": "2026-12-05T08:00:00.000Z", "content": []}]),
    ("GET", f"{URLS['settlement']}/settlements"): Answer(200, []),
}
for _dfsp in ("greenwallet", "bluewallet", "merchantbank"):
    ROUTES[("GET", f"{WALLET}/api/sim/{_dfsp}/faults")] = Answer(
        200, {"dfsp": _dfsp, "mode": "normal", "delaySeconds": None, "errorCode": None})
ROUTES[("GET", f"{WALLET}/api/sim/dfsps")] = Answer(200, [
    {"name": "greenwallet", "currency": "USD", "customers": 6, "joined": 2},
    {"name": "bluewallet", "currency": "USD", "customers": 4, "joined": 1},
    {"name": "merchantbank", "currency": "USD", "customers": 4, "joined": 0}])
ROUTES[("GET", f"{WALLET}/api/join-qr")] = Answer(200, {"url": CONFIG["joinUrl"], "svg": ""})


class FakeClient:
    """HubClient's interface over fixed data: every call is recorded in `calls`."""

    def __init__(self, events: list[tuple[str, Any]] | None = None,
                 routes: dict[tuple[str, str], Answer] | None = None) -> None:
        self.wallet_url = WALLET
        self.urls = dict(URLS)
        self.config: dict[str, Any] = dict(CONFIG)
        self.hub: dict[str, Any] = {"participants": [dict(p) for p in PARTICIPANTS], "window": dict(WINDOW)}
        self.events_list = list(EVENTS if events is None else events)
        self.routes = dict(ROUTES if routes is None else routes)
        self.calls: list[tuple[str, str, Any]] = []

    @classmethod
    async def attach(cls, wallet_url: str) -> FakeClient:
        return cls()

    async def refresh_config(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def request(self, method: str, url: str, body: Any = None, *, slow: bool = False) -> Answer:
        self.calls.append((method, url, body))
        for (route_method, route_url), answer in self.routes.items():
            if route_method == method and url.split("?")[0] == route_url:
                return answer
        if method == "GET":
            return Answer(404, {"errorInformation": {"errorCode": "3002", "errorDescription": "Unknown URI"}})
        return Answer(200, {})

    async def get(self, url: str) -> Answer:
        return await self.request("GET", url)

    async def admin(self, method: str, path: str, body: Any = None) -> Answer:
        return await self.request(method, self.urls["admin"] + path, body)

    async def settlement(self, method: str, path: str, body: Any = None) -> Answer:
        return await self.request(method, self.urls["settlement"] + path, body)

    async def sim(self, method: str, path: str, body: Any = None, *, slow: bool = False) -> Answer:
        return await self.request(method, f"{self.wallet_url}/api/sim{path}", body)

    async def hub_view(self) -> Answer:
        return Answer(200, self.hub)

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        for kind, data in self.events_list:
            yield kind, data
        await asyncio.Event().wait()  # a quiet hub: nothing more happens


class FrozenState(HubState):
    """A HubState whose throughput window does not move with the clock (for snapshots)."""

    def __init__(self) -> None:
        super().__init__()
        self.committed_per_second = deque([0] * (THROUGHPUT_S - 30) + [2, 5, 9, 14, 12, 8, 3] * 4 + [4, 1],
                                          maxlen=THROUGHPUT_S)

    def tick(self) -> None:
        pass
