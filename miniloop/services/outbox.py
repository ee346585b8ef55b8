"""Messages the hub owes to DFSPs: addressed, written durably, handed to the deliverer after commit.

Every FSPIOP message the hub sends, forwarded or its own, is decided inside a writer command
(miniloop.ledger.writer) and written to the `outbox` table in the same transaction as the change
that causes it. So a 202 means the message will go out even if the process is killed right
after: what is still in the outbox at the next start is sent then (miniloop.notify).

Addressing follows Mojaloop: the receiver registered one endpoint per type through the Admin API
(FSPIOP_CALLBACK_URL_*); the FSPIOP path of the message says which type applies and fills the
template's `{{...}}` values, or is appended to a base URL (quotes). The Third-party API's
TP_CB_URL_* types (docs/thirdparty.md) are templates too, but Mojaloop registers them as bare
base URLs and appends the path; a TP_CB_URL_* value without `{{...}}` that does not already end
with the message's path is taken as such.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import msgspec
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from miniloop.fspiop import headers as fspiop_headers, signature
from miniloop.fspiop.errors import FspiopError
from miniloop.ledger import Tx
from miniloop.services.oracles import PARTY_ID_TYPES

_encode = msgspec.json.Encoder(decimal_format="number").encode

# resources whose endpoint is a base URL the FSPIOP path is appended to
_BASE_URL_TYPES = {
    "quotes": "FSPIOP_CALLBACK_URL_QUOTES",
    "bulkQuotes": "FSPIOP_CALLBACK_URL_BULK_QUOTES",
    "transactionRequests": "FSPIOP_CALLBACK_URL_TRX_REQ_SERVICE",
    "transactions": "FSPIOP_CALLBACK_URL_TRX_REQ_SERVICE",
    "authorizations": "FSPIOP_CALLBACK_URL_AUTHORIZATIONS",
}


@dataclass(frozen=True, slots=True)
class Inbound:
    """What the hub keeps of an FSPIOP request it accepted: who, which version, what to forward."""

    source: str
    destination: str | None
    version: str  # of the request's Content-Type (Accept's for a GET); replies use the same
    path: str
    forwarded: dict[str, str]  # FSPIOP headers to keep end to end, lowercase names
    body: bytes = b""
    body_hash: str = ""  # for duplicate checks; see miniloop.api.fspiop
    query: str = ""  # e.g. "currency=USD" on GET /parties, kept when forwarded

    @property
    def traceparent(self) -> str | None:
        return self.forwarded.get("traceparent")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One outbox row: an HTTP request to make."""

    id: int
    participant: str
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    on_failure: dict[str, Any] | None = field(default=None)


def endpoint_type(method: str, path: str) -> tuple[str, dict[str, str], str]:
    """Which endpoint type serves `method path`, the template values, and what to append to it."""
    parts = path.strip("/").split("/")
    resource, rest = parts[0], parts[1:]
    if resource in _BASE_URL_TYPES:
        return _BASE_URL_TYPES[resource], {}, path
    is_error = method == "PUT" and len(rest) >= 2 and rest[-1] == "error"
    ids = rest[:-1] if is_error else rest
    suffix = "_ERROR" if is_error else ""
    if resource == "transfers":
        if not ids:
            return "FSPIOP_CALLBACK_URL_TRANSFER_POST", {}, ""
        kind = "ERROR" if is_error else "PUT"
        return f"FSPIOP_CALLBACK_URL_TRANSFER_{kind}", {"transferId": ids[0]}, ""
    if resource == "bulkTransfers":
        if not ids:
            return "FSPIOP_CALLBACK_URL_BULK_TRANSFER_POST", {}, ""
        kind = "ERROR" if is_error else "PUT"
        return f"FSPIOP_CALLBACK_URL_BULK_TRANSFER_{kind}", {"id": ids[0]}, ""
    if resource == "participants" and len(ids) == 1 and ids[0] not in PARTY_ID_TYPES:
        return f"FSPIOP_CALLBACK_URL_PARTICIPANT_BATCH_PUT{suffix}", {"requestId": ids[0]}, ""
    if resource in ("parties", "participants") and len(ids) in (2, 3):
        template = {"partyIdType": ids[0], "partyIdentifier": ids[1]}
        sub = ""
        if len(ids) == 3:
            template["partySubIdOrType"] = ids[2]
            sub = "SUB_ID_"
        if resource == "parties":
            verb = "GET" if method == "GET" else "PUT"
            return f"FSPIOP_CALLBACK_URL_PARTIES_{sub}{verb}{suffix}", template, ""
        return f"FSPIOP_CALLBACK_URL_PARTICIPANT_{sub}PUT{suffix}", template, ""
    if resource in _THIRDPARTY_RESOURCES:
        return _thirdparty_type(method, path, resource, rest, is_error)
    raise ValueError(f"no callback endpoint type for {method} {path}")


