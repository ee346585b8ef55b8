"""The one writer: every change to the ledger goes through here, in batches.

Why one writer: SQLite allows one writing transaction at a time anyway, positions and Net Debit
Caps stay exact without locks when one task applies changes in arrival order, and group commit
(many commands in one `BEGIN IMMEDIATE ... COMMIT`) is where the throughput comes from.

A batch runs on the event loop itself, not in a thread: the commands are Python, so a thread
would only compete with the HTTP side for the GIL, and handing batches to it and back cost more
than the little SQLite work it could overlap (measured: 728 -> 851 transfers/s inline, with a
lower p99; docs/performance.md). A batch takes a few milliseconds. The one slow thing SQLite
does at commit, a WAL checkpoint, is taken off the loop: automatic checkpoints are off on this
connection and a second connection checkpoints in a thread every CHECKPOINT_EVERY_S.

Callers `await writer.run(command, *args)`. A command is a plain function `command(tx, *args)`
that runs with a `Tx`; it reads and writes with `tx.conn` and may call
`tx.emit(subject, event)`, and may owe messages to DFSPs with `tx.owe(message)` (rows it wrote to
the outbox table). Each command runs inside its own SAVEPOINT, so one that raises rolls
back alone and its exception reaches its caller, while the rest of the batch commits. Events and
owed messages are handed on only after the batch is committed: nothing is announced or sent that
a crash could take back. The caller's future resolves after the commit, so a 202 sent after `run`
returns is durable.

Commands see `tx.now`, one timestamp per batch (a batch lasts milliseconds), and may keep what
they look up again and again in `tx.cached`: participants, their accounts and endpoints, the
open settlement window, the settlement models, the oracles. Temporary triggers on this connection empty that cache
whenever a row of those tables changes, whoever changes it, and a command that fails empties it
too, so a rolled-back change is never remembered.

When SQLite cannot write at all (the disk is full, the directory became read-only, an I/O
error), the batch's transaction is rolled back whole, so nothing is half-written, and every
caller of that batch gets `LedgerUnavailable`: FSPIOP 2003, HTTP 503, a clear description, no
traceback. The writer then reports itself unavailable (`/health` shows the datastore DOWN), logs
one line, and tries a tiny write every PROBE_EVERY_S while idle: once a write succeeds again
(space freed, the directory writable again) it is available, logs that, and carries on. Nothing
answered before is lost: a 202 was only ever sent after its commit.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from miniloop.fspiop.errors import FspiopError

log = logging.getLogger(__name__)

QUEUE_BOUND = 10_000  # commands waiting; callers wait for room beyond this
BATCH_MAX = 256  # commands in one transaction
CACHE_MAX = 10_000  # entries of the lookup cache; emptied when full
CHECKPOINT_EVERY_S = 1.0
PROBE_EVERY_S = 1.0  # while the ledger cannot be written: how often an idle writer tries again
UNAVAILABLE_LOG_EVERY_S = 30.0
# SQLite's primary result codes that mean "the storage cannot be written now", not a bug
_STORAGE_CODES = {
    5: "the database is locked",  # SQLITE_BUSY, after busy_timeout
    6: "the database is locked",  # SQLITE_LOCKED
    8: "the data directory is read-only",  # SQLITE_READONLY
    10: "an I/O error",  # SQLITE_IOERR
    13: "the disk is full",  # SQLITE_FULL
    14: "the database file cannot be opened",  # SQLITE_CANTOPEN
}
CACHED_TABLES = ("participant", "account", "participant_endpoint", "settlement_window", "settlement_model", "oracle")


def utc_now() -> str:
    """The current time as central-ledger writes it: ISO 8601, milliseconds, Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Tx:
    """What a command gets: the connection inside an open transaction, and an event sink."""

    conn: sqlite3.Connection
    now: str
    cache: dict[Any, Any] = field(default_factory=dict)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: list[Any] = field(default_factory=list)

    def cached(self, key: Any, load: Callable[[], Any]) -> Any:
        """`load()`, remembered under `key` until a participant, account or endpoint changes."""
        try:
            return self.cache[key]
        except KeyError:
            if len(self.cache) >= CACHE_MAX:
                self.cache.clear()
            value = self.cache[key] = load()
            return value

    def owe(self, message: Any) -> None:
        """Hand `message` (already in the outbox table) to the deliverer once committed."""
        self.messages.append(message)

    def emit(self, subject: str, event: dict[str, Any]) -> None:
        """Publish `event` on `subject` once the transaction has committed, stamped with the time."""
        self.events.append((subject, {**event, "at": self.now}))


