"""Settlements: turning closed windows into what each DFSP owes or is owed, step by step.

Read top to bottom, this is central-settlement's settlement facade as writer commands:

1. create (POST /settlements): a NET, DEFERRED model and a list of windows that are CLOSED,
   ABORTED or PENDING_SETTLEMENT and hold content of that model. Each account's net amount is
   the sum of its aggregation rows over those windows (> 0: a net sender, it owes; < 0: a net
   recipient). For a multilateral model they sum to zero per currency.
2. update (PUT /settlements/{id} with participants): the settlement bank's acknowledgements. Each
   account moves one step at a time, and only when the settlement itself is at the step before:
   PENDING_SETTLEMENT -> PS_TRANSFERS_RECORDED -> PS_TRANSFERS_RESERVED -> PS_TRANSFERS_COMMITTED
   -> SETTLED. The settlement follows once every account has moved (SETTLING while only some are
   SETTLED). A refused account is answered with errorInformation beside the others, status 200.
3. abort (PUT /settlements/{id} with state ABORTED): allowed up to PS_TRANSFERS_RESERVED while no
   account is PS_TRANSFERS_COMMITTED; reservations are undone and the windows can be settled again.

With autoPositionReset, each step also moves the ledger, by a settlement transfer per account
between the DFSP's POSITION account (-net) and the Hub's HUB_MULTILATERAL_SETTLEMENT account (net):
recorded as RECEIVED_PREPARE; at RESERVED a net recipient's position goes up to where it was
before the window (its negative position is paid out); at COMMITTED a net sender's goes down. So
positions are reset by exactly what was settled. DFSPs' SETTLEMENT (liquidity) accounts are not
touched: the operator records the bank's real movements with funds-in and funds-out.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import msgspec

from miniloop import money
from miniloop.bus import subjects
from miniloop.fspiop.errors import FspiopError
from miniloop.ledger import Ledger, Tx
from miniloop.services.participants import change_position, hub_account, record_state
from miniloop.services.settlement_windows import _CONTENT, content_body, set_window_state

# the account states a PUT may ask for, in order; each may only follow the one before it
STEPS = ("PENDING_SETTLEMENT", "PS_TRANSFERS_RECORDED", "PS_TRANSFERS_RESERVED", "PS_TRANSFERS_COMMITTED", "SETTLED")
SETTLEMENT_STATES = (*STEPS, "SETTLING", "ABORTED")
SETTLEMENT_FILTERS = ("currency", "participantId", "settlementWindowId", "accountId", "state", "fromDateTime",
                      "toDateTime", "fromSettlementWindowDateTime", "toSettlementWindowDateTime")
ABORTABLE = ("PENDING_SETTLEMENT", "PS_TRANSFERS_RECORDED", "PS_TRANSFERS_RESERVED", "ABORTED")


# ------------------------------------------------------------------------------------ bodies in


class WindowRef(msgspec.Struct, forbid_unknown_fields=True):
    id: int


class NewSettlement(msgspec.Struct, forbid_unknown_fields=True):
    """POST /settlements."""

    settlementModel: str
    reason: str
    settlementWindows: list[WindowRef]


class AccountUpdate(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    state: str
    reason: str | None = None
    externalReference: str | None = None


class ParticipantUpdate(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    accounts: list[AccountUpdate]


class SettlementUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """PUT /settlements/{id}: either `participants` alone, or `state: ABORTED` with a reason."""

    participants: list[ParticipantUpdate] | None = None
    state: str | None = None
    reason: str | None = None
    externalReference: str | None = None


class ParticipantAccountsUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """PUT /settlements/{sid}/participants/{pid}."""

    accounts: list[AccountUpdate]


class OneAccountUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """PUT /settlements/{sid}/participants/{pid}/accounts/{aid}."""

    state: str
    reason: str
    externalReference: str | None = None


# ------------------------------------------------------------------------------------ the face


class Settlements:
    """What the Settlement API calls. Reads run in the writer too (they are rare, and so one
    function builds the body a PUT answers and the one a GET answers, from one snapshot)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def create(self, body: NewSettlement) -> dict[str, Any]:
        ids = [w.id for w in body.settlementWindows]
        if not ids:
            raise FspiopError("3100", "settlementWindows must name at least one window")
        if len(set(ids)) != len(ids):
            raise FspiopError("3100", "settlementWindows names a window twice")
        return await self.ledger.write(create, body.settlementModel, body.reason, ids)

    async def get(self, settlement_id: int) -> dict[str, Any]:
        return await self.ledger.write(_get, settlement_id)

    async def find(self, args: dict[str, str]) -> list[dict[str, Any]]:
        filters = {k: v for k, v in args.items() if k in SETTLEMENT_FILTERS and v != ""}
        if not filters:
            raise FspiopError("3100", "Use at least one parameter: " + ", ".join(SETTLEMENT_FILTERS))
        if "state" in filters and filters["state"] not in SETTLEMENT_STATES:
            raise FspiopError("3100", f"state must be one of {', '.join(SETTLEMENT_STATES)}")
        for name in ("participantId", "settlementWindowId", "accountId"):
            if name in filters and not filters[name].isdigit():
                raise FspiopError("3100", f"{name} must be an integer, not {filters[name]}")
        return await self.ledger.write(_find, filters)

    async def update(self, settlement_id: int, body: SettlementUpdate) -> dict[str, Any]:
        if body.participants is not None:
            if body.state is not None or body.reason is not None or body.externalReference is not None:
                raise FspiopError("3100", "participants cannot be sent with other properties")
            return await self.ledger.write(update, settlement_id, body.participants)
        if body.state == "ABORTED":
            if not body.reason:
                raise FspiopError("3100", "reason is required to abort a settlement")
            return await self.ledger.write(abort, settlement_id, body.reason, body.externalReference)
        raise FspiopError("3100", "send participants with their accounts' states, or state ABORTED with a reason")

    async def get_participant(self, settlement_id: int, participant_id: int,
                              account_id: int | None = None) -> dict[str, Any]:
        return await self.ledger.write(_get_participant, settlement_id, participant_id, account_id)

    async def update_participant(self, settlement_id: int, participant_id: int,
                                 accounts: list[AccountUpdate]) -> dict[str, Any]:
        return await self.ledger.write(_update_participant, settlement_id, participant_id, None, accounts)

    async def update_account(self, settlement_id: int, participant_id: int, account_id: int,
                             body: OneAccountUpdate) -> dict[str, Any]:
        account = AccountUpdate(account_id, body.state, body.reason, body.externalReference)
        return await self.ledger.write(_update_participant, settlement_id, participant_id, account_id, [account])


