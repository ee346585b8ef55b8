"""`miniloop ledger check`: a read-only consistency check of a hub's ledger.

Run it after every benchmark run (and, later, after settlement steps): a switch that loses or
invents money under load is worse than a slow one, and every rule below is something a bug in
the writer commands (miniloop.services.transfers, miniloop.services.participants) would break
without any API call failing. The check opens the SQLite file read-only (`mode=ro`), reads
everything in one read transaction (one consistent snapshot, so it may run while the hub runs:
WAL readers never block the writer) and never writes.

The rules, and why each matters:

1. Money is conserved. Per currency, the positions of all accounts (every ledger account type:
   POSITION, SETTLEMENT, HUB_RECONCILIATION, HUB_MULTILATERAL_SETTLEMENT, ...) sum to zero, once
   two things that legitimately have no counter-entry are taken out:
   - the reservations of transfers in flight. At prepare the payer's POSITION goes up by the
     amount (miniloop keeps the reservation in `position.value`; `reserved_value` stays 0) and
     the payee's goes down only at commit, so until then the sum is off by the amount. Which
     states hold one, from transfers.py and participants.py:
       RESERVED          yes. An FSPIOP prepare raises the payer's position (one check-and-
                         reserve UPDATE and its position_change row) in the transaction that
                         inserts the transfer as RESERVED. A funds-out in RESERVED has raised
                         the DFSP's SETTLEMENT account; the Hub's side moves only at commit.
       RECEIVED_FULFIL, RECEIVED_REJECT, RECEIVED_ERROR, RESERVED_TIMEOUT
                         yes (the API shows them as RESERVED): steps between a reservation and
                         its outcome. Today they only appear in transfer_state_change: fulfil,
                         reject and the sweeper record the step and the outcome in one command.
                         Should a transfer ever be left in one, it still holds its reservation.
       RECEIVED_PREPARE  no: the payer's position is raised only once every check has passed,
                         as the transfer becomes RESERVED; a refused prepare ends INVALID or
                         ABORTED_REJECTED without touching a position. (Today it also only
                         appears in the history: prepare inserts the transfer in its outcome.)
       COMMITTED, SETTLED, and every aborted or expired state: no.
     A reservation is the transfer's whole amount, on its debit side. Verified against a real
     hub with an FSPIOP transfer and a funds-out both RESERVED (tests/test_ledger_check.py).
   - position changes made without a transfer (`position_change.transfer_id` NULL): an
     initialPosition set through the Admin API (initialPositionAndLimits) moves the DFSP's
     POSITION with no counterparty, as in central-ledger. They are summed and taken out.
   Why: it is double-entry bookkeeping's basic invariant. When it fails, money was created or
   destroyed, and the problem names the currency and the difference.

2. Every account's position equals the sum of its position changes. Every code path that moves
   a position appends the change in the same transaction (`change_position`, and prepare's
   check-and-reserve UPDATE followed by `record_position_change`); the initial position and
   funds in/out go through `change_position` too, and a new account starts at 0 with no change
   row, so nothing legitimately sets a position without a change. A difference means a position
   was written behind the history's back (or history was lost), and the history is what
   settlement and audits are computed from.

3. No FSPIOP transfer is stuck: none is still in a non-final state more than `grace_s` seconds
   (default 10) past its expiry. The hub's sweeper expires due transfers within ~0.2 s while it
   runs, so a stuck one means the sweeper died or skipped it, and its reservation blocks the
   payer's liquidity for good. (A hub that was stopped with transfers in flight expires them
   when it starts again; a check of its stopped ledger reports them.)

4. Every COMMITTED (or SETTLED) FSPIOP transfer belongs to a settlement window
   (`transfer.settlement_window_id`, set by fulfil to the OPEN window). One without a window
   would never be settled: the DFSPs' positions would never be reset for it.

5. Every transfer moved exactly the positions its state says. Its accounts and signed amounts
   are its `transfer_participant` rows (FSPIOP: payer +amount, payee -amount; funds in: Hub
   reconciliation +amount, DFSP settlement -amount; funds out the other way round). The changes
   it made to each account (`position_change` rows with its id) must net to: the full amount
   when COMMITTED/SETTLED (payer +amount, payee -amount); only the debit side (amount > 0) while
   a reservation is held; zero otherwise (an abort or expiry after reservation restored the
   payer; a refusal never moved anything). Changes to accounts a transfer does not name, or
   naming a transfer that does not exist, must net to zero. Rules 1 and 2 can hold while this
   one fails (a payee credited the wrong account, a restore applied to the wrong transfer),
   and only this rule names the transfer.

Also reported, not a failure: the number of messages still waiting in the outbox.

Speed: this must stay fast on a ledger of millions of transfers, and SQLite has no hash
aggregation: comparing every transfer's changes with what it should have moved, a GROUP BY over
position_change by transfer and account, takes ~10 s for 1M transfers. So every rule is first
checked with aggregates that scan each big table once (or walk an index), and the slow queries
that name the culprits run only when an aggregate says something is wrong (rule 5's takes 10 to
15 s for 1M transfers). Rules 2 and 5 compare weighted sums, computed modulo primes near 2**31
so that no sum can overflow 64 bits:
- by account (two primes): every amount times a pseudo-random weight of its account. Rule 2:
  the positions against all their changes. Rule 5: the changes made by transfers against their
  transfer_participant rows, summed as if every transfer were committed (one scan), corrected
  for the few transfers in other states (found through the transfer_state index).
- by transfer (one prime): every change times a weight derived from a cheap hash of its
  transfer id (first character, first 'a', 'b' and 'c'); the sum must equal the reservations
  held, since a transfer's changes net to zero over its accounts unless it holds one. This
  catches a change recorded against the wrong transfer, which leaves every account's total
  intact.
Two sets of numbers that differ give equal weighted sums only if the differences cancel out
modulo the primes (no accident does that) or, for the by-transfer sum, if a change moved between
two transfers whose ids share the hash: about 1 chance in 20,000 for one such change between
random UUIDs, while a bug that does it repeatedly is caught at once. A ledger of 1M transfers
(2M position changes, 2M transfer_participant rows) takes about 2 s: 1.8 to 2.3 s measured on a
busy 2-core machine.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from miniloop.errors import MiniloopError
from miniloop.ledger.schema import SCHEMA_VERSION
from miniloop.money import format_amount

NEEDED_SCHEMA = 4  # transfer_fspiop and outbox arrived in migration 4
LISTED_PER_RULE = 20  # problems named per rule; the rest are counted

COMMITTED_STATES = ("COMMITTED", "SETTLED")
RESERVING_STATES = ("RESERVED", "RECEIVED_FULFIL", "RECEIVED_REJECT", "RECEIVED_ERROR", "RESERVED_TIMEOUT")
NON_FINAL_STATES = ("RECEIVED_PREPARE", *RESERVING_STATES)
ENDED_STATES = ("ABORTED_REJECTED", "ABORTED_ERROR", "EXPIRED_PREPARED", "EXPIRED_RESERVED", "INVALID", "FAILED")
KNOWN_STATES = (*NON_FINAL_STATES, *COMMITTED_STATES, *ENDED_STATES)  # = transfers.API_STATE's keys
NOT_COMMITTED_STATES = (*NON_FINAL_STATES, *ENDED_STATES)

# (modulus, multiplier): an account's weight is 1 + account_id * multiplier % (modulus - 1),
# never 0 modulo the (prime) modulus
CHECKSUMS = ((2_147_483_647, 1_103_515_247), (2_147_483_629, 1_597_334_677))  # multipliers coprime to m - 1
# the same for a transfer, from a hash of its id: the code of its first character and where 'a',
# 'b' and 'c' first occur in it. Two random UUIDs share it once in about 20,000 pairs; each
# further instr() would make that ~10 times rarer but costs ~0.06 s per million changes.
TRANSFER_CHECKSUM = (2_147_483_647, 1_597_334_677)


@dataclass
class Report:
    """What the check found. `problems` names at most LISTED_PER_RULE problems per rule, plus
    one line per rule saying how many more there are; `found` counts them all."""

    problems: list[str]
    summary: str
    found: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def check_ledger(db_path: Path, *, grace_s: float = 10.0) -> Report:
    """Check the ledger file `db_path` (read-only). A file that is not a usable miniloop ledger
    raises MiniloopError."""
    conn = _open(db_path)
    try:
        conn.execute("BEGIN")  # one snapshot for every query below
        return _Check(conn, datetime.now(UTC) - timedelta(seconds=grace_s)).run()
    except sqlite3.DatabaseError as exc:
        raise MiniloopError(f"cannot read the ledger {db_path}: {exc}") from None
    finally:
        conn.close()


def _open(db_path: Path) -> sqlite3.Connection:
    if not db_path.is_file():
        raise MiniloopError(f"there is no ledger at {db_path}")
    try:
        conn = sqlite3.connect(db_path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None, timeout=10)
    except sqlite3.Error as exc:
        raise MiniloopError(f"cannot open the ledger {db_path}: {exc}") from None
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: the correction joins reuse index pages
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and not conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchone():
            raise MiniloopError(f"{db_path} is an empty database, not a miniloop ledger")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise MiniloopError(f"cannot read the ledger {db_path}: {exc} (is it a miniloop ledger?)") from None
    except MiniloopError:
        conn.close()
        raise
    if version > SCHEMA_VERSION:
        conn.close()
        raise MiniloopError(f"the ledger {db_path} was written by a newer miniloop (schema {version}, this one "
                            f"knows {SCHEMA_VERSION}): upgrade miniloop to check it")
    if version < NEEDED_SCHEMA:
        conn.close()
        raise MiniloopError(f"the ledger {db_path} has schema {version} (an older miniloop, or not a miniloop "
                            f"ledger); start a hub on it once to bring it up to date")
    return conn


@dataclass
class _Account:
    id: int
    participant: str
    currency: str
    type: str
    value: int | None  # None: no position row

    def __str__(self) -> str:
        return f"{self.participant} {self.currency} {self.type} (account {self.id})"


def _weighted(amounts: Iterable[tuple[int, int]], modulus: int, multiplier: int) -> int:
    """sum(amount * weight(account)) mod `modulus`, for (account_id, amount) pairs; exact in Python."""
    return sum(amount * _weight(account_id, modulus, multiplier) for account_id, amount in amounts) % modulus


def _weight(account_id: int, modulus: int, multiplier: int) -> int:
    return 1 + account_id * multiplier % (modulus - 1)


def _transfer_weighted_sql(amount: str, transfer_id: str) -> str:
    """SQL for the sum of `amount` weighted by a hash of `transfer_id` (NULL ids count nothing)."""
    m, k = TRANSFER_CHECKSUM
    digest = (f"(unicode({transfer_id}) + 128 * (instr({transfer_id}, 'a') + 37 * (instr({transfer_id}, 'b') "
              f"+ 37 * instr({transfer_id}, 'c'))))")
    return f"COALESCE(SUM((({amount} % {m}) * (1 + {digest} * {k} % {m - 1})) % {m}), 0)"


def _weighted_sql(column: str) -> str:
    """SQL for the weighted sums of `column` (a signed amount) by `account_id`, one per checksum.
    Each term stays below 2**62, so SUM over billions of rows cannot overflow; `%` keeps the sign
    of its left side in SQLite, which is still the right residue modulo the prime."""
    return ", ".join(
        f"COALESCE(SUM((({column} % {m}) * (1 + account_id * {k} % {m - 1})) % {m}), 0)" for m, k in CHECKSUMS
    )


def _marks(values: Iterable[str]) -> str:
    """For `column IN (...)` where SQLite searches an index; constants of this module only."""
    return ", ".join(f"'{v}'" for v in values)


def _one_of(column: str, values: Iterable[str]) -> str:
    """`column IN (...)` for an expression evaluated on every row: SQLite runs an OR chain of
    constants about ten times faster than an IN list there."""
    return "(" + " OR ".join(f"{column} = '{v}'" for v in values) + ")"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:,.0f} {unit}"
    return f"{seconds:.1f} s"


class _Check:
    def __init__(self, conn: sqlite3.Connection, cutoff: datetime) -> None:
        self.conn = conn
        self.cutoff = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self.problems: list[str] = []
        self.found = 0
        self.accounts: dict[int, _Account] = {}

    def run(self) -> Report:
        self.accounts = {
            r[0]: _Account(*r) for r in self.conn.execute(
                "SELECT a.id, p.name, a.currency, t.name, pos.value FROM account a "
                "JOIN participant p ON p.id = a.participant_id "
                "JOIN ledger_account_type t ON t.id = a.ledger_account_type_id "
                "LEFT JOIN position pos ON pos.account_id = a.id ORDER BY a.id")
        }
        states = dict(self.conn.execute("SELECT state, COUNT(*) FROM transfer GROUP BY state").fetchall())
        # changes made without a transfer (initial positions), per account; few, through the index
        untied = self.conn.execute(
            "SELECT account_id, SUM(change) FROM position_change WHERE transfer_id IS NULL GROUP BY account_id"
        ).fetchall()

        # the one sequential scan of position_change, for rules 2 and 5 (see the module docstring)
        changes = self.conn.execute(
            f"SELECT {_weighted_sql('change')}, {_transfer_weighted_sql('change', 'transfer_id')} "
            "FROM position_change").fetchone()

        self._unknown_states(states)
        self._conservation(untied)
        self._positions_match_changes(changes)
        self._stuck()
        self._windows()
        self._transfers_moved_what_they_say(changes, untied)

        outbox = self.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        currencies = len({a.currency for a in self.accounts.values()})
        in_flight = sum(n for state, n in states.items() if state in NON_FINAL_STATES)
        summary = (f"{_plural(currencies, 'currency', 'currencies')}, {_plural(len(self.accounts), 'account')}, "
                   f"{_plural(sum(states.values()), 'transfer')}"
                   + (f" ({in_flight:,} in flight)" if in_flight else "")
                   + f", {_plural(outbox, 'message')} waiting")
        return Report(self.problems, summary, self.found)

    def _report(self, total: int, lines: Iterable[str], more: str) -> None:
        """Add up to LISTED_PER_RULE of `lines`, and "... and N more `more`" for the rest."""
        listed = 0
        for line in lines:
            if listed == LISTED_PER_RULE:
                break
            self.problems.append(line)
            listed += 1
        total = max(total, listed)
        if total > listed:
            self.problems.append(f"... and {total - listed:,} more {more}")
        self.found += total

    def _account(self, account_id: int) -> str:
        account = self.accounts.get(account_id)
        return str(account) if account else f"account {account_id} (not in the account table)"

    # ------------------------------------------------------------------ the check's own premise

    def _unknown_states(self, states: dict[str, int]) -> None:
        unknown = sorted(s for s in states if s not in KNOWN_STATES)
        if not unknown:
            return
        rows = self.conn.execute(
            f"SELECT id, state FROM transfer WHERE state IN ({', '.join('?' * len(unknown))}) LIMIT ?",
            (*unknown, LISTED_PER_RULE),
        )
        self._report(sum(states[s] for s in unknown),
                     (f"transfer {tid} is in state {state!r}, which miniloop does not know" for tid, state in rows),
                     "transfers in unknown states")

    # ------------------------------------------------------------------ rule 1

    def _conservation(self, untied: list[tuple[int, int]]) -> None:
        totals: dict[str, int] = defaultdict(int)
        counts: dict[str, int] = defaultdict(int)
        for account in self.accounts.values():
            totals[account.currency] += account.value or 0
            counts[account.currency] += 1
        initial: dict[str, int] = defaultdict(int)
        for account_id, change in untied:
            initial[self.accounts[account_id].currency if account_id in self.accounts else "?"] += change
        reserved = {
            currency: (n, amount) for currency, n, amount in self.conn.execute(
                f"SELECT currency, COUNT(*), SUM(amount) FROM transfer WHERE state IN ({_marks(RESERVING_STATES)}) "
                "GROUP BY currency")
        }
        lines = []
        for currency in sorted(set(totals) | set(reserved) | set(initial)):
            n_flight, held = reserved.get(currency, (0, 0))
            expected = held + initial[currency]
            if totals[currency] == expected:
                continue
            parts = []
            if held:
                parts.append(f"{format_amount(held)} reserved by {_plural(n_flight, 'transfer')} in flight")
            if initial[currency]:
                parts.append(f"{format_amount(initial[currency])} set as initial positions")
            lines.append(
                f"positions in {currency} ({_plural(counts[currency], 'account')}) sum to "
                f"{format_amount(totals[currency])}, expected {format_amount(expected)}"
                + (f" ({'; '.join(parts)})" if parts else "")
                + f": off by {format_amount(totals[currency] - expected)}"
            )
        self._report(len(lines), lines, "currencies out of balance")

    # ------------------------------------------------------------------ rule 2

    def _positions_match_changes(self, changes: tuple[int, ...]) -> None:
        """changes: the weighted sums of position_change (run); by account first, one per checksum."""
        missing = [a for a in self.accounts.values() if a.value is None]
        self._report(len(missing), (f"{a} has no position row" for a in missing), "accounts without a position row")
        positions = [(a.id, a.value or 0) for a in self.accounts.values()]
        if all(s % m == _weighted(positions, m, k) for s, (m, k) in zip(changes, CHECKSUMS)):
            return
        sums = {
            account_id: (n, total) for account_id, n, total in self.conn.execute(
                "SELECT account_id, COUNT(*), SUM(change) FROM position_change GROUP BY account_id")
        }
        lines = []
        for account_id in sorted(set(sums) | {a.id for a in self.accounts.values()}):
            n, total = sums.get(account_id, (0, 0))
            account = self.accounts.get(account_id)
            value = account.value if account and account.value is not None else 0
            if value != total:
                lines.append(f"position of {self._account(account_id)} is {format_amount(value)} but its "
                             + (f"{n:,} changes sum to " if n != 1 else "1 change is ") + format_amount(total))
        self._report(len(lines), lines, "positions that differ from their changes")

    # ------------------------------------------------------------------ rule 3

    def _stuck(self) -> None:
        where = (f"t.state IN ({_marks(NON_FINAL_STATES)}) AND t.kind = 'FSPIOP' "
                 "AND (t.expires_at < ? OR t.expires_at IS NULL)")
        total = self.conn.execute(f"SELECT COUNT(*) FROM transfer t WHERE {where}", (self.cutoff,)).fetchone()[0]
        if not total:
            return
        rows = self.conn.execute(
            "SELECT t.id, t.state, t.amount, t.currency, t.expires_at, f.payer_fsp, f.payee_fsp FROM transfer t "
            f"LEFT JOIN transfer_fspiop f ON f.transfer_id = t.id WHERE {where} ORDER BY t.expires_at LIMIT ?",
            (self.cutoff, LISTED_PER_RULE),
        ).fetchall()
        now = datetime.now(UTC)

        def line(tid: str, state: str, amount: int, currency: str, expires_at: str | None,
                 payer: str | None, payee: str | None) -> str:
            what = f"transfer {tid} ({payer} -> {payee}, {format_amount(amount)} {currency}) is still {state}"
            if expires_at is None:
                return what + " and has no expiry"
            try:
                late = (now - datetime.fromisoformat(expires_at.replace("Z", "+00:00"))).total_seconds()
            except ValueError:
                return what + f" and its expiry {expires_at!r} is not a time"
            return what + f" {_duration(late)} after it expired at {expires_at}"

        self._report(total, (line(*r) for r in rows), "transfers stuck past their expiry")

    # ------------------------------------------------------------------ rule 4

    def _windows(self) -> None:
        # through the transfer_state index: committed transfers' rows are read in rowid order
        where = (f"state IN ({_marks(COMMITTED_STATES)}) AND settlement_window_id IS NULL AND kind = 'FSPIOP'")
        total = self.conn.execute(f"SELECT COUNT(*) FROM transfer WHERE {where}").fetchone()[0]
        if not total:
            return
        rows = self.conn.execute(
            f"SELECT id, state, amount, currency, completed_date FROM transfer WHERE {where} LIMIT ?",
            (LISTED_PER_RULE,))
        self._report(total, (f"transfer {tid} ({format_amount(amount)} {currency}) is {state} since {done} but "
                             "belongs to no settlement window" for tid, state, amount, currency, done in rows),
                     "committed transfers without a settlement window")

    # ------------------------------------------------------------------ rule 5

    def _transfers_moved_what_they_say(self, changes: tuple[int, ...], untied: list[tuple[int, int]]) -> None:
        # By account: the changes made by transfers (all of them, scanned once in run, minus the
        # untied ones) against every transfer_participant row as if its transfer were committed
        # (one scan), corrected for the transfers in other states (through the transfer_state
        # index). Catches a transfer that moved the wrong account.
        as_committed = self.conn.execute(f"SELECT {_weighted_sql('amount')} FROM transfer_participant").fetchone()
        corrections = self.conn.execute(
            f"SELECT tp.account_id, SUM(CASE WHEN tp.amount > 0 AND {_one_of('t.state', RESERVING_STATES)} "
            "THEN 0 ELSE -tp.amount END) "
            "FROM transfer t JOIN transfer_participant tp ON tp.transfer_id = t.id "
            f"WHERE t.state IN ({_marks(NOT_COMMITTED_STATES)}) GROUP BY tp.account_id"
        ).fetchall()
        by_account = all((actual - _weighted(untied, m, k)) % m == (expected + _weighted(corrections, m, k)) % m
                         for actual, expected, (m, k) in zip(changes, as_committed, CHECKSUMS))
        # By transfer: a transfer's changes net to zero over all its accounts, except while it holds
        # a reservation (+amount). Catches a change recorded against the wrong transfer, which
        # leaves every account's total as it should be.
        held = self.conn.execute(f"SELECT {_transfer_weighted_sql('amount', 'id')} FROM transfer "
                                 f"WHERE state IN ({_marks(RESERVING_STATES)})").fetchone()[0]
        m = TRANSFER_CHECKSUM[0]
        if by_account and changes[len(CHECKSUMS)] % m == held % m:
            return
        self._name_transfers_that_moved_wrong()

    def _name_transfers_that_moved_wrong(self) -> None:
        """The slow, exact query: every (transfer, account) whose changes differ from what the
        transfer's state says."""
        rows = self.conn.execute(
            f"""SELECT transfer_id, account_id, SUM(expected), SUM(actual) FROM (
                    SELECT tp.transfer_id, tp.account_id, CASE
                        WHEN {_one_of('t.state', COMMITTED_STATES)} THEN tp.amount
                        WHEN tp.amount > 0 AND {_one_of('t.state', RESERVING_STATES)} THEN tp.amount
                        ELSE 0 END AS expected, 0 AS actual
                    FROM transfer_participant tp JOIN transfer t ON t.id = tp.transfer_id
                    UNION ALL
                    SELECT transfer_id, account_id, 0, change FROM position_change WHERE transfer_id IS NOT NULL
                ) GROUP BY transfer_id, account_id HAVING SUM(expected) != SUM(actual)
                ORDER BY transfer_id, account_id"""
        ).fetchall()

        def line(tid: str, account_id: int, expected: int, actual: int) -> str:
            t = self.conn.execute("SELECT state, amount, currency FROM transfer WHERE id = ?", (tid,)).fetchone()
            if t is None:
                return (f"position changes name transfer {tid}, which is not in the ledger: they move "
                        f"{self._account(account_id)} by {format_amount(actual)}")
            role = self.conn.execute(
                "SELECT role FROM transfer_participant WHERE transfer_id = ? AND account_id = ?", (tid, account_id)
            ).fetchone()
            state, amount, currency = t
            party = f"{self._account(account_id)}, its {role[0]}" if role else \
                f"{self._account(account_id)}, an account it does not involve"
            return (f"transfer {tid} ({state}, {format_amount(amount)} {currency}) moved {party}, by "
                    f"{format_amount(actual)}; expected {format_amount(expected)}")

        self._report(len(rows), (line(*r) for r in rows), "transfer/account pairs that moved wrongly")
