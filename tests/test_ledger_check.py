"""`miniloop ledger check` (miniloop.ledger.check): a real hub with committed, rejected, expired
and in-flight transfers passes while it runs and once stopped; copies of its ledger, tampered with
in SQLite the way a bug would leave them, fail with one line per problem naming the account or
transfer. Plus unit tests on small ledgers built with the migrations.

Each tampering test works on its own consistent copy of the module hub's ledger (SQLite's backup
API, which is safe while the hub runs), so the tests are independent and run in parallel.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import HubLauncher
from fspiop_dfsp import Scene, Transfer, TestDfsps

from miniloop.errors import MiniloopError
from miniloop.ledger import check
from miniloop.ledger.check import check_ledger
from miniloop.ledger.store import DB_FILE, connect, migrate
from miniloop.services.transfers import API_STATE

Run = Callable[..., subprocess.CompletedProcess[str]]
EXPIRY_WAIT_S = 12.0
OK_LINE = re.compile(
    r"^ledger check: OK — 1 currency, \d+ accounts, \d+ transfers \(2 in flight\), \d+ messages? waiting$")


@dataclass
class Made:
    """The module's hub and what was done on it."""

    scene: Scene
    payer: str
    payee: str
    committed: list[Transfer]
    rejected: Transfer
    expired: Transfer
    in_flight: Transfer
    funds_out_id: str

    @property
    def data_dir(self) -> Path:
        return self.scene.hub.data_dir

    def account(self, name: str, account_type: str = "POSITION") -> int:
        return self.scene.account_id(name, account_type)


@pytest.fixture(scope="module")
def made(module_hubs: HubLauncher, test_dfsps: TestDfsps) -> Any:
    """An empty hub with USD, two funded DFSPs and one with an initial position, and: 3 committed
    transfers, 1 rejected by the payee, 1 expired, 1 still RESERVED (expires in 10 min) and a
    funds-out still RESERVED. So every kind of position change and both kinds of reservation are
    in the ledger."""
    hub = module_hubs.start(empty=True)
    hub.setup_currency()
    scene = Scene(hub, test_dfsps)
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    # a DFSP whose position was set through initialPositionAndLimits: a change without a transfer
    r = hub.admin.post("/participants", json={"name": "opening", "currency": "USD"})
    assert r.status_code == 201, r.text
    r = hub.admin.post("/participants/opening/initialPositionAndLimits", json={
        "currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": 1000}, "initialPosition": 5})
    assert r.status_code == 201, r.text

    # the first two ids start with different characters: the check's hash of them differs
    committed = [Transfer(payer, payee, "10", transfer_id=id_starting("1")), Transfer(payer, payee, "2.5"),
                 Transfer(payer, payee, "0.0001")]
    for transfer in committed:
        scene.commit(transfer)
    rejected = Transfer(payer, payee, "7", transfer_id=id_starting("2"))
    scene.reserve(rejected)
    mark = test_dfsps.mark(payer)
    assert scene.reject(rejected).status_code == 200
    test_dfsps.error_callback(payer, rejected.path, since=mark)
    expired = Transfer(payer, payee, "3", expires_in=1)
    mark = test_dfsps.mark(payer)
    scene.reserve(expired)
    assert test_dfsps.error_callback(payer, expired.path, since=mark, timeout=EXPIRY_WAIT_S).error_code == "3303"
    in_flight = Transfer(payer, payee, "4", expires_in=600)
    scene.reserve(in_flight)
    funds_out_id = "6b4a4f6c-2d7e-4a0b-9a55-3f1f0c0d2e11"
    r = hub.funds(payee, scene.account_id(payee, "SETTLEMENT"), "recordFundsOutPrepareReserve", 100,
                  transfer_id=funds_out_id)
    assert r.status_code == 202, r.text
    yield Made(scene, payer, payee, committed, rejected, expired, in_flight, funds_out_id)
    scene.close()


def id_starting(character: str) -> str:
    return character + str(uuid.uuid4())[1:]


def copy_ledger(data_dir: Path, to: Path) -> Path:
    """A consistent copy of a (possibly running) hub's ledger in a new data dir `to`."""
    to.mkdir(parents=True)
    source = sqlite3.connect((data_dir / DB_FILE).resolve().as_uri() + "?mode=ro", uri=True)
    target = sqlite3.connect(to / DB_FILE)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()
    return to


