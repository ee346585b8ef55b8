"""Unit tests of one layer at a time, without a hub: money, the ledger writer, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from miniloop import money
from miniloop.bus.events import MemoryBus
from miniloop.errors import StartupError
from miniloop.ledger import Ledger, Tx
from miniloop.ledger.schema import SCHEMA_VERSION
from miniloop.ledger.store import DB_FILE, connect, migrate
from miniloop.ledger.writer import Writer

# ------------------------------------------------------------------------------- money


@pytest.mark.parametrize(("value", "expected"), [
    ("100", Decimal("100")),
    ("12.5", Decimal("12.5")),
    ("0.0001", Decimal("0.0001")),
    (10000, Decimal("10000")),
    (12.5, Decimal("12.5")),
    (0.1, Decimal("0.1")),
    ("1.1000", Decimal("1.1")),
    ("-3.25", Decimal("-3.25")),
    ("100000000000000", Decimal("100000000000000")),
])
def test_parse_amount(value: Any, expected: Decimal) -> None:
    assert money.parse_amount(value) == expected


@pytest.mark.parametrize("value", [
    pytest.param("1.12345", id="5-decimals-text"),
    pytest.param(1.12345, id="5-decimals-float"),
    pytest.param(0.1 + 0.2, id="binary-float-noise"),
    pytest.param("100000000000001", id="above-max"),
    pytest.param(10**20, id="huge-int"),
    pytest.param(1e300, id="huge-float"),
    pytest.param("1e400", id="huge-exponent"),
    pytest.param("NaN", id="nan-text"),
    pytest.param(float("nan"), id="nan-float"),
    pytest.param(float("inf"), id="inf-float"),
    pytest.param("-Infinity", id="inf-text"),
    pytest.param("abc", id="text"),
    pytest.param("", id="empty"),
    pytest.param(None, id="none"),
    pytest.param(True, id="bool"),
    pytest.param([1], id="list"),
])
def test_parse_amount_rejects(value: Any) -> None:
    with pytest.raises(money.AmountError):
        money.parse_amount(value)


@pytest.mark.parametrize("value", ["12.50", "012", "1.", ".5", 12, "-1", "1e3", " 1"])
def test_parse_amount_strict_uses_the_fspiop_pattern(value: Any) -> None:
    with pytest.raises(money.AmountError):
        money.parse_amount(value, strict=True)


@pytest.mark.parametrize("value", ["0", "12", "12.5", "0.0001", "99999999999999.9999"])
def test_parse_amount_strict_accepts_fspiop_amounts(value: str) -> None:
    assert money.parse_amount(value, strict=True) == Decimal(value)


def test_parse_amount_strict_still_bounds_the_size() -> None:
    with pytest.raises(money.AmountError):
        money.parse_amount("123456789012345678", strict=True)


@pytest.mark.parametrize(("amount", "units"), [
    (Decimal("1"), 10000), (Decimal("0.0001"), 1), (Decimal("12.5"), 125000), (Decimal("-3.25"), -32500),
    (Decimal("0"), 0), (money.MAX_AMOUNT, 10**18),
])
def test_units_round_trip(amount: Decimal, units: int) -> None:
    assert money.to_units(amount) == units
    assert isinstance(money.to_units(amount), int)
    assert money.from_units(units) == amount


def test_to_units_refuses_more_than_four_decimals() -> None:
    with pytest.raises(money.AmountError):
        money.to_units(Decimal("0.00001"))


@pytest.mark.parametrize(("units", "text"), [
    (1_000_000, "100"), (125_000, "12.5"), (-32_500, "-3.25"), (0, "0"), (1, "0.0001"),
    (10_000_000_000, "1000000"), (-10_000, "-1"), (123_456_789, "12345.6789"),
])
def test_format_amount(units: int, text: str) -> None:
    assert money.format_amount(units) == text
    assert "E" not in money.format_amount(units)


def test_formatted_amounts_parse_back_strictly() -> None:
    for units in (1, 10, 100, 1000, 10_000, 12_340, 99_999_999, 10**18):
        text = money.format_amount(units)
        assert money.to_units(money.parse_amount(text, strict=True)) == units


# ------------------------------------------------------------------------------- the writer


def fresh_db(tmp_path: Path) -> sqlite3.Connection:
    conn = connect(tmp_path / DB_FILE)
    migrate(conn)
    return conn


def add_currency(tx: Tx, code: str) -> str:
    tx.conn.execute("INSERT INTO currency (code, created_date) VALUES (?, ?)", (code, tx.now))
    tx.emit(f"test.currency.{code}", {"code": code})
    return code


def add_currency_then_fail(tx: Tx, code: str) -> None:
    add_currency(tx, code)
    raise ValueError(f"{code} is refused")


def published(bus: MemoryBus) -> list[tuple[str, dict[str, Any]]]:
    """The events a bus got, without the time stamp the writer may add ("at")."""
    return [(subject, {k: v for k, v in body.items() if k != "at"}) for subject, body in bus.events]


def currencies(conn: sqlite3.Connection) -> list[str]:
    return [r["code"] for r in conn.execute("SELECT code FROM currency ORDER BY code")]


async def run_batch(writer: Writer, commands: list[tuple[Any, str]]) -> list[Any]:
    """Queue all commands before the writer runs, so they land in one batch."""
    writer.start()
    try:
        return await asyncio.gather(*(writer.run(fn, arg) for fn, arg in commands), return_exceptions=True)
    finally:
        await writer.stop()


def test_a_failing_command_rolls_back_only_itself(tmp_path: Path) -> None:
    conn = fresh_db(tmp_path)
    bus = MemoryBus()
    writer = Writer(conn, bus.publish_batch)
    results = asyncio.run(run_batch(writer, [
        (add_currency, "AAA"), (add_currency_then_fail, "BBB"), (add_currency, "CCC"),
    ]))
    assert writer.batches == 1 and writer.commands == 3  # one transaction for the three
    assert results[0] == "AAA" and results[2] == "CCC"
    assert isinstance(results[1], ValueError) and "BBB" in str(results[1])

    check = connect(tmp_path / DB_FILE)
    assert currencies(check) == ["AAA", "CCC"]
    # only the events of committed commands were published
    assert published(bus) == [("test.currency.AAA", {"code": "AAA"}), ("test.currency.CCC", {"code": "CCC"})]
    check.close()


def test_results_come_back_in_order(tmp_path: Path) -> None:
    conn = fresh_db(tmp_path)
    writer = Writer(conn)
    codes = [f"Q{i:02d}" for i in range(40)]
    results = asyncio.run(run_batch(writer, [(add_currency, code) for code in codes]))
    assert results == codes
    check = connect(tmp_path / DB_FILE)
    assert currencies(check) == codes
    check.close()


def test_events_of_a_failed_command_are_not_published(tmp_path: Path) -> None:
    conn = fresh_db(tmp_path)
    bus = MemoryBus()
    writer = Writer(conn, bus.publish_batch)
    results = asyncio.run(run_batch(writer, [(add_currency_then_fail, "ZZZ")]))
    assert isinstance(results[0], ValueError)
    assert bus.events == []
    check = connect(tmp_path / DB_FILE)
    assert currencies(check) == []
    check.close()


def test_a_constraint_violation_fails_only_that_command(tmp_path: Path) -> None:
    conn = fresh_db(tmp_path)
    bus = MemoryBus()
    writer = Writer(conn, bus.publish_batch)
    results = asyncio.run(run_batch(writer, [(add_currency, "DUP"), (add_currency, "DUP"), (add_currency, "ONE")]))
    assert results[0] == "DUP" and results[2] == "ONE"
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert [subject for subject, _ in bus.events] == ["test.currency.DUP", "test.currency.ONE"]


def test_a_failing_publisher_does_not_fail_the_write(tmp_path: Path) -> None:
    def broken(events: list[Any]) -> None:
        raise RuntimeError("publisher down")

    conn = fresh_db(tmp_path)
    results = asyncio.run(run_batch(Writer(conn, broken), [(add_currency, "PUB")]))
    assert results == ["PUB"]
    check = connect(tmp_path / DB_FILE)
    assert currencies(check) == ["PUB"]
    check.close()


def test_writes_are_visible_to_the_ledger_reader_after_run(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[str], list[Any]]:
        bus = MemoryBus()
        ledger = await Ledger.open(tmp_path, publish=bus.publish_batch)
        try:
            await ledger.write(add_currency, "RDR")
            rows = await ledger.fetch_all("SELECT code FROM currency")
            return [r["code"] for r in rows], published(bus)
        finally:
            await ledger.close()

    codes, events = asyncio.run(scenario())
    assert codes == ["RDR"]
    assert events == [("test.currency.RDR", {"code": "RDR"})]


# ------------------------------------------------------------------------------- migrations


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_an_old_database_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    old = connect(path)
    assert migrate(old, upto=1) == 1
    old.execute("INSERT INTO participant (name, is_active, is_proxy, created_date) "
                "VALUES ('oldbank', 1, 0, '2020-01-01T00:00:00.000Z')")
    old.close()
    assert user_version(path) == 1

    async def reopen() -> list[Any]:
        ledger = await Ledger.open(tmp_path)
        try:
            rows = await ledger.fetch_all("SELECT name, created_date FROM participant ORDER BY id")
            tables = await ledger.fetch_all("SELECT name FROM sqlite_master WHERE type = 'table'")
            return [tuple(r) for r in rows] + [{r["name"] for r in tables}]
        finally:
            await ledger.close()

    *participants, tables = asyncio.run(reopen())
    assert participants == [("Hub", participants[0][1]), ("oldbank", "2020-01-01T00:00:00.000Z")]
    assert {"transfer", "transfer_participant", "oracle", "party"} <= tables
    assert user_version(path) == SCHEMA_VERSION


def test_opening_twice_does_not_migrate_again(tmp_path: Path) -> None:
    async def open_close() -> None:
        ledger = await Ledger.open(tmp_path)
        await ledger.close()

    asyncio.run(open_close())
    asyncio.run(open_close())
    assert user_version(tmp_path / DB_FILE) == SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / DB_FILE)
    assert conn.execute("SELECT count(*) FROM participant").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM settlement_window WHERE state = 'OPEN'").fetchone()[0] == 1
    conn.close()


def test_a_database_from_a_newer_miniloop_is_refused(tmp_path: Path) -> None:
    path = tmp_path / DB_FILE
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StartupError, match="newer miniloop"):
        asyncio.run(Ledger.open(tmp_path))
    assert user_version(path) == SCHEMA_VERSION + 1


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_FILE).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StartupError):
        asyncio.run(Ledger.open(tmp_path))
