"""Settlement models and ledger account types, as central-ledger's Admin API manages them.

A settlement model says how the money a DFSP moves is settled: gross or net, bilateral or
multilateral, immediately or deferred to a settlement window. Only four combinations are valid
(Mojaloop's list); anything else is refused with 3000.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from miniloop.bus import subjects
from miniloop.fspiop.errors import FspiopError, client_error, not_found
from miniloop.ledger import Ledger, Tx
from miniloop.services import inputs
from miniloop.services.participants import open_account, require_hub_accounts

VALID_COMBINATIONS = {  # (delay, granularity, interchange)
    ("IMMEDIATE", "GROSS", "BILATERAL"),
    ("DEFERRED", "GROSS", "BILATERAL"),
    ("DEFERRED", "NET", "BILATERAL"),
    ("DEFERRED", "NET", "MULTILATERAL"),
}
ACCOUNT_TYPE_NAME = re.compile(r"^\w{2,30}$")
MODEL_FIELDS = (
    "name", "settlementGranularity", "settlementInterchange", "settlementDelay", "currency",
    "requireLiquidityCheck", "ledgerAccountType", "settlementAccountType", "autoPositionReset",
)


class SettlementModels:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def list(self) -> list[dict[str, Any]]:
        rows = await self.ledger.fetch_all(_SELECT + " ORDER BY m.id")
        return [_model_body(r) for r in rows]

    async def get(self, name: str) -> dict[str, Any]:
        row = await self.ledger.fetch_one(_SELECT + " WHERE m.name = ?", (name,))
        if row is None:
            raise not_found(f"Settlement model {name} not found")
        return _model_body(row)

    async def create(self, body: dict[str, Any]) -> None:
        """POST /settlementModels: every field is required, as in Mojaloop."""
        for field in MODEL_FIELDS:
            if field not in body:
                raise inputs.malformed(f'"{field}" is required')
        inputs.no_other_fields(body, MODEL_FIELDS)
        model = {
            "name": inputs.participant_name(body["name"]),  # same rule: it is a NATS subject token
            "granularity": inputs.one_of(body["settlementGranularity"], "settlementGranularity", ("GROSS", "NET")),
            "interchange": inputs.one_of(
                body["settlementInterchange"], "settlementInterchange", ("BILATERAL", "MULTILATERAL")
            ),
            "delay": inputs.one_of(body["settlementDelay"], "settlementDelay", ("IMMEDIATE", "DEFERRED")),
            "currency": None if body["currency"] is None else inputs.currency(body["currency"]),
            "require_liquidity_check": inputs.boolean(body["requireLiquidityCheck"], "requireLiquidityCheck"),
            "ledger_account_type": inputs.text(body["ledgerAccountType"], "ledgerAccountType"),
            "settlement_account_type": inputs.text(body["settlementAccountType"], "settlementAccountType"),
            "auto_position_reset": inputs.boolean(body["autoPositionReset"], "autoPositionReset"),
        }
        await self.ledger.write(_create_model, model)

    async def set_active(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        active = inputs.boolean(inputs.required(body, "isActive"), "isActive")
        await self.ledger.write(_set_model_active, name, active)
        return await self.get(name)

    async def account_types(self) -> list[dict[str, Any]]:
        rows = await self.ledger.fetch_all("SELECT * FROM ledger_account_type ORDER BY id")
        return [
            {"ledgerAccountTypeId": r["id"], "name": r["name"], "description": r["description"],
             "isActive": r["is_active"], "createdDate": r["created_date"], "isSettleable": r["is_settleable"]}
            for r in rows
        ]

    async def create_account_type(self, body: dict[str, Any]) -> None:
        """POST /ledgerAccountTypes: a new kind of account (e.g. HUB_FEE)."""
        name = inputs.text(inputs.required(body, "name"), "name", max_length=30)
        if not ACCOUNT_TYPE_NAME.match(name):
            raise inputs.malformed('"name" must be 2 to 30 letters, digits or "_"')
        description = inputs.text(inputs.required(body, "description"), "description")
        is_active = inputs.boolean(inputs.required(body, "isActive"), "isActive")
        is_settleable = inputs.boolean(inputs.required(body, "isSettleable"), "isSettleable")
        await self.ledger.write(_create_account_type, name, description, is_active, is_settleable)


_SELECT = (
    "SELECT m.*, lt.name AS ledger_type, st.name AS settlement_type FROM settlement_model m "
    "JOIN ledger_account_type lt ON lt.id = m.ledger_account_type_id "
    "JOIN ledger_account_type st ON st.id = m.settlement_account_type_id"
)


def _model_body(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "settlementModelId": row["id"],
        "name": row["name"],
        "isActive": bool(row["is_active"]),
        "settlementGranularity": row["settlement_granularity"],
        "settlementInterchange": row["settlement_interchange"],
        "settlementDelay": row["settlement_delay"],
        "currency": row["currency"],
        "requireLiquidityCheck": bool(row["require_liquidity_check"]),
        "ledgerAccountTypeId": row["ledger_type"],
        "settlementAccountTypeId": row["settlement_type"],
        "autoPositionReset": bool(row["auto_position_reset"]),
    }


def model_for(tx: Tx, ledger_account_type_id: int, currency: str) -> sqlite3.Row | None:
    """The active model that settles accounts of this type in this currency: the currency's own
    model, else the default model (no currency), as Mojaloop chooses."""
    return tx.cached(("settlement model", ledger_account_type_id, currency), lambda: tx.conn.execute(
        "SELECT * FROM settlement_model WHERE ledger_account_type_id = ?1 AND is_active = 1 "
        "AND (currency = ?2 OR currency IS NULL) ORDER BY currency IS NULL LIMIT 1",
        (ledger_account_type_id, currency)).fetchone())


def _type_id(tx: Tx, name: str, what: str) -> int:
    row = tx.conn.execute("SELECT id FROM ledger_account_type WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise FspiopError("3003", f"{what} was not found")
    return row["id"]


def _create_model(tx: Tx, model: dict[str, Any]) -> None:
    """central-ledger's checks in its order: hub accounts, combination, account types, name."""
    currency = model["currency"]
    if currency is not None:
        require_hub_accounts(tx, currency)
    combination = (model["delay"], model["granularity"], model["interchange"])
    if combination not in VALID_COMBINATIONS:
        raise client_error(
            "Invalid settlement model definition - delay-granularity-interchange combination is not supported"
        )
    ledger_type = _type_id(tx, model["ledger_account_type"], "Ledger account type")
    settlement_type = _type_id(tx, model["settlement_account_type"], "Settlement account type")
    if tx.conn.execute("SELECT 1 FROM settlement_model WHERE name = ?", (model["name"],)).fetchone():
        raise client_error("Settlement Model already exists")
    clash = tx.conn.execute(
        "SELECT name FROM settlement_model WHERE ledger_account_type_id = ? AND currency IS ?",
        (ledger_type, model["currency"]),
    ).fetchone()
    if clash:
        raise client_error(
            f"Settlement model {clash['name']} already covers {model['ledger_account_type']} "
            f"accounts in {model['currency'] or 'the default currency'}"
        )
    tx.conn.execute(
        "INSERT INTO settlement_model (name, settlement_granularity, settlement_interchange, settlement_delay, "
        "currency, require_liquidity_check, ledger_account_type_id, settlement_account_type_id, "
        "auto_position_reset, is_active, created_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
        (model["name"], model["granularity"], model["interchange"], model["delay"], model["currency"],
         int(model["require_liquidity_check"]), ledger_type, settlement_type,
         int(model["auto_position_reset"]), tx.now),
    )
    # participants already in that currency get the model's two accounts, as in Mojaloop
    if model["currency"] is not None:
        holders = tx.conn.execute(
            "SELECT DISTINCT participant_id FROM account WHERE currency = ? AND participant_id != 1",
            (model["currency"],),
        ).fetchall()
        for holder in holders:
            for type_id in (ledger_type, settlement_type):
                open_account(tx, holder["participant_id"], model["currency"], type_id, active=False)
    tx.emit(subjects.settlement_model(model["name"], "created"),
            {"type": "settlementModel.created", "name": model["name"]})


