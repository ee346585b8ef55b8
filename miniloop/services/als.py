"""Account lookup (Mojaloop's account-lookup-service): who serves a party, and routing /parties.

A DFSP asks GET /parties/{Type}/{ID}; the hub asks the oracle registered for that party id type
(ALS admin API, /oracles) which FSP serves the party, and forwards the GET to it. The owner's
PUT /parties answer is routed back by FSPIOP-Destination like any callback. /participants
registers, finds and removes parties in the oracle, answered by a callback from the hub.

The oracle is called before the request is recorded (the Oracle API is synchronous), so the 202
follows the oracle's answer and the writer command that owes the resulting messages. The
built-in oracle (miniloop.services.oracles, served under /oracle on the ALS admin port) is
called directly rather than over HTTP; any other oracle with the ALS Oracle API over HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from miniloop.bus import subjects
from miniloop.fspiop.errors import FspiopError
from miniloop.ledger import Ledger, Tx
from miniloop.services import outbox
from miniloop.services.oracles import Oracles, find_party_in, record_party
from miniloop.services.outbox import Inbound

ORACLE_TIMEOUT_S = 5.0
OWNERS_MAX = 10  # a lookup is forwarded to at most this many FSPs


@dataclass(frozen=True, slots=True)
class PartyKey:
    id_type: str
    identifier: str
    sub_id: str = ""

    @property
    def path(self) -> str:
        return "/".join(p for p in (self.id_type, self.identifier, self.sub_id) if p)


class OracleUnavailable(Exception):
    pass


class AccountLookup:
    def __init__(self, ledger: Ledger, oracles: Oracles, builtin_url: str,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.ledger = ledger
        self.oracles = oracles
        self.builtin_url = builtin_url.rstrip("/")
        self.session = session  # for external oracles; set once the notifier's client exists

    # ---------------------------------------------------------------- /parties

    async def lookup(self, msg: Inbound, key: PartyKey, currency: str | None) -> None:
        """GET /parties: forward to each FSP that serves the party, or 3200 to the requester.

        With the built-in oracle (or none) this is one writer command; an external oracle is asked
        over HTTP first.
        """
        oracle = await self.ledger.write(_lookup_builtin, msg, key, currency, self.builtin_url)
        if oracle is None:
            return
        try:
            owners = self._owners(await self._ask(oracle, key, currency))
        except OracleUnavailable as exc:
            await self.ledger.write(_lookup_failed, msg, key, FspiopError("2003", str(exc)))
            return
        await self.ledger.write(_route_lookup, msg, key, owners)

    async def relay(self, msg: Inbound, method: str) -> None:
        """PUT /parties/... and its /error: a callback, routed to FSPIOP-Destination."""
        await self.ledger.write(_relay, msg, method)

    # ---------------------------------------------------------------- /participants

    async def register(self, msg: Inbound, key: PartyKey, fsp_id: str, currency: str | None) -> None:
        oracle = await self._oracle(key.id_type, currency)
        if oracle is None or oracle == self.builtin_url:
            await self.ledger.write(_register_builtin, msg, key, fsp_id, currency or "", oracle is not None)
            return
        problem = await self._call(oracle, "POST", f"/participants/{_quoted(key)}",
                                   {"fspId": fsp_id, **({"currency": currency} if currency else {})})
        await self.ledger.write(_participants_reply, msg, key, fsp_id,
                                FspiopError("3003", problem) if problem else None)

    async def find_owner(self, msg: Inbound, key: PartyKey, currency: str | None) -> None:
        try:
            owners = await self._find(key, currency)
        except OracleUnavailable as exc:
            owners, problem = [], FspiopError("2003", str(exc))
        else:
            problem = None if owners else FspiopError("3204", f"{key.id_type} {key.identifier} is not registered")
        await self.ledger.write(_participants_reply, msg, key, owners[0] if owners else None, problem)

    async def remove(self, msg: Inbound, key: PartyKey) -> None:
        oracle = await self._oracle(key.id_type, None)
        if oracle is None or oracle == self.builtin_url:
            owners = await self.oracles.find_party(key.id_type, key.identifier, key.sub_id)
            if not any(o["fspId"] == msg.source for o in owners):
                await self.ledger.write(_participants_reply, msg, key, None, FspiopError(
                    "3040", f"{key.id_type} {key.identifier} is not registered by {msg.source}"))
                return
            await self.oracles.delete_party(key.id_type, key.identifier, key.sub_id)
            await self.ledger.write(_participants_reply, msg, key, msg.source, None)
            return
        problem = await self._call(oracle, "DELETE", f"/participants/{_quoted(key)}", None)
        await self.ledger.write(_participants_reply, msg, key, msg.source,
                                FspiopError("3040", problem) if problem else None)

    async def register_batch(self, msg: Inbound, request_id: str, parties: list[dict[str, Any]],
                             currency: str | None) -> None:
        """POST /participants: register each party; one callback lists what failed."""
        results = []
        for party in parties:
            key = PartyKey(party["partyIdType"], party["partyIdentifier"], party.get("partySubIdOrType") or "")
            fsp_id = party.get("fspId") or msg.source
            oracle = await self._oracle(key.id_type, currency)
            if oracle is None:
                problem: FspiopError | None = FspiopError("3003", f"no oracle serves {key.id_type}")
            elif oracle == self.builtin_url:
                problem = await self._register_locally(key, fsp_id, currency or "")
            else:
                failed = await self._call(oracle, "POST", f"/participants/{_quoted(key)}", {"fspId": fsp_id})
                problem = FspiopError("3003", failed) if failed else None
            result: dict[str, Any] = {"partyId": party}
            if problem is not None:
                result.update(problem.body())
            results.append(result)
        body: dict[str, Any] = {"partyList": results}
        if currency:
            body["currency"] = currency
        await self.ledger.write(_batch_reply, msg, request_id, body)

    # ---------------------------------------------------------------- oracles

    async def _oracle(self, id_type: str, currency: str | None) -> str | None:
        rows = await self.ledger.fetch_all(ORACLE_SQL, (id_type, currency))
        return rows[0]["endpoint_value"].rstrip("/") if rows else None

    async def _find(self, key: PartyKey, currency: str | None) -> list[str]:
        oracle = await self._oracle(key.id_type, currency)
        if oracle is None:
            return []
        if oracle == self.builtin_url:
            found = await self.oracles.find_party(key.id_type, key.identifier, key.sub_id, currency)
        else:
            found = await self._ask(oracle, key, currency)
        return self._owners(found)

    @staticmethod
    def _owners(found: list[dict[str, Any]]) -> list[str]:
        owners: list[str] = []
        for entry in found:
            if entry.get("fspId") and entry["fspId"] not in owners:
                owners.append(entry["fspId"])
        return owners[:OWNERS_MAX]

    async def _ask(self, oracle: str, key: PartyKey, currency: str | None) -> list[dict[str, Any]]:
        params = {}
        if currency:
            params["currency"] = currency
        if key.sub_id:
            params["partySubIdOrType"] = key.sub_id
        url = f"{oracle}/participants/{quote(key.id_type)}/{quote(key.identifier, safe='@+')}"
        try:
            assert self.session is not None
            async with self.session.get(url, params=params, timeout=aiohttp.ClientTimeout(total=ORACLE_TIMEOUT_S)) as r:
                if r.status == 404:
                    return []
                if r.status != 200:
                    raise OracleUnavailable(f"the oracle answered {r.status}")
                body = await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OracleUnavailable(f"the oracle at {oracle} could not be asked: {exc}") from None
        party_list = body.get("partyList") if isinstance(body, dict) else None
        return [p for p in party_list or [] if isinstance(p, dict)]

    async def _call(self, oracle: str, method: str, path: str, body: dict[str, Any] | None) -> str:
        """A change at an external oracle; '' when done, else what went wrong."""
        try:
            assert self.session is not None
            async with self.session.request(method, oracle + path, json=body,
                                            timeout=aiohttp.ClientTimeout(total=ORACLE_TIMEOUT_S)) as r:
                await r.read()
                return "" if r.status < 300 else f"the oracle answered {r.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"the oracle at {oracle} could not be reached: {exc}"

    async def _register_locally(self, key: PartyKey, fsp_id: str, currency: str) -> FspiopError | None:
        try:
            await self.ledger.write(_register_checked, key, fsp_id, currency)
        except FspiopError as exc:
            return exc
        return None


# The endpoint of the oracle for a type: the currency's own first, then the default. A request
# without a currency may use any oracle of the type, as Mojaloop's ALS does.
ORACLE_SQL = (
    "SELECT endpoint_value FROM oracle WHERE oracle_id_type = ?1 AND is_active = 1 "
    "AND (?2 IS NULL OR currency IS NULL OR currency = ?2) "
    "ORDER BY (currency IS NOT NULL AND currency = ?2) DESC, is_default DESC, id LIMIT 1"
)


def _quoted(key: PartyKey) -> str:
    return "/".join(quote(p, safe="@+") for p in (key.id_type, key.identifier, key.sub_id) if p)


# -------------------------------------------------------------------- writer commands


def _lookup_builtin(tx: Tx, msg: Inbound, key: PartyKey, currency: str | None, builtin_url: str) -> str | None:
    """Route a lookup the built-in oracle answers (or that no oracle serves); else return the
    external oracle's URL for the caller to ask."""
    def load() -> str | None:
        row = tx.conn.execute(ORACLE_SQL, (key.id_type, currency)).fetchone()
        return row["endpoint_value"].rstrip("/") if row else None
    oracle = tx.cached(("oracle", key.id_type, currency), load)
    if oracle is not None and oracle != builtin_url:
        return oracle
    found = find_party_in(tx, key.id_type, key.identifier, key.sub_id, currency) if oracle else []
    _route_lookup(tx, msg, key, AccountLookup._owners(found))
    return None


