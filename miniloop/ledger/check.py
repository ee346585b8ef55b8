"""`miniloop ledger check`: a read-only consistency check of a hub's ledger.

Run it after every benchmark run and after settlement steps: a switch that loses or invents
money under load is worse than a slow one, and every rule below is something a bug in the writer
commands (miniloop.services.transfers, .participants, .gross_settlement, .settlement_windows,
.settlements) would break without any API call failing. The check opens the SQLite file
read-only (`mode=ro`), reads everything in one read transaction (one consistent snapshot, so it
may run while the hub runs: WAL readers never block the writer) and never writes.

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
     Settlement transfers (kind SETTLEMENT, settlements.py) never hold one, whatever their
     state: each moves its two sides (the DFSP's POSITION by -net, the Hub's
     HUB_MULTILATERAL_SETTLEMENT by +net) together, or neither (see rule 5).
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
   reconciliation +amount, DFSP settlement -amount; funds out the other way round; settlement:
   below). The changes it made to each account (`position_change` rows with its id) must net
   to: the full amount when COMMITTED/SETTLED (payer +amount, payee -amount); only the debit
   side (amount > 0) while a reservation is held; zero otherwise (an abort or expiry after
   reservation restored the payer; a refusal never moved anything). Changes to accounts a
   transfer does not name, or naming a transfer that does not exist, must net to zero. Rules 1
   and 2 can hold while this one fails (a payee credited the wrong account, a restore applied
   to the wrong transfer), and only this rule names the transfer.
   - An FSPIOP transfer settled IMMEDIATE/GROSS (gross_settlement.py) is SETTLED with four more
     rows, all moved at its commit: each side's POSITION back by the amount (payer -amount,
     payee +amount) and its SETTLEMENT account by it (payer +amount, payee -amount).
   - A settlement transfer (kind SETTLEMENT) has two rows, the Hub's HUB_MULTILATERAL_SETTLEMENT
     (role HUB, +net) and the DFSP's POSITION (DFSP_POSITION, -net), and moves both or neither:
     both when COMMITTED, and while it holds RESERVED (or a step after it) if it pays a net
     recipient (ledger_entry_type SETTLEMENT_NET_RECIPIENT: its position goes back up at
     PS_TRANSFERS_RESERVED); nothing otherwise (RECEIVED_PREPARE; a net sender's while RESERVED,
     it moves at commit; ABORTED_REJECTED, whose reserved recipient's movement was undone by
     changes of the opposite sign carrying the same transfer id).

Settlement (schema 5 and later; an older ledger is checked by rules 1 to 5 only):

6. Every closed window's aggregation matches its transfers. Closing a window records, per
   (ledger account type, currency) settled by a NET model, a settlement_window_content row and,
   per account, settlement_content_aggregation rows: what the window's transfers (those whose
   `transfer.settlement_window_id` is the window) changed on that account (settlement_windows.
   _record_content). Per content and account, the aggregation rows must sum to the position
   changes those transfers made on the accounts of the content's type and currency. Settlements
   are computed from the aggregation, never from the transfers again: a transfer stamped with a
   window that was already closed, or a wrong aggregation, is money that is never settled, or
   settled twice. The problem names the window, the account and both amounts.

7. A settlement balances. Per settlement and currency, its accounts' net amounts
   (settlement_account.net_amount: > 0 a net sender, < 0 a net recipient) sum to zero: they come
   from the whole content of its windows, in which every transfer moved money from one account
   to another (true of every NET settlement miniloop makes, multilateral or bilateral). And, but
   for ABORTED settlements (whose windows go to a later settlement, which takes their
   aggregation rows over), each account's net amount equals the sum of its aggregation rows in
   the settlement (`settlement_content_aggregation.settlement_id`). A settlement that does not
   balance resets positions by amounts that were never traded.

8. Settlement transfers follow their accounts. With autoPositionReset, every step of a
   settlement account (settlements._move_ledger) moves its settlement transfer in the same
   transaction: PS_TRANSFERS_RECORDED has it RECEIVED_PREPARE, PS_TRANSFERS_RESERVED has it
   RESERVED, PS_TRANSFERS_COMMITTED and SETTLED have it COMMITTED, ABORTED has it
   ABORTED_REJECTED (PENDING_SETTLEMENT has none yet). It is a SETTLEMENT transfer that moves
   the account's POSITION by -net. Otherwise the positions (which rule 5 judges by the
   transfer's state) disagree with what the settlement says was paid.

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
  for the few transfers in other states (found through the transfer_state index; settlement
  transfers are among them until they commit).
- by transfer (one prime): every change times a weight derived from a cheap hash of its
  transfer id (first character, first 'a', 'b' and 'c'); the sum must equal the reservations
  held, since a transfer's changes net to zero over its accounts unless it holds one. This
  catches a change recorded against the wrong transfer, which leaves every account's total
  intact.
Two sets of numbers that differ give equal weighted sums only if the differences cancel out
modulo the primes (no accident does that) or, for the by-transfer sum, if a change moved between
two transfers whose ids share the hash: about 1 chance in 20,000 for one such change between
random UUIDs, while a bug that does it repeatedly is caught at once. Rules 1 to 5 on a ledger
of 1M transfers (2M position changes, 2M transfer_participant rows) take about 2 s: 1.6 to 2.3 s
measured on a busy 2-core machine.
Rules 7 and 8 read the settlement tables, a few rows per account and settlement. Rule 6 is the
one that must pair every change with its transfer's window: a join of transfer (through the
transfer_window index) with position_change, over the transfers of windows that have content,
so it costs nothing while every transfer is in the open window (as after a benchmark run). It
compares, per window, a weighted sum of those changes (one prime; the weight is derived from the
content and the account) with the same sum of the aggregation rows; only a window that differs
is grouped by account to name the problems. That join costs about 2.5 to 3 s per million
transfers in closed windows (measured as above, 10 windows of 100,000), with SQLite reading the
file through mmap.
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
SETTLEMENT_SCHEMA = 5  # settlement windows' content, settlements: rules 6 to 8
LISTED_PER_RULE = 20  # problems named per rule; the rest are counted

COMMITTED_STATES = ("COMMITTED", "SETTLED")
RESERVING_STATES = ("RESERVED", "RECEIVED_FULFIL", "RECEIVED_REJECT", "RECEIVED_ERROR", "RESERVED_TIMEOUT")
NON_FINAL_STATES = ("RECEIVED_PREPARE", *RESERVING_STATES)
ENDED_STATES = ("ABORTED_REJECTED", "ABORTED_ERROR", "EXPIRED_PREPARED", "EXPIRED_RESERVED", "INVALID", "FAILED")
KNOWN_STATES = (*NON_FINAL_STATES, *COMMITTED_STATES, *ENDED_STATES)  # = transfers.API_STATE's keys
NOT_COMMITTED_STATES = (*NON_FINAL_STATES, *ENDED_STATES)
# a settlement account's state -> its settlement transfer's (rule 8); None: it has none yet
SETTLEMENT_TRANSFER_STATE = {
    "PENDING_SETTLEMENT": None,
    "PS_TRANSFERS_RECORDED": "RECEIVED_PREPARE",
    "PS_TRANSFERS_RESERVED": "RESERVED",
    "PS_TRANSFERS_COMMITTED": "COMMITTED",
    "SETTLED": "COMMITTED",
    "ABORTED": "ABORTED_REJECTED",
}

# (modulus, multiplier): an account's weight is 1 + account_id * multiplier % (modulus - 1),
# never 0 modulo the (prime) modulus
CHECKSUMS = ((2_147_483_647, 1_103_515_247), (2_147_483_629, 1_597_334_677))  # multipliers coprime to m - 1
# the same for a transfer, from a hash of its id: the code of its first character and where 'a',
# 'b' and 'c' first occur in it. Two random UUIDs share it once in about 20,000 pairs; each
# further instr() would make that ~10 times rarer but costs ~0.06 s per million changes.
TRANSFER_CHECKSUM = (2_147_483_647, 1_597_334_677)
# rule 6: one prime (a second one would cost ~0.3 s per million changes) and a weight derived from
# content_id * PAIR_KEY + account_id: distinct for the pairs of one window (a few contents) while
# account ids stay below PAIR_KEY, since the multiplier is coprime to the prime - 1
PAIR_CHECKSUM = CHECKSUMS[0]
PAIR_KEY = 1_000_003


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
        # reads through mmap rather than read(): about a third faster for the index lookups of rule 6.
        # Safe beside a running hub (its WAL is never mapped; SQLite never checkpoints over a page
        # this snapshot still reads) and miniloop never shrinks the file (no VACUUM).
        conn.execute("PRAGMA mmap_size = 4294967296")
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


def _weighted_sql(column: str, account: str = "account_id") -> str:
    """SQL for the weighted sums of `column` (a signed amount) by `account`, one per checksum.
    Each term stays below 2**62, so SUM over billions of rows cannot overflow; `%` keeps the sign
    of its left side in SQLite, which is still the right residue modulo the prime."""
    return ", ".join(
        f"COALESCE(SUM((({column} % {m}) * (1 + {account} * {k} % {m - 1})) % {m}), 0)" for m, k in CHECKSUMS
    )


def _pair_weight(content_id: int, account_id: int) -> int:
    """Rule 6's weight of a (window content, account) pair (PAIR_CHECKSUM)."""
    m, k = PAIR_CHECKSUM
    return 1 + (content_id * PAIR_KEY + account_id) % (m - 1) * k % (m - 1)


