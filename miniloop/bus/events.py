"""Announcing what the hub did: committed ledger events, published on NATS.

The ledger's writer hands over the events of each committed batch (miniloop.ledger.writer);
`EventBus.publish_batch` queues them and a sender task publishes them. The queue is bounded:
events are a view of the ledger, never the truth, so when readers or the server cannot keep up
the oldest pending events are dropped (and counted) rather than slowing payments down.

A JetStream stream keeps the most recent events (bounded by count, size and age) so a tool that
starts later, like `miniloop tui`, can replay what it missed.

`MemoryBus` is the in-process twin for unit tests of one layer.
"""

from __future__ import annotations

import asyncio
import logging
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


async def _quiet(exc: Exception) -> None:
    log.debug("nats: %s", exc)


async def _disconnected() -> None:
    log.info("disconnected from NATS; reconnecting")


async def _reconnected() -> None:
    log.info("reconnected to NATS")


class EventBus:
    """A nats-py connection that publishes hub events."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._pending: asyncio.Queue[list[Event]] = asyncio.Queue()
        self._pending_events = 0
        self.dropped = 0
        self.published = 0
        self._encode = msgspec.json.Encoder(decimal_format="number").encode
        self._sender = asyncio.get_running_loop().create_task(self._send(), name="event-sender")

    @classmethod
    async def connect(cls, url: str, *, keep_history: bool = True) -> EventBus:
        try:
            client = await nats.connect(
                url, name="miniloop", connect_timeout=5, max_reconnect_attempts=-1,
                reconnect_time_wait=0.5, allow_reconnect=True, error_cb=_quiet, disconnected_cb=_disconnected,
                reconnected_cb=_reconnected,
            )
        except Exception as exc:  # nats-py raises several kinds; all mean the same to the user
            raise StartupError(f"cannot connect to NATS at {url}: {exc}") from None
        bus = cls(client)
        if keep_history:
            await bus._ensure_stream()
        return bus

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

    def publish_batch(self, events: list[Event]) -> None:
        """Queue the events of one committed batch; drop the oldest when too many are pending."""
        self._pending.put_nowait(events)
        self._pending_events += len(events)
        while self._pending_events > PENDING_MAX and self._pending.qsize() > 1:
            oldest = self._pending.get_nowait()
            self._pending_events -= len(oldest)
            self.dropped += len(oldest)

    async def _send(self) -> None:
        while True:
            events = await self._pending.get()
            self._pending_events -= len(events)
            for subject, body in events:
                try:
                    await self.client.publish(subject, self._encode(body))
                    self.published += 1
                except Exception as exc:  # disconnected: the client buffers, or we drop
                    self.dropped += 1
                    log.debug("event %s not published: %s", subject, exc)

    async def close(self) -> None:
        """Publish what is pending, then close the connection."""
        for _ in range(200):  # at most two seconds
            if self._pending.empty() or not self.client.is_connected:
                break
            await asyncio.sleep(0.01)
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
