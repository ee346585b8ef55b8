"""GET /api/events: what happens, as server-sent events, for every open page.

Two sources, one subscription each for the whole app (while a page watches), fanned out to the
pages:

- the simulators' feed (mobile_sim.feed): every FSPIOP message a simulated DFSP exchanges with
  the hub ("wire"), texts on phones, balances, flows, new customers; each sent as
  `event: <kind>`;
- the hub's own events on NATS (`ml.event.>`, docs/events.md), each sent as `event: hub` with
  `{"subject": ..., **body}`.

A page first gets `event: hello` with the last WIRE_RECENT wire messages, so a page opened
mid-payment can draw what it missed. Then everything as it happens, and `: keepalive` every
KEEPALIVE_S so proxies and browsers keep the connection.

Bounded everywhere: at most CLIENTS_MAX pages (503 / 2003 past that); each page's queue holds
QUEUE_MAX events and a page that does not keep up loses the oldest. When the server stops every
stream ends at once (stop() wakes them), so the hub never waits for a browser.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import msgspec
import nats
from sanic import Request

from miniloop.fspiop.errors import FspiopError

log = logging.getLogger(__name__)

CLIENTS_MAX = 100
QUEUE_MAX = 2000  # events waiting for one page; past that its oldest are dropped
KEEPALIVE_S = 15.0
WIRE_RECENT = 200
HUB_SUBJECT = "ml.event.>"

def now_text() -> str:
    """Now, ISO 8601 UTC with milliseconds (2026-12-06T06:44:48.715Z), as the hub's times."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_encode = msgspec.json.Encoder(enc_hook=str, decimal_format="string").encode


def sse(kind: str, data: Any) -> bytes:
    """One server-sent event: `event: kind`, `data: <json on one line>`, a blank line."""
    return b"event: " + kind.encode() + b"\ndata: " + _encode(data) + b"\n\n"


class Client:
    """One open page: a bounded queue of encoded events and a way to wake its handler."""

    def __init__(self) -> None:
        self.queue: deque[bytes] = deque(maxlen=QUEUE_MAX)
        self.ready = asyncio.Event()
        self.closed = False
        self.dropped = 0
        self.seen_seq = 0  # wire events up to this seq came in its hello

    def offer(self, chunk: bytes) -> None:
        if len(self.queue) == self.queue.maxlen:
            self.dropped += 1  # deque(maxlen) pushes the oldest out
        self.queue.append(chunk)
        self.ready.set()

    def close(self) -> None:
        self.closed = True
        self.ready.set()

    async def take(self, timeout: float) -> list[bytes] | None:
        """What is queued (waiting at most `timeout`; [] when nothing came); None once closed."""
        if not self.queue and not self.closed:
            self.ready.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.ready.wait(), timeout)
        if self.closed:
            return None
        chunks = list(self.queue)
        self.queue.clear()
        return chunks


