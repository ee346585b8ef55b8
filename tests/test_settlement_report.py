"""Net positions of a settlement window: GET /v2/settlementWindows/{id}/positions and
`miniloop settlement report` (miniloop.services.settlement_report, miniloop.settlement_report_command).

One real hub per module: three DFSPs trade in window W1 (a->b 100, b->c 30, c->a 50), W1 is closed
through the Settlement API, and in the new OPEN window W2 a and b pay each other (a->b 25, b->a
10). The tests only read it, so they are independent. Plus unit tests on small ledgers built
with the migrations (currencies, states, other windows, the default window, the table's layout).
"""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import HubLauncher, error_code
from fspiop_dfsp import Scene, TestDfsps, Transfer

from miniloop.ledger.store import DB_FILE, connect, migrate
from miniloop.services.settlement_report import WindowNotFound, default_window, window_positions
from miniloop.settlement_report_command import read, render

Run = Callable[..., subprocess.CompletedProcess[str]]


@dataclass
class Day:
    scene: Scene
    a: str
    b: str
    c: str
    closed: int  # W1: CLOSED, a->b 100, b->c 30, c->a 50
    open: int  # W2: OPEN, a->b 25, b->a 10
    default_before_close: Any  # what the command's default window was while W1 was still open

    @property
    def data_dir(self) -> Path:
        return self.scene.hub.data_dir

    def participant_id(self, name: str) -> int:
        conn = sqlite3.connect((self.data_dir / DB_FILE).resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return conn.execute("SELECT id FROM participant WHERE name = ?", (name,)).fetchone()[0]
        finally:
            conn.close()


@pytest.fixture(scope="module")
def day(module_hubs: HubLauncher, test_dfsps: TestDfsps) -> Iterator[Day]:
    hub = module_hubs.start(empty=True)
    hub.setup_currency()
    scene = Scene(hub, test_dfsps)
    a, b, c = scene.dfsp("alpha"), scene.dfsp("bravo"), scene.dfsp("charlie")
    r = hub.settlement.get("settlementWindows", params={"state": "OPEN"})
    assert r.status_code == 200, r.text
    (window,) = r.json()
    for payer, payee, amount in ((a, b, "100"), (b, c, "30"), (c, a, "50")):
        scene.commit(Transfer(payer, payee, amount))
    before = read(hub.data_dir / DB_FILE, None)
    r = hub.settlement.post(f"settlementWindows/{window['id']}", json={"state": "CLOSED", "reason": "x"})
    assert r.status_code == 200, r.text
    new_window = r.json()["id"]
    for payer, payee, amount in ((a, b, "25"), (b, a, "10")):
        scene.commit(Transfer(payer, payee, amount))
    yield Day(scene, a, b, c, window["id"], new_window, before)
    scene.close()


def positions(day: Day, window_id: int) -> dict[str, Any]:
    r = day.scene.hub.settlement.get(f"settlementWindows/{window_id}/positions")
    assert r.status_code == 200, r.text
    return r.json()


def amounts(row: dict[str, Any], *keys: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(str(row[k])) for k in keys)


# ------------------------------------------------------------------------------------ the API


def test_the_api_shows_each_participants_net_position(day: Day) -> None:
    body = positions(day, day.closed)
    assert body["settlementWindowId"] == day.closed and body["state"] == "CLOSED"
    rows = {p["participant"]: p for p in body["positions"]}
    assert list(rows) == [day.a, day.b, day.c]  # by name
    assert amounts(rows[day.a], "sent", "received", "net") == (100, 50, 50)
    assert amounts(rows[day.b], "sent", "received", "net") == (30, 100, -70)
    assert amounts(rows[day.c], "sent", "received", "net") == (50, 30, 20)
    assert sum(Decimal(str(p["net"])) for p in body["positions"]) == 0
    for name, row in rows.items():
        assert row["participantId"] == day.participant_id(name)
        assert row["currency"] == "USD" and row["transfers"] == 2
        assert isinstance(row["net"], int)  # a JSON number, not a string


def test_the_api_shows_who_paid_whom(day: Day) -> None:
    body = positions(day, day.closed)
    assert body["bilateral"] == [
        {"payer": day.a, "payee": day.b, "currency": "USD", "amount": 100, "transfers": 1},
        {"payer": day.b, "payee": day.c, "currency": "USD", "amount": 30, "transfers": 1},
        {"payer": day.c, "payee": day.a, "currency": "USD", "amount": 50, "transfers": 1},
    ]
    # no pair paid both ways: the net obligations are the gross flows, ordered by payer
    assert body["obligations"] == [{k: v for k, v in f.items() if k != "transfers"} for f in body["bilateral"]]


def test_the_open_window_is_reported_live_and_pairs_are_netted(day: Day) -> None:
    body = positions(day, day.open)
    assert body["state"] == "OPEN"
    rows = {p["participant"]: amounts(p, "sent", "received", "net") + (p["transfers"],) for p in body["positions"]}
    assert rows == {day.a: (25, 10, 15, 2), day.b: (10, 25, -15, 2)}
    assert [(f["payer"], f["payee"], f["amount"]) for f in body["bilateral"]] == [(day.a, day.b, 25), (day.b, day.a, 10)]
    assert body["obligations"] == [{"payer": day.a, "payee": day.b, "currency": "USD", "amount": 15}]


def test_an_unknown_window_is_3100(day: Day) -> None:
    r = day.scene.hub.settlement.get("settlementWindows/999999/positions")
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    assert r.json()["errorInformation"]["errorDescription"].endswith("settlementWindowId: 999999 not found")


# ------------------------------------------------------------------------------------ the command


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The table's lines by their first word (a participant, `participant` or `total`)."""
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line and not line.startswith(" ")
            and len(line.split()) >= 6}


