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
from miniloop.services import settlements
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


# ------------------------------------------------------------------------------- settlement (rules 5 to 8)

SETTLEMENT_STEPS = ("PS_TRANSFERS_RECORDED", "PS_TRANSFERS_RESERVED", "PS_TRANSFERS_COMMITTED", "SETTLED")
EXACT_QUERIES = ("_name_transfers_that_moved_wrong", "_name_window_differences")  # of rules 5 and 6


@dataclass
class Settled:
    """The settlement module hub and what was done on it. Window `first` (alpha->bravo 100,
    bravo->charlie 30, charlie->alpha 50: nets alpha +50, bravo -70, charlie +20) was settled to
    the end (`settled`); window `second` (alpha->bravo 10, bravo->charlie 40: nets alpha +10,
    bravo +30, charlie -40) was settled, reserved and aborted (`aborted`), then settled again and
    left at PS_TRANSFERS_RESERVED (`reserved`). `reports`: the check after every step, and which
    of the slow exact queries it ran (it runs them only when its fast sums differ)."""

    scene: Scene
    alpha: str
    bravo: str
    charlie: str
    first: int
    second: int
    first_transfers: list[Transfer]
    settled: int
    aborted: int
    reserved: int
    reports: list[tuple[str, check.Report, list[str]]]

    @property
    def data_dir(self) -> Path:
        return self.scene.hub.data_dir

    def account(self, name: str, account_type: str = "POSITION") -> int:
        return self.scene.account_id(name, account_type)

    def hub_account(self, account_type: str) -> int:
        return self.scene.hub.account_ids("Hub")[account_type]