# The Third-party API (docs/thirdparty.md): resource (with its sub-resource) -> the stem of its
# TP_CB_URL_* types, and the name of the path's id in their templates.
_THIRDPARTY_KINDS = {
    "consentRequests": ("TP_CB_URL_CONSENT_REQUEST", "ID"),
    "consents": ("TP_CB_URL_CONSENT", "ID"),
    "accounts": ("TP_CB_URL_ACCOUNTS", "ID"),
    "services": ("TP_CB_URL_SERVICES", "ServiceType"),
    "thirdpartyRequests/transactions": ("TP_CB_URL_TRANSACTION_REQUEST", "ID"),
    "thirdpartyRequests/authorizations": ("TP_CB_URL_TRANSACTION_REQUEST_AUTH", "ID"),
    "thirdpartyRequests/verifications": ("TP_CB_URL_TRANSACTION_REQUEST_VERIFY", "ID"),
}
_THIRDPARTY_RESOURCES = frozenset(kind.split("/")[0] for kind in _THIRDPARTY_KINDS)


def _thirdparty_type(method: str, path: str, resource: str, rest: list[str],
                     is_error: bool) -> tuple[str, dict[str, str], str]:
    """TP_CB_URL_<stem>_<verb>[_ERROR] and {ID} (or {ServiceType}) for a third-party path.

    DELETE /consents/{ID} has no type of its own in Mojaloop: it goes where GET /consents/{ID}
    goes, the consent's holder.
    """
    if resource == "thirdpartyRequests":
        if not rest:
            raise ValueError(f"no callback endpoint type for {method} {path}")
        resource, rest = f"thirdpartyRequests/{rest[0]}", rest[1:]
        if resource not in _THIRDPARTY_KINDS:
            raise ValueError(f"no callback endpoint type for {method} {path}")
    stem, id_name = _THIRDPARTY_KINDS[resource]
    if not rest:
        return f"{stem}_POST", {}, ""
    if is_error:
        return f"{stem}_PUT_ERROR", {id_name: rest[0]}, ""
    verb = "GET" if method == "DELETE" else method
    return f"{stem}_{verb}", {id_name: rest[0]}, ""


def _is_template(value: str, path: str) -> bool:
    """Whether a TP_CB_URL_* value is a full URL template (miniloop's `{base}/consents/{{ID}}`)
    rather than Mojaloop's bare base URL that the message's path is appended to."""
    return "{{" in value or value.rstrip("/").endswith(path.rstrip("/"))


def endpoint(tx: Tx, participant: str, kind: str) -> str | None:
    def load() -> str | None:
        row = tx.conn.execute(
            "SELECT e.value FROM participant_endpoint e JOIN participant p ON p.id = e.participant_id "
            "WHERE p.name = ? AND e.endpoint_type = ?",
            (participant, kind),
        ).fetchone()
        return row["value"] if row else None
    return tx.cached(("endpoint", participant, kind), load)


def url_for(tx: Tx, participant: str, method: str, path: str) -> str | None:
    """Where `participant` receives `method path`, or None if it registered no such endpoint."""
    kind, template, suffix = endpoint_type(method, path)
    base = endpoint(tx, participant, kind)
    if base is None:
        return None
    if kind.startswith("TP_CB_URL_") and not _is_template(base, path):
        return base.rstrip("/") + path
    for name, value in template.items():
        base = base.replace("{{" + name + "}}", quote(value, safe="@+-._~:"))
    return base.rstrip("/") + suffix if suffix else base


