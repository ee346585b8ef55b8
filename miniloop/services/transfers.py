"""A transfer's journey through the switch: prepare, fulfil or reject, and expiry.

Read top to bottom, this is what central-ledger's prepare, position, fulfil and timeout handlers
do, as one writer command per message (miniloop.ledger.writer), so each step is atomic and
durable before the DFSP gets its 202/200:

1. prepare (POST /transfers from the payer): duplicate check on the body hash, validation (3100),
   liquidity (4001) then Net Debit Cap (4200), reserve on the payer's position, forward to the payee.
2. fulfil (PUT /transfers/{ID} from the payee): duplicate check, headers, state, expiry (3303),
   sha256(fulfilment) == condition (3100), commit: the payee's position goes down, the payer gets
   the PUT; a payee that answered RESERVED gets a PATCH with the final state. Under an IMMEDIATE
   GROSS model the transfer is settled in the same step (miniloop.services.gross_settlement).
3. reject (PUT /transfers/{ID}/error from the payee): abort, the payer's position is restored and
   the error forwarded to the payer.
4. get (GET /transfers/{ID}): the hub answers from the ledger.
5. expiry: one sweeper expires what is due (3303 to the payer, and to the payee if reserved).

Each step is written as its ledger part (`reserve`, `commit`, `abort_fulfil`, `abort`,
`abort_by_payee`: states, positions, the transfer's events) and the messages it owes, so that a
bulk transfer (miniloop.services.bulk_transfers) takes each of its individual transfers through
the very same ledger parts and reports the outcomes in one bulk message instead. An individual
transfer is an ordinary FSPIOP transfer linked to its bulk (transfer_fspiop.bulk_transfer_id):
the payee cannot fulfil or reject it on its own (3100), and the sweeper expires it without
individual callbacks, telling its bulk instead.

A POSITION value above zero means the DFSP owes the scheme. Amounts are integer units of
1/10,000 (miniloop.money). Every state goes into transfer_state_change (append-only), with
central-ledger's internal state names; DFSPs see the API state (API_STATE).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from miniloop import money
from miniloop.bus import subjects
from miniloop.fspiop import ilp
from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.models import ErrorInformationObject, TransfersIDPutResponse, TransfersPostRequest
from miniloop.ledger import Ledger, Tx
from miniloop.services import outbox
from miniloop.services.gross_settlement import settle_if_immediate
from miniloop.services.outbox import Inbound
from miniloop.services.participants import change_position, record_position_change

POSITION, SETTLEMENT = 1, 2  # ledger_account_type ids, seeded by the first migration
EXPIRE_BATCH = 500  # transfers expired per writer command

# central-ledger's internal states -> the TransferState a DFSP sees
API_STATE = {
    "RECEIVED_PREPARE": "RECEIVED",
    "RESERVED": "RESERVED", "RECEIVED_FULFIL": "RESERVED", "RECEIVED_REJECT": "RESERVED",
    "RECEIVED_ERROR": "RESERVED", "RESERVED_TIMEOUT": "RESERVED",
    "COMMITTED": "COMMITTED", "SETTLED": "COMMITTED",
    "ABORTED_REJECTED": "ABORTED", "ABORTED_ERROR": "ABORTED", "EXPIRED_PREPARED": "ABORTED",
    "EXPIRED_RESERVED": "ABORTED", "INVALID": "ABORTED", "FAILED": "ABORTED",
}


class Transfers:
    """The async face the API calls; every method is one writer command."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def prepare(self, msg: Inbound, body: TransfersPostRequest) -> None:
        await self.ledger.write(prepare, msg, body)

    async def fulfil(self, msg: Inbound, transfer_id: str, body: TransfersIDPutResponse) -> None:
        await self.ledger.write(fulfil, msg, transfer_id, body)

    async def reject(self, msg: Inbound, transfer_id: str, body: ErrorInformationObject) -> None:
        await self.ledger.write(reject, msg, transfer_id, body)

    async def get(self, msg: Inbound, transfer_id: str) -> None:
        await self.ledger.write(get, msg, transfer_id)

    async def any_due(self, now: str) -> bool:
        row = await self.ledger.fetch_one(
            "SELECT 1 FROM transfer WHERE state IN ('RECEIVED_PREPARE', 'RESERVED') AND expires_at <= ? "
            "AND kind = 'FSPIOP' LIMIT 1",
            (now,),
        )
        return row is not None

    async def expire_due(self) -> int:
        return await self.ledger.write(expire_due, EXPIRE_BATCH)