# ------------------------------------------------------------------------------------ 1. create


def create(tx: Tx, model_name: str, reason: str, window_ids: list[int]) -> dict[str, Any]:
    model = tx.conn.execute("SELECT * FROM settlement_model WHERE name = ?", (model_name,)).fetchone()
    if model is None:
        raise FspiopError("3100", f"Settlement model not found: {model_name}")
    if model["settlement_granularity"] == "GROSS" or model["settlement_delay"] == "IMMEDIATE":
        raise FspiopError("3100", "Settlement can not be created for GROSS or IMMEDIATE models")
    marks = ", ".join("?" * len(window_ids))
    contents = tx.conn.execute(
        f"SELECT c.id, c.settlement_window_id, w.state AS window_state FROM settlement_window_content c "
        f"JOIN settlement_window w ON w.id = c.settlement_window_id WHERE c.settlement_window_id IN ({marks}) "
        "AND c.settlement_model_id = ? AND c.state IN ('CLOSED', 'ABORTED') "
        "AND w.state IN ('CLOSED', 'ABORTED', 'PENDING_SETTLEMENT')",
        (*window_ids, model["id"])).fetchall()
    applicable = {c["settlement_window_id"] for c in contents}
    inapplicable = [str(w) for w in window_ids if w not in applicable]
    if inapplicable:
        raise FspiopError("3100", f"Inapplicable windows {', '.join(inapplicable)}")

    settlement_id = tx.conn.execute(
        "INSERT INTO settlement (settlement_model_id, state, reason, created_date, changed_date) "
        "VALUES (?, 'PENDING_SETTLEMENT', ?, ?, ?) RETURNING id", (model["id"], reason, tx.now, tx.now)).fetchone()["id"]
    tx.conn.execute("INSERT INTO settlement_state_change (settlement_id, state, reason, created_date) "
                    "VALUES (?, 'PENDING_SETTLEMENT', ?, ?)", (settlement_id, reason, tx.now))
    tx.conn.executemany("INSERT INTO settlement_settlement_window (settlement_id, settlement_window_id, created_date) "
                        "VALUES (?, ?, ?)", [(settlement_id, w, tx.now) for w in window_ids])
    content_ids = [c["id"] for c in contents]
    cmarks = ", ".join("?" * len(content_ids))
    tx.conn.execute(f"UPDATE settlement_window_content SET settlement_id = ?, state = 'PENDING_SETTLEMENT', "
                    f"changed_date = ? WHERE id IN ({cmarks})", (settlement_id, tx.now, *content_ids))
    tx.conn.execute(f"UPDATE settlement_content_aggregation SET settlement_id = ?, state = 'PENDING_SETTLEMENT' "
                    f"WHERE settlement_window_content_id IN ({cmarks})", (settlement_id, *content_ids))
    accounts = tx.conn.execute(
        "INSERT INTO settlement_account (settlement_id, account_id, net_amount, state, reason, created_date, "
        "changed_date) SELECT ?1, account_id, SUM(amount), 'PENDING_SETTLEMENT', ?2, ?3, ?3 "
        "FROM settlement_content_aggregation WHERE settlement_id = ?1 GROUP BY account_id ORDER BY account_id "
        "RETURNING id", (settlement_id, reason, tx.now)).fetchall()
    tx.conn.executemany("INSERT INTO settlement_account_state_change (settlement_account_id, state, reason, "
                        "created_date) VALUES (?, 'PENDING_SETTLEMENT', ?, ?)",
                        [(a["id"], reason, tx.now) for a in accounts])
    for window in {c["settlement_window_id"]: c["window_state"] for c in contents}.items():
        if window[1] != "PENDING_SETTLEMENT":
            set_window_state(tx, window[0], "PENDING_SETTLEMENT", reason)
    _announce(tx, settlement_id, "PENDING_SETTLEMENT", reason)
    return settlement_body(tx.conn, _settlement(tx, settlement_id))


