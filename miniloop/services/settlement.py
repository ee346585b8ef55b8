"""Settlement windows as central-settlement shows them. Exactly one window is OPEN at a time;
the first is created with the ledger."""

from __future__ import annotations

import sqlite3
from typing import Any

from miniloop.fspiop.errors import FspiopError, not_found
from miniloop.ledger import Ledger

WINDOW_STATES = ("OPEN", "PROCESSING", "CLOSED", "PENDING_SETTLEMENT", "SETTLED", "ABORTED", "FAILED")


class SettlementWindows:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def get(self, window_id: int) -> dict[str, Any]:
        row = await self.ledger.fetch_one("SELECT * FROM settlement_window WHERE id = ?", (window_id,))
        if row is None:
            raise not_found(f"settlementWindowId: {window_id} not found")
        return _window_body(row)

    async def find(self, args: dict[str, str]) -> list[dict[str, Any]]:
        """GET /settlementWindows: at least one filter, as central-settlement requires."""
        filters = {k: v for k, v in args.items() if k in ("state", "fromDateTime", "toDateTime")}
        if not filters and "participantId" not in args:
            raise FspiopError("3100", "Use at least one parameter: participantId, state, fromDateTime, toDateTime")
        sql, params = "SELECT * FROM settlement_window WHERE 1 = 1", []
        if "state" in filters:
            if filters["state"] not in WINDOW_STATES:
                raise FspiopError("3100", f"state must be one of {', '.join(WINDOW_STATES)}")
            sql += " AND state = ?"
            params.append(filters["state"])
        if "fromDateTime" in filters:
            sql += " AND created_date >= ?"
            params.append(filters["fromDateTime"])
        if "toDateTime" in filters:
            sql += " AND created_date <= ?"
            params.append(filters["toDateTime"])
        rows = await self.ledger.fetch_all(sql + " ORDER BY id", tuple(params))
        if not rows:
            raise not_found("settlementWindow by filters not found")
        return [_window_body(r) for r in rows]


def _window_body(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "settlementWindowId": row["id"],
        "reason": row["reason"],
        "state": row["state"],
        "createdDate": row["created_date"],
        "changedDate": row["changed_date"],
    }
