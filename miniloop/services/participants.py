"""Participants, their accounts, limits, endpoints and funds: central-ledger's Admin API rules.

The Admin API (miniloop.api.admin) and the hub file (miniloop.seed) both call these methods, so a
hub seeded from a file is built exactly as an operator would build it through the API. Every
change is one writer command (miniloop.ledger.writer): its checks and its writes happen in one
transaction, so a request that fails changes nothing.

Sign conventions are central-ledger's: a positive position is what a DFSP owes the scheme; a
funded SETTLEMENT account has a negative value (liquidity cover = -value); a transfer's amount on
an account is positive for a debit and negative for a credit.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from miniloop import money
from miniloop.bus import subjects
from miniloop.fspiop import signature
from miniloop.fspiop.errors import FspiopError, client_error, not_found, validation_error
from miniloop.ledger import Ledger, Tx
from miniloop.services import inputs

HUB_NAME = "Hub"  # the hub's own participant, id 1, as Mojaloop seeds it
HUB_ACCOUNT_TYPES = ("HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT", "HUB_FEE")
ENDPOINT_TYPE_PATTERN = re.compile(r"^[A-Z][A-Z0-9_]{1,99}$")
LIMIT_TYPES = ("NET_DEBIT_CAP",)
FUNDS_ACTIONS = ("recordFundsIn", "recordFundsOutPrepareReserve")
FUNDS_OUT_FINISH_ACTIONS = ("recordFundsOutCommit", "recordFundsOutAbort")


class Participants:
    """The hub's participants as central-ledger keeps them."""

    def __init__(self, ledger: Ledger, base_url: str = "") -> None:
        self.ledger = ledger
        self.base_url = base_url  # for the `id` and `links.self` fields Mojaloop returns

    # ---------------------------------------------------------------- reads

    async def list(self, is_proxy: bool | None = None) -> list[dict[str, Any]]:
        rows = await self.ledger.fetch_all("SELECT * FROM participant ORDER BY id")
        accounts = await self._accounts_by_participant()
        return [
            self._participant_body(row, accounts.get(row["id"], []))
            for row in rows
            if is_proxy is None or bool(row["is_proxy"]) == is_proxy
        ]

    async def get(self, name: str) -> dict[str, Any]:
        row = await self._participant_row(name, "The requested resource could not be found.")
        accounts = await self._accounts_by_participant(row["id"])
        return self._participant_body(row, accounts.get(row["id"], []))

    async def endpoints(self, name: str) -> list[dict[str, str]]:
        row = await self._participant_row(name)
        rows = await self.ledger.fetch_all(
            "SELECT endpoint_type, value FROM participant_endpoint WHERE participant_id = ? "
            "ORDER BY endpoint_type",
            (row["id"],),
        )
        return [{"type": r["endpoint_type"], "value": r["value"]} for r in rows]

    async def limits(
        self, name: str | None = None, currency: str | None = None, limit_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Limits of one participant, or of all when `name` is None (GET /participants/limits)."""
        sql = (
            "SELECT p.name, a.currency, l.limit_type, l.value, l.threshold_alarm_percentage "
            "FROM participant_limit l JOIN account a ON a.id = l.account_id "
            "JOIN participant p ON p.id = a.participant_id WHERE 1 = 1"
        )
        params: list[Any] = []
        if name is not None:
            params.append((await self._participant_row(name))["id"])
            sql += " AND p.id = ?"
        if currency is not None:
            sql += " AND a.currency = ?"
            params.append(currency)
        if limit_type is not None:
            sql += " AND l.limit_type = ?"
            params.append(limit_type)
        rows = await self.ledger.fetch_all(sql + " ORDER BY p.id, a.currency", tuple(params))
        result = []
        for r in rows:
            item: dict[str, Any] = {
                "currency": r["currency"],
                "limit": {
                    "type": r["limit_type"],
                    "value": money.from_units(r["value"]),
                    "alarmPercentage": r["threshold_alarm_percentage"],
                },
            }
            if name is None:
                item = {"name": r["name"], **item}
            result.append(item)
        return result

    async def positions(self, name: str, currency: str | None = None) -> Any:
        """POSITION account values; one object when a currency is asked for, else a list."""
        row = await self._participant_row(name)
        rows = await self.ledger.fetch_all(
            "SELECT a.currency, p.value, p.changed_date FROM account a "
            "JOIN position p ON p.account_id = a.id "
            "WHERE a.participant_id = ? AND a.ledger_account_type_id = 1 "
            "AND (? IS NULL OR a.currency = ?) ORDER BY a.id",
            (row["id"], currency, currency),
        )
        items = [
            {"currency": r["currency"], "value": money.from_units(r["value"]), "changedDate": r["changed_date"]}
            for r in rows
        ]
        if currency is None:
            return items
        return items[0] if items else {}

    async def accounts(self, name: str) -> list[dict[str, Any]]:
        row = await self._participant_row(name)
        rows = await self.ledger.fetch_all(
            "SELECT a.id, t.name AS type, a.currency, a.is_active, p.value, p.reserved_value, "
            "p.changed_date FROM account a JOIN ledger_account_type t ON t.id = a.ledger_account_type_id "
            "LEFT JOIN position p ON p.account_id = a.id WHERE a.participant_id = ? ORDER BY a.id",
            (row["id"],),
        )
        return [
            {
                "id": r["id"],
                "ledgerAccountType": r["type"],
                "currency": r["currency"],
                "isActive": r["is_active"],
                "value": money.from_units(r["value"] or 0),
                "reservedValue": money.from_units(r["reserved_value"] or 0),
                "changedDate": r["changed_date"],
            }
            for r in rows
        ]

    async def _participant_row(self, name: str, missing: str = "Participant does not exist") -> sqlite3.Row:
        row = await self.ledger.fetch_one("SELECT * FROM participant WHERE name = ?", (name,))
        if row is None:
            raise not_found(missing)
        return row

    async def _accounts_by_participant(self, participant_id: int | None = None) -> dict[int, list[sqlite3.Row]]:
        rows = await self.ledger.fetch_all(
            "SELECT a.*, t.name AS type FROM account a "
            "JOIN ledger_account_type t ON t.id = a.ledger_account_type_id "
            "WHERE ? IS NULL OR a.participant_id = ? ORDER BY a.id",
            (participant_id, participant_id),
        )
        grouped: dict[int, list[sqlite3.Row]] = {}
        for r in rows:
            grouped.setdefault(r["participant_id"], []).append(r)
        return grouped

    def _participant_body(self, row: sqlite3.Row, accounts: list[sqlite3.Row]) -> dict[str, Any]:
        link = f"{self.base_url}/participants/{row['name']}"
        return {
            "name": row["name"],
            "id": link,
            "created": row["created_date"],
            "isActive": row["is_active"],
            "links": {"self": link},
            "accounts": [
                {
                    "id": a["id"],
                    "ledgerAccountType": a["type"],
                    "currency": a["currency"],
                    "isActive": a["is_active"],
                    "createdDate": a["created_date"],
                    "createdBy": row["created_by"],
                }
                for a in accounts
            ],
            "isProxy": bool(row["is_proxy"]),
        }

    # ---------------------------------------------------------------- writes

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /participants: a new participant (or a new currency for one) with its accounts."""
        name = inputs.participant_name(body.get("name"))
        currency = inputs.currency(body.get("currency"))
        is_proxy = inputs.boolean(body.get("isProxy", False), "isProxy")
        inputs.no_other_fields(body, ("name", "currency", "isProxy"))
        await self.ledger.write(_create_participant, name, currency, is_proxy)
        return await self.get(name)

    async def set_active(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /participants/{name}: activate or deactivate (its accounts keep their own flags)."""
        active = inputs.boolean(inputs.required(body, "isActive"), "isActive")
        await self.ledger.write(_set_participant_active, name, active)
        return await self.get(name)

    async def jws_key(self, name: str) -> dict[str, str]:
        """GET /participants/{name}/jwsKey: the public key its FSPIOP-Signatures are checked with."""
        row = await self._participant_row(name)
        if row["jws_public_key"] is None:
            raise not_found(f"Participant {name} has no JWS public key registered")
        return {"publicKey": row["jws_public_key"]}

    async def set_jws_key(self, name: str, body: dict[str, Any]) -> dict[str, str]:
        """PUT /participants/{name}/jwsKey: register (or replace) its RSA public key (PEM, >= 2048 bits),
        given as a public key or as an X.509 certificate (its key is stored)."""
        await self._participant_row(name)  # 3200 for an unknown participant, before the body
        inputs.no_other_fields(body, ("publicKey",))
        try:
            key = signature.public_key_from_pem(inputs.required(body, "publicKey"))
        except ValueError as exc:
            raise validation_error(str(exc)) from None
        await self.ledger.write(_set_jws_key, name, signature.pem_of(key))
        return await self.jws_key(name)

    async def remove_jws_key(self, name: str) -> None:
        """DELETE /participants/{name}/jwsKey: its requests are no longer checked."""
        await self.ledger.write(_set_jws_key, name, None)

    async def add_endpoint(self, name: str, body: dict[str, Any]) -> None:
        """POST /participants/{name}/endpoints: add or replace one callback endpoint."""
        endpoint_type = inputs.text(inputs.required(body, "type"), "type")
        if not ENDPOINT_TYPE_PATTERN.match(endpoint_type):
            raise inputs.malformed(f'"type" must be an endpoint type name, not {endpoint_type!r}')
        value = inputs.text(inputs.required(body, "value"), "value", max_length=512)
        await self.ledger.write(_upsert_endpoint, name, endpoint_type, value)

    async def initial_position_and_limits(self, name: str, body: dict[str, Any]) -> None:
        """POST .../initialPositionAndLimits: set the NDC and position, and activate the accounts."""
        currency = inputs.currency(body.get("currency"))
        limit = _limit(inputs.required(body, "limit"))
        initial = inputs.amount(body.get("initialPosition", 0), "initialPosition", allow_negative=True)
        await self.ledger.write(_initial_position_and_limits, name, currency, limit, money.to_units(initial))

    async def adjust_limit(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT /participants/{name}/limits: change the Net Debit Cap of one currency."""
        currency = inputs.currency(body.get("currency"))
        limit = _limit(inputs.required(body, "limit"), alarm_required=True)
        return await self.ledger.write(_adjust_limit, name, currency, limit)

    async def create_hub_account(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /participants/{name}/accounts: only the Hub has accounts created this way."""
        currency = inputs.currency(body.get("currency"))
        account_type = inputs.text(inputs.required(body, "type"), "type")
        await self.ledger.write(_create_hub_account, name, currency, account_type)
        return await self.get(name)

    async def set_account_active(self, name: str, account_id: int, body: dict[str, Any]) -> None:
        """PUT /participants/{name}/accounts/{id}: enable or disable one account."""
        active = inputs.boolean(inputs.required(body, "isActive"), "isActive")
        await self.ledger.write(_set_account_active, name, account_id, active)

    async def move_funds(self, name: str, account_id: int, body: dict[str, Any]) -> None:
        """POST /participants/{name}/accounts/{id}: recordFundsIn or recordFundsOutPrepareReserve.

        Mojaloop answers 202 and does the work later in its admin handler; miniloop does it before
        answering, so the 202 means done and a GET right after sees the new balance.
        """
        action = inputs.one_of(inputs.required(body, "action"), "action", FUNDS_ACTIONS)
        transfer_id = inputs.correlation_id(inputs.required(body, "transferId"), "transferId")
        external_reference = inputs.text(inputs.required(body, "externalReference"), "externalReference")
        reason = inputs.text(inputs.required(body, "reason"), "reason")
        amount_body = inputs.required(body, "amount")
        if not isinstance(amount_body, dict):
            raise inputs.malformed('"amount" must be an object with amount and currency')
        amount = inputs.amount(inputs.required(amount_body, "amount", '"amount.amount"'), "amount.amount")
        if amount <= 0:
            raise inputs.malformed('"amount.amount" must be greater than 0')
        currency = inputs.currency(amount_body.get("currency"), "amount.currency")
        funds = _Funds(transfer_id, money.to_units(amount), currency, reason, external_reference)
        command = _record_funds_in if action == "recordFundsIn" else _funds_out_prepare_reserve
        await self.ledger.write(command, name, account_id, funds)

    async def finish_funds_out(self, name: str, account_id: int, transfer_id: str, body: dict[str, Any]) -> None:
        """PUT .../accounts/{id}/transfers/{transferId}: recordFundsOutCommit or recordFundsOutAbort."""
        action = inputs.one_of(inputs.required(body, "action"), "action", FUNDS_OUT_FINISH_ACTIONS)
        reason = inputs.text(inputs.required(body, "reason"), "reason")
        await self.ledger.write(
            _finish_funds_out, name, account_id, transfer_id, action == "recordFundsOutCommit", reason
        )


# -------------------------------------------------------------------- input helpers


def _limit(body: Any, *, alarm_required: bool = False) -> dict[str, Any]:
    """A `limit` object; PUT /limits must say alarmPercentage (as Mojaloop requires), the first set may not."""
    if not isinstance(body, dict):
        raise inputs.malformed('"limit" must be an object with type and value')
    limit_type = inputs.one_of(inputs.required(body, "type", '"limit.type"'), "limit.type", LIMIT_TYPES)
    value = inputs.amount(inputs.required(body, "value", '"limit.value"'), "limit.value")
    if alarm_required:
        inputs.required(body, "alarmPercentage", '"limit.alarmPercentage"')
    alarm = body.get("alarmPercentage", 10)
    if isinstance(alarm, bool) or not isinstance(alarm, (int, float)) or not 0 <= alarm <= 100:
        raise inputs.malformed('"limit.alarmPercentage" must be a number from 0 to 100')
    return {"type": limit_type, "value": money.to_units(value), "alarmPercentage": int(alarm)}


@dataclass(frozen=True, slots=True)
class _Funds:
    """One funds-in or funds-out request, already validated."""

    transfer_id: str
    units: int
    currency: str
    reason: str
    external_reference: str


# -------------------------------------------------------------------- writer commands
# Each runs in the ledger's one writer inside its own savepoint (miniloop.ledger.writer).


def participant_row(tx: Tx, name: str) -> sqlite3.Row:
    row = tx.conn.execute("SELECT * FROM participant WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise not_found("Participant does not exist")
    return row


def account_type_id(tx: Tx, name: str) -> int | None:
    row = tx.conn.execute("SELECT id FROM ledger_account_type WHERE name = ?", (name,)).fetchone()
    return row["id"] if row else None


def hub_account(tx: Tx, currency: str, account_type: str) -> sqlite3.Row | None:
    return tx.conn.execute(
        "SELECT a.* FROM account a JOIN participant p ON p.id = a.participant_id "
        "JOIN ledger_account_type t ON t.id = a.ledger_account_type_id "
        "WHERE p.name = ? AND a.currency = ? AND t.name = ?",
        (HUB_NAME, currency, account_type),
    ).fetchone()


def require_hub_accounts(tx: Tx, currency: str) -> sqlite3.Row:
    """The Hub's reconciliation and net settlement accounts in `currency`, or 3003 as Mojaloop says;
    returns the reconciliation account, the counterparty of every funds-in and funds-out."""
    reconciliation = hub_account(tx, currency, "HUB_RECONCILIATION")
    if reconciliation is None:
        raise FspiopError("3003", "Hub reconciliation account for the specified currency does not exist")
    if hub_account(tx, currency, "HUB_MULTILATERAL_SETTLEMENT") is None:
        raise FspiopError("3003", "Hub multilateral net settlement account for the specified currency does not exist")
    return reconciliation


def change_position(tx: Tx, account_id: int, change: int, transfer_id: str | None) -> int:
    """Add `change` to an account's position and append it to the history; return the new value."""
    # SQLite silently turns an integer that overflows 64 bits into a float: refuse long before that
    row = tx.conn.execute(
        "UPDATE position SET value = value + ?1, changed_date = ?2 WHERE account_id = ?3 "
        "AND value + ?1 BETWEEN -?4 AND ?4 RETURNING value, reserved_value",
        (change, tx.now, account_id, money.BALANCE_MAX_UNITS),
    ).fetchone()
    if row is None:
        exists = tx.conn.execute("SELECT 1 FROM position WHERE account_id = ?", (account_id,)).fetchone()
        assert exists, f"account {account_id} has no position row"
        raise FspiopError("3100", "the amount would take the account's balance beyond what the ledger holds")
    record_position_change(tx, account_id, change, transfer_id, row)
    return row["value"]


def record_position_change(tx: Tx, account_id: int, change: int, transfer_id: str | None, after: Any) -> None:
    """Append a change to the account's position history; `after` holds the new value and reservation."""
    tx.conn.execute(
        "INSERT INTO position_change (account_id, transfer_id, change, value, reserved_value, created_date) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (account_id, transfer_id, change, after["value"], after["reserved_value"], tx.now),
    )


def _create_participant(tx: Tx, name: str, currency: str, is_proxy: bool) -> None:
    require_hub_accounts(tx, currency)
    row = tx.conn.execute("SELECT * FROM participant WHERE name = ?", (name,)).fetchone()
    if row is not None:
        if tx.conn.execute(
            "SELECT 1 FROM account WHERE participant_id = ? AND currency = ?", (row["id"], currency)
        ).fetchone():
            raise client_error("Participant currency has already been registered")
        participant_id = row["id"]
    else:
        participant_id = tx.conn.execute(
            "INSERT INTO participant (name, is_active, is_proxy, created_date) VALUES (?, 1, ?, ?) RETURNING id",
            (name, int(is_proxy), tx.now),
        ).fetchone()["id"]
        tx.emit(subjects.participant(name, "created"), {"type": "participant.created", "name": name})
    models = tx.conn.execute(
        "SELECT * FROM settlement_model WHERE is_active = 1 AND currency = ?", (currency,)
    ).fetchall() or tx.conn.execute(
        "SELECT * FROM settlement_model WHERE is_active = 1 AND currency IS NULL"
    ).fetchall()
    if not models:
        raise FspiopError("3000", "Unable to find a matching or default, Settlement Model")
    for model in models:
        for type_id in (model["ledger_account_type_id"], model["settlement_account_type_id"]):
            open_account(tx, participant_id, currency, type_id, active=False)
    tx.emit(
        subjects.participant(name, "currencyAdded"),
        {"type": "participant.currencyAdded", "name": name, "currency": currency},
    )


def open_account(tx: Tx, participant_id: int, currency: str, type_id: int, *, active: bool) -> int:
    """Create an account with its position row, unless the participant already has it."""
    tx.conn.execute(
        "INSERT OR IGNORE INTO currency (code, created_date) VALUES (?, ?)", (currency, tx.now)
    )
    existing = tx.conn.execute(
        "SELECT id FROM account WHERE participant_id = ? AND currency = ? AND ledger_account_type_id = ?",
        (participant_id, currency, type_id),
    ).fetchone()
    if existing:
        return existing["id"]
    account_id = tx.conn.execute(
        "INSERT INTO account (participant_id, currency, ledger_account_type_id, is_active, created_date) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (participant_id, currency, type_id, int(active), tx.now),
    ).fetchone()["id"]
    tx.conn.execute(
        "INSERT INTO position (account_id, value, reserved_value, changed_date) VALUES (?, 0, 0, ?)",
        (account_id, tx.now),
    )
    return account_id


def _set_participant_active(tx: Tx, name: str, active: bool) -> None:
    row = participant_row(tx, name)
    tx.conn.execute("UPDATE participant SET is_active = ? WHERE id = ?", (int(active), row["id"]))
    what = "activated" if active else "deactivated"
    tx.emit(subjects.participant(name, what), {"type": f"participant.{what}", "name": name})


def _set_jws_key(tx: Tx, name: str, pem: str | None) -> None:
    row = participant_row(tx, name)
    if row["name"] == HUB_NAME:
        raise client_error("the hub's own key is its signing key (GET /hub/jwsKey), not registered here")
    tx.conn.execute("UPDATE participant SET jws_public_key = ? WHERE id = ?", (pem, row["id"]))
    # a participant event: miniloop.services.directory drops its cache, the new key applies at once
    tx.emit(subjects.participant(name, "jwsKey"),
            {"type": "participant.jwsKey", "name": name, "registered": pem is not None})


def _upsert_endpoint(tx: Tx, name: str, endpoint_type: str, value: str) -> None:
    row = participant_row(tx, name)
    tx.conn.execute(
        "INSERT INTO participant_endpoint (participant_id, endpoint_type, value, changed_date) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (participant_id, endpoint_type) "
        "DO UPDATE SET value = excluded.value, changed_date = excluded.changed_date",
        (row["id"], endpoint_type, value, tx.now),
    )
    tx.emit(
        subjects.participant(name, "endpoint"),
        {"type": "participant.endpoint", "name": name, "endpointType": endpoint_type, "value": value},
    )


def _accounts_of(tx: Tx, participant_id: int, currency: str) -> dict[str, sqlite3.Row]:
    rows = tx.conn.execute(
        "SELECT a.*, t.name AS type FROM account a JOIN ledger_account_type t ON t.id = a.ledger_account_type_id "
        "WHERE a.participant_id = ? AND a.currency = ?",
        (participant_id, currency),
    ).fetchall()
    return {r["type"]: r for r in rows}


def _initial_position_and_limits(tx: Tx, name: str, currency: str, limit: dict[str, Any], initial: int) -> None:
    row = participant_row(tx, name)
    accounts = _accounts_of(tx, row["id"], currency)
    position, settlement = accounts.get("POSITION"), accounts.get("SETTLEMENT")
    if position is None or settlement is None:
        raise client_error(f"Participant has no {currency} POSITION and SETTLEMENT accounts")
    already = tx.conn.execute(
        "SELECT 1 FROM participant_limit WHERE account_id = ?", (position["id"],)
    ).fetchone() or tx.conn.execute(
        "SELECT 1 FROM position_change WHERE account_id IN (?, ?)", (position["id"], settlement["id"])
    ).fetchone()
    if already:
        raise client_error("Participant Limit or Initial Position already set")
    tx.conn.execute(
        "INSERT INTO participant_limit (account_id, limit_type, value, threshold_alarm_percentage, changed_date) "
        "VALUES (?, ?, ?, ?, ?)",
        (position["id"], limit["type"], limit["value"], limit["alarmPercentage"], tx.now),
    )
    if initial:
        change_position(tx, position["id"], initial, None)
    tx.conn.execute(
        "UPDATE account SET is_active = 1 WHERE id IN (?, ?)", (position["id"], settlement["id"])
    )
    tx.emit(
        subjects.participant(name, "limit"),
        {"type": "participant.limit", "name": name, "currency": currency,
         "limitType": limit["type"], "value": money.format_amount(limit["value"])},
    )


def _adjust_limit(tx: Tx, name: str, currency: str, limit: dict[str, Any]) -> dict[str, Any]:
    row = participant_row(tx, name)
    position = _accounts_of(tx, row["id"], currency).get("POSITION")
    if position is None:
        raise not_found(f"Participant has no {currency} POSITION account")
    updated = tx.conn.execute(
        "UPDATE participant_limit SET value = ?, threshold_alarm_percentage = ?, changed_date = ? "
        "WHERE account_id = ? AND limit_type = ? RETURNING id",
        (limit["value"], limit["alarmPercentage"], tx.now, position["id"], limit["type"]),
    ).fetchone()
    if updated is None:
        raise not_found("Participant limit does not exist")
    tx.emit(
        subjects.participant(name, "limit"),
        {"type": "participant.limit", "name": name, "currency": currency,
         "limitType": limit["type"], "value": money.format_amount(limit["value"])},
    )
    return {
        "currency": currency,
        "limit": {"type": limit["type"], "value": money.from_units(limit["value"]),
                  "alarmPercentage": limit["alarmPercentage"]},
    }


def _create_hub_account(tx: Tx, name: str, currency: str, account_type: str) -> None:
    """The checks and their order are central-ledger's; every failure is 3003."""
    row = tx.conn.execute("SELECT * FROM participant WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise FspiopError("3003", "Participant was not found.")
    type_id = account_type_id(tx, account_type)
    if type_id is None:
        raise FspiopError("3003", "Ledger account type was not found.")
    if tx.conn.execute(
        "SELECT 1 FROM account WHERE participant_id = ? AND currency = ? AND ledger_account_type_id = ?",
        (row["id"], currency, type_id),
    ).fetchone():
        raise FspiopError("3003", "Hub account has already been registered.")
    if name != HUB_NAME:
        raise FspiopError("3003", "Endpoint is reserved for creation of Hub account types only.")
    if account_type not in HUB_ACCOUNT_TYPES:
        raise FspiopError("3003", "The requested hub operator account type is not allowed.")
    open_account(tx, row["id"], currency, type_id, active=True)
    tx.emit(
        subjects.participant(name, "account"),
        {"type": "participant.account", "name": name, "currency": currency, "ledgerAccountType": account_type},
    )


def _set_account_active(tx: Tx, name: str, account_id: int, active: bool) -> None:
    row = participant_row(tx, name)
    account = tx.conn.execute("SELECT * FROM account WHERE id = ?", (account_id,)).fetchone()
    if account is None:
        raise not_found("Account not found")
    if account["participant_id"] != row["id"]:
        raise client_error("Participant/account mismatch")
    if account["ledger_account_type_id"] != 1:
        raise client_error("Only position account update is permitted")
    tx.conn.execute("UPDATE account SET is_active = ? WHERE id = ?", (int(active), account_id))
    what = "accountActivated" if active else "accountDeactivated"
    tx.emit(subjects.participant(name, what), {"type": f"participant.{what}", "name": name, "accountId": account_id})


def _settlement_account(tx: Tx, name: str, account_id: int, currency: str | None) -> sqlite3.Row:
    """The DFSP account funds move through; central-ledger's checks, in its order."""
    row = participant_row(tx, name)
    if not row["is_active"]:
        raise client_error("Participant is currently set inactive")
    account = tx.conn.execute(
        "SELECT a.*, t.name AS type FROM account a JOIN ledger_account_type t ON t.id = a.ledger_account_type_id "
        "WHERE a.id = ?",
        (account_id,),
    ).fetchone()
    if account is None or account["participant_id"] != row["id"] or currency not in (None, account["currency"]):
        raise client_error("The account does not match participant or currency specified")
    if not account["is_active"]:
        raise client_error("Account is currently set inactive")
    if account["type"] != "SETTLEMENT":
        raise client_error("Account is not SETTLEMENT type")
    return account


def _is_resend(tx: Tx, funds: _Funds, kind: str, account_id: int) -> bool:
    """True when this transfer id was recorded already with the same content (a resend, no-op).

    The same id with other content is refused with 3106, the FSPIOP rule for a modified request.
    """
    existing = tx.conn.execute(
        "SELECT t.kind, t.amount, t.currency, tp.account_id FROM transfer t "
        "LEFT JOIN transfer_participant tp ON tp.transfer_id = t.id AND tp.role = 'DFSP_SETTLEMENT' "
        "WHERE t.id = ?",
        (funds.transfer_id,),
    ).fetchone()
    if existing is None:
        return False
    if (existing["kind"], existing["amount"], existing["currency"], existing["account_id"]) != (
        kind, funds.units, funds.currency, account_id
    ):
        raise FspiopError("3106", f"Transfer {funds.transfer_id} was recorded with other details")
    return True


def _new_admin_transfer(tx: Tx, funds: _Funds, kind: str, state: str) -> None:
    tx.conn.execute(
        "INSERT INTO transfer (id, kind, amount, currency, state, external_reference, reason, created_date) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (funds.transfer_id, kind, funds.units, funds.currency, state, funds.external_reference,
         funds.reason, tx.now),
    )
    record_state(tx, funds.transfer_id, state, funds.reason)


def record_state(tx: Tx, transfer_id: str, state: str, reason: str | None = None) -> None:
    """Set a transfer's state and append it to the transfer's history."""
    tx.conn.execute("UPDATE transfer SET state = ? WHERE id = ?", (state, transfer_id))
    tx.conn.execute(
        "INSERT INTO transfer_state_change (transfer_id, state, reason, created_date) VALUES (?, ?, ?, ?)",
        (transfer_id, state, reason, tx.now),
    )


def _record_funds_in(tx: Tx, name: str, account_id: int, funds: _Funds) -> None:
    """Funds in: the Hub's reconciliation account is debited, the DFSP's settlement account credited."""
    account = _settlement_account(tx, name, account_id, funds.currency)
    reconciliation = require_hub_accounts(tx, funds.currency)
    if _is_resend(tx, funds, "FUNDS_IN", account["id"]):
        return
    _new_admin_transfer(tx, funds, "FUNDS_IN", "RECEIVED_PREPARE")
    _add_parties(tx, funds, reconciliation["id"], account["id"], "RECORD_FUNDS_IN")
    record_state(tx, funds.transfer_id, "RESERVED")
    change_position(tx, reconciliation["id"], funds.units, funds.transfer_id)
    value = change_position(tx, account["id"], -funds.units, funds.transfer_id)
    _commit_admin_transfer(tx, funds.transfer_id)
    tx.emit(
        subjects.participant(name, "fundsIn"),
        {"type": "participant.fundsIn", "name": name, "transferId": funds.transfer_id,
         "amount": money.format_amount(funds.units), "currency": funds.currency,
         "settlementBalance": money.format_amount(value)},
    )


def _add_parties(tx: Tx, funds: _Funds, hub_account_id: int, dfsp_account_id: int, entry: str) -> None:
    sign = 1 if entry == "RECORD_FUNDS_IN" else -1
    tx.conn.executemany(
        "INSERT INTO transfer_participant (transfer_id, account_id, role, ledger_entry_type, amount) "
        "VALUES (?, ?, ?, ?, ?)",
        [
            (funds.transfer_id, hub_account_id, "HUB", entry, sign * funds.units),
            (funds.transfer_id, dfsp_account_id, "DFSP_SETTLEMENT", entry, -sign * funds.units),
        ],
    )


def _commit_admin_transfer(tx: Tx, transfer_id: str) -> None:
    record_state(tx, transfer_id, "COMMITTED")
    tx.conn.execute("UPDATE transfer SET completed_date = ? WHERE id = ?", (tx.now, transfer_id))


def _funds_out_prepare_reserve(tx: Tx, name: str, account_id: int, funds: _Funds) -> None:
    """Funds out, first half: the DFSP's settlement account is debited now, the Hub's at commit.

    As in central-ledger, a funds-out larger than the available balance is recorded and aborted
    at once ("Aborted due to insufficient funds") rather than refused.
    """
    account = _settlement_account(tx, name, account_id, funds.currency)
    reconciliation = require_hub_accounts(tx, funds.currency)
    if _is_resend(tx, funds, "FUNDS_OUT", account["id"]):
        return
    _new_admin_transfer(tx, funds, "FUNDS_OUT", "RECEIVED_PREPARE")
    _add_parties(tx, funds, reconciliation["id"], account["id"], "RECORD_FUNDS_OUT")
    balance = tx.conn.execute("SELECT value FROM position WHERE account_id = ?", (account["id"],)).fetchone()["value"]
    if balance + funds.units > 0:
        record_state(tx, funds.transfer_id, "ABORTED_REJECTED", "Aborted due to insufficient funds")
        tx.emit(
            subjects.transfer(funds.transfer_id, "ABORTED_REJECTED"),
            {"type": "transfer.fundsOutRejected", "transferId": funds.transfer_id, "name": name,
             "reason": "Aborted due to insufficient funds"},
        )
        return
    change_position(tx, account["id"], funds.units, funds.transfer_id)
    record_state(tx, funds.transfer_id, "RESERVED")
    tx.emit(
        subjects.participant(name, "fundsOutReserved"),
        {"type": "participant.fundsOutReserved", "name": name, "transferId": funds.transfer_id,
         "amount": money.format_amount(funds.units), "currency": funds.currency},
    )


def _finish_funds_out(
    tx: Tx, name: str, account_id: int, transfer_id: str, commit: bool, reason: str
) -> None:
    _settlement_account(tx, name, account_id, None)
    transfer = tx.conn.execute(
        "SELECT * FROM transfer WHERE id = ? AND kind = 'FUNDS_OUT'", (transfer_id,)
    ).fetchone()
    if transfer is None:
        raise not_found(f"Transfer {transfer_id} not found")
    sides = {
        r["role"]: r
        for r in tx.conn.execute(
            "SELECT * FROM transfer_participant WHERE transfer_id = ?", (transfer_id,)
        ).fetchall()
    }
    if sides["DFSP_SETTLEMENT"]["account_id"] != account_id:
        raise client_error("Participant/account mismatch")
    if transfer["state"] != "RESERVED":
        raise client_error(f"Transfer is {transfer['state']}, only a RESERVED funds-out can be finished")
    units = transfer["amount"]
    if commit:
        change_position(tx, sides["HUB"]["account_id"], -units, transfer_id)
        record_state(tx, transfer_id, "RECEIVED_FULFIL", reason)
        _commit_admin_transfer(tx, transfer_id)
        what = "fundsOutCommitted"
    else:
        change_position(tx, account_id, -units, transfer_id)
        record_state(tx, transfer_id, "RECEIVED_REJECT", reason)
        record_state(tx, transfer_id, "ABORTED_REJECTED", reason)
        what = "fundsOutAborted"
    tx.emit(
        subjects.participant(name, what),
        {"type": f"participant.{what}", "name": name, "transferId": transfer_id,
         "amount": money.format_amount(units), "currency": transfer["currency"]},
    )