# ------------------------------------------------------------------------------------ 2. update


def update(tx: Tx, settlement_id: int, participants: list[ParticipantUpdate]) -> dict[str, Any]:
    """Apply the acknowledgements; answer each account with its new state or why not."""
    settlement = _settlement(tx, settlement_id)
    if settlement is None:
        raise FspiopError("3100", "Settlement not found")
    was = settlement["state"]
    accounts = {a["account_id"]: a for a in tx.conn.execute(
        "SELECT sa.*, a.participant_id, a.currency FROM settlement_account sa JOIN account a ON a.id = sa.account_id "
        "WHERE sa.settlement_id = ?", (settlement_id,)).fetchall()}
    states = {account_id: a["state"] for account_id, a in accounts.items()}
    processed: set[int] = set()
    answered = []
    for participant in participants:
        answers = []
        for wanted in participant.accounts:
            answers.append(_apply(tx, settlement, was, accounts, states, processed, participant.id, wanted))
        answered.append({"id": participant.id, "accounts": answers})

    counts = {step: sum(1 for s in states.values() if s == step) for step in STEPS}
    now_state, why = _follows(was, counts)
    if now_state is not None:
        tx.conn.execute("UPDATE settlement SET state = ?, reason = ?, changed_date = ? WHERE id = ?",
                        (now_state, why, tx.now, settlement_id))
        tx.conn.execute("INSERT INTO settlement_state_change (settlement_id, state, reason, created_date) "
                        "VALUES (?, ?, ?, ?)", (settlement_id, now_state, why, tx.now))
        _announce(tx, settlement_id, now_state, why)
    settled_now = [a for a, s in states.items() if s == "SETTLED" and accounts[a]["state"] != "SETTLED"]
    if settled_now:
        _mark_settled(tx, settlement_id, settled_now)
    row = _settlement(tx, settlement_id)
    return {"id": settlement_id, "state": row["state"], "reason": row["reason"], "createdDate": row["created_date"],
            "changedDate": row["changed_date"], "settlementWindows": _windows(tx.conn, settlement_id),
            "participants": answered}


