"""Background work and callback matching for the simulators, both bounded.

Why: FSPIOP is asynchronous. A DFSP answers every request at once (202/200) and does the work
afterwards, then the answer comes back later as a separate callback. `TaskPool` runs that
afterwards-work as tracked tasks, with a cap on how many are in flight (beyond it the request is
refused with 503 rather than queued without end), and logs instead of crashing on a bad message.
`Waiters` lets a payer flow wait for the callback that answers its request, matched by id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Hashable
from typing import Any

log = logging.getLogger(__name__)

TASKS_MAX = 2000  # callbacks being worked on at once, all DFSPs together
WAITERS_MAX = 5000  # callbacks being waited for at once


class TaskPool:
    """Tracked background tasks, at most `limit` at once; stopped with the sim server."""

    def __init__(self, limit: int = TASKS_MAX) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, Any], what: str) -> bool:
        """Run `work` in the background; False (and `work` dropped) when the pool is full."""
        if len(self.tasks) >= self.limit:
            work.close()
            log.warning("simulators busy (%d tasks): dropped %s", len(self.tasks), what)
            return False
        task = asyncio.get_running_loop().create_task(self._guarded(work, what))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return True

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, Any], what: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulator failed handling %s; message dropped", what)

    async def close(self) -> None:
        """Cancel what is still running and wait for it to finish."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class Waiters:
    """Futures waiting for a callback, by key (("transfers", id), ("quotes", id), ...)."""

    def __init__(self, limit: int = WAITERS_MAX) -> None:
        self.limit = limit
        self._futures: dict[Hashable, list[asyncio.Future[Any]]] = {}
        self._count = 0

    def expect(self, key: Hashable) -> asyncio.Future[Any] | None:
        """A future the next callback with `key` resolves; None when too many are waiting."""
        if self._count >= self.limit:
            return None
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._futures.setdefault(key, []).append(future)
        self._count += 1
        return future

    def forget(self, key: Hashable, future: asyncio.Future[Any]) -> None:
        """Stop waiting (answered, timed out or cancelled)."""
        futures = self._futures.get(key)
        if futures and future in futures:
            futures.remove(future)
            self._count -= 1
            if not futures:
                del self._futures[key]

    def deliver(self, key: Hashable, message: Any) -> bool:
        """Hand `message` to everyone waiting for `key`; False if nobody was."""
        futures = self._futures.pop(key, [])
        self._count -= len(futures)
        delivered = False
        for future in futures:
            if not future.done():
                future.set_result(message)
                delivered = True
        return delivered

    def cancel_all(self) -> None:
        """Cancel every waiting future (the server is stopping)."""
        for futures in self._futures.values():
            for future in futures:
                future.cancel()
        self._futures.clear()
        self._count = 0
