"""A live feed of what happens in the simulators: in-process publish/subscribe, bounded everywhere.

Why: the wallet simulator page (mobile_sim/web) shows, as it happens, every FSPIOP message a
simulated DFSP exchanges with the hub, the texts arriving on customers' phones, balances moving
and payments pausing for a confirmation. It streams them to the browser as server-sent events,
so the simulators publish them here, and each browser connection is one subscription.

Nothing here may slow a payment down or grow without end:

- `Feed.publish(event)` never blocks and never fails because of a subscriber: it stamps the event
  with `seq` (counting up per Feed) and `at` (ISO 8601 UTC, milliseconds, Z), keeps it in a short
  history per kind (`recent`, RECENT_MAX each) and appends it to every subscription's queue.
- A subscription's queue holds QUEUE_MAX events; a subscriber that does not keep up loses the
  oldest ones, and `dropped` counts them (the page can say "n events missed").
- At most SUBSCRIPTIONS_MAX subscriptions at once; one more raises FeedFull.

The kinds and their fields (docs/simulator.md, "The live feed"):

- "wire": {dfsp, direction ("out" DFSP->hub, "in" hub->DFSP), method, path, source, destination,
  status, traceId, errorCode, body, headers} (`headers`: the message's FSPIOP headers, names in
  lower case: content-type, accept, date, fspiop-source, fspiop-destination, fspiop-uri,
  fspiop-http-method, fspiop-signature, traceparent... those it carried);
- "text": {dfsp, customer, idType, message} (the message as GET /messages shows it);
- "balance": {dfsp, customer, idType, balance, reserved};
- "flow": {dfsp, flow ("send" | "requestToPay"), id, customer, state, step};
- "customer": {dfsp, customer} (a customer joined, as GET /customers shows it);
- "fault": {dfsp, mode, delaySeconds, errorCode} (a DFSP's injected fault changed, as GET
  /<dfsp>/faults shows it; mobile_sim.faults).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

KINDS = ("wire", "text", "balance", "flow", "customer", "fault")
# the headers a wire event shows, in this order (FSPIOP's own, and the trace context)
WIRE_HEADERS = ("content-type", "accept", "date", "fspiop-source", "fspiop-destination", "fspiop-uri",
                "fspiop-http-method", "fspiop-signature", "fspiop-encryption", "traceparent", "tracestate")
QUEUE_MAX = 1000  # events waiting in one subscription; past that the oldest are dropped
SUBSCRIPTIONS_MAX = 100  # subscriptions at once (browser tabs watching)
RECENT_MAX = 500  # events kept per kind for `recent` (what a page shows when it connects)
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}")


class FeedFull(Exception):
    """SUBSCRIPTIONS_MAX subscriptions are open already: close one first."""


def now_text(moment: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds and Z (2026-12-06T06:44:48.715Z), cheaply: publish is hot."""
    moment = time.time() if moment is None else moment
    whole = int(moment)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((moment - whole) * 1000):03d}Z"


def trace_id(traceparent: str | None) -> str | None:
    """The 32 hex digits of a W3C traceparent's trace id, or None when there is none to read."""
    match = _TRACEPARENT.fullmatch(traceparent.strip().lower()) if traceparent else None
    return match.group(1) if match else None


def error_code(body: Any) -> str | None:
    """The errorCode of a body's errorInformation, if it carries one."""
    info = body.get("errorInformation") if isinstance(body, dict) else None
    code = info.get("errorCode") if isinstance(info, dict) else None
    return code if isinstance(code, str) else None