def _apply(tx: Tx, settlement: sqlite3.Row, was: str, accounts: dict[int, sqlite3.Row], states: dict[int, str],
           processed: set[int], participant_id: int, wanted: AccountUpdate) -> dict[str, Any]:
    """One account's acknowledgement, with central-settlement's checks in its order."""
    account = accounts.get(wanted.id)
    if account is None:
        return {"id": wanted.id, "errorInformation": _refusal("Account not found")}
    if account["participant_id"] != participant_id:
        processed.add(wanted.id)
        return {"id": wanted.id, "errorInformation": _refusal("Participant and account mismatch")}
    current = {"id": wanted.id, "state": states[wanted.id], "reason": account["reason"],
               "netSettlementAmount": _amount(account["net_amount"], account["currency"])}
    if wanted.id in processed:
        return {**current, "errorInformation": _refusal("Account already processed once")}
    if wanted.state not in STEPS:
        processed.add(wanted.id)
        return {**current, "errorInformation": _refusal(f"State {wanted.state} is not an account state")}
    same = states[wanted.id] == wanted.state
    allowed = (states[wanted.id] in STEPS and STEPS.index(wanted.state) == STEPS.index(states[wanted.id]) + 1 and
               (was == STEPS[STEPS.index(wanted.state) - 1] or (wanted.state == "SETTLED" and was == "SETTLING")))
    if not (same or allowed):
        return {**current, "errorInformation": _refusal("State change not allowed")}
    processed.add(wanted.id)
    tx.conn.execute("UPDATE settlement_account SET state = ?, reason = ?, external_reference = ?, changed_date = ? "
                    "WHERE id = ?", (wanted.state, wanted.reason, wanted.externalReference, tx.now, account["id"]))
    tx.conn.execute("INSERT INTO settlement_account_state_change (settlement_account_id, state, reason, "
                    "external_reference, created_date) VALUES (?, ?, ?, ?, ?)",
                    (account["id"], wanted.state, wanted.reason, wanted.externalReference, tx.now))
    if allowed:
        states[wanted.id] = wanted.state
        if _auto_position_reset(tx, settlement):
            _move_ledger(tx, settlement, account, wanted.state)
    body = {"id": wanted.id, "state": wanted.state, "reason": wanted.reason, "createdDate": tx.now,
            "netSettlementAmount": current["netSettlementAmount"]}
    if wanted.externalReference is not None:
        body["externalReference"] = wanted.externalReference
    return body


def _follows(was: str, counts: dict[str, int]) -> tuple[str | None, str | None]:
    """The settlement's next state once its accounts have moved, and why (central-settlement's rule)."""
    if was == "PENDING_SETTLEMENT" and counts["PENDING_SETTLEMENT"] == 0:
        return "PS_TRANSFERS_RECORDED", "All settlement accounts are PS_TRANSFERS_RECORDED"
    if was == "PS_TRANSFERS_RECORDED" and counts["PS_TRANSFERS_RECORDED"] == 0:
        return "PS_TRANSFERS_RESERVED", "All settlement accounts are PS_TRANSFERS_RESERVED"
    if was == "PS_TRANSFERS_RESERVED" and counts["PS_TRANSFERS_RESERVED"] == 0:
        return "PS_TRANSFERS_COMMITTED", "All settlement accounts are PS_TRANSFERS_COMMITTED"
    if was in ("PS_TRANSFERS_COMMITTED", "SETTLING") and counts["PS_TRANSFERS_COMMITTED"] == 0:
        return "SETTLED", "All settlement accounts are SETTLED"
    if was == "PS_TRANSFERS_COMMITTED" and counts["SETTLED"] > 0:
        return "SETTLING", "Some settlement accounts are SETTLED"
    return None, None


def _mark_settled(tx: Tx, settlement_id: int, account_ids: list[int]) -> None:
    """Settled accounts settle their aggregation rows; content all of whose rows are settled is
    SETTLED, and so is a window all of whose content is."""
    marks = ", ".join("?" * len(account_ids))
    tx.conn.execute(f"UPDATE settlement_content_aggregation SET state = 'SETTLED' WHERE settlement_id = ? "
                    f"AND account_id IN ({marks})", (settlement_id, *account_ids))
    done = tx.conn.execute(
        "UPDATE settlement_window_content SET state = 'SETTLED', changed_date = ?1 WHERE settlement_id = ?2 "
        "AND state != 'SETTLED' AND NOT EXISTS (SELECT 1 FROM settlement_content_aggregation g "
        "WHERE g.settlement_window_content_id = settlement_window_content.id AND g.state != 'SETTLED') "
        "RETURNING settlement_window_id", (tx.now, settlement_id)).fetchall()
    for window_id in sorted({r["settlement_window_id"] for r in done}):
        if not tx.conn.execute("SELECT 1 FROM settlement_window_content WHERE settlement_window_id = ? "
                               "AND state != 'SETTLED'", (window_id,)).fetchone():
            set_window_state(tx, window_id, "SETTLED", "All settlement window content is SETTLED")


