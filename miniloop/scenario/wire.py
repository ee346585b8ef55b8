"""Everything a scenario run sees on the wire, in one log it can wait on.

Why: to test a DFSP "as the hub sees it", the engine has to stand where the hub's messages pass.
It does so in three places, all recorded in one `Wire`:

- **its own DFSPs** (played_by engine): one small HTTP server answers the hub's callbacks to
  them under `/engine/<name>/...` (200 for PUT/PATCH, 202 otherwise), and the engine sends their
  requests to the hub with `send`, recording the hub's synchronous answer;
- **a DFSP under test** (external or reference): the hub is given `/proxy/<name>` as that DFSP's
  callback base URL, so each request the hub sends it passes through here, is recorded with the
  DFSP's own synchronous answer, and is handed back to the hub unchanged;
- **the hub's events** on NATS: transfer states, and `request.refused`, the hub's error answer
  to a message a DFSP sent (a callback with a missing header never reaches its counterpart, so
  that event is the only place its reason shows).

A DFSP's callbacks reach the engine's DFSPs through the hub, which forwards their headers and
body unchanged; `Wire` also writes down the hop from that DFSP to the hub, so sequence diagrams
show both. Every wait is on this log, bounded by a timeout; the log itself is bounded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import nats
from aiohttp import web

from miniloop.fspiop.headers import child_traceparent, message_headers
from miniloop.scenario.results import HUB, Message
from mobile_sim.fspiop_client import resource_of

log = logging.getLogger(__name__)

LOG_MAX = 20_000  # messages and events kept per run
HTTP_TIMEOUT_S = 15.0
BODY_MAX_BYTES = 5 * 1024 * 1024
CONTENT_VERSION = "1.1"
_HOP_HEADERS = ("host", "content-length", "connection", "transfer-encoding", "keep-alive")


@dataclass
class Event:
    """One hub event from NATS: its subject, body and when it arrived (seconds since the run began)."""

    subject: str
    body: dict[str, Any]
    at: float


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw[:2000].decode("utf-8", "replace")


class Wire:
    """The recorder, the proxy, the client to the hub and the event feed of one run."""

    def __init__(self, fspiop_url: str, nats_url: str | None) -> None:
        self.fspiop_url = fspiop_url.rstrip("/")
        self.nats_url = nats_url
        self.started = time.monotonic()
        self.messages: list[Message] = []
        self.events: list[Event] = []
        self.dropped = 0  # messages dropped from the front of the log (marks stay absolute)
        self.targets: dict[str, str] = {}  # DFSP name -> its own base URL (proxied)
        self.url = ""  # this recorder's base URL, once started
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._nats: Any = None
        self._operator_urls: tuple[str, ...] = ()  # the hub's Admin, Settlement, ALS admin APIs
        self._operator_headers: dict[str, str] = {}
        self._hub_ssl: ssl.SSLContext | bool = True  # the FSPIOP port's: True is aiohttp's default

    def use_admin_token(self, token: str | None, urls: dict[str, str]) -> None:
        """Send `token` (the hub's --admin-token) with calls to its operators' APIs, and only there."""
        if token:
            self._operator_urls = tuple(urls[n] for n in ("admin", "settlement", "als_admin") if urls.get(n))
            self._operator_headers = {"authorization": f"Bearer {token}"}

    def use_tls(self, context: ssl.SSLContext | None) -> None:
        """Call the hub's https FSPIOP port with `context` (its client certificate for mutual TLS),
        and only that port: a DFSP under test is called as before."""
        if context is not None:
            self._hub_ssl = context

    # ---------------------------------------------------------------- life cycle

    async def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S))
        app = web.Application(client_max_size=BODY_MAX_BYTES)
        app.router.add_route("*", "/engine/{name}/{tail:.*}", self._engine_dfsp)
        app.router.add_route("*", "/proxy/{name}/{tail:.*}", self._proxy)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = site._server.sockets[0].getsockname()[:2]  # type: ignore[union-attr]
        self.url = f"http://{host}:{port}"
        if self.nats_url:
            try:
                self._nats = await nats.connect(self.nats_url, connect_timeout=5, max_reconnect_attempts=3,
                                                allow_reconnect=True)
                await self._nats.subscribe("ml.event.>", cb=self._on_event)
            except Exception as exc:  # events sharpen the report; the run works without them
                log.warning("no hub events (%s): refusals and waits on states are not available", exc)
                self._nats = None

    async def stop(self) -> None:
        if self._nats is not None:
            await self._nats.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._http is not None:
            await self._http.close()

    @property
    def has_events(self) -> bool:
        return self._nats is not None

    def now(self) -> float:
        return time.monotonic() - self.started

    def engine_base(self, name: str) -> str:
        return f"{self.url}/engine/{name}"

    def proxy_base(self, name: str, target: str) -> str:
        self.targets[name] = target.rstrip("/")
        return f"{self.url}/proxy/{name}"

    # ---------------------------------------------------------------- the log

    async def _add(self, message: Message | None = None, event: Event | None = None) -> None:
        async with self._changed:
            if message is not None:
                self.messages.append(message)
                if len(self.messages) > LOG_MAX:
                    self.dropped += 1
                    del self.messages[0]
            if event is not None:
                self.events.append(event)
                del self.events[:-LOG_MAX]
            self._changed.notify_all()

    async def wait_for(self, found: Callable[[], Any], timeout: float) -> Any:
        """`found()` as soon as it is truthy, re-checked on every new message or event; None after `timeout`."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                value = found()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    pass

    async def _on_event(self, msg: Any) -> None:
        try:
            body = json.loads(msg.data)
        except ValueError:
            return
        event = Event(msg.subject, body, self.now())
        await self._add(event=event)
        if body.get("type") == "request.refused" and body.get("source") in self.targets:
            # a DFSP under test was refused; the engine's own requests carry their refusal already
            await self._add(Message(self.now(), body.get("source") or "?", HUB, body.get("method", "?"),
                                    body.get("path", "?"), body.get("headers") or {}, _decode(body.get("body", "").encode()),
                                    body.get("status"), f"refused by the hub: {body.get('errorCode')} "
                                                        f"{body.get('errorDescription')}"))

    # ---------------------------------------------------------------- the engine's DFSPs and the proxy

    async def _engine_dfsp(self, request: web.Request) -> web.Response:
        name, path = request.match_info["name"], "/" + request.match_info["tail"]
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = _decode(raw)
        source = headers.get("fspiop-source") or HUB
        at = self.now()
        if source != HUB and source in self.targets:
            # a DFSP under test answered through the hub: its message to the hub, then the hub's relay
            await self._add(Message(at, source, HUB, request.method, path, headers, body, 200))
        status = 200 if request.method in ("PUT", "PATCH") else 202
        await self._add(Message(at, HUB, name, request.method, path, headers, body, status))
        return web.Response(status=status)

    async def _proxy(self, request: web.Request) -> web.Response:
        name, tail = request.match_info["name"], request.match_info["tail"]
        path = "/" + tail
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        target = self.targets.get(name)
        at = self.now()
        if target is None:
            await self._add(Message(at, HUB, name, request.method, path, headers, _decode(raw), 502,
                                    "no such DFSP under test in this run"))
            return web.Response(status=502)
        url = target + path + (f"?{request.query_string}" if request.query_string else "")
        forward = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        assert self._http is not None
        try:
            async with self._http.request(request.method, url, data=raw or None, headers=forward) as answer:
                answer_raw = await answer.content.read(64 * 1024)
                status, answer_headers = answer.status, dict(answer.headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            note = f"{name} did not answer: {exc or type(exc).__name__}"
            await self._add(Message(at, HUB, name, request.method, path, headers, _decode(raw), None, note))
            return web.Response(status=502, text=note)
        await self._add(Message(at, HUB, name, request.method, path, headers, _decode(raw), status))
        keep = {k: v for k, v in answer_headers.items() if k.lower() == "content-type"}
        return web.Response(status=status, body=answer_raw, headers=keep)

    # ---------------------------------------------------------------- sending as one of the engine's DFSPs

    def fspiop_headers(self, method: str, path: str, source: str, destination: str | None,
                       version: str = CONTENT_VERSION) -> dict[str, str]:
        """The headers a well-behaved DFSP sends (as mobile_sim does); a step may change them."""
        return message_headers(resource_of(path), version, source=source, destination=destination,
                               method=method, uri=path, traceparent=child_traceparent(None))

    async def send(self, method: str, path: str, body: Any, headers: dict[str, str], source: str) -> Message:
        """Send one FSPIOP request to the hub as `source`; recorded with the hub's answer."""
        message = Message(self.now(), source, HUB, method, path, {k.lower(): v for k, v in headers.items()}, body)
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        message.status, answer = await self.call(method, self.fspiop_url + path, data, headers)
        if isinstance(answer, dict) and "errorInformation" in answer:
            info = answer["errorInformation"]
            message.note = f"refused by the hub: {info.get('errorCode')} {info.get('errorDescription')}"
        await self._add(message)
        return message

    async def call(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> tuple[int | None, Any]:
        """One HTTP call: (status, decoded body); status None when the server cannot be reached."""
        assert self._http is not None
        ssl_context = self._hub_ssl if url.startswith(self.fspiop_url + "/") else True
        try:
            async with self._http.request(method, url, data=data, headers=headers, ssl=ssl_context) as answer:
                return answer.status, _decode(await answer.content.read(BODY_MAX_BYTES))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"{url} could not be reached: {exc or type(exc).__name__}"

    async def call_json(self, method: str, url: str, body: Any = None) -> tuple[int | None, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self._operator_urls and url.startswith(self._operator_urls):
            headers.update(self._operator_headers)
        return await self.call(method, url, data, headers)

    # ---------------------------------------------------------------- looking things up

    def mark(self) -> int:
        """A position in the message log: pass it to `since` to get what came later."""
        return self.dropped + len(self.messages)

    def since(self, mark: int) -> list[Message]:
        return self.messages[max(0, mark - self.dropped):]

    def events_for(self, prefix: str) -> list[Event]:
        return [e for e in self.events if e.subject.startswith(prefix)]
