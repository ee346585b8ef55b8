"""Requests a simulated DFSP sends to the switch, with the headers a real DFSP sends.

Why: the simulators are ordinary FSPIOP clients reached over real HTTP, so that everything the
hub sees of them (headers, versions, tracing) is what it would see of a DFSP running Mojaloop's
SDK, and a problem in the hub's header checks shows up in the demo too.

Every request carries Content-Type `...;version=1.1` (`...thirdparty+json;version=1.0` for the
Third-party API's resources), Date (IMF-fixdate), FSPIOP-Source (the
DFSP), FSPIOP-URI and FSPIOP-HTTP-Method (this message's own path and method), and a W3C
traceparent; GET and POST also carry Accept `...;version=1`. FSPIOP-Destination is sent whenever
the sender knows it, i.e. everywhere except GET /parties, where the switch finds the owner.
One aiohttp session, created and closed with the sim server, carries every request.
"""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

from miniloop.fspiop.headers import child_traceparent, message_headers

log = logging.getLogger(__name__)

CONTENT_VERSION = "1.1"
# The Third-party API v1.0 (PISP linking and transfers) on the same port: its resources carry
# `application/vnd.interoperability.thirdparty+json;version=1.0` (miniloop.fspiop.headers).
THIRDPARTY_RESOURCES = ("accounts", "consentRequests", "consents", "thirdpartyRequests", "services")
THIRDPARTY_VERSION = "1.0"
REQUEST_TIMEOUT_S = 10.0  # the switch answers 202/200 once the request is durable: quick
ANSWER_MAX_BYTES = 64 * 1024  # what we read of a synchronous answer (an error body at most)


@dataclass(frozen=True)
class Answer:
    """The switch's synchronous answer: 200/202 (accepted), or an FSPIOP error.

    `status` 0 means the switch could not be reached; `error` then holds a 1000 body.
    """

    status: int
    error: dict[str, Any] | None = None
    headers: dict[str, str] | None = None  # the headers the request was sent with (for the live feed)

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


def resource_of(path: str) -> str:
    """The FSPIOP resource a path belongs to: /quotes/123 -> quotes."""
    return path.lstrip("/").split("/", 1)[0]


def request_headers(method: str, path: str, *, source: str, destination: str | None,
                    traceparent: str | None = None) -> dict[str, str]:
    """The FSPIOP headers of one outgoing request (Accept with major version 1)."""
    resource = resource_of(path)
    version = THIRDPARTY_VERSION if resource in THIRDPARTY_RESOURCES else CONTENT_VERSION
    return message_headers(resource, version, source=source, destination=destination,
                           method=method, uri=path, traceparent=child_traceparent(traceparent))


class SwitchClient:
    """Sends FSPIOP requests to the switch's FSPIOP API at `switch_url`."""

    def __init__(self, switch_url: str, ssl_context: ssl.SSLContext | None = None) -> None:
        self.switch_url = switch_url.rstrip("/")
        self.ssl_context = ssl_context  # https: the hub's certificate, trusted and presented (miniloop.tls)
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
            connector=aiohttp.TCPConnector(limit=100, ssl=self.ssl_context if self.ssl_context is not None else True),
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def send(self, method: str, path: str, body: dict[str, Any] | None, *, source: str,
                   destination: str | None, traceparent: str | None = None) -> Answer:
        """Send one request; never raises for a network problem (it becomes status 0, code 1000)."""
        if self.session is None:
            return Answer(0, _communication_error("the simulator's HTTP client is not running"))
        headers = request_headers(method, path, source=source, destination=destination, traceparent=traceparent)
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            async with self.session.request(method, self.switch_url + path, data=data, headers=headers) as response:
                if 200 <= response.status < 300:
                    return Answer(response.status, headers=headers)
                raw = await response.content.read(ANSWER_MAX_BYTES)
                return Answer(response.status, _error_body(raw, response.status), headers)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:  # ValueError: a path aiohttp
            # will not send (a control character from an id the hub passed on, such as %08 in a path)
            log.warning("%s %s to the switch failed: %s", method, path, exc or type(exc).__name__)
            return Answer(0, _communication_error(f"{method} {path} failed: {exc or type(exc).__name__}"), headers)


def _error_body(raw: bytes, status: int) -> dict[str, Any]:
    """The switch's errorInformation body, or one made up from the status when it sent none."""
    try:
        body = json.loads(raw)
        if isinstance(body, dict) and isinstance(body.get("errorInformation"), dict):
            return body
    except ValueError:
        pass
    code = "2001" if status >= 500 else "3000"
    return {"errorInformation": {"errorCode": code, "errorDescription": f"the switch answered HTTP {status}"}}


def _communication_error(detail: str) -> dict[str, Any]:
    return {"errorInformation": {"errorCode": "1000", "errorDescription": f"Communication error - {detail}"[:128]}}