# ------------------------------------------------------------------------------------ 1. prepare


def prepare(tx: Tx, msg: Inbound, body: TransfersPostRequest) -> None:
    known = tx.conn.execute("SELECT kind FROM transfer WHERE id = ?", (body.transfer_id,)).fetchone()
    if known is not None:  # one look-up by key; a new transfer (the usual case) needs no other
        existing = _transfer(tx, body.transfer_id) if known["kind"] == "FSPIOP" else None
        if existing is not None:
            _resend_or_refuse(tx, msg, existing)
        else:  # the id of a funds-in, funds-out or settlement transfer: never a DFSP's to reuse
            outbox.reply_error(tx, msg, f"/transfers/{body.transfer_id}/error",
                               FspiopError("3106", "a transfer with this id and a different body exists"))
        return
    refusal = reserve(tx, msg, body)
    if refusal is None:
        outbox.forward(tx, msg, body.payee_fsp, "POST")
    else:
        outbox.reply_error(tx, msg, f"/transfers/{body.transfer_id}/error", refusal)


def reserve(tx: Tx, msg: Inbound, body: TransfersPostRequest, *, payee_endpoint: str | None = "/transfers",
            bulk_id: str | None = None) -> FspiopError | None:
    """The ledger part of a prepare of a new transfer id: validate, check the position, reserve,
    and record the transfer whatever happens (RESERVED, INVALID or ABORTED_REJECTED) with its
    event. None if reserved, else why not. No message: the caller owes them.

    `payee_endpoint`: the path the payee must have an endpoint for (None: checked by the caller);
    `bulk_id`: the bulk transfer this one belongs to.
    """
    transfer_id = body.transfer_id
    units = money.to_units(Decimal(body.amount.amount))
    currency = body.amount.currency
    expires_at = to_utc(body.expiration)
    problem = _prepare_problem(tx, msg, body, units, expires_at, payee_endpoint)
    if isinstance(problem, FspiopError):
        _record_prepare(tx, msg, body, units, expires_at, None, ("INVALID", problem), bulk_id)
        _event(tx, transfer_id, "INVALID", body.payer_fsp, body.payee_fsp, units, currency, problem)
        return problem
    payer, payee = problem

    # the position check, liquidity cover first (4001) then the Net Debit Cap (4200), and the
    # reservation on the payer's position, in one statement; a refusal is explained afterwards
    reserved = tx.conn.execute(
        "UPDATE position SET value = value + :units, changed_date = :now WHERE account_id = :payer "
        "AND value + reserved_value + :units <= -(SELECT value FROM position WHERE account_id = :settlement) "
        "AND value + reserved_value + :units <= "
        "    COALESCE((SELECT value FROM participant_limit WHERE account_id = :payer), 0) "
        "AND value + :units <= :max RETURNING value, reserved_value",
        {"units": units, "now": tx.now, "payer": payer["position_id"], "settlement": payer["settlement_id"],
         "max": money.BALANCE_MAX_UNITS},
    ).fetchone()
    if reserved is None:
        refusal = _refusal(tx, payer, units, currency)
        _record_prepare(tx, msg, body, units, expires_at, (payer, payee), ("ABORTED_REJECTED", refusal), bulk_id)
        _event(tx, transfer_id, "ABORTED_REJECTED", body.payer_fsp, body.payee_fsp, units, currency, refusal)
        return refusal

    _record_prepare(tx, msg, body, units, expires_at, (payer, payee), ("RESERVED", None), bulk_id)
    record_position_change(tx, payer["position_id"], units, transfer_id, reserved)
    tx.conn.executemany(
        "INSERT INTO transfer_participant (transfer_id, account_id, role, ledger_entry_type, amount) "
        "VALUES (?, ?, ?, 'PRINCIPLE_VALUE', ?)",
        [(transfer_id, payer["position_id"], "PAYER_DFSP", units),
         (transfer_id, payee["position_id"], "PAYEE_DFSP", -units)],
    )
    _event(tx, transfer_id, "RESERVED", body.payer_fsp, body.payee_fsp, units, currency)
    return None