def _route_lookup(tx: Tx, msg: Inbound, key: PartyKey, owners: list[str]) -> None:
    sent = []
    for owner in owners:
        active = tx.cached(("active", owner), lambda: tx.conn.execute(
            "SELECT is_active FROM participant WHERE name = ?", (owner,)).fetchone())
        if active and active["is_active"] and outbox.forward(
            tx, msg, owner, "GET", destination=owner, reply_error_to=msg.path + "/error"
        ):
            sent.append(owner)
    if not sent:
        problem = (FspiopError("3200", f"{key.id_type} {key.identifier}"
                               + (f" {key.sub_id}" if key.sub_id else "") + " is not registered")
                   if not owners else FspiopError("3201", f"{', '.join(owners)} cannot be reached"))
        outbox.reply_error(tx, msg, msg.path + "/error", problem)
    tx.emit(subjects.lookup(key.id_type, "requested"), {
        "type": "lookup.requested", "partyIdType": key.id_type, "partyIdentifier": key.identifier,
        "partySubIdOrType": key.sub_id or None, "requester": msg.source, "owners": sent,
    })


def _lookup_failed(tx: Tx, msg: Inbound, key: PartyKey, problem: FspiopError) -> None:
    outbox.reply_error(tx, msg, msg.path + "/error", problem)


