"""The dashboard's one way into a hub: its HTTP APIs, reached from the wallet port.

Why the wallet port: it already gathers what a dashboard needs behind one address (the hub's
URLs, the DFSPs' positions and caps, the open window, the simulators' driving API, and a live
stream of every hub event from NATS plus every FSPIOP message the simulated DFSPs exchange), so
`miniloop tui --url http://pi.local:3080` works from another machine as well as from the same
one. The Admin and Settlement APIs are called directly, on the host of that URL with the ports
the hub reports (a hub listening beyond loopback serves them there too).

Everything is bounded: each request has a timeout, the event stream reconnects with a growing
pause (at most EVENTS_RETRY_MAX_S) and never queues more than the caller takes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

REQUEST_TIMEOUT_S = 15.0
SLOW_REQUEST_TIMEOUT_S = 330.0  # a driving call of the simulators may wait for its flow to end
EVENTS_RETRY_MIN_S = 0.5
EVENTS_RETRY_MAX_S = 5.0
EVENT_LINE_MAX = 1 << 20  # one server-sent event line (an FSPIOP body) is far smaller


class HubUnreachable(Exception):
    """The hub does not answer at the given URL: one line for the user."""


@dataclass
class Answer:
    """One HTTP answer: its status and its JSON body (None when it had none)."""

    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error_text(self) -> str:
        """The FSPIOP error of a refusal, as one line: "3100 Generic validation error - ..."."""
        info = self.body.get("errorInformation") if isinstance(self.body, dict) else None
        if isinstance(info, dict):
            return f"{info.get('errorCode', '')} {info.get('errorDescription', '')}".strip()
        return f"HTTP {self.status}"


def _on_host(url: str, host: str) -> str:
    """`url` with its host replaced by `host` (the hub reports its URLs as seen from itself)."""
    parts = urlsplit(url)
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class HubClient:
    """A connection to one running hub. Open with `await HubClient.attach(wallet_url)`."""

    wallet_url: str
    urls: dict[str, str] = field(default_factory=dict)  # fspiop, admin, settlement, sim, wallet
    config: dict[str, Any] = field(default_factory=dict)  # GET /api/config: dfsps, pisps, joinUrl
    _session: aiohttp.ClientSession | None = None
    admin_token: str | None = None  # sent to the Admin, Settlement and ALS admin APIs only (--admin-token)

    @classmethod
    async def attach(cls, wallet_url: str, admin_token: str | None = None) -> HubClient:
        client = cls(wallet_url.rstrip("/"), admin_token=admin_token or None)
        client._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S))
        try:
            await client.refresh_config()
        except BaseException:
            await client.close()
            raise
        return client

    async def refresh_config(self) -> None:
        """Read the hub's URLs, simulated DFSPs and customers again (GET /api/config)."""
        try:
            answer = await self.get(f"{self.wallet_url}/api/config")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HubUnreachable(f"no miniloop wallet port answers at {self.wallet_url} ({exc})") from None
        if not answer.ok or not isinstance(answer.body, dict):
            raise HubUnreachable(f"{self.wallet_url} is not a miniloop wallet port (GET /api/config: "
                                 f"{answer.error_text()})")
        self.config = answer.body
        host = urlsplit(self.wallet_url).hostname or "127.0.0.1"
        self.urls = {name: _on_host(url, host) for name, url in (answer.body.get("urls") or {}).items()}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- plain requests ----------------------------------------------------------------------

    async def request(self, method: str, url: str, body: Any = None, *, slow: bool = False) -> Answer:
        """One JSON request; network problems raise aiohttp.ClientError or TimeoutError."""
        assert self._session is not None, "attach() first"
        timeout = aiohttp.ClientTimeout(total=SLOW_REQUEST_TIMEOUT_S if slow else REQUEST_TIMEOUT_S)
        headers = None
        if self.admin_token and url.startswith(tuple(self.urls.get(n) or "\0" for n in ("admin", "settlement",
                                                                                         "als_admin"))):
            headers = {"Authorization": f"Bearer {self.admin_token}"}
        async with self._session.request(method, url, json=body, headers=headers, timeout=timeout) as response:
            raw = await response.read()
            try:
                parsed = json.loads(raw) if raw else None
            except ValueError:
                parsed = None
            return Answer(response.status, parsed)

    async def get(self, url: str) -> Answer:
        return await self.request("GET", url)

    async def admin(self, method: str, path: str, body: Any = None) -> Answer:
        """The Admin API (central-ledger's), e.g. admin("PUT", "/participants/x/limits", {...})."""
        return await self.request(method, self.urls["admin"] + path, body)

    async def settlement(self, method: str, path: str, body: Any = None) -> Answer:
        """The Settlement API; `path` after /v2, e.g. "/settlementWindows?state=OPEN"."""
        return await self.request(method, self.urls["settlement"] + path, body)

    async def sim(self, method: str, path: str, body: Any = None, *, slow: bool = False) -> Answer:
        """The simulators' driving API through the wallet port, e.g. sim("GET", "/greenwallet/customers")."""
        return await self.request(method, f"{self.wallet_url}/api/sim{path}", body, slow=slow)

    async def hub_view(self) -> Answer:
        """Every DFSP's position, Net Debit Cap and liquidity, and the open window (GET /api/hub)."""
        return await self.get(f"{self.wallet_url}/api/hub")

    # --- the live stream ---------------------------------------------------------------------

    async def events(self) -> AsyncIterator[tuple[str, Any]]:
        """(kind, data) of every server-sent event, forever: `hello`, `wire`, `hub`, `text`, ...

        A lost stream is opened again after a pause that grows to EVENTS_RETRY_MAX_S; each new
        stream starts with `hello` (the recent wire messages), so the caller can catch up.
        A ("disconnected", reason) pair marks each loss.
        """
        pause = EVENTS_RETRY_MIN_S
        while True:
            try:
                async for kind, data in self._one_stream():
                    pause = EVENTS_RETRY_MIN_S
                    yield kind, data
                reason = "the hub closed the stream"
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                reason = str(exc) or type(exc).__name__
            yield "disconnected", {"reason": reason}
            await asyncio.sleep(pause)
            pause = min(pause * 2, EVENTS_RETRY_MAX_S)

    async def _one_stream(self) -> AsyncIterator[tuple[str, Any]]:
        assert self._session is not None, "attach() first"
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT_S, sock_read=60)
        async with self._session.get(f"{self.wallet_url}/api/events", timeout=timeout,
                                     read_bufsize=EVENT_LINE_MAX) as response:
            if response.status != 200:
                raise aiohttp.ClientResponseError(response.request_info, (), status=response.status,
                                                  message="the event stream was refused")
            kind, data = "message", ""
            async for raw in response.content:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line:
                    if data:
                        try:
                            yield kind, json.loads(data)
                        except ValueError:
                            pass
                    kind, data = "message", ""
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