class LedgerUnavailable(FspiopError):
    """The ledger cannot be written now (disk full, read-only, I/O error): 2003, HTTP 503."""

    def __init__(self, problem: str) -> None:
        reason = problem.split(":", 1)[0]  # "the disk is full", without SQLite's own words
        super().__init__("2003", f"the hub cannot write its ledger now ({reason}); try again later", status=503)
        self.problem = problem


def storage_problem(exc: BaseException) -> str | None:
    """What `exc` says about the storage, if it is SQLite failing to write; None otherwise."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    reason = _STORAGE_CODES.get(code & 0xFF)
    return f"{reason}: {exc}" if reason else None


Publisher = Callable[[list[tuple[str, dict[str, Any]]]], None]
Deliverer = Callable[[list[Any]], None]


@dataclass
class _Command:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    future: asyncio.Future[Any]


class Writer:
    """Owns the write connection; applies queued commands in batches on the event loop."""

    def __init__(self, conn: sqlite3.Connection, publish: Publisher | None = None) -> None:
        self._conn = conn
        self._publish = publish
        self.deliver: Deliverer | None = None  # set by whoever sends the outbox (miniloop.notify)
        self._queue: asyncio.Queue[_Command | None] = asyncio.Queue(QUEUE_BOUND)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-checkpoint")
        self._path = conn.execute("PRAGMA database_list").fetchone()[2]
        self._checkpointer: sqlite3.Connection | None = None
        self._last_checkpoint = time.monotonic()
        conn.execute("PRAGMA wal_autocheckpoint=0")
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.commands = 0
        self.on_batch: Callable[[int], None] | None = None  # told each committed batch's size (metrics)
        self.unavailable: str | None = None  # why the ledger cannot be written now; None when it can
        self.refused = 0  # commands refused with LedgerUnavailable since it became unavailable
        self._unavailable_since = 0.0
        self._unavailable_logged = 0.0
        self._cache: dict[Any, Any] = {}
        conn.create_function("miniloop_forget_lookups", 0, self._cache.clear)
        for table in CACHED_TABLES:
            for change in ("INSERT", "UPDATE", "DELETE"):
                conn.execute(
                    f"CREATE TEMP TRIGGER IF NOT EXISTS forget_lookups_{table}_{change.lower()} "
                    f"AFTER {change} ON main.{table} BEGIN SELECT miniloop_forget_lookups(); END"
                )

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def healthy(self) -> bool:
        """Running, and its last write (or probe) succeeded."""
        return self.running and self.unavailable is None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="ledger-writer")

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Apply `fn(tx, *args)` in the writer; return its result once committed."""
        if self._task is None or self._task.done():
            raise RuntimeError("the ledger writer is not running")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Command(fn, args, future))
        return await future

    async def stop(self) -> None:
        """Finish what is queued, then close the connections (the last close checkpoints)."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_checkpointer)
        self._thread.shutdown(wait=True)
        self._conn.close()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        checkpoint: asyncio.Future[None] | None = None
        stopping = False
        while not stopping:
            if (checkpoint is None or checkpoint.done()) and time.monotonic() - self._last_checkpoint >= CHECKPOINT_EVERY_S:
                self._last_checkpoint = time.monotonic()
                checkpoint = loop.run_in_executor(self._thread, self._checkpoint)
            await asyncio.sleep(0)  # let requests in between batches: they make the next batch
            if self.unavailable is not None:  # idle: try a tiny write now and then
                try:
                    first = await asyncio.wait_for(self._queue.get(), PROBE_EVERY_S)
                except TimeoutError:
                    self._probe()
                    continue
            else:
                first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < BATCH_MAX and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                outcomes, events, messages = self._apply(batch)
            except BaseException as exc:  # the whole transaction failed (disk full, I/O error)
                problem = storage_problem(exc)
                if problem is not None:
                    self._became_unavailable(problem, len(batch))
                    exc = LedgerUnavailable(problem)
                else:
                    log.error("ledger batch of %d failed: %s", len(batch), exc)
                for command in batch:
                    if not command.future.done():
                        command.future.set_exception(exc)
                continue
            if self.unavailable is not None:
                self._available_again()
            self.batches += 1
            self.commands += len(batch)
            if self.on_batch is not None:
                self.on_batch(len(batch))
            for command, (ok, value) in zip(batch, outcomes):
                if command.future.done():  # the caller went away (cancelled)
                    continue
                if ok:
                    command.future.set_result(value)
                else:
                    command.future.set_exception(value)
            if messages and self.deliver is not None:
                try:
                    self.deliver(messages)
                except Exception:  # they stay in the outbox and are sent at the next start
                    log.exception("handing committed messages to the deliverer failed")
            if events and self._publish is not None:
                try:
                    self._publish(events)
                except Exception:  # events are a view of the ledger; never fail a write for them
                    log.exception("publishing ledger events failed")

    def _became_unavailable(self, problem: str, commands: int) -> None:
        now = time.monotonic()
        if self.unavailable is None:
            self._unavailable_since = self._unavailable_logged = now
            self.refused = 0
            log.error("the ledger cannot be written (%s): requests that change it get 503 (2003) until it can; "
                      "free space or make %s writable again", problem, self._path)
        elif now - self._unavailable_logged >= UNAVAILABLE_LOG_EVERY_S:
            self._unavailable_logged = now
            log.error("the ledger still cannot be written (%s): %d requests refused so far",
                      problem, self.refused + commands)
        self.unavailable = problem
        self.refused += commands

    def _available_again(self) -> None:
        log.warning("the ledger can be written again, after %.1f s (%d requests refused meanwhile)",
                    time.monotonic() - self._unavailable_since, self.refused)
        self.unavailable = None

    def _probe(self) -> None:
        """While unavailable: one tiny transaction (rewriting the schema version, a page of the
        database). If it commits, the ledger can be written again."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute(f"PRAGMA user_version = {int(version)}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            problem = storage_problem(exc)
            if problem is not None:
                self._became_unavailable(problem, 0)
            else:
                log.debug("ledger probe failed: %s", exc)
            return
        self._available_again()

    def _checkpoint(self) -> None:
        """In a thread, with a connection of its own: copy the WAL into the database (PASSIVE:
        never waits for the writer, so the writer never waits for it)."""
        try:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # busy or closing: the next one will do it
            log.debug("WAL checkpoint skipped: %s", exc)

    def _close_checkpointer(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None

    def _apply(self, batch: list[_Command]) -> tuple[list[tuple[bool, Any]], list[Any], list[Any]]:
        """One transaction, one savepoint per command."""
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        events: list[tuple[str, dict[str, Any]]] = []
        messages: list[Any] = []
        now = utc_now()
        if conn.in_transaction:  # a failed batch whose rollback failed too: end it first
            conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for command in batch:
                tx = Tx(conn, now, self._cache)
                conn.execute("SAVEPOINT command")
                try:
                    value = command.fn(tx, *command.args)
                except Exception as exc:
                    if storage_problem(exc) is not None:  # SQLite may have rolled it all back: fail the batch
                        raise
                    conn.execute("ROLLBACK TO command")
                    conn.execute("RELEASE command")
                    self._cache.clear()
                    outcomes.append((False, exc))
                    continue
                conn.execute("RELEASE command")
                outcomes.append((True, value))
                events.extend(tx.events)
                messages.extend(tx.messages)
            conn.execute("COMMIT")
        except BaseException:
            self._cache.clear()
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as exc:  # never leave the connection inside a transaction
                    log.error("rolling back a failed ledger batch failed: %s", exc)
            raise
        return outcomes, events, messages