def _record_prepare(tx: Tx, msg: Inbound, body: TransfersPostRequest, units: int, expires_at: str,
                    accounts: tuple[sqlite3.Row, sqlite3.Row] | None,
                    outcome: tuple[str, FspiopError | None], bulk_id: str | None) -> None:
    """The transfer as received, with the state its prepare ended in (and why, if refused)."""
    state, problem = outcome
    ended = problem is not None
    tx.conn.execute(
        "INSERT INTO transfer (id, kind, amount, currency, state, expires_at, created_date, completed_date) "
        "VALUES (?, 'FSPIOP', ?, ?, ?, ?, ?, ?)",
        (body.transfer_id, units, body.amount.currency, state, expires_at, tx.now, tx.now if ended else None),
    )
    tx.conn.execute(
        "INSERT INTO transfer_fspiop (transfer_id, payer_fsp, payee_fsp, ilp_condition, ilp_packet, expiration, "
        "api_version, traceparent, prepare_hash, payer_account_id, payee_account_id, error_code, error_description, "
        "bulk_transfer_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (body.transfer_id, body.payer_fsp, body.payee_fsp, body.condition, body.ilp_packet, body.expiration,
         msg.version, msg.traceparent, msg.body_hash,
         accounts[0]["position_id"] if accounts else None, accounts[1]["position_id"] if accounts else None,
         problem.code if problem else None, problem.description if problem else None, bulk_id),
    )
    _history(tx, body.transfer_id, ("RECEIVED_PREPARE", None), (state, problem.description if problem else None))


def _refusal(tx: Tx, payer: sqlite3.Row, units: int, currency: str) -> FspiopError:
    """Why the reservation was refused: liquidity cover (4001) before the Net Debit Cap (4200)."""
    check = tx.conn.execute(
        "SELECT pp.value + pp.reserved_value AS effective, -sp.value AS liquidity, l.value AS ndc "
        "FROM position pp JOIN position sp ON sp.account_id = ? "
        "LEFT JOIN participant_limit l ON l.account_id = pp.account_id WHERE pp.account_id = ?",
        (payer["settlement_id"], payer["position_id"]),
    ).fetchone()
    if check["liquidity"] - check["effective"] < units:
        return FspiopError("4001", f"the payer's liquidity cover is {money.format_amount(check['liquidity'])} "
                                   f"{currency} and its position {money.format_amount(check['effective'])}")
    if (check["ndc"] or 0) - check["effective"] < units:
        return FspiopError("4200", f"the payer's Net Debit Cap is {money.format_amount(check['ndc'] or 0)} "
                                   f"{currency} and its position {money.format_amount(check['effective'])}")
    return FspiopError("3100", "the amount would take the account's balance beyond what the ledger holds")


