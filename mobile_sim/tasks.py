"""Background work and callback matching for the simulators, both bounded.

Why: FSPIOP is asynchronous. A DFSP answers every request at once (202/200) and does the work
afterwards, then the answer comes back later as a separate callback. `TaskPool` runs that
afterwards-work as tracked tasks, with a cap on how many are in flight (beyond it the request is
refused with 503 rather than queued without end), and logs instead of crashing on a bad message.
`Waiters` lets a payer flow wait for the callback that answers its request, matched by id.

A flow that stops for a person (a /send with "confirm", a till that types the OTP the customer
reads out) spans several HTTP calls of the driving API: `Pauses` is where the flow waits for the
person's answer and where each of those calls waits for the flow's next pause or its end, and
`FlowRecords` finds a flow by id while it runs and for a while after it ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
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


FINISHED_KEPT = 200  # finished flows kept per simulated DFSP, for GET /<dfsp>/send/<id> and the like


class Stopping(Exception):
    """The simulator is stopping: a paused flow gets no answer any more."""


_STOP = object()


class Pauses:
    """A background flow's pauses for a person's answer, and its answers to the HTTP calls driving it.

    The flow calls `ask(what, status, body, timeout)`: whoever waits in `next()` gets (status, body)
    at once, and the flow waits for `answer(what, value)` (raises TimeoutError past `timeout`,
    Stopping when the simulator stops). The HTTP call that answered then waits in `next()` for the
    following pause or for `end(status, body)`. `next()` is shielded: a caller that hangs up does
    not cancel the flow.
    """

    def __init__(self) -> None:
        self.waiting_for: str | None = None  # the answer the flow waits for now ("acceptParty", "otp")
        self._answer: asyncio.Future[Any] | None = None
        self._checkpoint: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()

    async def ask(self, what: str, status: int, body: Any, timeout: float) -> Any:
        """Show (status, body) to the caller waiting, then wait for the answer to `what`."""
        if timeout <= 0:
            raise TimeoutError()  # no time left to answer: never show a pause nobody can answer
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._answer, self.waiting_for = answer, what
        self._reach(status, body)
        try:
            value = await asyncio.wait_for(answer, max(timeout, 0))
        finally:
            self._answer, self.waiting_for = None, None
        if value is _STOP:
            raise Stopping()
        return value

    def answer(self, what: str, value: Any) -> bool:
        """Give the flow its answer; False (nothing done) when it does not wait for `what` now."""
        if self.waiting_for != what or self._answer is None or self._answer.done():
            return False
        self._checkpoint = asyncio.get_running_loop().create_future()
        self._answer.set_result(value)
        self.waiting_for = None  # a second answer to the same pause is refused at once
        return True

    def end(self, status: int, body: Any) -> None:
        """The flow ended: whoever waits gets its final answer."""
        self._reach(status, body)

    def stop(self) -> None:
        """The simulator is stopping: a flow waiting for an answer gets Stopping."""
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(_STOP)

    async def next(self) -> tuple[int, Any]:
        """The flow's next pause, or its end: (HTTP status, body)."""
        return await asyncio.shield(self._checkpoint)

    def _reach(self, status: int, body: Any) -> None:
        if not self._checkpoint.done():
            self._checkpoint.set_result((status, body))


class FlowRecords:
    """Flows of the driving API found by id: the running ones, and the last `kept` finished per DFSP.

    Running flows are bounded by their own limits (sends in flight, requests to pay at once);
    finished ones keep only their final (status, body).
    """

    def __init__(self, kept: int = FINISHED_KEPT) -> None:
        self.kept = kept
        self.running: dict[tuple[str, str], Any] = {}
        self._finished: dict[str, OrderedDict[str, tuple[int, Any]]] = {}

    def started(self, dfsp: str, flow_id: str, flow: Any) -> None:
        self.running[(dfsp, flow_id)] = flow

    def ended(self, dfsp: str, flow_id: str, status: int | None = None, body: Any = None) -> None:
        """The flow ended; keep its final answer (if it has one) among the newest finished."""
        self.running.pop((dfsp, flow_id), None)
        if body is None:
            return
        finished = self._finished.setdefault(dfsp, OrderedDict())
        finished[flow_id] = (status or 200, body)
        finished.move_to_end(flow_id)
        while len(finished) > self.kept:
            finished.popitem(last=False)

    def running_flow(self, dfsp: str, flow_id: str) -> Any:
        return self.running.get((dfsp, flow_id))

    def finished(self, dfsp: str, flow_id: str) -> tuple[int, Any] | None:
        return self._finished.get(dfsp, {}).get(flow_id)

    def body_of(self, dfsp: str, flow_id: str) -> Any:
        """A flow's body now: the running flow's view, or a finished one's final body; None if unknown."""
        flow = self.running_flow(dfsp, flow_id)
        if flow is not None:
            return flow.view()
        finished = self.finished(dfsp, flow_id)
        return None if finished is None else finished[1]
