"""Account lookup's registry: which oracle answers for which party id type, and the built-in oracle.

Oracles are registered through the ALS admin API (/oracles), as in Mojaloop. The built-in oracle
keeps parties in the ledger's `party` table; the seeded hub registers it for the party id types
its customers use. An oracle registered with another URL is called over HTTP with the ALS Oracle
API when lookups need it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from miniloop.bus import subjects
from miniloop.fspiop.errors import FspiopError
from miniloop.ledger import Ledger, Tx
from miniloop.services import inputs

PARTY_ID_TYPES = (
    "MSISDN", "EMAIL", "PERSONAL_ID", "BUSINESS", "DEVICE", "ACCOUNT_ID", "IBAN", "ALIAS",
    "CONSENT", "THIRD_PARTY_LINK",
)
ORACLE_FIELDS = ("oracleIdType", "endpoint", "currency", "isDefault")


class Oracles:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def list(self, party_id_type: str | None = None, currency: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT * FROM oracle WHERE is_active = 1", []
        if party_id_type:
            sql += " AND oracle_id_type = ?"
            params.append(party_id_type)
        if currency:
            sql += " AND currency = ?"
            params.append(currency)
        rows = await self.ledger.fetch_all(sql + " ORDER BY id", tuple(params))
        return [_oracle_body(r) for r in rows]

    async def create(self, body: dict[str, Any]) -> int:
        """POST /oracles: register an oracle for a party id type (and optionally a currency)."""
        oracle = _oracle_input(body)
        return await self.ledger.write(_create_oracle, oracle)

    async def update(self, oracle_id: int, body: dict[str, Any]) -> None:
        """PUT /oracles/{ID}: change any of the fields given."""
        oracle = _oracle_input(body, partial=True)
        await self.ledger.write(_update_oracle, oracle_id, oracle)

    async def delete(self, oracle_id: int) -> None:
        await self.ledger.write(_delete_oracle, oracle_id)

    async def move_builtin(self, url: str) -> None:
        """Point oracles registered at the built-in oracle's URL of an earlier run at this run's.

        The ALS admin port may change between runs (`--als-admin-port 0`, a new setting), and an
        oracle is registered by URL, as in Mojaloop.
        """
        await self.ledger.write(_move_builtin, url.rstrip("/"))

    async def ensure_builtin(self, party_id_types: tuple[str, ...], url: str) -> list[str]:
        """Register the built-in oracle at `url` as the default for each of these types that has
        no active oracle yet (the hub's own services: CONSENT and THIRD_PARTY_LINK); the types
        it registered."""
        return await self.ledger.write(_ensure_builtin, party_id_types, url.rstrip("/"))

    async def find_party(
        self, party_id_type: str, identifier: str, sub_id: str = "", currency: str | None = None
    ) -> list[dict[str, str]]:
        """The built-in oracle's answer: which DFSPs serve this party (any currency unless asked)."""
        rows = await self.ledger.fetch_all(PARTY_OWNERS_SQL, (party_id_type, identifier, sub_id, currency, currency))
        return party_owners(rows)

    async def delete_party(self, party_id_type: str, identifier: str, sub_id: str = "") -> None:
        await self.ledger.write(_delete_party, party_id_type, identifier, sub_id)

    async def register_party(
        self, party_id_type: str, identifier: str, fsp_id: str, sub_id: str = "", currency: str = ""
    ) -> None:
        """Record in the built-in oracle that `fsp_id` serves this party."""
        await self.ledger.write(record_party, party_id_type, identifier, sub_id, currency, fsp_id)


def _oracle_input(body: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    inputs.no_other_fields(body, ORACLE_FIELDS)
    oracle: dict[str, Any] = {}
    if not partial or "oracleIdType" in body:
        oracle["oracleIdType"] = inputs.one_of(inputs.required(body, "oracleIdType"), "oracleIdType", PARTY_ID_TYPES)
    if not partial or "endpoint" in body:
        endpoint = inputs.required(body, "endpoint")
        if not isinstance(endpoint, dict):
            raise inputs.malformed('"endpoint" must be an object with value and endpointType')
        oracle["endpointValue"] = inputs.text(inputs.required(endpoint, "value", '"endpoint.value"'), "endpoint.value", max_length=512)
        oracle["endpointType"] = inputs.one_of(
            inputs.required(endpoint, "endpointType", '"endpoint.endpointType"'), "endpoint.endpointType", ("URL",)
        )
    if body.get("currency") is not None:
        oracle["currency"] = inputs.currency(body["currency"])
    if "isDefault" in body:
        oracle["isDefault"] = inputs.boolean(body["isDefault"], "isDefault")
    elif not partial:
        oracle["isDefault"] = False
    return oracle


def _oracle_body(row: sqlite3.Row) -> dict[str, Any]:
    body: dict[str, Any] = {
        "oracleId": str(row["id"]),
        "oracleIdType": row["oracle_id_type"],
        "endpoint": {"value": row["endpoint_value"], "endpointType": row["endpoint_type"]},
        "isDefault": bool(row["is_default"]),
    }
    if row["currency"]:
        body["currency"] = row["currency"]
    return body


def _create_oracle(tx: Tx, oracle: dict[str, Any]) -> int:
    _refuse_duplicate(tx, oracle["oracleIdType"], oracle.get("currency"), oracle["endpointType"], None)
    if oracle["isDefault"]:
        _clear_default(tx, oracle["oracleIdType"], oracle.get("currency"))
    oracle_id = tx.conn.execute(
        "INSERT INTO oracle (oracle_id_type, endpoint_value, endpoint_type, currency, is_default, created_date) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (oracle["oracleIdType"], oracle["endpointValue"], oracle["endpointType"], oracle.get("currency"),
         int(oracle["isDefault"]), tx.now),
    ).fetchone()["id"]
    tx.emit(subjects.oracle(oracle_id, "created"),
            {"type": "oracle.created", "oracleId": oracle_id, "oracleIdType": oracle["oracleIdType"]})
    return oracle_id


def _refuse_duplicate(
    tx: Tx, party_id_type: str, currency: str | None, endpoint_type: str, oracle_id: int | None
) -> None:
    """One active oracle per party id type, currency and endpoint type, as the ALS allows."""
    duplicate = tx.conn.execute(
        "SELECT id FROM oracle WHERE is_active = 1 AND oracle_id_type = ? AND currency IS ? "
        "AND endpoint_type = ? AND id IS NOT ?",
        (party_id_type, currency, endpoint_type, oracle_id),
    ).fetchone()
    if duplicate:
        raise FspiopError(
            "3003", "Active oracle with matching partyIdType, endpointType and currency already exists"
        )


def _clear_default(tx: Tx, party_id_type: str, currency: str | None) -> None:
    """One default oracle per type and currency: a new default replaces the old."""
    tx.conn.execute(
        "UPDATE oracle SET is_default = 0 WHERE oracle_id_type = ? AND currency IS ?", (party_id_type, currency)
    )


def _existing_oracle(tx: Tx, oracle_id: int) -> sqlite3.Row:
    row = tx.conn.execute("SELECT * FROM oracle WHERE id = ? AND is_active = 1", (oracle_id,)).fetchone()
    if row is None:
        raise FspiopError("3003", "Oracle not found")
    return row


def _update_oracle(tx: Tx, oracle_id: int, oracle: dict[str, Any]) -> None:
    row = _existing_oracle(tx, oracle_id)
    party_id_type = oracle.get("oracleIdType", row["oracle_id_type"])
    currency = oracle.get("currency", row["currency"])
    _refuse_duplicate(tx, party_id_type, currency, oracle.get("endpointType", row["endpoint_type"]), oracle_id)
    if oracle.get("isDefault"):
        _clear_default(tx, party_id_type, currency)
    tx.conn.execute(
        "UPDATE oracle SET oracle_id_type = ?, endpoint_value = ?, endpoint_type = ?, currency = ?, is_default = ? "
        "WHERE id = ?",
        (party_id_type, oracle.get("endpointValue", row["endpoint_value"]),
         oracle.get("endpointType", row["endpoint_type"]), currency,
         int(oracle.get("isDefault", bool(row["is_default"]))), oracle_id),
    )
    tx.emit(subjects.oracle(oracle_id, "updated"), {"type": "oracle.updated", "oracleId": oracle_id})


def _delete_oracle(tx: Tx, oracle_id: int) -> None:
    """Soft delete; deleting an oracle that does not exist is not an error (as in the ALS)."""
    deleted = tx.conn.execute(
        "UPDATE oracle SET is_active = 0 WHERE id = ? AND is_active = 1 RETURNING id", (oracle_id,)
    ).fetchone()
    if deleted is None:
        return
    tx.emit(subjects.oracle(oracle_id, "deleted"), {"type": "oracle.deleted", "oracleId": oracle_id})


def _ensure_builtin(tx: Tx, party_id_types: tuple[str, ...], url: str) -> list[str]:
    added = []
    for party_id_type in party_id_types:
        if tx.conn.execute("SELECT 1 FROM oracle WHERE is_active = 1 AND oracle_id_type = ?",
                           (party_id_type,)).fetchone() is None:
            _create_oracle(tx, {"oracleIdType": party_id_type, "endpointValue": url, "endpointType": "URL",
                                "isDefault": True})
            added.append(party_id_type)
    return added


def _move_builtin(tx: Tx, url: str) -> None:
    row = tx.conn.execute("SELECT value FROM hub_setting WHERE key = 'builtin_oracle_url'").fetchone()
    if row is not None and row["value"] != url:
        tx.conn.execute("UPDATE oracle SET endpoint_value = ? WHERE endpoint_value = ?", (url, row["value"]))
    tx.conn.execute(
        "INSERT INTO hub_setting (key, value) VALUES ('builtin_oracle_url', ?) "
        "ON CONFLICT DO UPDATE SET value = excluded.value", (url,),
    )


PARTY_OWNERS_SQL = (
    "SELECT fsp_id, party_sub_id, currency FROM party WHERE party_id_type = ? AND party_identifier = ? "
    "AND party_sub_id = ? AND (? IS NULL OR currency IN ('', ?)) ORDER BY fsp_id"
)


def party_owners(rows: list[Any]) -> list[dict[str, str]]:
    """The oracle's partyList entries for the rows of PARTY_OWNERS_SQL."""
    found = []
    for r in rows:
        entry = {"fspId": r["fsp_id"]}
        if r["party_sub_id"]:
            entry["partySubIdOrType"] = r["party_sub_id"]
        if entry not in found:
            found.append(entry)
    return found


def find_party_in(tx: Tx, party_id_type: str, identifier: str, sub_id: str, currency: str | None) -> list[dict[str, str]]:
    """find_party inside a writer command."""
    return party_owners(tx.conn.execute(PARTY_OWNERS_SQL, (party_id_type, identifier, sub_id, currency, currency)).fetchall())


def record_party(tx: Tx, party_id_type: str, identifier: str, sub_id: str, currency: str, fsp_id: str) -> None:
    tx.conn.execute(
        "INSERT INTO party (party_id_type, party_identifier, party_sub_id, currency, fsp_id, created_date) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET fsp_id = excluded.fsp_id",
        (party_id_type, identifier, sub_id, currency, fsp_id, tx.now),
    )
    tx.emit(subjects.party(party_id_type, "registered"),
            {"type": "party.registered", "partyIdType": party_id_type, "partyIdentifier": identifier,
             "partySubIdOrType": sub_id or None, "fspId": fsp_id})


def _delete_party(tx: Tx, party_id_type: str, identifier: str, sub_id: str) -> None:
    deleted = tx.conn.execute(
        "DELETE FROM party WHERE party_id_type = ? AND party_identifier = ? AND party_sub_id = ? RETURNING fsp_id",
        (party_id_type, identifier, sub_id),
    ).fetchall()
    if deleted:
        tx.emit(subjects.party(party_id_type, "deleted"),
                {"type": "party.deleted", "partyIdType": party_id_type, "partyIdentifier": identifier,
                 "partySubIdOrType": sub_id or None})
