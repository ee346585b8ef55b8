"""IMMEDIATE GROSS settlement: each transfer settled the moment it commits.

When the currency's settlement model for POSITION accounts is IMMEDIATE/GROSS/BILATERAL, the
commit of a transfer (miniloop.services.transfers.fulfil) is followed, in the same transaction,
by its settlement, as central-settlement's gross-settlement handler does after each commit: the
payer's and payee's POSITION accounts get the transfer's amounts reversed (so both go back to
where they were before it) and their SETTLEMENT accounts get the amounts themselves (the payer's
liquidity goes down for good, the payee's up). The transfer's state becomes SETTLED. There is
nothing to put in a window's settlement: Settlement API settlements are for DEFERRED NET models.
"""

from __future__ import annotations

import sqlite3

from miniloop import money
from miniloop.bus import subjects
from miniloop.ledger import Tx
from miniloop.services.participants import change_position
from miniloop.services.settlement_models import model_for

POSITION = 1  # ledger_account_type id


def settle_if_immediate(tx: Tx, t: sqlite3.Row) -> bool:
    """Settle the committed transfer `t` now if its currency is settled immediately; say whether."""
    model = model_for(tx, POSITION, t["currency"])
    if model is None or model["settlement_delay"] != "IMMEDIATE":
        return False
    sides = []
    for position_id, sign in ((t["payer_account_id"], 1), (t["payee_account_id"], -1)):
        settlement_id = _settlement_account(tx, position_id, model["settlement_account_type_id"])
        sides += [(position_id, "DFSP_POSITION", -sign * t["amount"]), (settlement_id, "DFSP_SETTLEMENT", sign * t["amount"])]
    tx.conn.executemany(
        "INSERT INTO transfer_participant (transfer_id, account_id, role, ledger_entry_type, amount) "
        "VALUES (?, ?, ?, 'PRINCIPLE_VALUE', ?)", [(t["id"], account, role, amount) for account, role, amount in sides])
    for account, _, amount in sides:
        change_position(tx, account, amount, t["id"])
    tx.conn.execute("UPDATE transfer SET state = 'SETTLED' WHERE id = ?", (t["id"],))
    tx.conn.execute("INSERT INTO transfer_state_change (transfer_id, state, reason, created_date) "
                    "VALUES (?, 'SETTLED', 'Gross settlement', ?)", (t["id"], tx.now))
    tx.emit(subjects.transfer(t["id"], "SETTLED"), {
        "type": "transfer.SETTLED", "transferId": t["id"], "state": "SETTLED", "transferState": "COMMITTED",
        "payerFsp": t["payer_fsp"], "payeeFsp": t["payee_fsp"], "amount": money.format_amount(t["amount"]),
        "currency": t["currency"], "settlementModel": model["name"]})
    return True


def _settlement_account(tx: Tx, position_id: int, settlement_type_id: int) -> int:
    """The DFSP's settlement account beside its position account."""
    return tx.cached(("settlement account of", position_id, settlement_type_id), lambda: tx.conn.execute(
        "SELECT s.id FROM account p JOIN account s ON s.participant_id = p.participant_id "
        "AND s.currency = p.currency AND s.ledger_account_type_id = ? WHERE p.id = ?",
        (settlement_type_id, position_id)).fetchone()["id"])