# ------------------------------------------------------------------------------------ the ledger


def _auto_position_reset(tx: Tx, settlement: sqlite3.Row) -> bool:
    row = tx.conn.execute("SELECT auto_position_reset FROM settlement_model WHERE id = ?",
                          (settlement["settlement_model_id"],)).fetchone()
    return bool(row["auto_position_reset"])


def _move_ledger(tx: Tx, settlement: sqlite3.Row, account: sqlite3.Row, step: str) -> None:
    """The settlement transfer's step for one account (see the module docstring)."""
    net = account["net_amount"]
    if step == "PS_TRANSFERS_RECORDED":
        transfer_id = str(uuid.uuid4())
        hub = hub_account(tx, account["currency"], "HUB_MULTILATERAL_SETTLEMENT")
        if hub is None:
            raise FspiopError("3003", f"Hub multilateral net settlement account for {account['currency']} "
                                      "does not exist")
        entry = "SETTLEMENT_NET_SENDER" if net > 0 else "SETTLEMENT_NET_RECIPIENT" if net < 0 else "SETTLEMENT_NET_ZERO"
        tx.conn.execute("INSERT INTO transfer (id, kind, amount, currency, state, reason, created_date) "
                        "VALUES (?, 'SETTLEMENT', ?, ?, 'RECEIVED_PREPARE', ?, ?)",
                        (transfer_id, abs(net), account["currency"], f"settlement {settlement['id']}", tx.now))
        tx.conn.execute("INSERT INTO transfer_state_change (transfer_id, state, reason, created_date) "
                        "VALUES (?, 'RECEIVED_PREPARE', 'Settlement transfer prepare', ?)", (transfer_id, tx.now))
        tx.conn.executemany(
            "INSERT INTO transfer_participant (transfer_id, account_id, role, ledger_entry_type, amount) "
            "VALUES (?, ?, ?, ?, ?)",
            [(transfer_id, hub["id"], "HUB", entry, net), (transfer_id, account["account_id"], "DFSP_POSITION", entry, -net)])
        tx.conn.execute("UPDATE settlement_account SET settlement_transfer_id = ? WHERE id = ?",
                        (transfer_id, account["id"]))
        return
    transfer_id = tx.conn.execute("SELECT settlement_transfer_id FROM settlement_account WHERE id = ?",
                                  (account["id"],)).fetchone()["settlement_transfer_id"]
    if transfer_id is None:  # recorded before autoPositionReset was turned on: nothing to move
        return
    if step == "PS_TRANSFERS_RESERVED":
        record_state(tx, transfer_id, "RESERVED", "Settlement transfer reserve")
        if net < 0:
            if settlement_requires_liquidity_check(tx, settlement):
                _raise_cap_if_needed(tx, account, -net)
            _move_both_sides(tx, transfer_id, account)
    elif step == "PS_TRANSFERS_COMMITTED":
        record_state(tx, transfer_id, "RECEIVED_FULFIL", "Settlement transfer commit initiated")
        record_state(tx, transfer_id, "COMMITTED", "Settlement transfer commit")
        tx.conn.execute("UPDATE transfer SET completed_date = ? WHERE id = ?", (tx.now, transfer_id))
        if net > 0:
            _move_both_sides(tx, transfer_id, account)


def settlement_requires_liquidity_check(tx: Tx, settlement: sqlite3.Row) -> bool:
    row = tx.conn.execute("SELECT require_liquidity_check FROM settlement_model WHERE id = ?",
                          (settlement["settlement_model_id"],)).fetchone()
    return bool(row["require_liquidity_check"])