def _resend_or_refuse(tx: Tx, msg: Inbound, existing: sqlite3.Row) -> None:
    """A POST for a known transfer id: same body, tell the payer where it stands; else 3106."""
    transfer_id = existing["id"]
    if existing["prepare_hash"] != msg.body_hash:
        outbox.reply_error(tx, msg, f"/transfers/{transfer_id}/error",
                           FspiopError("3106", "a transfer with this id and a different body exists"))
        return
    if API_STATE[existing["state"]] in ("COMMITTED", "ABORTED"):
        outbox.hub_message(tx, msg.source, "PUT", f"/transfers/{transfer_id}", _state_body(existing),
                           msg.version, msg.traceparent)
    # RECEIVED or RESERVED: still in progress, its callback will come


def _prepare_problem(
    tx: Tx, msg: Inbound, body: TransfersPostRequest, units: int, expires_at: str, payee_endpoint: str | None
) -> FspiopError | tuple[sqlite3.Row, sqlite3.Row]:
    """The first rule the prepare breaks (3100; 3201 for a payee that cannot be reached), or the
    payer's and payee's accounts."""
    if msg.source != body.payer_fsp:
        return FspiopError("3100", "FSPIOP-Source header should match Payer")
    if msg.destination is not None and msg.destination != body.payee_fsp:
        return FspiopError("3100", "FSPIOP-Destination header should match Payee")
    if body.payer_fsp == body.payee_fsp:
        return FspiopError("3100", "Payer FSP and Payee FSP should be different")
    if units <= 0:
        return FspiopError("3100", "the amount must be greater than zero")
    if expires_at <= tx.now:
        return FspiopError("3100", f"Expiration date {body.expiration} is already in the past")
    found = []
    for role, name in (("Payer", body.payer_fsp), ("Payee", body.payee_fsp)):
        accounts = _accounts(tx, name, body.amount.currency)
        if accounts is None:
            return FspiopError("3100", f"{role} FSP {name} is not a registered participant")
        if not accounts["participant_active"]:
            return FspiopError("3100", f"{role} FSP {name} is not active")
        if accounts["position_id"] is None or not accounts["position_active"]:
            return FspiopError("3100", f"{role} FSP {name} has no active {body.amount.currency} position account")
        found.append(accounts)
    if payee_endpoint is not None and outbox.url_for(tx, body.payee_fsp, "POST", payee_endpoint) is None:
        return FspiopError("3201", f"Payee FSP {body.payee_fsp} has registered no endpoint for transfers")
    return found[0], found[1]


# ------------------------------------------------------------------------------------ 2. fulfil


def fulfil(tx: Tx, msg: Inbound, transfer_id: str, body: TransfersIDPutResponse) -> None:
    error_path = f"/transfers/{transfer_id}/error"
    t = _from_its_payee(tx, msg, transfer_id)
    if t is None:
        return
    if t["fulfil_hash"] is not None:  # a fulfil was processed before: a resend, or a modified one
        if t["fulfil_hash"] == msg.body_hash:
            outbox.hub_message(tx, msg.source, "PUT", f"/transfers/{transfer_id}", _state_body(t),
                               msg.version, msg.traceparent)
        else:
            outbox.reply_error(tx, msg, error_path,
                               FspiopError("3106", "a different fulfilment was already received for this transfer"))
        return
    wants_notice = body.transfer_state == "RESERVED"
    if wants_notice and msg.version == "1.0":
        return  # there is no PATCH in v1.0: Mojaloop ignores it, and the transfer will expire
    if body.transfer_state not in ("COMMITTED", "RESERVED"):
        outbox.reply_error(tx, msg, error_path, FspiopError(
            "3100", f"transferState {body.transfer_state} cannot be sent here; reject with PUT {error_path}"))
        return
    if t["state"] != "RESERVED":
        code = "3303" if t["state"].startswith("EXPIRED") else "3100"
        outbox.reply_error(tx, msg, error_path,
                           FspiopError(code, f"the transfer is {API_STATE[t['state']]}, not RESERVED"))
        return

    if msg.destination != t["payer_fsp"]:
        problem: FspiopError | None = FspiopError("3100", "FSPIOP-Destination header should match Payer")
    else:
        problem = check_fulfilment(tx, t, body.fulfilment)
    if problem is not None:
        abort_fulfil(tx, t, problem, msg.body_hash)
        _tell_aborted(tx, t, problem, msg.version, msg.traceparent, payee_notice="patch" if wants_notice else "error")
        return

    commit(tx, t, body.fulfilment, msg.body_hash)
    if wants_notice:
        # the payer is told COMMITTED (the body it gets differs from the payee's, as in Mojaloop);
        # the payee asked to be told the outcome: a PATCH
        t = _transfer(tx, transfer_id)
        outbox.hub_message(tx, t["payer_fsp"], "PUT", f"/transfers/{transfer_id}", _state_body(t), msg.version,
                           msg.traceparent)
        outbox.hub_message(tx, t["payee_fsp"], "PATCH", f"/transfers/{transfer_id}",
                           {"completedTimestamp": tx.now, "transferState": "COMMITTED"}, msg.version, msg.traceparent)
    else:
        outbox.forward(tx, msg, t["payer_fsp"], "PUT")