class Subscription:
    """One subscriber's view of the feed: a bounded queue that drops its oldest events when full.

    Use it as an async iterator (`async for event in sub`); the iteration ends once `close()` is
    called. `get(timeout)` waits at most `timeout` seconds (None when nothing came), so an SSE
    handler can send keep-alives.
    """

    def __init__(self, feed: Feed, kinds: frozenset[str] | None, limit: int) -> None:
        self._feed = feed
        self.kinds = kinds
        self._queue: deque[dict[str, Any]] = deque(maxlen=limit)
        self._ready = asyncio.Event()
        self.dropped = 0
        self.closed = False

    def __len__(self) -> int:
        return len(self._queue)

    def offer(self, event: dict[str, Any]) -> None:
        """Queue an event (called by Feed.publish); never blocks, drops the oldest when full."""
        if self.closed or (self.kinds is not None and event["kind"] not in self.kinds):
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1  # deque(maxlen) pushes the oldest out
        self._queue.append(event)
        self._ready.set()

    async def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event; None after `timeout` seconds without one, or once closed."""
        while not self._queue:
            if self.closed:
                return None
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None
        return self._queue.popleft()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        """Stop receiving; wakes a reader waiting in `get` or `async for`. Safe to call twice."""
        if not self.closed:
            self.closed = True
            self._queue.clear()
            self._feed._forget(self)
            self._ready.set()


class Feed:
    """The simulators' events, published to every subscription; see the module's docstring."""

    def __init__(self, *, queue_max: int = QUEUE_MAX, subscriptions_max: int = SUBSCRIPTIONS_MAX,
                 recent_max: int = RECENT_MAX) -> None:
        self.queue_max = queue_max
        self.subscriptions_max = subscriptions_max
        self.seq = 0
        self._subscriptions: list[Subscription] = []
        self._recent: dict[str, deque[dict[str, Any]]] = {kind: deque(maxlen=recent_max) for kind in KINDS}

    @property
    def subscriptions(self) -> int:
        return len(self._subscriptions)

    def publish(self, event: dict[str, Any]) -> dict[str, Any]:
        """Stamp `event` (a dict with a known "kind") with seq and at, keep it and hand it out."""
        kind = event.get("kind")
        if kind not in self._recent:
            raise ValueError(f"unknown feed event kind {kind!r} (kinds: {', '.join(KINDS)})")
        self.seq += 1
        event["seq"] = self.seq
        event["at"] = now_text()
        self._recent[kind].append(event)
        for subscription in self._subscriptions:
            subscription.offer(event)
        return event

    def subscribe(self, kinds: Iterable[str] | None = None) -> Subscription:
        """A new subscription (to every kind, or only to `kinds`); FeedFull past SUBSCRIPTIONS_MAX."""
        if len(self._subscriptions) >= self.subscriptions_max:
            raise FeedFull(f"the feed has {self.subscriptions_max} subscriptions already: close one first")
        wanted = None if kinds is None else frozenset(kinds)
        if wanted is not None and wanted - set(KINDS):
            raise ValueError(f"unknown feed event kinds {sorted(wanted - set(KINDS))} (kinds: {', '.join(KINDS)})")
        subscription = Subscription(self, wanted, self.queue_max)
        self._subscriptions.append(subscription)
        return subscription

    def recent(self, kind: str = "wire", n: int = RECENT_MAX) -> list[dict[str, Any]]:
        """The last `n` events of `kind` (at most RECENT_MAX), oldest first."""
        kept = self._recent.get(kind)
        if kept is None:
            raise ValueError(f"unknown feed event kind {kind!r} (kinds: {', '.join(KINDS)})")
        return list(kept)[-n:] if n > 0 else []

    def _forget(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)


# --- the events' shapes, in one place so the simulators and the docs agree -----------------------


def fspiop_headers(headers: Any) -> dict[str, str]:
    """The FSPIOP headers of a message (WIRE_HEADERS it carries), names in lower case."""
    if not headers:
        return {}
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    return {name: lowered[name] for name in WIRE_HEADERS if name in lowered}


def wire(dfsp: str, direction: str, method: str, path: str, source: str | None, destination: str | None,
         status: int, traceparent: str | None, body: Any, error: Any = None, *,
         headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A "wire" event: one FSPIOP message between a simulated DFSP and the hub.

    `error` is a second place to find the errorCode when the body has none (the hub's synchronous
    error answer to a request we sent). `headers` are the message's FSPIOP headers (fspiop_headers).
    """
    return {"kind": "wire", "dfsp": dfsp, "direction": direction, "method": method, "path": path,
            "source": source, "destination": destination, "status": status, "traceId": trace_id(traceparent),
            "errorCode": error_code(body) or error_code(error), "body": body, "headers": headers or {}}


def text(dfsp: str, customer: Any, message: dict[str, Any]) -> dict[str, Any]:
    """A "text" event: a text put on a customer's phone (mobile_sim.dfsp.Customer)."""
    return {"kind": "text", "dfsp": dfsp, "customer": customer.id, "idType": customer.id_type, "message": message}


def balance(dfsp: str, customer: Any) -> dict[str, Any]:
    """A "balance" event: a customer's balance or reserved amount changed (amounts as GET /customers shows)."""
    view = customer.view()
    return {"kind": "balance", "dfsp": dfsp, "customer": customer.id, "idType": customer.id_type,
            "balance": view["balance"], "reserved": view["reserved"]}


def flow(dfsp: str, kind: str, flow_id: str, customer: str, state: str, step: str) -> dict[str, Any]:
    """A "flow" event: a /send (or /payQr) or /requestToPay flow started, paused, went on or ended."""
    return {"kind": "flow", "dfsp": dfsp, "flow": kind, "id": flow_id, "customer": customer, "state": state,
            "step": step}


def customer(dfsp: str, view: dict[str, Any]) -> dict[str, Any]:
    """A "customer" event: a customer joined a simulated DFSP (as GET /customers shows it)."""
    return {"kind": "customer", "dfsp": dfsp, "customer": view}


def fault(view: dict[str, Any]) -> dict[str, Any]:
    """A "fault" event: a DFSP's injected fault changed ({dfsp, mode, delaySeconds, errorCode})."""
    return {"kind": "fault", **view}