def _move_both_sides(tx: Tx, transfer_id: str, account: sqlite3.Row, *, undo: bool = False) -> None:
    """Apply (or undo) a settlement transfer: the DFSP's position by -net, the Hub's by net."""
    sign = -1 if undo else 1
    for side in tx.conn.execute("SELECT account_id, role, amount FROM transfer_participant WHERE transfer_id = ? "
                                "ORDER BY id", (transfer_id,)).fetchall():
        value = change_position(tx, side["account_id"], sign * side["amount"], transfer_id)
        if side["role"] == "DFSP_POSITION":
            name = tx.conn.execute("SELECT p.name FROM participant p JOIN account a ON a.participant_id = p.id "
                                   "WHERE a.id = ?", (side["account_id"],)).fetchone()["name"]
            tx.emit(subjects.participant(name, "settlementPositionChange"), {
                "type": "participant.settlementPositionChange", "name": name, "currency": account["currency"],
                "change": money.format_amount(sign * side["amount"]), "position": money.format_amount(value),
                "settlementTransferId": transfer_id})


def _raise_cap_if_needed(tx: Tx, account: sqlite3.Row, amount: int) -> None:
    """requireLiquidityCheck: a net recipient whose position would pass its Net Debit Cap gets the
    cap raised by the amount, as central-settlement does."""
    row = tx.conn.execute("SELECT p.value + p.reserved_value AS effective, l.value AS ndc, l.id AS limit_id "
                          "FROM position p LEFT JOIN participant_limit l ON l.account_id = p.account_id "
                          "WHERE p.account_id = ?", (account["account_id"],)).fetchone()
    if row["limit_id"] is not None and row["ndc"] - row["effective"] - amount < 0:
        raised = tx.conn.execute("UPDATE participant_limit SET value = value + ?, changed_date = ? WHERE id = ? "
                                 "RETURNING value", (amount, tx.now, row["limit_id"])).fetchone()["value"]
        name = tx.conn.execute("SELECT p.name FROM participant p JOIN account a ON a.participant_id = p.id "
                               "WHERE a.id = ?", (account["account_id"],)).fetchone()["name"]
        tx.emit(subjects.participant(name, "limit"), {
            "type": "participant.limit", "name": name, "currency": account["currency"], "limitType": "NET_DEBIT_CAP",
            "value": money.format_amount(raised), "reason": "raised by settlement"})


# ------------------------------------------------------------------------------------ 3. abort


def abort(tx: Tx, settlement_id: int, reason: str, external_reference: str | None) -> dict[str, Any]:
    settlement = _settlement(tx, settlement_id)
    if settlement is None:
        raise FspiopError("3100", "Settlement not found")
    if settlement["state"] not in ABORTABLE:
        raise FspiopError("3100", f"State change is not allowed: the settlement is {settlement['state']}")
    if settlement["state"] != "ABORTED":
        if tx.conn.execute("SELECT 1 FROM settlement_account WHERE settlement_id = ? "
                           "AND state = 'PS_TRANSFERS_COMMITTED'", (settlement_id,)).fetchone():
            raise FspiopError("3100", "At least one settlement transfer is committed")
        for account in tx.conn.execute(
                "SELECT sa.*, a.currency FROM settlement_account sa JOIN account a ON a.id = sa.account_id "
                "WHERE sa.settlement_id = ?", (settlement_id,)).fetchall():
            tx.conn.execute("UPDATE settlement_account SET state = 'ABORTED', reason = ?, external_reference = ?, "
                            "changed_date = ? WHERE id = ?", (reason, external_reference, tx.now, account["id"]))
            tx.conn.execute("INSERT INTO settlement_account_state_change (settlement_account_id, state, reason, "
                            "external_reference, created_date) VALUES (?, 'ABORTED', ?, ?, ?)",
                            (account["id"], reason, external_reference, tx.now))
            _abort_transfer(tx, account)
        tx.conn.execute("UPDATE settlement_window_content SET state = 'ABORTED', changed_date = ? "
                        "WHERE settlement_id = ?", (tx.now, settlement_id))
        tx.conn.execute("UPDATE settlement_content_aggregation SET state = 'ABORTED' WHERE settlement_id = ?",
                        (settlement_id,))
        # a window goes back to ABORTED, to be settled again, unless another settlement still
        # holds part of it (a window with two currencies settled by two models)
        for window in tx.conn.execute(
                "SELECT ssw.settlement_window_id AS id FROM settlement_settlement_window ssw WHERE ssw.settlement_id = ? "
                "AND NOT EXISTS (SELECT 1 FROM settlement_window_content c WHERE c.settlement_window_id = "
                "ssw.settlement_window_id AND c.state = 'PENDING_SETTLEMENT')", (settlement_id,)).fetchall():
            set_window_state(tx, window["id"], "ABORTED", reason)
    tx.conn.execute("UPDATE settlement SET state = 'ABORTED', reason = ?, changed_date = ? WHERE id = ?",
                    (reason, tx.now, settlement_id))
    tx.conn.execute("INSERT INTO settlement_state_change (settlement_id, state, reason, created_date) "
                    "VALUES (?, 'ABORTED', ?, ?)", (settlement_id, reason, tx.now))
    _announce(tx, settlement_id, "ABORTED", reason)
    return {"id": settlement_id, "state": "ABORTED", "reason": reason}