class Events:
    """The app's event sources and its open pages.

    The sources are subscribed only while at least one page watches: with no page open (a bench
    run, a hub nobody looks at) the wallet port costs the hub's event loop nothing per payment.
    """

    def __init__(self, sim: Any, nats_url: str | None) -> None:
        self.sim = sim
        self.feed = getattr(sim, "feed", None)  # None on an --empty hub
        self.nats_url = nats_url
        self.clients: set[Client] = set()
        self.watchers = 0  # streams open or opening
        self.stopping = False
        self._nc: Any = None
        self._hub_subscription: Any = None
        self._subscription: Any = None  # to the feed
        self._pump: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.nats_url:
            self._nc = await nats.connect(
                self.nats_url, name="miniloop-wallet", connect_timeout=5, max_reconnect_attempts=-1,
                reconnect_time_wait=0.5, error_cb=self._nats_error, disconnected_cb=self._nats_quiet,
                reconnected_cb=self._nats_quiet, closed_cb=self._nats_quiet)

    def stop(self) -> None:
        """End every stream now and take no new page (before the server stops)."""
        self.stopping = True
        for client in list(self.clients):
            client.close()
        self._feed_off()

    async def close(self) -> None:
        """Release the sources (after the server stopped)."""
        self.stop()
        if self._pump is not None:
            with suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        if self._nc is not None:
            with suppress(Exception):
                await self._nc.close()
            self._nc = None
            self._hub_subscription = None

    async def _sync_sources(self) -> None:
        """Subscribe while someone watches, unsubscribe when nobody does."""
        async with self._lock:
            wanted = self.watchers > 0 and not self.stopping
            if wanted and self._subscription is None and self.feed is not None:
                try:
                    self._subscription = self.feed.subscribe()
                except Exception as exc:  # FeedFull: too many subscribers of the feed
                    raise FspiopError("2003", f"the simulators' feed is busy ({exc})", status=503) from None
                self._pump = asyncio.get_running_loop().create_task(
                    self._pump_feed(self._subscription), name="wallet-feed")
            elif not wanted:
                self._feed_off()
            if self._nc is None or self._nc.is_closed:
                return
            if wanted and self._hub_subscription is None:
                self._hub_subscription = await self._nc.subscribe(HUB_SUBJECT, cb=self._on_hub_event)
                with suppress(Exception):
                    await self._nc.flush(timeout=2)  # NATS has the subscription before the hello goes
            elif not wanted and self._hub_subscription is not None:
                subscription, self._hub_subscription = self._hub_subscription, None
                with suppress(Exception):
                    await subscription.unsubscribe()

    def _feed_off(self) -> None:
        if self._subscription is not None:
            self._subscription.close()  # ends the pump's loop
            self._subscription = None
            self._pump = None

    # ---------------------------------------------------------------- sources

    def publish(self, kind: str, data: Any, seq: int = 0) -> None:
        """To every open page, except those whose hello had this wire event (`seq`) already."""
        if not self.clients:
            return
        chunk = sse(kind, data)
        for client in self.clients:
            if seq == 0 or seq > client.seen_seq:
                client.offer(chunk)

    async def _pump_feed(self, subscription: Any) -> None:
        async for event in subscription:
            try:
                kind = str(event.get("kind", "sim"))
                # a wire message a page got in its hello is not sent to it again
                self.publish(kind, event, int(event.get("seq") or 0) if kind == "wire" else 0)
            except Exception:  # one event that cannot be encoded never ends the feed
                log.exception("sending a feed event to the pages failed")

    async def _on_hub_event(self, msg: Any) -> None:
        if not self.clients:
            return
        try:
            body = json.loads(msg.data)
        except ValueError:
            return
        self.publish("hub", {"subject": msg.subject, **(body if isinstance(body, dict) else {"body": body})})

    async def _nats_error(self, exc: Exception) -> None:
        log.debug("the wallet's NATS connection: %s", exc)

    async def _nats_quiet(self) -> None:
        return None

    # ---------------------------------------------------------------- one page

    def hello(self, client: Client) -> dict[str, Any]:
        """The first event of a stream; `client` will not get again what it lists."""
        wire = self.feed.recent("wire", WIRE_RECENT) if self.feed is not None else []
        client.seen_seq = self.feed.seq if self.feed is not None else 0
        return {"wire": wire, "now": now_text()}

    async def stream(self, request: Request) -> None:
        """Answer GET /api/events: the stream, until the page goes away or the server stops."""
        if self.stopping:
            raise FspiopError("2003", "the wallet server is stopping", status=503)
        if self.watchers >= CLIENTS_MAX:
            raise FspiopError("2003", f"{CLIENTS_MAX} pages are watching already: close one", status=503)
        self.watchers += 1
        client = Client()
        try:
            await self._sync_sources()  # subscribed before the hello: nothing falls in between
            if self.stopping:
                raise FspiopError("2003", "the wallet server is stopping", status=503)
            hello = self.hello(client)
            self.clients.add(client)
            response = await request.respond(
                content_type="text/event-stream; charset=utf-8",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            await response.send(b"retry: 2000\n" + sse("hello", hello))
            while True:
                chunks = await client.take(KEEPALIVE_S)
                if chunks is None:
                    break
                await response.send(b"".join(chunks) if chunks else b": keepalive\n\n")
            await response.eof()
        finally:
            self.clients.discard(client)
            self.watchers -= 1
            if self.watchers == 0:
                await self._sync_sources()
