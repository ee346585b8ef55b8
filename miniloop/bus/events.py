"""Announcing what the hub did: committed ledger events, published on NATS.

The ledger's writer hands over the events of each committed batch (miniloop.ledger.writer);
`EventBus.publish_batch` queues them and a sender task publishes them. The queue is bounded:
events are a view of the ledger, never the truth, so when readers or the server cannot keep up
the oldest pending events are dropped (and counted) rather than slowing payments down.

When the connection to NATS is lost (nats-server restarting, an external server stopped), the
sender stops taking events off the queue and waits for nats-py to reconnect (every
RECONNECT_WAIT_S, for as long as the hub runs): the events of the changes made meanwhile wait in
the queue and are published, in order, once NATS is back. The same bound applies: beyond
PENDING_MAX events the oldest are dropped, counted (`dropped`, miniloop_events_dropped_total) and
logged (one line when dropping starts, then at most one every DROP_LOG_EVERY_S).

A JetStream stream keeps the most recent events (bounded by count, size and age) so a tool that
starts later, like `miniloop tui`, can replay what it missed.

`MemoryBus` is the in-process twin for unit tests of one layer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

import msgspec
import nats
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from miniloop.bus import subjects
from miniloop.errors import StartupError

log = logging.getLogger(__name__)

PENDING_MAX = 50_000
STREAM_MSGS_MAX = 200_000
STREAM_BYTES_MAX = 128 * 1024 * 1024
STREAM_AGE_MAX_S = 24 * 3600

Event = tuple[str, dict[str, Any]]


RECONNECT_WAIT_S = 0.5  # between nats-py's attempts to reconnect
WAIT_FOR_CONNECTION_S = 0.05  # how often the sender looks whether NATS is back
DROP_LOG_EVERY_S = 10.0
GROUP_MAX = 2_000  # events published before one flush confirms them
FLUSH_TIMEOUT_S = 5.0


async def _quiet(exc: Exception) -> None:
    log.debug("nats: %s", exc)


class EventBus:
    """A nats-py connection that publishes hub events."""

    def __init__(self, client: Client, url: str = "") -> None:
        self.client = client
        self.url = url
        self._pending: deque[list[Event]] = deque()
        self._pending_events = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._last_drop_log = 0.0
        self._dropped_while_away = 0
        self.dropped = 0
        self.published = 0
        self._encode = msgspec.json.Encoder(decimal_format="number").encode
        self._sender = asyncio.get_running_loop().create_task(self._send(), name="event-sender")

    @classmethod
    async def connect(cls, url: str, *, keep_history: bool = True) -> EventBus:
        bus: EventBus | None = None

        async def disconnected() -> None:
            if bus is not None:
                bus._disconnected()

        async def reconnected() -> None:
            if bus is not None:
                bus._reconnected()

        try:
            client = await nats.connect(
                url, name="miniloop", connect_timeout=5, max_reconnect_attempts=-1,
                reconnect_time_wait=RECONNECT_WAIT_S, allow_reconnect=True, error_cb=_quiet,
                disconnected_cb=disconnected, reconnected_cb=reconnected,
            )
        except Exception as exc:  # nats-py raises several kinds; all mean the same to the user
            raise StartupError(f"cannot connect to NATS at {url}: {exc}") from None
        bus = cls(client, url)
        if keep_history:
            await bus._ensure_stream()
        return bus

    def _disconnected(self) -> None:
        if not self._closing:
            log.warning("lost the connection to NATS at %s; payments go on, their events wait (at most %d) "
                        "until it is back; reconnecting", self.url, PENDING_MAX)

    def _reconnected(self) -> None:
        dropped, self._dropped_while_away = self._dropped_while_away, 0
        log.warning("reconnected to NATS at %s; publishing %d waiting events%s", self.url, self._pending_events,
                    f" ({dropped} older ones were dropped: the queue was full)" if dropped else "")
        self._wake.set()

    async def _ensure_stream(self) -> None:
        config = StreamConfig(
            name=subjects.STREAM, subjects=[subjects.ALL], retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE, discard=DiscardPolicy.OLD, max_msgs=STREAM_MSGS_MAX,
            max_bytes=STREAM_BYTES_MAX, max_age=STREAM_AGE_MAX_S,
        )
        js = self.client.jetstream(timeout=5)
        try:
            try:
                await js.add_stream(config)
            except nats.js.errors.BadRequestError:  # exists with other settings: take ours
                await js.update_stream(config)
        except Exception as exc:  # JetStream off on an external server: events still flow live
            log.warning("no JetStream event history (%s); live events only", exc)

    @property
    def pending(self) -> int:
        """Events waiting to be published."""
        return self._pending_events

    def publish_batch(self, events: list[Event]) -> None:
        """Queue the events of one committed batch; drop the oldest when too many are pending."""
        if not events:
            return
        self._pending.append(events)
        self._pending_events += len(events)
        self._trim()
        self._wake.set()

    def _trim(self) -> None:
        """Drop the oldest batches beyond PENDING_MAX events (one batch is always kept)."""
        dropped = 0
        while self._pending_events > PENDING_MAX and len(self._pending) > 1:
            oldest = self._pending.popleft()
            self._pending_events -= len(oldest)
            dropped += len(oldest)
        if dropped:
            self._count_dropped(dropped)

    def _count_dropped(self, count: int) -> None:
        self.dropped += count
        if not self.client.is_connected:
            self._dropped_while_away += count
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_EVERY_S:
            self._last_drop_log = now
            log.warning("%d events waiting to be published (NATS %s): dropping the oldest; %d dropped so far",
                        PENDING_MAX, "unreachable" if not self.client.is_connected else "too slow", self.dropped)

    async def _send(self) -> None:
        """Publish what is queued, a group at a time, each group confirmed by a round trip to the
        server (a flush: nats-server answers it only after reading everything sent before it).
        A group the server may not have read (the connection broke) goes back to the head of the
        queue and is published again once NATS is back, so an event can arrive twice then."""
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self.client.is_connected:  # keep them queued until nats-py has reconnected
                if self.client.is_closed:
                    return
                await asyncio.sleep(WAIT_FOR_CONNECTION_S)
                continue
            group: list[list[Event]] = []
            count = 0
            while self._pending and count < GROUP_MAX:
                events = self._pending.popleft()
                group.append(events)
                count += len(events)
            self._pending_events -= count
            if await self._publish_group(group):
                self.published += count
                continue
            self._pending.extendleft(reversed(group))  # first in line again, in the same order
            self._pending_events += count
            self._trim()

    async def _publish_group(self, group: list[list[Event]]) -> bool:
        """True once the server has read every event of `group`."""
        try:
            for events in group:
                for subject, body in events:
                    try:
                        await self.client.publish(subject, self._encode(body))
                    except nats.errors.MaxPayloadError:  # can never be published: drop this one
                        self._count_dropped(1)
                        log.debug("event %s is larger than NATS accepts; dropped", subject)
            await self.client.flush(timeout=FLUSH_TIMEOUT_S)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection broke, or the server did not answer in time
            log.debug("%d events not confirmed by NATS (%s); they wait", sum(map(len, group)), exc)
            return False

    async def close(self) -> None:
        """Publish what is pending, then close the connection."""
        for _ in range(200):  # at most two seconds
            if not self._pending or not self.client.is_connected:
                break
            await asyncio.sleep(0.01)
        self._closing = True
        self._sender.cancel()
        try:
            await self.client.flush(timeout=2)
        except Exception:
            pass
        await self.client.close()


class MemoryBus:
    """The in-process twin: keeps every event in a list, for unit tests."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish_batch(self, events: list[Event]) -> None:
        self.events.extend(events)