def tamper(data_dir: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    conn = sqlite3.connect(data_dir / DB_FILE, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for sql, params in statements:
            assert conn.execute(sql, params).rowcount == 1, sql
        conn.execute("COMMIT")
    finally:
        conn.close()


def problems(run_cli: Run, data_dir: Path, *extra: str) -> list[str]:
    """Run the check, expect exit 1; the problem lines (the verdict line checked and dropped)."""
    result = run_cli("ledger", "check", "--data-dir", str(data_dir), *extra)
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert result.stderr == ""
    *lines, verdict = result.stdout.strip().splitlines()
    count = len(lines)
    assert verdict.startswith(f"ledger check: {count} problem{'' if count == 1 else 's'} — 1 currency, "), verdict
    return lines


def one_problem(run_cli: Run, data_dir: Path, *extra: str) -> str:
    lines = problems(run_cli, data_dir, *extra)
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def copy(made: Made, tmp_path: Path) -> Path:
    return copy_ledger(made.data_dir, tmp_path / "copy")


# ------------------------------------------------------------------------------- a good ledger


def test_a_running_hub_with_transfers_in_flight_passes(made: Made, run_cli: Run) -> None:
    """While the hub runs (read-only, WAL): the FSPIOP reservation (4) and the funds-out one (100)
    and the initial position (5) are the only reasons the positions do not sum to zero."""
    assert made.scene.hub.running
    result = run_cli("ledger", "check", "--data-dir", str(made.data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert OK_LINE.match(result.stdout.strip()), result.stdout
    assert result.stdout.count("\n") == 1
    assert result.stderr == ""


def test_the_check_writes_nothing(made: Made, copy: Path) -> None:
    before = (copy / DB_FILE).read_bytes()
    assert check_ledger(copy / DB_FILE).ok
    assert (copy / DB_FILE).read_bytes() == before


def test_data_dir_from_the_environment_or_a_settings_file(copy: Path, run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("ledger", "check", env={"MINILOOP_DATA_DIR": str(copy)})
    assert result.returncode == 0, result.stdout + result.stderr
    settings = tmp_path / "settings.toml"
    settings.write_text(f"data_dir = {str(copy)!r}\n")
    result = run_cli("ledger", "check", "--config", str(settings))
    assert result.returncode == 0, result.stdout + result.stderr
    # a flag beats the environment
    missing = tmp_path / "missing"
    result = run_cli("ledger", "check", "--data-dir", str(missing), env={"MINILOOP_DATA_DIR": str(copy)})
    assert result.returncode == 2 and str(missing) in result.stderr


# ------------------------------------------------------------------------------- rule 1 and 2


def test_a_changed_position_value(made: Made, copy: Path, run_cli: Run) -> None:
    account = made.account(made.payer)
    tamper(copy, ("UPDATE position SET value = value + 1234500 WHERE account_id = ?", (account,)))
    lines = problems(run_cli, copy)
    assert len(lines) == 2, lines
    assert re.fullmatch(r"positions in USD \(\d+ accounts\) sum to 232.45, expected 109 \(104 reserved by 2 "
                        r"transfers in flight; 5 set as initial positions\): off by 123.45", lines[0]), lines
    assert lines[1] == (f"position of {made.payer} USD POSITION (account {account}) is 139.9501 but its "
                        "8 changes sum to 16.5001"), lines


def test_positions_that_cancel_out_are_still_found(made: Made, copy: Path, run_cli: Run) -> None:
    """+1 on one account and -1 on another keep the currency's sum: rule 2 finds both."""
    payer, payee = made.account(made.payer), made.account(made.payee)
    tamper(copy, ("UPDATE position SET value = value + 10000 WHERE account_id = ?", (payer,)),
           ("UPDATE position SET value = value - 10000 WHERE account_id = ?", (payee,)))
    lines = problems(run_cli, copy)
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"position of {made.payer} USD POSITION (account {payer}) is 17.5001 but"), lines
    assert lines[1].startswith(f"position of {made.payee} USD POSITION (account {payee}) is -13.5001 but"), lines


def test_a_deleted_position_change(made: Made, copy: Path, run_cli: Run) -> None:
    """The payee's change of a committed transfer is gone: its position no longer matches its
    history, and the transfer no longer moved the payee."""
    transfer, payee = made.committed[0], made.account(made.payee)
    tamper(copy, ("DELETE FROM position_change WHERE transfer_id = ? AND account_id = ?", (transfer.id, payee)))
    lines = problems(run_cli, copy)
    assert len(lines) == 2, lines
    assert lines[0] == (f"position of {made.payee} USD POSITION (account {payee}) is -12.5001 but its "
                        "2 changes sum to -2.5001"), lines
    assert lines[1] == (f"transfer {transfer.id} (COMMITTED, 10 USD) moved {made.payee} USD POSITION "
                        f"(account {payee}), its PAYEE_DFSP, by 0; expected -10"), lines


# ------------------------------------------------------------------------------- rule 3


def test_a_reserved_transfer_long_past_its_expiry(made: Made, copy: Path, run_cli: Run) -> None:
    transfer = made.in_flight
    tamper(copy, ("UPDATE transfer SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?", (transfer.id,)))
    line = one_problem(run_cli, copy)
    assert re.fullmatch(rf"transfer {transfer.id} \({made.payer} -> {made.payee}, 4 USD\) is still RESERVED "
                        r"[\d,]+ days after it expired at 2020-01-01T00:00:00.000Z", line), line


def test_the_grace_period(made: Made, copy: Path, run_cli: Run) -> None:
    """Expired 5 s ago: within the default 10 s grace (the sweeper may be about to run), not within 1 s."""
    five_ago = (datetime.now(UTC) - timedelta(seconds=5)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    tamper(copy, ("UPDATE transfer SET expires_at = ? WHERE id = ?", (five_ago, made.in_flight.id)))
    assert run_cli("ledger", "check", "--data-dir", str(copy)).returncode == 0
    assert "is still RESERVED" in one_problem(run_cli, copy, "--grace", "1")


# ------------------------------------------------------------------------------- rule 4


def test_a_committed_transfer_without_a_settlement_window(made: Made, copy: Path, run_cli: Run) -> None:
    transfer = made.committed[1]
    tamper(copy, ("UPDATE transfer SET settlement_window_id = NULL WHERE id = ?", (transfer.id,)))
    line = one_problem(run_cli, copy)
    assert re.fullmatch(rf"transfer {transfer.id} \(2.5 USD\) is COMMITTED since \S+Z but belongs to no "
                        r"settlement window", line), line


# ------------------------------------------------------------------------------- rule 5


def test_a_payee_credited_on_the_wrong_account(made: Made, copy: Path, run_cli: Run) -> None:
    """The payee's -10 went to its SETTLEMENT account instead, positions kept in step with their
    history: money is conserved and every position matches its changes, only rule 5 sees it."""
    transfer = made.committed[0]
    position, settlement = made.account(made.payee), made.account(made.payee, "SETTLEMENT")
    tamper(copy,
           ("UPDATE position_change SET account_id = ? WHERE transfer_id = ? AND account_id = ?",
            (settlement, transfer.id, position)),
           ("UPDATE position SET value = value + 100000 WHERE account_id = ?", (position,)),
           ("UPDATE position SET value = value - 100000 WHERE account_id = ?", (settlement,)))
    lines = problems(run_cli, copy)
    assert sorted(lines) == sorted([
        f"transfer {transfer.id} (COMMITTED, 10 USD) moved {made.payee} USD POSITION (account {position}), "
        "its PAYEE_DFSP, by 0; expected -10",
        f"transfer {transfer.id} (COMMITTED, 10 USD) moved {made.payee} USD SETTLEMENT (account {settlement}), "
        "an account it does not involve, by -10; expected 0",
    ]), lines


def test_a_rejected_transfer_whose_payer_was_not_restored(made: Made, copy: Path, run_cli: Run) -> None:
    transfer, payer = made.rejected, made.account(made.payer)
    tamper(copy,
           ("DELETE FROM position_change WHERE transfer_id = ? AND change < 0", (transfer.id,)),
           ("UPDATE position SET value = value + 70000 WHERE account_id = ?", (payer,)))
    lines = problems(run_cli, copy)
    assert len(lines) == 2, lines
    assert lines[0].startswith("positions in USD") and lines[0].endswith("off by 7"), lines
    assert lines[1] == (f"transfer {transfer.id} (ABORTED_ERROR, 7 USD) moved {made.payer} USD POSITION "
                        f"(account {payer}), its PAYER_DFSP, by 7; expected 0"), lines


def test_a_restore_recorded_against_another_transfer(made: Made, copy: Path, run_cli: Run) -> None:
    """The rejected transfer's restore of the payer (-7) carries a committed transfer's id: every
    account's total, every position and the currency's sum are right, only rule 5 sees it."""
    rejected, committed, payer = made.rejected, made.committed[0], made.account(made.payer)
    tamper(copy, ("UPDATE position_change SET transfer_id = ? WHERE transfer_id = ? AND change < 0",
                  (committed.id, rejected.id)))
    lines = problems(run_cli, copy)
    assert sorted(lines) == sorted([
        f"transfer {committed.id} (COMMITTED, 10 USD) moved {made.payer} USD POSITION (account {payer}), "
        "its PAYER_DFSP, by 3; expected 10",
        f"transfer {rejected.id} (ABORTED_ERROR, 7 USD) moved {made.payer} USD POSITION (account {payer}), "
        "its PAYER_DFSP, by 7; expected 0",
    ]), lines


def test_a_transfer_in_a_state_miniloop_does_not_know(made: Made, copy: Path, run_cli: Run) -> None:
    tamper(copy, ("UPDATE transfer SET state = 'LIMBO' WHERE id = ?", (made.expired.id,)))
    assert one_problem(run_cli, copy) == f"transfer {made.expired.id} is in state 'LIMBO', which miniloop does not know"


# ------------------------------------------------------------------------------- the stopped hub's own file
# Last in this module: it stops the module's hub.


def test_the_stopped_hub_passes_then_fails_once_tampered(made: Made, run_cli: Run) -> None:
    hub = made.scene.hub
    assert hub.stop() == 0
    result = run_cli("ledger", "check", "--data-dir", str(hub.data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    assert OK_LINE.match(result.stdout.strip()), result.stdout
    tamper(hub.data_dir, ("UPDATE transfer SET state = 'RESERVED', expires_at = '2020-01-01T00:00:00.000Z' "
                          "WHERE id = ?", (made.funds_out_id,)))  # already RESERVED: only the expiry changes
    assert run_cli("ledger", "check", "--data-dir", str(hub.data_dir)).returncode == 0, \
        "a funds-out waits for the operator: it has no expiry to be stuck past"
    tamper(hub.data_dir, ("UPDATE transfer SET settlement_window_id = NULL WHERE id = ?", (made.committed[2].id,)))
    assert made.committed[2].id in one_problem(run_cli, hub.data_dir)


# ------------------------------------------------------------------------------- no usable ledger


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("miniloop: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_a_data_dir_without_a_ledger(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for data_dir in (tmp_path / "empty", tmp_path / "absent"):
        line = one_error_line(run_cli("ledger", "check", "--data-dir", str(data_dir)))
        assert str(data_dir) in line and "no ledger" in line


@pytest.mark.parametrize(("content", "hint"), [
    (b"", "empty database"),
    (b"this is not SQLite, it is a text file of some length " * 100, "is it a miniloop ledger"),
])
def test_a_file_that_is_not_a_ledger(run_cli: Run, tmp_path: Path, content: bytes, hint: str) -> None:
    (tmp_path / DB_FILE).write_bytes(content)
    line = one_error_line(run_cli("ledger", "check", "--data-dir", str(tmp_path)))
    assert hint in line, line


def test_a_ledger_of_an_older_schema(run_cli: Run, tmp_path: Path) -> None:
    conn = connect(tmp_path / DB_FILE)
    migrate(conn, upto=2)
    conn.close()
    line = one_error_line(run_cli("ledger", "check", "--data-dir", str(tmp_path)))
    assert "schema 2" in line and "start a hub on it" in line, line


def test_help(run_cli: Run) -> None:
    result = run_cli("ledger", "check", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: miniloop ledger check")
    for flag in ("--data-dir", "--config", "--grace"):
        assert flag in result.stdout
    assert run_cli("ledger").returncode == 2  # the action is required


@pytest.mark.parametrize("grace", ["-1", "nan", "inf"])
def test_a_bad_grace(run_cli: Run, tmp_path: Path, grace: str) -> None:
    line = one_error_line(run_cli("ledger", "check", "--data-dir", str(tmp_path), "--grace", grace))
    assert "--grace" in line


# ------------------------------------------------------------------------------- unit tests, no hub


def test_the_check_knows_every_state_the_switch_uses() -> None:
    assert set(check.KNOWN_STATES) == set(API_STATE)
    assert {s for s in API_STATE if API_STATE[s] == "RESERVED"} == set(check.RESERVING_STATES)


def fresh_ledger(path: Path) -> sqlite3.Connection:
    conn = connect(path / DB_FILE)
    migrate(conn)
    return conn


def test_an_empty_hub_passes(tmp_path: Path) -> None:
    fresh_ledger(tmp_path).close()
    report = check_ledger(tmp_path / DB_FILE)
    assert report.ok and report.found == 0
    assert report.summary == "0 currencies, 0 accounts, 0 transfers, 0 messages waiting"


def test_many_problems_of_one_kind_are_counted_not_all_listed(tmp_path: Path) -> None:
    conn = fresh_ledger(tmp_path)
    conn.executemany(
        "INSERT INTO transfer (id, kind, amount, currency, state, created_date, completed_date) "
        "VALUES (?, 'FSPIOP', 10000, 'USD', 'COMMITTED', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        [(f"00000000-0000-4000-8000-{i:012d}",) for i in range(25)],
    )
    conn.close()
    report = check_ledger(tmp_path / DB_FILE)
    assert not report.ok
    assert report.found == 25
    assert len(report.problems) == check.LISTED_PER_RULE + 1
    assert report.problems[-1] == "... and 5 more committed transfers without a settlement window"


def test_check_ledger_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MiniloopError, match="no ledger"):
        check_ledger(tmp_path / DB_FILE)