def settlement_api(scene: Scene, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    r = scene.hub.settlement.request(method, path, json=body)
    assert r.status_code == 200, r.text
    return r.json()


def close_open_window(scene: Scene) -> int:
    """Close the open window; return its id."""
    (window,) = settlement_api(scene, "GET", "settlementWindows?state=OPEN")
    settlement_api(scene, "POST", f"settlementWindows/{window['id']}", {"state": "CLOSED", "reason": "x"})
    return window["id"]


def move_accounts(scene: Scene, settlement: dict[str, Any], state: str) -> None:
    """Every account of `settlement` (the POST /settlements answer) to `state`, in one PUT."""
    answer = settlement_api(scene, "PUT", f"settlements/{settlement['id']}", {"participants": [
        {"id": p["id"], "accounts": [{"id": a["id"], "state": state, "reason": "r"} for a in p["accounts"]]}
        for p in settlement["participants"]]})
    assert answer["state"] == state, answer
    assert all("errorInformation" not in a for p in answer["participants"] for a in p["accounts"]), answer


@pytest.fixture(scope="module")
def settled(module_hubs: HubLauncher, test_dfsps: TestDfsps) -> Any:
    hub = module_hubs.start(empty=True)
    hub.setup_currency()
    scene = Scene(hub, test_dfsps)
    reports: list[tuple[str, check.Report, list[str]]] = []

    def checked(step: str) -> None:
        exact: list[str] = []
        with pytest.MonkeyPatch.context() as patch:
            for name in EXACT_QUERIES:
                original = getattr(check._Check, name)
                patch.setattr(check._Check, name, lambda self, *args, name=name, original=original: (
                    exact.append(name), original(self, *args))[1])
            reports.append((step, check_ledger(hub.data_dir / DB_FILE, grace_s=3600), exact))

    def settle(window: int) -> dict[str, Any]:
        settlement = settlement_api(scene, "POST", "settlements", {
            "settlementModel": "DEFERREDNET", "reason": "x", "settlementWindows": [{"id": window}]})
        checked(f"settlement {settlement['id']} PENDING_SETTLEMENT")
        return settlement

    alpha, bravo, charlie = scene.dfsp("alpha"), scene.dfsp("bravo"), scene.dfsp("charlie")
    first_transfers = [Transfer(alpha, bravo, "100"), Transfer(bravo, charlie, "30"), Transfer(charlie, alpha, "50")]
    for transfer in first_transfers:
        scene.commit(transfer)
    first = close_open_window(scene)
    checked(f"window {first} CLOSED")
    settlement = settle(first)
    for state in SETTLEMENT_STEPS:
        move_accounts(scene, settlement, state)
        checked(f"settlement {settlement['id']} {state}")
    assert [scene.position(n) for n in (alpha, bravo, charlie)] == [0, 0, 0]
    settled_id = settlement["id"]

    for transfer in (Transfer(alpha, bravo, "10"), Transfer(bravo, charlie, "40")):
        scene.commit(transfer)
    second = close_open_window(scene)
    checked(f"window {second} CLOSED")
    settlement = settle(second)
    for state in SETTLEMENT_STEPS[:2]:
        move_accounts(scene, settlement, state)
        checked(f"settlement {settlement['id']} {state}")
    assert scene.position(charlie) == 0  # the net recipient's position went up at reserve
    assert settlement_api(scene, "PUT", f"settlements/{settlement['id']}",
                          {"state": "ABORTED", "reason": "bank said no"})["state"] == "ABORTED"
    checked(f"settlement {settlement['id']} ABORTED")
    assert [scene.position(n) for n in (alpha, bravo, charlie)] == [10, 30, -40]
    aborted_id = settlement["id"]

    settlement = settle(second)
    for state in SETTLEMENT_STEPS[:2]:
        move_accounts(scene, settlement, state)
        checked(f"settlement {settlement['id']} {state}")
    yield Settled(scene, alpha, bravo, charlie, first, second, first_transfers, settled_id, aborted_id,
                  settlement["id"], reports)
    scene.close()


@pytest.fixture
def settled_copy(settled: Settled, tmp_path: Path) -> Path:
    return copy_ledger(settled.data_dir, tmp_path / "copy")


def read(data_dir: Path, sql: str, *params: Any) -> Any:
    """The one value `sql` selects from the ledger in `data_dir`."""
    conn = sqlite3.connect(data_dir / DB_FILE)
    try:
        (value,) = conn.execute(sql, params).fetchone()
        return value
    finally:
        conn.close()


def settlement_transfer(data_dir: Path, settlement_id: int, account_id: int) -> str:
    return read(data_dir, "SELECT settlement_transfer_id FROM settlement_account WHERE settlement_id = ? "
                "AND account_id = ?", settlement_id, account_id)


def test_every_settlement_step_passes(settled: Settled, run_cli: Run) -> None:
    """After closing a window, creating a settlement, each of its four steps, an abort at
    PS_TRANSFERS_RESERVED (undoing the net recipient's movement) and a second settlement of the
    same window, reserved: the ledger is consistent at every step, and the fast sums of rules 5
    and 6 said so without the exact queries."""
    steps = [step for step, _, _ in settled.reports]
    assert len(steps) == 14 and steps[-1] == f"settlement {settled.reserved} PS_TRANSFERS_RESERVED", steps
    assert [(step, report.problems, exact) for step, report, exact in settled.reports if not report.ok or exact] == []
    result = run_cli("ledger", "check", "--data-dir", str(settled.data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    # 5 payments, 3 funds-in, 3 settlement transfers per settlement; in flight: the last three, RESERVED
    assert re.fullmatch(r"ledger check: OK — 1 currency, 8 accounts, 17 transfers \(3 in flight\), "
                        r"\d+ messages? waiting\n", result.stdout), result.stdout


def test_a_reserved_settlement_transfer_that_moved_the_wrong_hub_account(settled: Settled, settled_copy: Path,
                                                                         run_cli: Run) -> None:
    """The net recipient's settlement transfer is RESERVED: it moved charlie's POSITION up by 40
    and the Hub's multilateral settlement account down by 40. The Hub's side went to the Hub's
    reconciliation account instead, positions in step: only rule 5 sees it."""
    tid = settlement_transfer(settled_copy, settled.reserved, settled.account(settled.charlie))
    multilateral = settled.hub_account("HUB_MULTILATERAL_SETTLEMENT")
    reconciliation = settled.hub_account("HUB_RECONCILIATION")
    tamper(settled_copy,
           ("UPDATE position_change SET account_id = ? WHERE transfer_id = ? AND account_id = ?",
            (reconciliation, tid, multilateral)),
           ("UPDATE position SET value = value + 400000 WHERE account_id = ?", (multilateral,)),
           ("UPDATE position SET value = value - 400000 WHERE account_id = ?", (reconciliation,)))
    lines = problems(run_cli, settled_copy)
    assert sorted(lines) == sorted([
        f"transfer {tid} (RESERVED, 40 USD) moved Hub USD HUB_MULTILATERAL_SETTLEMENT (account {multilateral}), "
        "its HUB, by 0; expected -40",
        f"transfer {tid} (RESERVED, 40 USD) moved Hub USD HUB_RECONCILIATION (account {reconciliation}), "
        "an account it does not involve, by -40; expected 0",
    ]), lines


def test_a_net_senders_settlement_transfer_that_moved_at_reserve(settled: Settled, settled_copy: Path,
                                                                 run_cli: Run) -> None:
    """A net sender's settlement transfer moves nothing until it commits: one that moved both
    sides while RESERVED (money conserved, positions matching their changes) is named."""
    bravo = settled.account(settled.bravo)
    multilateral = settled.hub_account("HUB_MULTILATERAL_SETTLEMENT")
    tid = settlement_transfer(settled_copy, settled.reserved, bravo)
    tamper(settled_copy,
           ("INSERT INTO position_change (account_id, transfer_id, change, value, created_date) "
            "VALUES (?, ?, -300000, 0, '2026-01-01T00:00:00.000Z')", (bravo, tid)),
           ("INSERT INTO position_change (account_id, transfer_id, change, value, created_date) "
            "VALUES (?, ?, 300000, 0, '2026-01-01T00:00:00.000Z')", (multilateral, tid)),
           ("UPDATE position SET value = value - 300000 WHERE account_id = ?", (bravo,)),
           ("UPDATE position SET value = value + 300000 WHERE account_id = ?", (multilateral,)))
    lines = problems(run_cli, settled_copy)
    assert sorted(lines) == sorted([
        f"transfer {tid} (RESERVED, 30 USD) moved {settled.bravo} USD POSITION (account {bravo}), its DFSP_POSITION, "
        "by -30; expected 0",
        f"transfer {tid} (RESERVED, 30 USD) moved Hub USD HUB_MULTILATERAL_SETTLEMENT (account {multilateral}), "
        "its HUB, by 30; expected 0",
    ]), lines


def test_a_transfer_taken_out_of_its_closed_window(settled: Settled, settled_copy: Path, run_cli: Run) -> None:
    """alpha->bravo 100 of the first window now says it belongs to the open one: the first
    window's aggregation no longer matches its transfers (rule 6), and nothing else is wrong."""
    transfer = settled.first_transfers[0]
    (window,) = settlement_api(settled.scene, "GET", "settlementWindows?state=OPEN")
    content = read(settled_copy, "SELECT id FROM settlement_window_content WHERE settlement_window_id = ?",
                   settled.first)
    tamper(settled_copy, ("UPDATE transfer SET settlement_window_id = ? WHERE id = ?", (window["id"], transfer.id)))
    lines = problems(run_cli, settled_copy)
    alpha, bravo = settled.account(settled.alpha), settled.account(settled.bravo)
    assert lines == [
        f"settlement window {settled.first}'s POSITION USD aggregation (content {content}) has 50 for "
        f"{settled.alpha} USD POSITION (account {alpha}), but the window's transfers moved it by -50",
        f"settlement window {settled.first}'s POSITION USD aggregation (content {content}) has -70 for "
        f"{settled.bravo} USD POSITION (account {bravo}), but the window's transfers moved it by 30",
    ], lines


def test_an_aggregation_row_of_an_account_of_another_type(settled: Settled, settled_copy: Path, run_cli: Run) -> None:
    """A window's POSITION content that aggregates a SETTLEMENT account: named as such. (Its
    settlement no longer balances with its aggregation either.)"""
    content = read(settled_copy, "SELECT id FROM settlement_window_content WHERE settlement_window_id = ?",
                   settled.first)
    position, liquidity = settled.account(settled.charlie), settled.account(settled.charlie, "SETTLEMENT")
    tamper(settled_copy, ("UPDATE settlement_content_aggregation SET account_id = ? WHERE account_id = ? "
                          "AND settlement_window_content_id = ? AND role = 'PAYER_DFSP'", (liquidity, position, content)))
    lines = problems(run_cli, settled_copy)
    assert lines == [
        f"settlement window {settled.first}'s POSITION USD aggregation (content {content}) has -30 for "
        f"{settled.charlie} USD POSITION (account {position}), but the window's transfers moved it by 20",
        f"settlement window {settled.first}'s POSITION USD aggregation (content {content}) has 50 for "
        f"{settled.charlie} USD SETTLEMENT (account {liquidity}), but the window's transfers moved it by 0 "
        "(it is not a POSITION USD account)",
        f"settlement {settled.settled} (SETTLED) nets {settled.charlie} USD POSITION (account {position}) at 20, "
        "but its aggregation rows sum to -30",
        f"settlement {settled.settled} (SETTLED) has no account for {settled.charlie} USD SETTLEMENT "
        f"(account {liquidity}), whose aggregation rows in it sum to 50",
    ], lines


def test_a_settlement_net_amount_changed(settled: Settled, settled_copy: Path, run_cli: Run) -> None:
    """alpha's net in the settled settlement says 60, not 50: the nets no longer sum to zero, no
    longer match the aggregation, and the settlement transfer (which moved 50) no longer matches."""
    alpha = settled.account(settled.alpha)
    tid = settlement_transfer(settled_copy, settled.settled, alpha)
    tamper(settled_copy, ("UPDATE settlement_account SET net_amount = 600000 WHERE settlement_id = ? "
                          "AND account_id = ?", (settled.settled, alpha)))
    lines = problems(run_cli, settled_copy)
    assert lines == [
        f"settlement {settled.settled} (SETTLED): the net amounts of its 3 USD accounts sum to 10, not 0",
        f"settlement {settled.settled} (SETTLED) nets {settled.alpha} USD POSITION (account {alpha}) at 60, "
        "but its aggregation rows sum to 50",
        f"settlement {settled.settled}: {settled.alpha} USD POSITION (account {alpha}) is SETTLED (net 60) but its "
        f"settlement transfer {tid} (SETTLEMENT) moves {settled.alpha} USD POSITION (account {alpha}) by -50; "
        "expected a SETTLEMENT transfer moving it by -60",
    ], lines


def test_aggregation_rows_that_left_their_settlement(settled: Settled, settled_copy: Path, run_cli: Run) -> None:
    bravo = settled.account(settled.bravo)
    conn = sqlite3.connect(settled_copy / DB_FILE)
    assert conn.execute("UPDATE settlement_content_aggregation SET settlement_id = NULL WHERE settlement_id = ? "
                        "AND account_id = ?", (settled.reserved, bravo)).rowcount == 2
    conn.commit()
    conn.close()
    assert one_problem(run_cli, settled_copy) == (
        f"settlement {settled.reserved} (PS_TRANSFERS_RESERVED) nets {settled.bravo} USD POSITION (account {bravo}) "
        "at 30, but its aggregation rows sum to 0")


def test_the_aborted_settlement_is_not_matched_with_the_aggregation_it_gave_up(settled: Settled) -> None:
    """Its window's aggregation rows now belong to the later settlement; its nets still balance."""
    rows = read(settled.data_dir, "SELECT COUNT(*) FROM settlement_content_aggregation WHERE settlement_id = ?",
                settled.aborted)
    assert rows == 0
    assert read(settled.data_dir, "SELECT SUM(net_amount) FROM settlement_account WHERE settlement_id = ?",
                settled.aborted) == 0


def test_a_settlement_account_ahead_of_its_transfer(settled: Settled, settled_copy: Path, run_cli: Run) -> None:
    """A settlement account says PS_TRANSFERS_COMMITTED but its transfer is still RESERVED."""
    alpha = settled.account(settled.alpha)
    tid = settlement_transfer(settled_copy, settled.reserved, alpha)
    tamper(settled_copy, ("UPDATE settlement_account SET state = 'PS_TRANSFERS_COMMITTED' WHERE settlement_id = ? "
                          "AND account_id = ?", (settled.reserved, alpha)))
    assert one_problem(run_cli, settled_copy) == (
        f"settlement {settled.reserved}: {settled.alpha} USD POSITION (account {alpha}) is PS_TRANSFERS_COMMITTED "
        f"but its settlement transfer {tid} is RESERVED; expected COMMITTED")


def test_settlement_transfers_swapped_or_missing(settled: Settled, settled_copy: Path, run_cli: Run) -> None:
    alpha, bravo = settled.account(settled.alpha), settled.account(settled.bravo)
    of_alpha = settlement_transfer(settled_copy, settled.settled, alpha)
    of_bravo = settlement_transfer(settled_copy, settled.settled, bravo)
    tamper(settled_copy,
           ("UPDATE settlement_account SET settlement_transfer_id = ? WHERE settlement_id = ? AND account_id = ?",
            (of_bravo, settled.settled, alpha)),
           ("UPDATE settlement_account SET settlement_transfer_id = ? WHERE settlement_id = ? AND account_id = ?",
            (of_alpha, settled.settled, bravo)),
           ("UPDATE settlement_account SET settlement_transfer_id = 'gone' WHERE settlement_id = ? AND account_id = ?",
            (settled.reserved, alpha)))
    assert problems(run_cli, settled_copy) == [
        f"settlement {settled.settled}: {settled.alpha} USD POSITION (account {alpha}) is SETTLED (net 50) but its "
        f"settlement transfer {of_bravo} (SETTLEMENT) moves {settled.bravo} USD POSITION (account {bravo}) by 70; "
        "expected a SETTLEMENT transfer moving it by -50",
        f"settlement {settled.settled}: {settled.bravo} USD POSITION (account {bravo}) is SETTLED (net -70) but its "
        f"settlement transfer {of_alpha} (SETTLEMENT) moves {settled.alpha} USD POSITION (account {alpha}) by -50; "
        "expected a SETTLEMENT transfer moving it by 70",
        f"settlement {settled.reserved}: {settled.alpha} USD POSITION (account {alpha}) is PS_TRANSFERS_RESERVED and "
        "names settlement transfer gone, which is not in the ledger",
    ]


def test_an_immediately_gross_settled_transfer_passes(hubs: HubLauncher, test_dfsps: TestDfsps, run_cli: Run) -> None:
    """USD settled IMMEDIATE/GROSS/BILATERAL: a committed transfer is SETTLED at once, with four
    more rows (each side's POSITION back, its SETTLEMENT account moved). All moved: the check
    passes; a lost one of them is named."""
    hub = hubs.start(empty=True)
    for account_type in ("HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"):
        r = hub.admin.post("/participants/Hub/accounts", json={"currency": "USD", "type": account_type})
        assert r.status_code == 201, r.text
    r = hub.admin.post("/settlementModels", json={
        "name": "GROSS", "settlementGranularity": "GROSS", "settlementInterchange": "BILATERAL",
        "settlementDelay": "IMMEDIATE", "currency": "USD", "requireLiquidityCheck": True,
        "ledgerAccountType": "POSITION", "settlementAccountType": "SETTLEMENT", "autoPositionReset": True})
    assert r.status_code == 201, r.text
    scene = Scene(hub, test_dfsps)
    try:
        payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
        transfer = Transfer(payer, payee, "25")
        scene.commit(transfer)
        assert scene.position(payer) == 0 and scene.position(payee) == 0
        liquidity = scene.account_id(payer, "SETTLEMENT")
        close_open_window(scene)  # it has no content: nothing is settled later
        report = check_ledger(hub.data_dir / DB_FILE)
        assert report.ok, report.problems
        copy = copy_ledger(hub.data_dir, hub.data_dir.parent / "copy")
    finally:
        scene.close()
    assert read(copy, "SELECT state FROM transfer WHERE id = ?", transfer.id) == "SETTLED"
    assert read(copy, "SELECT COUNT(*) FROM transfer_participant WHERE transfer_id = ?", transfer.id) == 6
    tamper(copy, ("DELETE FROM position_change WHERE transfer_id = ? AND account_id = ?", (transfer.id, liquidity)),
           ("UPDATE position SET value = value - 250000 WHERE account_id = ?", (liquidity,)))
    lines = problems(run_cli, copy)
    assert len(lines) == 2 and lines[0].endswith("off by -25"), lines
    assert lines[1] == (f"transfer {transfer.id} (SETTLED, 25 USD) moved {payer} USD SETTLEMENT (account {liquidity}), "
                        "its DFSP_SETTLEMENT, by 0; expected 25"), lines


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


def test_a_ledger_from_before_settlement_is_checked_by_rules_1_to_5(tmp_path: Path) -> None:
    """Schema 4 has no settlement tables: rules 6 to 8 are skipped, the others still run."""
    conn = connect(tmp_path / DB_FILE)
    migrate(conn, upto=4)
    transfer_id = str(uuid.uuid4())
    conn.execute("INSERT INTO transfer (id, kind, amount, currency, state, created_date, completed_date) VALUES "
                 "(?, 'FSPIOP', 10000, 'USD', 'COMMITTED', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
                 (transfer_id,))
    conn.commit()
    conn.close()
    report = check_ledger(tmp_path / DB_FILE)
    assert report.problems == [f"transfer {transfer_id} (1 USD) is COMMITTED since 2026-01-01T00:00:00.000Z but "
                               "belongs to no settlement window"]


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
    assert set(check.SETTLEMENT_TRANSFER_STATE) == {*settlements.STEPS, "ABORTED"}
    assert set(check.SETTLEMENT_TRANSFER_STATE.values()) - {None} <= set(API_STATE)


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