def test_the_command_prints_the_most_recently_closed_window_by_default(day: Day, run_cli: Run) -> None:
    result = run_cli("settlement", "report", "--data-dir", str(day.data_dir))
    assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Settlement window {day.closed}: CLOSED, opened "), lines[0]
    assert ", closed " in lines[0]
    rows = table_rows(result.stdout)
    assert rows["participant"] == ["participant", "currency", "sent", "received", "net", "transfers"]
    assert rows[day.a] == [day.a, "USD", "100", "50", "50", "2", "owes"]
    assert rows[day.b] == [day.b, "USD", "30", "100", "-70", "2", "is", "owed"]
    assert rows[day.c] == [day.c, "USD", "50", "30", "20", "2", "owes"]
    assert rows["total"] == ["total", "USD", "180", "180", "0", "3"]
    obligations = lines[lines.index("Net obligations between participants:") + 1:]
    assert [line.split() for line in obligations] == [
        [day.a, "pays", day.b, "100", "USD"], [day.b, "pays", day.c, "30", "USD"], [day.c, "pays", day.a, "50", "USD"]]
    # the columns line up
    header = lines[2]
    for name in (day.a, day.b, day.c):
        row = next(line for line in lines if line.startswith(name))
        assert row.index("USD") == header.index("currency")


def test_the_default_window_was_the_open_one_before_any_closed(day: Day) -> None:
    assert day.default_before_close.window_id == day.closed
    assert day.default_before_close.state == "OPEN"
    assert [p.net for p in day.default_before_close.positions] == [50 * 10_000, -70 * 10_000, 20 * 10_000]


