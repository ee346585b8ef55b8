"""Sending what the hub owes DFSPs: the outbox, over one pooled HTTP client.

Writer commands put messages in the outbox table and hand them here once committed
(miniloop.services.outbox). A fixed set of workers sends them with aiohttp (one session,
keep-alive connections; in the spike measured for the design, httpx as the client managed about
260 transfers a second where aiohttp managed 3,700).
Plain-http endpoints get miniloop.http_client (lean and fast); https ones aiohttp's client.
A delivered message is deleted from the outbox in batches. A message that cannot be delivered
is retried a bounded number of times (connection errors, timeouts, 5xx), then given up: an event
records it, and if its sender is owed an answer (a forwarded request), the sender gets a 1001
error callback. A handler never sees a delivery failure.

At start, everything still in the outbox (a crash came between commit and delivery) is sent.
Delivery is therefore at least once, as with Mojaloop's Kafka-based notifier.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import aiohttp

from miniloop.bus import subjects
from miniloop.http_client import HttpClient, HttpClientError
from miniloop.ledger import Ledger
from miniloop.ledger.writer import LedgerUnavailable, utc_now
from miniloop.services import outbox
from miniloop.services.outbox import Delivery

log = logging.getLogger(__name__)

WORKERS = 64  # concurrent deliveries
QUEUE_MAX = 20_000  # beyond this, messages wait in the outbox table until there is room
ATTEMPTS = 3
RETRY_DELAYS_S = (0.2, 1.0)
TIMEOUT_S = 10.0
FLUSH_EVERY_S = 0.05  # how often delivered ids are deleted from the outbox
RELOAD_EVERY_S = 2.0  # how often an overflowed outbox is re-read


class Notifier:
    def __init__(self, ledger: Ledger, publish: Callable[[list[tuple[str, dict[str, Any]]]], None],
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._ledger = ledger
        self._publish = publish
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(QUEUE_MAX)
        self._known: set[int] = set()  # queued or in flight
        self._done: list[int] = []
        self._overflow = False
        self._tasks: list[asyncio.Task[None]] = []
        self.session: aiohttp.ClientSession | None = aiohttp.ClientSession(
            # https endpoints: verified with --tls-callback-ca (default the system's CAs); the hub
            # presents --tls-cert as its client certificate (miniloop.tls)
            connector=aiohttp.TCPConnector(limit=WORKERS * 2, limit_per_host=WORKERS, ttl_dns_cache=300,
                                           ssl=ssl_context if ssl_context is not None else True),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            skip_auto_headers=("User-Agent", "Content-Type", "Accept", "Accept-Encoding"),
        )
        self.client = HttpClient(limit_per_host=WORKERS, timeout_s=TIMEOUT_S)
        ledger.writer.deliver = self.deliver  # from now on, committed messages are queued here
        self.sent = 0
        self.failed = 0

    async def start(self) -> None:
        """Start sending: what is queued, then what an earlier run left in the outbox."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(), name=f"notify-{i}") for i in range(WORKERS)]
        self._tasks.append(loop.create_task(self._housekeeping(), name="notify-housekeeping"))
        await self._reload()

    def deliver(self, messages: list[Delivery]) -> None:
        """Queue committed messages; if the queue is full they wait in the outbox table."""
        for message in messages:
            if message.id in self._known:
                continue
            try:
                self._queue.put_nowait(message)
            except asyncio.QueueFull:
                self._overflow = True
                continue
            self._known.add(message.id)

    async def _reload(self) -> None:
        rows = await self._ledger.fetch_all("SELECT * FROM outbox ORDER BY id LIMIT ?", (QUEUE_MAX,))
        self._overflow = len(rows) >= QUEUE_MAX
        self.deliver([outbox.row_to_delivery(r) for r in rows])

    async def _worker(self) -> None:
        while True:
            message = await self._queue.get()
            try:
                await self._send(message)
            except Exception:  # never let one message stop a worker
                log.exception("delivering message %s failed unexpectedly", message.id)
            finally:
                self._done.append(message.id)

    async def _send(self, message: Delivery) -> None:
        assert self.session is not None
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(RETRY_DELAYS_S[min(attempt - 1, len(RETRY_DELAYS_S) - 1)])
            try:
                status = await self._attempt(message)
            except (aiohttp.ClientError, HttpClientError, asyncio.TimeoutError, OSError) as exc:
                problem = f"{message.participant} could not be reached ({type(exc).__name__}: {exc})"
                continue
            if status < 300:
                self.sent += 1
                return
            problem = f"{message.participant} answered {status}"
            if status < 500:
                break  # the receiver refused it; sending it again will not help
        self.failed += 1
        log.warning("gave up delivering %s %s: %s", message.method, message.url, problem)
        self._publish([(
            subjects.callback(message.participant, "failed"),
            {"type": "callback.failed", "participant": message.participant, "method": message.method,
             "url": message.url, "problem": problem, "at": utc_now()},
        )])
        if message.on_failure is not None:
            with suppress(Exception):
                await self._ledger.write(outbox.delivery_failed, message.on_failure, problem)

    async def _attempt(self, message: Delivery) -> int:
        if message.url.startswith("http://"):
            return await self.client.request(message.method, message.url, message.headers, message.body)
        assert self.session is not None
        async with self.session.request(message.method, message.url, data=message.body,
                                        headers=message.headers) as response:
            await response.read()
            return response.status

    async def _housekeeping(self) -> None:
        """Forget delivered messages in batches; re-read the outbox after an overflow."""
        last_reload = time.monotonic()
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await self._flush()
            if self._overflow and time.monotonic() - last_reload >= RELOAD_EVERY_S and self._queue.qsize() < QUEUE_MAX // 2:
                last_reload = time.monotonic()
                with suppress(Exception):
                    await self._reload()

    async def _flush(self) -> None:
        if not self._done:
            return
        done, self._done = self._done, []
        # Forget them before the rows go: once deleted, SQLite may give a new message the same id
        # (rowids are reused), and the writer hands it to `deliver` as soon as it commits, before
        # this coroutine resumes. Still "known", it would be skipped and never sent.
        self._known.difference_update(done)
        try:
            await self._ledger.write(outbox.delivered, done)
        except LedgerUnavailable:  # disk full: forget them at the next flush that can write
            self._done.extend(done)
        except Exception:  # the ledger is closing; they will be sent again at the next start
            return

    @property
    def pending(self) -> int:
        return len(self._known)

    async def stop(self) -> None:
        """Let in-flight deliveries finish (bounded), record them, close the client."""
        for _ in range(100):  # at most a second
            if self._queue.empty() and len(self._known) - len(self._done) <= 0:
                break
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self._flush()
        await self.client.close()
        if self.session is not None:
            await self.session.close()
            self.session = None