def send(
    tx: Tx, to: str, method: str, path: str, headers: dict[str, str], body: bytes | None,
    on_failure: dict[str, Any] | None = None, query: str = "",
) -> bool:
    """Owe `to` this message; False (and nothing written) if it has no endpoint for it."""
    url = url_for(tx, to, method, path)
    if url is None:
        return False
    if query:
        url += "?" + query
    row = tx.conn.execute(
        "INSERT INTO outbox (participant, method, url, headers, body, on_failure, created_date) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (to, method, url, _encode(headers).decode(), body, _encode(on_failure).decode() if on_failure else None, tx.now),
    ).fetchone()
    tx.owe(Delivery(row["id"], to, method, url, headers, body, on_failure))
    return True


def forward(tx: Tx, msg: Inbound, to: str, method: str, *, reply_error_to: str | None = None,
            destination: str | None = None) -> bool:
    """Relay a DFSP's message to `to` unchanged: same body bytes, same FSPIOP headers.

    `reply_error_to`: the error path owed to the sender if `to` cannot be reached (Mojaloop's
    1001 Destination communication error); None for callbacks, whose failure is only recorded.
    """
    headers = dict(msg.forwarded)
    if destination is not None:
        headers["fspiop-destination"] = destination
    on_failure = None
    if reply_error_to is not None:
        on_failure = {"to": msg.source, "path": reply_error_to, "version": msg.version,
                      "traceparent": msg.traceparent}
    return send(tx, to, method, msg.path, headers, msg.body or None, on_failure, msg.query)


# --sign-messages: the hub's RSA key (miniloop.fspiop.signature.hub_key), set by miniloop.app at
# start; None: the hub's own messages carry no FSPIOP-Signature
hub_signing_key: RSAPrivateKey | None = None


def hub_message(tx: Tx, to: str, method: str, path: str, body: dict[str, Any] | None, version: str,
                traceparent: str | None = None) -> bool:
    """A message the hub itself originates: FSPIOP-Source is the hub, the version the request's."""
    resource = path.strip("/").split("/")[0]
    headers = fspiop_headers.hub_headers(
        resource, version, destination=to, method=method, uri=path,
        traceparent=fspiop_headers.child_traceparent(traceparent),
    )
    payload = _encode(body) if body is not None else None
    key = hub_signing_key
    if key is not None:
        headers["FSPIOP-Signature"] = signature.sign(
            key, method=method, uri=path, source=headers["FSPIOP-Source"], destination=to, body=payload or b"")
    return send(tx, to, method, path, headers, payload)


def error(tx: Tx, to: str, path: str, exc: FspiopError, version: str, traceparent: str | None = None) -> bool:
    """PUT `path` (an .../error path) with the error's errorInformation body, from the hub."""
    return hub_message(tx, to, "PUT", path, exc.body(), version, traceparent)


def reply_error(tx: Tx, msg: Inbound, path: str, exc: FspiopError) -> bool:
    """The error callback to the sender of `msg`."""
    return error(tx, msg.source, path, exc, msg.version, msg.traceparent)


def delivery_failed(tx: Tx, on_failure: dict[str, Any], detail: str) -> None:
    """Writer command: the error owed to a sender whose message could not be delivered."""
    error(tx, on_failure["to"], on_failure["path"], FspiopError("1001", detail), on_failure["version"],
          on_failure.get("traceparent"))


def delivered(tx: Tx, ids: list[int]) -> None:
    """Writer command: these messages were delivered (or given up); forget them."""
    tx.conn.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])


def row_to_delivery(row: Any) -> Delivery:
    return Delivery(row["id"], row["participant"], row["method"], row["url"], json.loads(row["headers"]),
                    row["body"], json.loads(row["on_failure"]) if row["on_failure"] else None)