def check_fulfilment(tx: Tx, t: sqlite3.Row, fulfilment: str | None) -> FspiopError | None:
    """Why a fulfilment for the reserved transfer `t` cannot commit it (3303, 3100), or None."""
    if t["expires_at"] <= tx.now:
        return FspiopError("3303", "the fulfilment arrived after the transfer expired")
    if not fulfilment or not ilp.fulfils(fulfilment, t["ilp_condition"]):
        return FspiopError("3100", "invalid fulfilment")
    return None


def commit(tx: Tx, t: sqlite3.Row, fulfilment: str, fulfil_hash: str) -> None:
    """The ledger part of a valid fulfil of the reserved transfer `t` (no message).

    The payer's position moved at prepare; now the payee's goes down, the transfer joins the open
    settlement window, and under an IMMEDIATE GROSS model it is settled at once.
    """
    transfer_id = t["id"]
    tx.conn.execute("UPDATE transfer_fspiop SET fulfil_hash = ?, fulfilment = ? WHERE transfer_id = ?",
                    (fulfil_hash, fulfilment, transfer_id))
    _record_states(tx, transfer_id, ("RECEIVED_FULFIL", None), ("COMMITTED", None))
    change_position(tx, t["payee_account_id"], -t["amount"], transfer_id)
    _event(tx, transfer_id, "COMMITTED", t["payer_fsp"], t["payee_fsp"], t["amount"], t["currency"])
    settle_if_immediate(tx, t)  # IMMEDIATE GROSS models settle each transfer at once


def abort_fulfil(tx: Tx, t: sqlite3.Row, problem: FspiopError, fulfil_hash: str) -> None:
    """The ledger part of a fulfil that failed a check (`problem`): the reserved transfer `t` ends
    EXPIRED_RESERVED (3303) or ABORTED_ERROR, the payer's position restored (no message)."""
    tx.conn.execute("UPDATE transfer_fspiop SET fulfil_hash = ? WHERE transfer_id = ?", (fulfil_hash, t["id"]))
    if problem.code == "3303":
        abort(tx, t, "EXPIRED_RESERVED", problem, first=("RESERVED_TIMEOUT", problem.description))
    else:
        abort(tx, t, "ABORTED_ERROR", problem, first=("RECEIVED_ERROR", problem.description))


# ------------------------------------------------------------------------------------ 3. reject


def reject(tx: Tx, msg: Inbound, transfer_id: str, body: ErrorInformationObject) -> None:
    error_path = f"/transfers/{transfer_id}/error"
    t = _from_its_payee(tx, msg, transfer_id)
    if t is None:
        return
    if t["error_hash"] is not None or t["state"] != "RESERVED":
        if t["error_hash"] not in (None, msg.body_hash):
            outbox.reply_error(tx, msg, error_path,
                               FspiopError("3106", "a different error was already received for this transfer"))
        return  # an identical resend, or too late: the transfer has its outcome
    info = body.error_information
    abort_by_payee(tx, t, info.error_code, info.error_description, msg.body_hash)
    outbox.forward(tx, msg, t["payer_fsp"], "PUT")