def _abort_transfer(tx: Tx, account: sqlite3.Row) -> None:
    """End an account's settlement transfer; a net recipient's reservation is undone."""
    transfer_id = account["settlement_transfer_id"]
    if transfer_id is None:
        return
    state = tx.conn.execute("SELECT state FROM transfer WHERE id = ?", (transfer_id,)).fetchone()["state"]
    record_state(tx, transfer_id, "RECEIVED_REJECT", "Settlement transfer reject")
    record_state(tx, transfer_id, "ABORTED_REJECTED", "Settlement transfer abort")
    tx.conn.execute("UPDATE transfer SET completed_date = ? WHERE id = ?", (tx.now, transfer_id))
    if state == "RESERVED" and account["net_amount"] < 0:
        _move_both_sides(tx, transfer_id, account, undo=True)


# ------------------------------------------------------------------------------------ reads


def _get(tx: Tx, settlement_id: int) -> dict[str, Any]:
    settlement = _settlement(tx, settlement_id)
    if settlement is None:
        raise FspiopError("3100", "Settlement not found")
    return settlement_body(tx.conn, settlement)


def _find(tx: Tx, filters: dict[str, str]) -> list[dict[str, Any]]:
    sql = ("SELECT DISTINCT s.id FROM settlement s JOIN settlement_settlement_window ssw ON ssw.settlement_id = s.id "
           "JOIN settlement_window w ON w.id = ssw.settlement_window_id "
           "JOIN settlement_account sa ON sa.settlement_id = s.id JOIN account a ON a.id = sa.account_id WHERE 1 = 1")
    params: list[Any] = []
    for name, clause in (("state", "s.state = ?"), ("fromDateTime", "s.created_date >= ?"),
                         ("toDateTime", "s.created_date <= ?"), ("currency", "a.currency = ?"),
                         ("settlementWindowId", "w.id = ?"), ("fromSettlementWindowDateTime", "w.created_date >= ?"),
                         ("toSettlementWindowDateTime", "w.created_date <= ?"), ("participantId", "a.participant_id = ?"),
                         ("accountId", "a.id = ?")):
        if name in filters:
            sql += f" AND {clause}"
            params.append(filters[name])
    ids = [r["id"] for r in tx.conn.execute(sql + " ORDER BY s.id", params).fetchall()]
    if not ids:
        raise FspiopError("3100", "Settlements not found")

    def wanted(account: sqlite3.Row) -> bool:
        return (str(account["participant_id"]) == filters.get("participantId", str(account["participant_id"]))
                and str(account["account_id"]) == filters.get("accountId", str(account["account_id"]))
                and account["currency"] == filters.get("currency", account["currency"]))

    return [settlement_body(tx.conn, _settlement(tx, i), wanted) for i in ids]


def _get_participant(tx: Tx, settlement_id: int, participant_id: int, account_id: int | None) -> dict[str, Any]:
    settlement = _check_participant(tx, settlement_id, participant_id, account_id)
    body = settlement_body(tx.conn, settlement, lambda a: a["participant_id"] == participant_id and
                           (account_id is None or a["account_id"] == account_id))
    return {k: body[k] for k in ("id", "state", "settlementWindows", "participants")}


def _update_participant(tx: Tx, settlement_id: int, participant_id: int, account_id: int | None,
                        accounts: list[AccountUpdate]) -> dict[str, Any]:
    _check_participant(tx, settlement_id, participant_id, account_id)
    return update(tx, settlement_id, [ParticipantUpdate(participant_id, accounts)])


