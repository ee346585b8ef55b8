"""Settlement windows: the periods whose committed transfers are settled together.

Exactly one window is OPEN; every transfer committed while it is open is stamped with it
(miniloop.services.transfers). Closing it (POST /settlementWindows/{id} with state CLOSED) opens
the next one and records, for every (ledger account type, currency) settled by a NET model, a
*content* row, and per account the sum of the position changes those transfers made, split into
what it paid and what it received (the *aggregation*). Settlements (miniloop.services.settlements)
are computed from the aggregation, never from the transfers again.

Window states: OPEN -> PROCESSING -> CLOSED (or FAILED); CLOSED|ABORTED -> PENDING_SETTLEMENT when
a settlement takes the window; -> SETTLED once all its content is settled; -> ABORTED when its
settlement is aborted, after which it can be settled again. central-settlement closes a window
in a background handler (PROCESSING for a moment, then CLOSED); miniloop does both steps in the
one transaction of the request, so a window is never seen in PROCESSING, and returns the new OPEN
window as central-settlement does.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from miniloop.bus import subjects
from miniloop.fspiop.errors import FspiopError
from miniloop.ledger import Ledger, Tx
from miniloop.services.settlement_models import model_for

WINDOW_STATES = ("OPEN", "PROCESSING", "CLOSED", "PENDING_SETTLEMENT", "SETTLED", "ABORTED", "FAILED")
WINDOW_FILTERS = ("participantId", "state", "fromDateTime", "toDateTime", "currency")


class WindowClosure(msgspec.Struct, forbid_unknown_fields=True):
    """The body of POST /settlementWindows/{id}."""

    state: str
    reason: str


class SettlementWindows:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def get(self, window_id: int) -> dict[str, Any]:
        row = await self.ledger.fetch_one("SELECT * FROM settlement_window WHERE id = ?", (window_id,))
        if row is None:
            raise FspiopError("3100", f"settlementWindowId: {window_id} not found")
        content = await self.ledger.fetch_all(_CONTENT + " WHERE c.settlement_window_id = ? ORDER BY c.id",
                                              (window_id,))
        return window_body(row, content)

    async def find(self, args: dict[str, str]) -> list[dict[str, Any]]:
        """GET /settlementWindows: at least one filter, as central-settlement requires."""
        filters = {k: v for k, v in args.items() if k in WINDOW_FILTERS and v != ""}
        if not filters:
            raise FspiopError("3100", "Use at least one parameter: participantId, state, fromDateTime, toDateTime, "
                                      "currency")
        sql, params = "SELECT DISTINCT w.* FROM settlement_window w", []
        if "participantId" in filters or "currency" in filters:
            sql += (" JOIN transfer t ON t.settlement_window_id = w.id "
                    "JOIN transfer_participant tp ON tp.transfer_id = t.id JOIN account a ON a.id = tp.account_id")
        sql += " WHERE 1 = 1"
        if "state" in filters:
            if filters["state"] not in WINDOW_STATES:
                raise FspiopError("3100", f"state must be one of {', '.join(WINDOW_STATES)}")
            sql += " AND w.state = ?"
            params.append(filters["state"])
        if "participantId" in filters:
            sql += " AND a.participant_id = ?"
            params.append(_integer(filters["participantId"], "participantId"))
        if "currency" in filters:
            sql += " AND a.currency = ?"
            params.append(filters["currency"])
        if "fromDateTime" in filters:
            sql += " AND w.created_date >= ?"
            params.append(filters["fromDateTime"])
        if "toDateTime" in filters:
            sql += " AND w.created_date <= ?"
            params.append(filters["toDateTime"])
        rows = await self.ledger.fetch_all(sql + " ORDER BY w.id", tuple(params))
        if not rows:
            shown = ", ".join(f"{k}: {v}" for k, v in filters.items())
            raise FspiopError("3100", f"settlementWindow by filters: {{{shown}}} not found")
        content = await self.ledger.fetch_all(
            _CONTENT + f" WHERE c.settlement_window_id IN ({', '.join('?' * len(rows))}) ORDER BY c.id",
            tuple(r["id"] for r in rows))
        return [window_body(r, [c for c in content if c["settlement_window_id"] == r["id"]]) for r in rows]

    async def close(self, window_id: int, body: WindowClosure) -> dict[str, Any]:
        """Close the window; answer the new OPEN one."""
        if body.state != "CLOSED":
            raise FspiopError("3100", f"state must be CLOSED, not {body.state}")
        new_id = await self.ledger.write(close_window, window_id, body.reason)
        return await self.get(new_id)


# ------------------------------------------------------------------------------------ closing


def close_window(tx: Tx, window_id: int, reason: str) -> int:
    """OPEN -> PROCESSING -> CLOSED, a new OPEN window, and the content and aggregation of the
    closed one; return the new window's id. An empty window cannot be closed (3100), as in
    central-settlement: it would make a settlement of nothing."""
    window = tx.conn.execute("SELECT * FROM settlement_window WHERE id = ?", (window_id,)).fetchone()
    if window is None:
        raise FspiopError("3100", f"Window {window_id} does not exist")
    if window["state"] != "OPEN":
        raise FspiopError("3100", f"Window {window_id} is not open")
    if tx.conn.execute("SELECT 1 FROM transfer WHERE settlement_window_id = ? LIMIT 1", (window_id,)).fetchone() is None:
        raise FspiopError("3100", f"Window {window_id} is empty")

    set_window_state(tx, window_id, "PROCESSING", reason)
    new_id = tx.conn.execute(
        "INSERT INTO settlement_window (state, reason, created_date, changed_date) VALUES ('OPEN', ?, ?, ?) "
        "RETURNING id", (reason, tx.now, tx.now)).fetchone()["id"]
    tx.conn.execute("INSERT INTO settlement_window_state_change (settlement_window_id, state, reason, created_date) "
                    "VALUES (?, 'OPEN', ?, ?)", (new_id, reason, tx.now))
    _record_content(tx, window_id)
    set_window_state(tx, window_id, "CLOSED", reason)
    tx.emit(subjects.settlement_window(new_id, "OPEN"),
            {"type": "settlementWindow.OPEN", "settlementWindowId": new_id, "state": "OPEN", "reason": reason})
    return new_id


def _record_content(tx: Tx, window_id: int) -> None:
    """The window's content (per account type and currency with a NET model) and, per account,
    what its committed transfers moved: positive changes (paid) and negative ones (received)."""
    changes = tx.conn.execute(
        "SELECT a.id AS account_id, a.ledger_account_type_id, a.currency, "
        "       SUM(CASE WHEN pc.change > 0 THEN pc.change ELSE 0 END) AS paid, "
        "       SUM(CASE WHEN pc.change < 0 THEN pc.change ELSE 0 END) AS received "
        "FROM transfer t JOIN position_change pc ON pc.transfer_id = t.id JOIN account a ON a.id = pc.account_id "
        "WHERE t.settlement_window_id = ? GROUP BY a.id ORDER BY a.id",
        (window_id,),
    ).fetchall()
    contents: dict[tuple[int, str], int | None] = {}
    for change in changes:
        key = (change["ledger_account_type_id"], change["currency"])
        if key not in contents:
            model = net_model_for(tx, *key)
            contents[key] = None if model is None else tx.conn.execute(
                "INSERT INTO settlement_window_content (settlement_window_id, ledger_account_type_id, currency, "
                "settlement_model_id, state, created_date, changed_date) VALUES (?, ?, ?, ?, 'CLOSED', ?, ?) "
                "RETURNING id", (window_id, key[0], key[1], model["id"], tx.now, tx.now)).fetchone()["id"]
        content_id = contents[key]
        if content_id is None:
            continue
        for role, amount in (("PAYER_DFSP", change["paid"]), ("PAYEE_DFSP", change["received"])):
            if amount:
                tx.conn.execute(
                    "INSERT INTO settlement_content_aggregation (settlement_window_content_id, account_id, role, "
                    "amount, state) VALUES (?, ?, ?, ?, 'CLOSED')", (content_id, change["account_id"], role, amount))


def net_model_for(tx: Tx, ledger_account_type_id: int, currency: str) -> sqlite3.Row | None:
    """The NET settlement model that settles this account type in this currency, if any."""
    model = model_for(tx, ledger_account_type_id, currency)
    return model if model is not None and model["settlement_granularity"] == "NET" else None


def set_window_state(tx: Tx, window_id: int, state: str, reason: str | None) -> None:
    tx.conn.execute("UPDATE settlement_window SET state = ?, reason = ?, changed_date = ? WHERE id = ?",
                    (state, reason, tx.now, window_id))
    tx.conn.execute("INSERT INTO settlement_window_state_change (settlement_window_id, state, reason, created_date) "
                    "VALUES (?, ?, ?, ?)", (window_id, state, reason, tx.now))
    tx.emit(subjects.settlement_window(window_id, state),
            {"type": f"settlementWindow.{state}", "settlementWindowId": window_id, "state": state, "reason": reason})


# ------------------------------------------------------------------------------------ bodies

_CONTENT = ("SELECT c.*, lt.name AS ledger_account_type FROM settlement_window_content c "
            "JOIN ledger_account_type lt ON lt.id = c.ledger_account_type_id")


def window_body(row: sqlite3.Row, content: list[sqlite3.Row]) -> dict[str, Any]:
    """A window as the Settlement API shows it. The specification names its id `id`;
    central-settlement answers `settlementWindowId`. miniloop gives both (docs/settlement-api.md)."""
    return {
        "id": row["id"],
        "settlementWindowId": row["id"],
        "state": row["state"],
        "reason": row["reason"],
        "createdDate": row["created_date"],
        "changedDate": row["changed_date"],
        "content": [content_body(c) for c in content],
    }


def content_body(row: sqlite3.Row) -> dict[str, Any]:
    body = {
        "id": row["id"],
        "state": row["state"],
        "ledgerAccountType": row["ledger_account_type"],
        "currencyId": row["currency"],
        "createdDate": row["created_date"],
        "changedDate": row["changed_date"],
    }
    if row["settlement_id"] is not None:
        body["settlementId"] = row["settlement_id"]
    return body


def _integer(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise FspiopError("3100", f"{name} must be an integer, not {value}") from None