def abort_by_payee(tx: Tx, t: sqlite3.Row, error_code: str, error_description: str, error_hash: str | None) -> None:
    """The ledger part of the payee's refusal of the reserved transfer `t`: ABORTED_ERROR with the
    payee's error, the payer's position restored (no message)."""
    transfer_id = t["id"]
    tx.conn.execute(
        "UPDATE transfer_fspiop SET error_hash = ?, error_code = ?, error_description = ? WHERE transfer_id = ?",
        (error_hash, error_code, error_description, transfer_id),
    )
    _record_states(tx, transfer_id, ("RECEIVED_ERROR", error_description), ("ABORTED_ERROR", error_description))
    change_position(tx, t["payer_account_id"], -t["amount"], transfer_id)
    _event(tx, transfer_id, "ABORTED_ERROR", t["payer_fsp"], t["payee_fsp"], t["amount"], t["currency"],
           error_code=error_code)


# ------------------------------------------------------------------------------------ 4. get


def get(tx: Tx, msg: Inbound, transfer_id: str) -> None:
    t = _transfer(tx, transfer_id)
    if t is None:
        outbox.reply_error(tx, msg, f"/transfers/{transfer_id}/error",
                           FspiopError("3208", f"transfer {transfer_id} is not known"))
    elif msg.source not in (t["payer_fsp"], t["payee_fsp"]):
        outbox.reply_error(tx, msg, f"/transfers/{transfer_id}/error",
                           FspiopError("3000", "only the payer and the payee may ask about a transfer"))
    else:
        outbox.hub_message(tx, msg.source, "PUT", f"/transfers/{transfer_id}", _state_body(t), msg.version,
                           msg.traceparent)


# ------------------------------------------------------------------------------------ 5. expiry


def expire_due(tx: Tx, limit: int) -> int:
    """Expire every transfer whose expiration has passed (at most `limit`); return how many."""
    due = tx.conn.execute(
        "SELECT id FROM transfer WHERE state IN ('RECEIVED_PREPARE', 'RESERVED') AND expires_at <= ? "
        "AND kind = 'FSPIOP' ORDER BY expires_at LIMIT ?",
        (tx.now, limit),
    ).fetchall()
    expired = FspiopError("3303", "the transfer expired before it was fulfilled")
    in_bulks: dict[str, list[str]] = {}  # bulk transfer id -> its transfers expired here
    for row in due:
        t = _transfer(tx, row["id"])
        assert t is not None
        bulk_id = t["bulk_transfer_id"]
        if t["state"] == "RESERVED":
            abort(tx, t, "EXPIRED_RESERVED", expired, first=("RESERVED_TIMEOUT", None))
            if bulk_id is None:
                _tell_aborted(tx, t, expired, t["api_version"], t["traceparent"], payee_notice="error")
        else:
            _record_states(tx, t["id"], ("EXPIRED_PREPARED", expired.description), problem=expired)
            _event(tx, t["id"], "EXPIRED_PREPARED", t["payer_fsp"], t["payee_fsp"], t["amount"], t["currency"], expired)
            if bulk_id is None:
                outbox.error(tx, t["payer_fsp"], f"/transfers/{t['id']}/error", expired, t["api_version"],
                             t["traceparent"])
        if bulk_id is not None:  # no individual callbacks: the bulk reports its transfers
            in_bulks.setdefault(bulk_id, []).append(t["id"])
    if in_bulks:
        # imported here: bulk transfers are built on this module
        from miniloop.services.bulk_transfers import transfers_expired

        transfers_expired(tx, in_bulks, expired)
    return len(due)