def _set_model_active(tx: Tx, name: str, active: bool) -> None:
    updated = tx.conn.execute(
        "UPDATE settlement_model SET is_active = ? WHERE name = ? RETURNING id", (int(active), name)
    ).fetchone()
    if updated is None:
        raise not_found(f"Settlement model {name} not found")
    tx.emit(subjects.settlement_model(name, "updated"),
            {"type": "settlementModel.updated", "name": name, "isActive": active})


def _create_account_type(tx: Tx, name: str, description: str, is_active: bool, is_settleable: bool) -> None:
    """A new account type; as in Mojaloop, every DFSP gets an account of it in each of its currencies."""
    if tx.conn.execute("SELECT 1 FROM ledger_account_type WHERE name = ?", (name,)).fetchone():
        raise client_error("This Ledger Account Type already exists")
    type_id = tx.conn.execute(
        "INSERT INTO ledger_account_type (name, description, is_active, is_settleable, created_date) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (name, description, int(is_active), int(is_settleable), tx.now),
    ).fetchone()["id"]
    holders = tx.conn.execute(
        "SELECT DISTINCT participant_id, currency FROM account WHERE participant_id != 1"
    ).fetchall()
    for holder in holders:
        open_account(tx, holder["participant_id"], holder["currency"], type_id, active=True)