def _relay(tx: Tx, msg: Inbound, method: str) -> None:
    to = msg.destination or ""
    if not outbox.forward(tx, msg, to, method):
        if not msg.path.endswith("/error"):  # an error about an error would go round in circles
            outbox.reply_error(tx, msg, msg.path + "/error",
                               FspiopError("3201", f"{to} is not a participant with an endpoint for this message"))
        return
    if method == "PUT" and not msg.path.endswith("/error") and msg.path.startswith("/parties/"):
        tx.emit(subjects.lookup(msg.path.split("/")[2], "answered"), {
            "type": "lookup.answered", "path": msg.path, "owner": msg.source, "requester": to,
        })


def _register_checked(tx: Tx, key: PartyKey, fsp_id: str, currency: str) -> None:
    row = tx.conn.execute("SELECT is_active FROM participant WHERE name = ?", (fsp_id,)).fetchone()
    if row is None:
        raise FspiopError("3003", f"{fsp_id} is not a registered participant")
    record_party(tx, key.id_type, key.identifier, key.sub_id, currency, fsp_id)


def _register_builtin(tx: Tx, msg: Inbound, key: PartyKey, fsp_id: str, currency: str, has_oracle: bool) -> None:
    """POST /participants/{Type}/{ID} with the built-in oracle: register and answer in one step."""
    problem = None
    if not has_oracle:
        problem = FspiopError("3003", f"no oracle serves {key.id_type}")
    else:
        try:
            tx.conn.execute("SAVEPOINT register")
            _register_checked(tx, key, fsp_id, currency)
            tx.conn.execute("RELEASE register")
        except FspiopError as exc:
            tx.conn.execute("ROLLBACK TO register")
            tx.conn.execute("RELEASE register")
            problem = exc
    _participants_reply(tx, msg, key, fsp_id, problem)


def _participants_reply(tx: Tx, msg: Inbound, key: PartyKey, fsp_id: str | None, problem: FspiopError | None) -> None:
    path = f"/participants/{key.path}"
    if problem is not None:
        outbox.reply_error(tx, msg, path + "/error", problem)
    else:
        outbox.hub_message(tx, msg.source, "PUT", path, {"fspId": fsp_id} if fsp_id else {}, msg.version,
                           msg.traceparent)


def _batch_reply(tx: Tx, msg: Inbound, request_id: str, body: dict[str, Any]) -> None:
    outbox.hub_message(tx, msg.source, "PUT", f"/participants/{request_id}", body, msg.version, msg.traceparent)