def _pair_weighted_sql(column: str, content: str, account: str) -> str:
    """SQL for the sum of `column` weighted as _pair_weight, modulo PAIR_CHECKSUM's prime."""
    m, k = PAIR_CHECKSUM
    return (f"COALESCE(SUM((({column} % {m}) * (1 + ({content} * {PAIR_KEY} + {account}) % {m - 1} * {k} % {m - 1})) "
            f"% {m}), 0)")


def _expected_sql() -> str:
    """SQL for what the transfer_participant row `tp` of transfer `t` should have moved by now
    (rule 5): the whole amount, or nothing, or (a reservation) only a debit."""
    reserving = _one_of("t.state", RESERVING_STATES)
    return (f"CASE WHEN {_one_of('t.state', COMMITTED_STATES)} THEN tp.amount "
            f"WHEN t.kind = 'SETTLEMENT' THEN CASE WHEN {reserving} "
            "AND tp.ledger_entry_type = 'SETTLEMENT_NET_RECIPIENT' THEN tp.amount ELSE 0 END "
            f"WHEN tp.amount > 0 AND {reserving} THEN tp.amount ELSE 0 END")


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
        if self.conn.execute("PRAGMA user_version").fetchone()[0] >= SETTLEMENT_SCHEMA:
            self._aggregation_matches_transfers()
            self._settlements_balance()
            self._settlement_transfers_follow_accounts()

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
                "AND kind != 'SETTLEMENT' GROUP BY currency")
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
        # index): what they should have moved by now instead. Catches a transfer that moved the
        # wrong account.
        as_committed = self.conn.execute(f"SELECT {_weighted_sql('amount')} FROM transfer_participant").fetchone()
        corrections = self.conn.execute(
            f"SELECT tp.account_id, SUM(({_expected_sql()}) - tp.amount) "
            "FROM transfer t JOIN transfer_participant tp ON tp.transfer_id = t.id "
            f"WHERE t.state IN ({_marks(NOT_COMMITTED_STATES)}) GROUP BY tp.account_id"
        ).fetchall()
        by_account = all((actual - _weighted(untied, m, k)) % m == (expected + _weighted(corrections, m, k)) % m
                         for actual, expected, (m, k) in zip(changes, as_committed, CHECKSUMS))
        # By transfer: a transfer's changes net to zero over all its accounts, except while it holds
        # a reservation (+amount; never a settlement transfer). Catches a change recorded against
        # the wrong transfer, which leaves every account's total as it should be.
        held = self.conn.execute(f"SELECT {_transfer_weighted_sql('amount', 'id')} FROM transfer "
                                 f"WHERE state IN ({_marks(RESERVING_STATES)}) AND kind != 'SETTLEMENT'"
                                 ).fetchone()[0]
        m = TRANSFER_CHECKSUM[0]
        if by_account and changes[len(CHECKSUMS)] % m == held % m:
            return
        self._name_transfers_that_moved_wrong()

    def _name_transfers_that_moved_wrong(self) -> None:
        """The slow, exact query: every (transfer, account) whose changes differ from what the
        transfer's state says."""
        rows = self.conn.execute(
            f"""SELECT transfer_id, account_id, SUM(expected), SUM(actual) FROM (
                    SELECT tp.transfer_id, tp.account_id, {_expected_sql()} AS expected, 0 AS actual
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

    # ------------------------------------------------------------------ rule 6

    # a window's transfers (through the transfer_window index; CROSS JOIN keeps this order), their
    # changes (through position_change_transfer), and the content of each change's account, if any
    _WINDOW_CHANGES = ("FROM transfer t CROSS JOIN position_change pc ON pc.transfer_id = t.id "
                       "CROSS JOIN account a ON a.id = pc.account_id "
                       "CROSS JOIN settlement_window_content c ON c.settlement_window_id = t.settlement_window_id "
                       "AND c.ledger_account_type_id = a.ledger_account_type_id AND c.currency = a.currency ")

    def _aggregation_matches_transfers(self) -> None:
        contents: dict[int, tuple[int, str, str]] = {
            cid: (window, type_name, currency) for cid, window, type_name, currency in self.conn.execute(
                "SELECT c.id, c.settlement_window_id, COALESCE(lt.name, '?'), c.currency "
                "FROM settlement_window_content c LEFT JOIN ledger_account_type lt ON lt.id = c.ledger_account_type_id")
        }
        aggregated: dict[tuple[int, int], int] = {
            (cid, account_id): amount for cid, account_id, amount in self.conn.execute(
                "SELECT settlement_window_content_id, account_id, SUM(amount) FROM settlement_content_aggregation "
                "GROUP BY settlement_window_content_id, account_id")
        }
        lines = [f"settlement_content_aggregation names window content {cid}, which does not exist "
                 f"({_plural(sum(1 for c, _ in aggregated if c == cid), 'account')})"
                 for cid in sorted({c for c, _ in aggregated if c not in contents})]
        if contents:
            # per window: the aggregation's weighted sum against its transfers' (module docstring)
            m = PAIR_CHECKSUM[0]
            expected: dict[int, int] = defaultdict(int)
            for (cid, account_id), amount in aggregated.items():
                if cid in contents:
                    expected[contents[cid][0]] += amount * _pair_weight(cid, account_id)
            actual = dict(self.conn.execute(
                f"SELECT t.settlement_window_id, {_pair_weighted_sql('pc.change', 'c.id', 'pc.account_id')} "
                + self._WINDOW_CHANGES
                + "WHERE t.settlement_window_id IN (SELECT settlement_window_id FROM settlement_window_content) "
                "GROUP BY t.settlement_window_id").fetchall())
            for window in sorted({w for w, _, _ in contents.values()}):
                if actual.get(window, 0) % m != expected[window] % m:
                    lines += self._name_window_differences(window, contents, aggregated)
        self._report(len(lines), lines, "window aggregations that differ from their transfers")

    def _name_window_differences(self, window: int, contents: dict[int, tuple[int, str, str]],
                                 aggregated: dict[tuple[int, int], int]) -> list[str]:
        """The exact query for one window: every (content, account) whose aggregation differs."""
        moved = {
            (cid, account_id): total for cid, account_id, total in self.conn.execute(
                "SELECT c.id, pc.account_id, SUM(pc.change) " + self._WINDOW_CHANGES
                + "WHERE t.settlement_window_id = ? GROUP BY c.id, pc.account_id", (window,))
        }
        lines = []
        for key in sorted({k for k in aggregated if k[0] in contents and contents[k[0]][0] == window} | set(moved)):
            if aggregated.get(key, 0) == moved.get(key, 0):
                continue
            cid, account_id = key
            _, type_name, currency = contents[cid]
            account = self.accounts.get(account_id)
            foreign = account is not None and (account.type, account.currency) != (type_name, currency)
            lines.append(f"settlement window {window}'s {type_name} {currency} aggregation (content {cid}) has "
                         f"{format_amount(aggregated.get(key, 0))} for {self._account(account_id)}, but the window's "
                         f"transfers moved it by {format_amount(moved.get(key, 0))}"
                         + (f" (it is not a {type_name} {currency} account)" if foreign else ""))
        return lines

    # ------------------------------------------------------------------ rule 7

    def _settlements_balance(self) -> None:
        lines = [
            f"settlement {sid} ({state}): the net amounts of its {_plural(n, currency + ' account')} sum to "
            f"{format_amount(total)}, not 0"
            for sid, state, currency, n, total in self.conn.execute(
                "SELECT sa.settlement_id, s.state, COALESCE(a.currency, '?'), COUNT(*), SUM(sa.net_amount) "
                "FROM settlement_account sa "
                "LEFT JOIN settlement s ON s.id = sa.settlement_id LEFT JOIN account a ON a.id = sa.account_id "
                "GROUP BY sa.settlement_id, a.currency HAVING SUM(sa.net_amount) != 0 ORDER BY sa.settlement_id, a.currency")
        ]
        # an ABORTED settlement's windows may have gone to a later one, with their aggregation rows
        for sid, state, account_id, accounts, net, aggregated in self.conn.execute(
                "SELECT x.settlement_id, s.state, x.account_id, SUM(x.accounts), SUM(x.net), SUM(x.aggregated) FROM ("
                "  SELECT settlement_id, account_id, 1 AS accounts, net_amount AS net, 0 AS aggregated "
                "  FROM settlement_account "
                "  UNION ALL SELECT settlement_id, account_id, 0, 0, amount FROM settlement_content_aggregation "
                "  WHERE settlement_id IS NOT NULL"
                ") x JOIN settlement s ON s.id = x.settlement_id WHERE s.state != 'ABORTED' "
                "GROUP BY x.settlement_id, x.account_id HAVING SUM(x.net) != SUM(x.aggregated) OR SUM(x.accounts) = 0 "
                "ORDER BY x.settlement_id, x.account_id"):
            if accounts:
                lines.append(f"settlement {sid} ({state}) nets {self._account(account_id)} at {format_amount(net)}, "
                             f"but its aggregation rows sum to {format_amount(aggregated)}")
            else:
                lines.append(f"settlement {sid} ({state}) has no account for {self._account(account_id)}, whose "
                             f"aggregation rows in it sum to {format_amount(aggregated)}")
        self._report(len(lines), lines, "settlement amounts that do not balance")

    # ------------------------------------------------------------------ rule 8

    def _settlement_transfers_follow_accounts(self) -> None:
        rows = self.conn.execute(
            "SELECT sa.settlement_id, sa.account_id, sa.state, sa.net_amount, sa.settlement_transfer_id, t.id, "
            "t.kind, t.state, tp.account_id, tp.amount FROM settlement_account sa "
            "LEFT JOIN transfer t ON t.id = sa.settlement_transfer_id "
            "LEFT JOIN transfer_participant tp ON tp.transfer_id = t.id AND tp.role = 'DFSP_POSITION' "
            "WHERE sa.settlement_transfer_id IS NOT NULL ORDER BY sa.settlement_id, sa.account_id").fetchall()
        lines = []
        for sid, account_id, state, net, tid, found, kind, t_state, moves, amount in rows:
            what = f"settlement {sid}: {self._account(account_id)} is {state}"
            if found is None:
                lines.append(f"{what} and names settlement transfer {tid}, which is not in the ledger")
                continue
            wanted = SETTLEMENT_TRANSFER_STATE.get(state, "")
            if wanted == "":
                lines.append(f"{what}, which is not a settlement account state")
            elif wanted is None:
                lines.append(f"{what} but already has a settlement transfer, {tid} ({t_state})")
            elif t_state != wanted:
                lines.append(f"{what} but its settlement transfer {tid} is {t_state}; expected {wanted}")
            if kind != "SETTLEMENT" or moves != account_id or amount != -net:
                does = (f"moves {self._account(moves)} by {format_amount(amount)}" if moves is not None
                        else "moves no DFSP_POSITION")
                lines.append(f"{what} (net {format_amount(net)}) but its settlement transfer {tid} ({kind}) {does}; "
                             f"expected a SETTLEMENT transfer moving it by {format_amount(-net)}")
        self._report(len(lines), lines, "settlement accounts whose transfers do not follow them")
