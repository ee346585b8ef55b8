"""Opening the ledger: one SQLite file in the data directory, migrated, with one writer and a reader.

The write side is `Writer` (one thread, group commit). The read side is an aiosqlite connection
of its own: in WAL mode readers never block the writer and always see the last commit, so a read
made after `await ledger.write(...)` returns sees that write.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import aiosqlite

from miniloop.errors import StartupError
from miniloop.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from miniloop.ledger.writer import Publisher, Writer

DB_FILE = "miniloop.db"


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the settings every miniloop connection uses.

    synchronous=NORMAL in WAL mode survives a crash of the process (what a sandbox meets); only a
    power cut can lose the last commits. isolation_level=None: transactions are explicit.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def migrate(conn: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Apply the migrations the database lacks, each in its own transaction; return the version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StartupError(
            f"the ledger was written by a newer miniloop (schema {version}, this one knows "
            f"{SCHEMA_VERSION}): upgrade miniloop, or start afresh with `miniloop reset`"
        )
    for number in range(version + 1, upto + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return max(version, upto)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    assert not current.strip(), "a migration ends in an incomplete statement"
    return statements


class Ledger:
    """The ledger of one hub: `write` for changes, `fetch_*` for queries."""

    def __init__(self, path: Path, writer: Writer, reader: aiosqlite.Connection) -> None:
        self.path = path
        self.writer = writer
        self._reader = reader

    @classmethod
    async def open(cls, data_dir: Path, publish: Publisher | None = None) -> Ledger:
        path = data_dir / DB_FILE
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(None, connect, path)
            await loop.run_in_executor(None, migrate, conn)
        except sqlite3.DatabaseError as exc:
            raise StartupError(
                f"cannot open the ledger {path}: {exc} (is it a miniloop database? "
                "`miniloop reset` starts afresh)"
            ) from None
        writer = Writer(conn, publish)
        writer.start()
        reader = await aiosqlite.connect(path, isolation_level=None)
        reader.row_factory = sqlite3.Row
        await reader.execute("PRAGMA foreign_keys=ON")
        return cls(path, writer, reader)

    async def write(self, fn: Any, *args: Any) -> Any:
        """Run a command in the one writer; see miniloop.ledger.writer."""
        return await self.writer.run(fn, *args)

    async def fetch_all(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        async with self._reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetch_one(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Row | None:
        async with self._reader.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def close(self) -> None:
        await self.writer.stop()
        await self._reader.close()