def test_the_command_reports_a_named_window_and_writes_csv(day: Day, run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "positions.csv"
    result = run_cli("settlement", "report", "--data-dir", str(day.data_dir), "--window", str(day.open),
                     "--csv", str(out))
    assert result.returncode == 0 and result.stderr == "", result.stdout + result.stderr
    assert result.stdout.splitlines()[0].startswith(f"Settlement window {day.open}: OPEN, opened ")
    rows = table_rows(result.stdout)
    assert rows[day.a][:6] == [day.a, "USD", "25", "10", "15", "2"]
    assert rows[day.b][:6] == [day.b, "USD", "10", "25", "-15", "2"]
    assert result.stdout.splitlines()[-1].split() == [day.a, "pays", day.b, "15", "USD"]
    with open(out, newline="") as file:
        assert list(csv.reader(file)) == [
            ["window", "participant", "currency", "sent", "received", "net", "transfers"],
            [str(day.open), day.a, "USD", "25", "10", "15", "2"],
            [str(day.open), day.b, "USD", "10", "25", "-15", "2"],
        ]


def test_the_closed_windows_csv(day: Day, run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "w.csv"
    result = run_cli("settlement", "report", "--data-dir", str(day.data_dir), "--window", str(day.closed),
                     "--csv", str(out))
    assert result.returncode == 0, result.stderr
    with open(out, newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(r["participant"], r["sent"], r["received"], r["net"]) for r in rows] == [
        (day.a, "100", "50", "50"), (day.b, "30", "100", "-70"), (day.c, "50", "30", "20")]
    assert {r["window"] for r in rows} == {str(day.closed)}


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("miniloop: "), result.stderr
    return lines[0]


def test_an_unknown_window_is_one_line_and_exit_2(day: Day, run_cli: Run) -> None:
    line = one_error_line(run_cli("settlement", "report", "--data-dir", str(day.data_dir), "--window", "999999"))
    assert f"there is no settlement window 999999 in {day.data_dir / DB_FILE} (windows 1 to {day.open})" in line


def test_a_missing_data_dir_is_one_line_and_exit_2(run_cli: Run, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    line = one_error_line(run_cli("settlement", "report", "--data-dir", str(missing)))
    assert f"no ledger in {missing}" in line


def test_an_unwritable_csv_file_is_one_line_and_exit_2(day: Day, run_cli: Run, tmp_path: Path) -> None:
    out = tmp_path / "no-such-dir" / "w.csv"
    line = one_error_line(run_cli("settlement", "report", "--data-dir", str(day.data_dir), "--csv", str(out)))
    assert f"cannot write the CSV file {out}" in line


def test_a_bad_window_number_is_refused(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("settlement", "report", "--data-dir", str(tmp_path), "--window", "0")
    assert result.returncode == 2 and "--window: 0 must be 1 or more" in result.stderr, result.stderr


# ------------------------------------------------------------------------------------ small ledgers


NOW = "2025-01-01T00:00:00.000Z"


class Ledger:
    """A ledger made with the migrations, holding only what the report reads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)
        migrate(self.conn)
        self.accounts: dict[tuple[str, str], int] = {}

    def account(self, name: str, currency: str) -> int:
        if (name, currency) not in self.accounts:
            row = self.conn.execute("SELECT id FROM participant WHERE name = ?", (name,)).fetchone()
            pid = row[0] if row else self.conn.execute(
                "INSERT INTO participant (name, created_date) VALUES (?, ?) RETURNING id", (name, NOW)).fetchone()[0]
            self.accounts[(name, currency)] = self.conn.execute(
                "INSERT INTO account (participant_id, currency, ledger_account_type_id, created_date) "
                "VALUES (?, ?, 1, ?) RETURNING id", (pid, currency, NOW)).fetchone()[0]
        return self.accounts[(name, currency)]

    def pay(self, payer: str, payee: str, units: int, currency: str = "USD", window: int | None = 1,
            state: str = "COMMITTED", kind: str = "FSPIOP") -> None:
        tid = str(uuid.uuid4())
        self.conn.execute("INSERT INTO transfer (id, kind, amount, currency, state, settlement_window_id, "
                          "created_date) VALUES (?, ?, ?, ?, ?, ?, ?)", (tid, kind, units, currency, state, window, NOW))
        self.conn.executemany(
            "INSERT INTO transfer_participant (transfer_id, account_id, role, ledger_entry_type, amount) "
            "VALUES (?, ?, ?, 'PRINCIPLE_VALUE', ?)",
            [(tid, self.account(payer, currency), "PAYER_DFSP", units),
             (tid, self.account(payee, currency), "PAYEE_DFSP", -units)])

    def window(self, state: str) -> int:
        wid = self.conn.execute("INSERT INTO settlement_window (state, created_date, changed_date) "
                                "VALUES (?, ?, ?) RETURNING id", (state, NOW, NOW)).fetchone()[0]
        self.conn.execute("INSERT INTO settlement_window_state_change (settlement_window_id, state, created_date) "
                          "VALUES (?, ?, ?)", (wid, state, NOW))
        return wid

    def set_state(self, window_id: int, state: str, when: str = NOW) -> None:
        self.conn.execute("UPDATE settlement_window SET state = ?, changed_date = ? WHERE id = ?",
                          (state, when, window_id))
        self.conn.execute("INSERT INTO settlement_window_state_change (settlement_window_id, state, created_date) "
                          "VALUES (?, ?, ?)", (window_id, state, when))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    made = Ledger(tmp_path / DB_FILE)
    yield made
    made.conn.close()


def test_currencies_states_kinds_and_windows(ledger: Ledger) -> None:
    ledger.pay("a", "b", 1_000_000)
    ledger.pay("b", "a", 125_000, state="SETTLED")  # settled since: still the window's
    ledger.pay("a", "b", 7, state="ABORTED_REJECTED", window=None)  # never committed
    ledger.pay("a", "b", 9, state="RESERVED", window=None)  # in flight
    ledger.pay("a", "b", 11, window=None, kind="FUNDS_IN")  # not FSPIOP
    ledger.set_state(1, "CLOSED", "2025-01-02T00:00:00.000Z")
    two = ledger.window("OPEN")
    ledger.pay("a", "b", 13, window=two)  # another window
    ledger.pay("b", "c", 20_000, currency="EUR")
    ledger.pay("c", "a", 5_000, currency="EUR")
    found = window_positions(ledger.conn, 1)
    assert (found.state, found.closed_date) == ("CLOSED", "2025-01-02T00:00:00.000Z")
    assert [(p.participant, p.currency, p.sent, p.received, p.net, p.transfers, p.verdict) for p in found.positions] == [
        ("a", "EUR", 0, 5_000, -5_000, 1, "is owed"),
        ("a", "USD", 1_000_000, 125_000, 875_000, 2, "owes"),
        ("b", "EUR", 20_000, 0, 20_000, 1, "owes"),
        ("b", "USD", 125_000, 1_000_000, -875_000, 2, "is owed"),
        ("c", "EUR", 5_000, 20_000, -15_000, 2, "is owed"),
    ]
    assert [(t.currency, t.sent, t.received, t.net, t.transfers) for t in found.totals()] == [
        ("EUR", 25_000, 25_000, 0, 2), ("USD", 1_125_000, 1_125_000, 0, 2)]
    assert [(o.payer, o.payee, o.currency, o.amount) for o in found.obligations()] == [
        ("b", "c", "EUR", 20_000), ("c", "a", "EUR", 5_000), ("a", "b", "USD", 875_000)]
    assert [(p.participant, p.net) for p in window_positions(ledger.conn, two).positions] == [("a", 13), ("b", -13)]


def test_a_pair_that_is_even_has_no_obligation(ledger: Ledger) -> None:
    ledger.pay("a", "b", 500)
    ledger.pay("b", "a", 500)
    found = window_positions(ledger.conn, 1)
    assert [p.verdict for p in found.positions] == ["even", "even"]
    assert found.obligations() == []
    assert "  none: every pair is even" in render(found)


def test_the_default_window(ledger: Ledger) -> None:
    assert default_window(ledger.conn) == 1  # only the OPEN one
    ledger.set_state(1, "CLOSED")
    two = ledger.window("OPEN")
    assert default_window(ledger.conn) == 1
    ledger.set_state(1, "SETTLED")  # settled since: still the most recently closed
    assert default_window(ledger.conn) == 1
    ledger.set_state(two, "CLOSED")
    ledger.window("OPEN")
    assert default_window(ledger.conn) == two
    with pytest.raises(WindowNotFound, match="settlementWindowId: 99 not found"):
        window_positions(ledger.conn, 99)


def test_an_empty_window_and_the_table_layout(ledger: Ledger) -> None:
    assert render(window_positions(ledger.conn, 1)).splitlines()[2] == "No committed transfers in this window."
    ledger.pay("alice", "bob", 1_234_500)  # 123.45
    ledger.pay("bob", "alice", 50_000)  # 5
    ledger.pay("bob", "carol", 1)  # 0.0001
    found = window_positions(ledger.conn, 1)
    lines = render(found).splitlines()
    assert lines[0] == f"Settlement window 1: OPEN, opened {found.created_date} (live: transfers so far)"
    assert lines[1:] == [
        "",
        "participant  currency      sent  received        net  transfers",
        "alice        USD       123.45      5        118.45            2  owes",
        "bob          USD         5.0001  123.45    -118.4499          3  is owed",
        "carol        USD         0         0.0001    -0.0001          1  is owed",
        "-----------  --------  --------  --------  ---------  ---------",
        "total        USD       128.4501  128.4501     0               3",
        "",
        "Net obligations between participants:",
        "  alice  pays  bob    118.45    USD",
        "  bob    pays  carol    0.0001  USD",
    ]