def _check_participant(tx: Tx, settlement_id: int, participant_id: int, account_id: int | None) -> sqlite3.Row:
    """central-settlement's checks for the participant and account forms, in its order."""
    settlement = _settlement(tx, settlement_id)
    if settlement is None:
        raise FspiopError("3100", "Settlement not found")
    if not tx.conn.execute("SELECT 1 FROM settlement_account sa JOIN account a ON a.id = sa.account_id "
                           "WHERE sa.settlement_id = ? AND a.participant_id = ?", (settlement_id, participant_id)).fetchone():
        raise FspiopError("3100", "Participant not in settlement")
    if account_id is not None:
        if not tx.conn.execute("SELECT 1 FROM account WHERE id = ? AND participant_id = ? AND ledger_account_type_id = 1",
                               (account_id, participant_id)).fetchone():
            raise FspiopError("3100", "Provided account does not match any participant position account")
        if not tx.conn.execute("SELECT 1 FROM settlement_account WHERE settlement_id = ? AND account_id = ?",
                               (settlement_id, account_id)).fetchone():
            raise FspiopError("3100", "Account not in settlement")
    return settlement


def settlement_body(conn: sqlite3.Connection, settlement: sqlite3.Row, wanted: Any = None) -> dict[str, Any]:
    """A settlement as the Settlement API shows it; `wanted(account)` keeps some accounts only."""
    accounts = conn.execute(
        "SELECT sa.*, a.participant_id, a.currency FROM settlement_account sa JOIN account a ON a.id = sa.account_id "
        "WHERE sa.settlement_id = ? ORDER BY a.participant_id, a.id", (settlement["id"],)).fetchall()
    participants: dict[int, list[dict[str, Any]]] = {}
    for a in accounts:
        if wanted is not None and not wanted(a):
            continue
        body = {"id": a["account_id"], "state": a["state"], "reason": a["reason"], "createdDate": a["changed_date"],
                "netSettlementAmount": _amount(a["net_amount"], a["currency"])}
        if a["external_reference"] is not None:
            body["externalReference"] = a["external_reference"]
        participants.setdefault(a["participant_id"], []).append(body)
    model = conn.execute("SELECT name FROM settlement_model WHERE id = ?", (settlement["settlement_model_id"],)).fetchone()
    return {
        "id": settlement["id"],
        "state": settlement["state"],
        "reason": settlement["reason"],
        "settlementModel": model["name"],
        "createdDate": settlement["created_date"],
        "changedDate": settlement["changed_date"],
        "settlementWindows": _windows(conn, settlement["id"]),
        "participants": [{"id": pid, "accounts": accs} for pid, accs in participants.items()],
    }


def _windows(conn: sqlite3.Connection, settlement_id: int) -> list[dict[str, Any]]:
    windows = conn.execute(
        "SELECT w.* FROM settlement_window w JOIN settlement_settlement_window ssw ON ssw.settlement_window_id = w.id "
        "WHERE ssw.settlement_id = ? ORDER BY w.id", (settlement_id,)).fetchall()
    content = conn.execute(_CONTENT + " WHERE c.settlement_id = ? ORDER BY c.id", (settlement_id,)).fetchall()
    return [{"id": w["id"], "state": w["state"], "reason": w["reason"], "createdDate": w["created_date"],
             "changedDate": w["changed_date"],
             "content": [content_body(c) for c in content if c["settlement_window_id"] == w["id"]]}
            for w in windows]


def _settlement(tx: Tx, settlement_id: int) -> sqlite3.Row | None:
    return tx.conn.execute("SELECT * FROM settlement WHERE id = ?", (settlement_id,)).fetchone()


def _amount(units: int, currency: str) -> dict[str, Any]:
    return {"amount": money.from_units(units), "currency": currency}


def _refusal(description: str) -> dict[str, Any]:
    return FspiopError("3000", description).body()["errorInformation"]


def _announce(tx: Tx, settlement_id: int, state: str, reason: str | None) -> None:
    tx.emit(subjects.settlement(settlement_id, state),
            {"type": f"settlement.{state}", "settlementId": settlement_id, "state": state, "reason": reason})