# ------------------------------------------------------------------------------------ shared steps


def abort(tx: Tx, t: sqlite3.Row, state: str, problem: FspiopError, *, first: tuple[str, str | None]) -> None:
    """End the reserved transfer `t` without paying: restore the payer's position (no message).

    `first` is the state that records why (the payee's error, the timeout) before the final one.
    """
    transfer_id = t["id"]
    _record_states(tx, transfer_id, first, (state, problem.description), problem=problem)
    change_position(tx, t["payer_account_id"], -t["amount"], transfer_id)
    _event(tx, transfer_id, state, t["payer_fsp"], t["payee_fsp"], t["amount"], t["currency"], problem)


def _tell_aborted(tx: Tx, t: sqlite3.Row, problem: FspiopError, version: str, traceparent: str | None,
                  *, payee_notice: str) -> None:
    """Tell both sides that `t` was aborted: the error to the payer, an error or a PATCH to the payee."""
    path = f"/transfers/{t['id']}"
    outbox.error(tx, t["payer_fsp"], path + "/error", problem, version, traceparent)
    if payee_notice == "patch":
        outbox.hub_message(tx, t["payee_fsp"], "PATCH", path, {
            "completedTimestamp": tx.now, "transferState": "ABORTED",
            "extensionList": {"extension": [{"key": "cause", "value": f"{problem.code}: {problem.description}"[:128]}]},
        }, version, traceparent)
    else:
        outbox.error(tx, t["payee_fsp"], path + "/error", problem, version, traceparent)


def _from_its_payee(tx: Tx, msg: Inbound, transfer_id: str) -> sqlite3.Row | None:
    """The transfer a fulfil or reject is about, if it exists and `msg` comes from its payee.

    Otherwise the sender gets an error and nothing changes: only the payee holds the fulfilment,
    and a DFSP that learnt a transfer's id must not be able to end it.
    """
    t = _transfer(tx, transfer_id)
    error_path = f"/transfers/{transfer_id}/error"
    if t is None:
        outbox.reply_error(tx, msg, error_path, FspiopError("3208", f"transfer {transfer_id} is not known"))
    elif msg.source != t["payee_fsp"]:
        outbox.reply_error(tx, msg, error_path, FspiopError("3100", "FSPIOP-Source header should match Payee"))
    elif t["bulk_transfer_id"] is not None:
        bulk_id = t["bulk_transfer_id"]
        outbox.reply_error(tx, msg, error_path, FspiopError(
            "3100", f"this transfer belongs to bulk transfer {bulk_id}: answer with PUT /bulkTransfers/{bulk_id}"))
    else:
        return t
    return None


def _record_states(tx: Tx, transfer_id: str, *steps: tuple[str, str | None], problem: FspiopError | None = None) -> None:
    """Move a transfer through `steps` ((state, reason) pairs), each appended to its history.

    Ending in an outcome stamps completed_date (and, for COMMITTED, the open settlement window);
    a `problem` is recorded as the transfer's error.
    """
    state = steps[-1][0]
    outcome = API_STATE[state]
    if outcome == "COMMITTED":
        tx.conn.execute("UPDATE transfer SET state = ?, completed_date = ?, settlement_window_id = ? WHERE id = ?",
                        (state, tx.now, _open_window(tx), transfer_id))
    elif outcome == "ABORTED":
        tx.conn.execute("UPDATE transfer SET state = ?, completed_date = ? WHERE id = ?", (state, tx.now, transfer_id))
    else:
        tx.conn.execute("UPDATE transfer SET state = ? WHERE id = ?", (state, transfer_id))
    if problem is not None:
        tx.conn.execute("UPDATE transfer_fspiop SET error_code = ?, error_description = ? WHERE transfer_id = ?",
                        (problem.code, problem.description, transfer_id))
    _history(tx, transfer_id, *steps)


def _history(tx: Tx, transfer_id: str, *steps: tuple[str, str | None]) -> None:
    tx.conn.executemany(
        "INSERT INTO transfer_state_change (transfer_id, state, reason, created_date) VALUES (?, ?, ?, ?)",
        [(transfer_id, state, reason, tx.now) for state, reason in steps],
    )


def _open_window(tx: Tx) -> int | None:
    def load() -> int | None:
        row = tx.conn.execute("SELECT id FROM settlement_window WHERE state = 'OPEN'").fetchone()
        return row["id"] if row else None
    return tx.cached("open settlement window", load)


# what the steps read of a transfer (`t`); not the ILP packet: long, and never needed again
TRANSFER_COLUMNS = (
    "t.id, t.amount, t.currency, t.state, t.expires_at, t.completed_date, f.payer_fsp, f.payee_fsp, "
    "f.payer_account_id, f.payee_account_id, f.ilp_condition, f.api_version, f.traceparent, f.prepare_hash, "
    "f.fulfil_hash, f.fulfilment, f.error_hash, f.bulk_transfer_id"
)
_SELECT_TRANSFER = (f"SELECT {TRANSFER_COLUMNS} FROM transfer t JOIN transfer_fspiop f ON f.transfer_id = t.id "
                    "WHERE t.id = ?")


def _transfer(tx: Tx, transfer_id: str) -> sqlite3.Row | None:
    return tx.conn.execute(_SELECT_TRANSFER, (transfer_id,)).fetchone()


def transfer_exists(tx: Tx, transfer_id: str) -> bool:
    """Whether any transfer (of any kind) has this id."""
    return tx.conn.execute("SELECT 1 FROM transfer WHERE id = ?", (transfer_id,)).fetchone() is not None


def _accounts(tx: Tx, name: str, currency: str) -> sqlite3.Row | None:
    return tx.cached(("accounts", name, currency), lambda: tx.conn.execute(
        "SELECT p.is_active AS participant_active, pos.id AS position_id, pos.is_active AS position_active, "
        "st.id AS settlement_id FROM participant p "
        "LEFT JOIN account pos ON pos.participant_id = p.id AND pos.currency = ?2 AND pos.ledger_account_type_id = ?3 "
        "LEFT JOIN account st ON st.participant_id = p.id AND st.currency = ?2 AND st.ledger_account_type_id = ?4 "
        "WHERE p.name = ?1",
        (name, currency, POSITION, SETTLEMENT),
    ).fetchone())


def _state_body(t: sqlite3.Row) -> dict[str, Any]:
    """What GET /transfers/{ID} answers: the API state, and when and how it ended."""
    state = API_STATE[t["state"]]
    body: dict[str, Any] = {"transferState": state}
    if t["completed_date"] and state in ("COMMITTED", "ABORTED"):
        body["completedTimestamp"] = t["completed_date"]
    if state == "COMMITTED" and t["fulfilment"]:
        body["fulfilment"] = t["fulfilment"]
    return body


def to_utc(value: str) -> str:
    """An FSPIOP DateTime as UTC text with milliseconds, so times compare as strings."""
    if len(value) == 24 and value[-1] == "Z" and value[19] == ".":  # already so, as most DFSPs send it
        return value
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(tx: Tx, transfer_id: str, state: str, payer: str, payee: str, units: int, currency: str,
           problem: FspiopError | None = None, error_code: str | None = None) -> None:
    event: dict[str, Any] = {
        "type": f"transfer.{state}", "transferId": transfer_id, "state": state, "transferState": API_STATE[state],
        "payerFsp": payer, "payeeFsp": payee, "amount": money.format_amount(units), "currency": currency,
    }
    if problem is not None:
        event["errorCode"], event["errorDescription"] = problem.code, problem.description
    elif error_code is not None:
        event["errorCode"] = error_code
    tx.emit(subjects.transfer(transfer_id, state), event)
