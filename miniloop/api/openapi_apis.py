"""What each API's description adds to what its routes say (miniloop.api.openapi).

- FSPIOP: the headers every FSPIOP request carries, with the rules miniloop.fspiop.headers
  applies (the versioned media types of the route's resource, the IMF-fixdate Date, FSP ids),
  and the versioned media types of the bodies. Each operation's summary comes from a table of
  the resources (`_FSPIOP_OPS`, by resource and path shape: collection, item, error), which also
  serves the sim port's simulated DFSPs (mobile_sim.openapi) and the auth-service below.
- Every API: a one-line summary of each operation (docs/fspiop-api.md, docs/thirdparty.md,
  docs/admin-api.md, docs/settlement-api.md); /health, /metrics and /openapi.json share
  miniloop.api.openapi's.
- Admin: its bodies. central-ledger's Admin API is checked field by field
  (miniloop.services.inputs), not decoded into Structs, so the Structs below state those rules
  for the description only; they say what miniloop.services.participants and
  miniloop.services.settlement_models accept.
- Settlement: nothing to add: its handlers decode Structs, which the routes show.
- ALS admin: three APIs on one port. /oracles (which oracle serves which party id type) and the
  built-in oracle's Oracle API under /oracle are checked field by field (miniloop.services.oracles,
  miniloop.api.oracle), so Structs below state their bodies; /authService is participant
  centralAuth's FSPIOP endpoint, with the FSPIOP headers of the Third-party API.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from miniloop.api.openapi import Api
from miniloop.fspiop import headers
from miniloop.fspiop.models import Currency
from miniloop.fspiop.request_models import AuthorizationsQuery
from miniloop.fspiop.thirdparty_models import (
    SERVICE_TYPES,
    ConsentsIDPutResponse,
    ThirdpartyRequestsVerificationsIDPutResponse,
)
from miniloop.services import inputs
from miniloop.services.oracles import PARTY_ID_TYPES
from miniloop.services.participants import ENDPOINT_TYPE_PATTERN, FUNDS_ACTIONS, FUNDS_OUT_FINISH_ACTIONS, LIMIT_TYPES

# ------------------------------------------------------------------------------ FSPIOP

_FSP_ID = {"type": "string", "pattern": f"^{headers._FSP_ID.pattern}$"}
_DATE = {"type": "string", "pattern": f"^{headers._IMF_FIXDATE.pattern}$",
         "examples": ["Tue, 05 Mar 2024 10:00:00 GMT"]}
# GET /parties and GET /participants/{Type}/{ID} may name a currency
_CURRENCY_QUERY = ("/parties/", "/participants/{type}/")


def _resource(path: str) -> str | None:
    """The FSPIOP resource of a path, as headers.check names it; None for /health and the like."""
    first = path.strip("/").split("/")[0]
    return first if first in headers.RESOURCES or first in headers.THIRDPARTY_RESOURCES else None


def _media(resource: str) -> str:
    name = headers.THIRDPARTY_MEDIA if resource in headers.THIRDPARTY_RESOURCES else resource
    return f"application/vnd.interoperability.{name}+json"


def _versions(resource: str) -> tuple[str, ...]:
    return headers.THIRDPARTY_VERSIONS if resource in headers.THIRDPARTY_RESOURCES else headers.SUPPORTED_VERSIONS


def _destination_optional(handler: Any) -> bool:
    """A handler that passes `destination_required=False` to `inbound` (read from its code)."""
    code = getattr(inspect.unwrap(handler), "__code__", None)
    return code is not None and any(
        isinstance(c, tuple) and "destination_required" in c for c in code.co_consts)


def _header(name: str, required: bool, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema, "description": description}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter."""
    return {"name": name, "in": "query", "required": False, "schema": schema}


_CURRENCY_FILTER = _query("currency", {"type": "string", "minLength": 3, "maxLength": 3})


def fspiop_parameters(method: str, path: str, handler: Any) -> list[dict[str, Any]]:
    resource = _resource(path)
    if resource is None:
        return []
    media, versions = _media(resource), _versions(resource)
    params = []
    if method in ("GET", "POST", "DELETE"):
        accepted = [f"{media};version={v}" for v in versions] + [f"{media};version={versions[-1].split('.')[0]}"]
        params.append(_header("Accept", True, {"type": "string", "enum": accepted},
                              "the resource's media type, with the versions the caller accepts"))
    if method in ("POST", "PUT", "PATCH"):
        params.append(_header("Content-Type", True, {"type": "string", "enum": [f"{media};version={v}" for v in versions]},
                              "the resource's media type and the version of the body"))
    params.append(_header("Date", True, _DATE, "when the request was made (RFC 9110 IMF-fixdate)"))
    params.append(_header("FSPIOP-Source", True, _FSP_ID, "the sender: a registered, active participant"))
    optional = _destination_optional(handler)
    params.append(_header("FSPIOP-Destination", not optional, _FSP_ID,
                          "the participant the message is for" + (" (the hub finds it when absent)" if optional else "")))
    if method == "GET" and path.startswith(_CURRENCY_QUERY):
        params.append(_CURRENCY_FILTER)
    if method == "GET" and path.startswith("/authorizations/"):
        fields = msgspec.structs.fields(AuthorizationsQuery)
        (ref,), components = msgspec.json.schema_components([AuthorizationsQuery])
        props = components["AuthorizationsQuery"]["properties"]
        for f in fields:
            schema = {k: v for k, v in props[f.encode_name].items() if k != "title"}
            if isinstance(schema.get("pattern"), str):
                schema["pattern"] = schema["pattern"].replace("\\A", "^").replace("\\Z", "$")
            params.append({"name": f.encode_name, "in": "query", "required": True, "schema": schema})
    return params


def fspiop_path_schema(path: str, name: str) -> dict[str, Any] | None:
    """The party id types in /parties and /participants, the service types in /services."""
    if path.startswith(("/parties/", "/participants/{type}")):
        if name == "type":
            return {"type": "string", "enum": list(PARTY_ID_TYPES)}
        if name in ("id", "sub_id"):
            return {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[^/]+$"}
    if path.startswith("/services/") and name == "type":
        return {"type": "string", "enum": list(SERVICE_TYPES)}
    return None


def fspiop_body_media(method: str, path: str) -> list[str]:
    resource = _resource(path)
    if resource is None:
        return ["application/json"]
    return [f"{_media(resource)};version={v}" for v in reversed(_versions(resource))]


# ---- summaries: what each FSPIOP operation does, from its resource and the shape of its path


@dataclass(frozen=True)
class _Op:
    hub: str  # what the hub does with it, on the FSPIOP port
    message: str  # what the message is to whoever it is delivered to: "A simulated DFSP receives <this>"
    sim: str = ""  # what a simulated DFSP does with it, when it does more than take it (docs/simulator.md)


def _forwarded_error(noun: str) -> _Op:
    return _Op(f"An error callback about {noun}: the hub forwards it to FSPIOP-Destination",
               f"an error callback about {noun}")


_NOT_ROUTED = ("In the Third-party API, but no switch routes it (no endpoint type to send it to): always 501, "
               "error 2002")

# resource -> its operations: "POST" on the collection, "GET", "PUT", "PATCH", "DELETE" on one item
# ({ID}; {Type}/{ID}[/{SubId}] for parties and participants), "error" for PUT .../error.
# "participants[batch]" is /participants and /participants/{requestId}; "thirdpartyRequests/*" the
# sim port's /{name}/thirdpartyRequests/{kind}, one route for the three kinds.
_FSPIOP_OPS: dict[str, dict[str, _Op]] = {
    "parties": {
        "GET": _Op("Look a party up: the hub asks the oracle which FSP serves it and forwards the request there; "
                   "the party comes back as a callback",
                   "a lookup of a party, as the FSP the oracle says serves it",
                   "it answers PUT /parties with its customer, or an error callback 3204 (anyone else, any SubId)"),
        "PUT": _Op("The party's FSP answers a lookup with the party: the hub forwards it to the FSP that asked",
                   "the answer to a lookup it made: the party, from the FSP that serves it"),
        "error": _forwarded_error("a party lookup"),
    },
    "participants": {
        "POST": _Op("Register a party in the oracle as served by an FSP; the hub calls the sender back with the "
                    "outcome",
                    "a registration of a party"),
        "GET": _Op("Ask which FSP serves a party: the hub asks the oracle and calls the sender back with the FSP's id",
                   "a question about which FSP serves a party"),
        "PUT": _Op("A callback about a party's registration sent by an FSP: the hub forwards it to "
                   "FSPIOP-Destination",
                   "the answer to a registration, lookup or removal of a party it asked for"),
        "DELETE": _Op("Remove a party from the oracle; the hub calls the sender back with the outcome",
                      "a removal of a party"),
        "error": _forwarded_error("the registration, lookup or removal of a party"),
    },
    "participants[batch]": {
        "POST": _Op("Register many parties in the oracle at once; the hub calls the sender back with "
                    "PUT /participants/{requestId}, party by party",
                    "a registration of many parties at once"),
        "PUT": _Op("A callback about a batch registration sent by an FSP: the hub forwards it to FSPIOP-Destination",
                   "the outcome of a batch registration it sent, party by party"),
        "error": _forwarded_error("a batch registration of parties"),
    },
    "quotes": {
        "POST": _Op("Ask for a quote: the hub checks both FSPs, stores the quote and forwards it to the payee's FSP",
                    "a request for a quote, as the payee's FSP",
                    "it answers PUT /quotes/{ID} with its terms (fee, ILP packet, condition) or an error callback"),
        "GET": _Op("Ask for a quote's terms again: the hub forwards the request to FSPIOP-Destination; the answer "
                   "comes as a callback",
                   "a question about a quote it was asked for"),
        "PUT": _Op("The payee's FSP answers a quote with its terms: the hub records them with the quote and "
                   "forwards them to the payer's FSP",
                   "the terms of a quote it asked for, from the payee's FSP"),
        "error": _forwarded_error("a quote"),
    },
    "transfers": {
        "POST": _Op("Prepare a transfer: the hub checks it, reserves the amount on the payer's position and forwards "
                    "it to the payee's FSP",
                    "the prepare of a transfer, as the payee's FSP",
                    "it checks it against the ILP packet it issued, credits its customer and fulfils it, or "
                    "rejects it (5105)"),
        "GET": _Op("Ask for the state of a transfer: the hub answers from its ledger, as a callback",
                   "a question about the state of a transfer"),
        "PUT": _Op("The payee's FSP fulfils the transfer: the hub checks the fulfilment against the condition, "
                   "commits the transfer (aborts it when a check fails) and tells the payer's FSP",
                   "news of a transfer (the payee's fulfilment, or the hub's answer about its state)",
                   "it applies it to its books"),
        "PATCH": _Op("The hub tells a payee's FSP that answered RESERVED whether the transfer committed",
                     "the final state of a transfer it fulfilled with RESERVED",
                     "it applies it to its books"),
        "error": _Op("The payee's FSP rejects the transfer: the hub aborts it, gives the payer's position back and "
                     "forwards the error to the payer's FSP",
                     "an error callback about a transfer (a rejection, an expiry)",
                     "it applies it to its books"),
    },
    "transactionRequests": {
        "POST": _Op("A payee's FSP asks a payer's FSP to pay it (a request to pay): the hub checks the payer's FSP "
                    "and forwards the request",
                    "a request to pay, as the payer's FSP",
                    "it texts its customer and, once approved, quotes, asks for the OTP and transfers"),
        "GET": _Op("Ask for the state of a request to pay: the hub forwards it to FSPIOP-Destination; the answer "
                   "comes as a callback",
                   "a question about a request to pay it received",
                   "it answers with the request's state"),
        "PUT": _Op("The payer's FSP answers a request to pay (RECEIVED, REJECTED...): the hub forwards it to the "
                   "payee's FSP",
                   "the payer's FSP's answer to a request to pay it sent"),
        "error": _forwarded_error("a request to pay"),
    },
    "authorizations": {
        "GET": _Op("The payer's FSP asks for the OTP its customer types on the payee's device: the hub checks the "
                   "query and forwards it, query string and all",
                   "a request for the OTP of a request to pay, as the payee's FSP",
                   "its till types the OTP, or it answers an error callback"),
        "PUT": _Op("The payee's FSP sends what its customer entered (the OTP, a refusal, a resend): the hub "
                   "forwards it to the payer's FSP",
                   "what the customer entered at the payee's device for a request to pay"),
        "error": _forwarded_error("an authorization"),
    },
    "transactions": {
        "GET": _Op("Ask for the state of a transaction (and a cash-out's code): the hub forwards it to "
                   "FSPIOP-Destination; the answer comes as a callback",
                   "a question about a transaction it was paid in",
                   "it answers with the transaction's state (and a cash-out's code)"),
        "PUT": _Op("The answer about a transaction's state: the hub forwards it to FSPIOP-Destination",
                   "the state of a transaction it asked about"),
        "error": _forwarded_error("a transaction"),
    },
    "bulkQuotes": {
        "POST": _Op("Ask one payee's FSP for many quotes at once: the hub checks both FSPs and forwards the bulk "
                    "quote, storing nothing",
                    "a bulk quote, as the payee's FSP",
                    "it answers PUT /bulkQuotes/{ID} with each quote's terms"),
        "GET": _Op("Ask for a bulk quote's terms again: the hub forwards the request to FSPIOP-Destination; the "
                   "answer comes as a callback",
                   "a question about a bulk quote"),
        "PUT": _Op("The payee's FSP answers a bulk quote, quote by quote: the hub forwards it to the payer's FSP",
                   "the terms of a bulk quote it asked for, quote by quote"),
        "error": _forwarded_error("a bulk quote"),
    },
    "bulkTransfers": {
        "POST": _Op("Prepare a bulk transfer: the hub reserves each transfer as a single one and forwards those it "
                    "reserved to the payee's FSP in one bulk",
                    "a bulk transfer's prepare, as the payee's FSP",
                    "it fulfils or rejects each transfer in one PUT /bulkTransfers/{ID}"),
        "GET": _Op("Ask for the state of a bulk transfer: the hub answers from its ledger, as a callback",
                   "a question about the state of a bulk transfer"),
        "PUT": _Op("The payee's FSP answers a bulk transfer, transfer by transfer: the hub commits or aborts each "
                   "and tells both FSPs",
                   "the results of a bulk transfer, transfer by transfer",
                   "it applies them to its books"),
        "error": _Op("The payee's FSP refuses a whole bulk transfer: the hub aborts every transfer of it and tells "
                     "the payer's FSP",
                     "an error callback about a whole bulk transfer",
                     "it applies it to its books"),
    },
    # the Third-party API: the hub routes each message by FSPIOP-Destination and keeps nothing
    "accounts": {
        "GET": _Op("A PISP asks a DFSP for a user's accounts: the hub forwards the request to the DFSP",
                   "a PISP's request for a user's accounts, as the DFSP",
                   "it answers with the customer's account"),
        "PUT": _Op("A DFSP answers with a user's accounts: the hub forwards them to the PISP",
                   "the accounts of a user it asked a DFSP for, as the PISP"),
        "error": _forwarded_error("a request for accounts"),
    },
    "consentRequests": {
        "POST": _Op("A PISP asks a DFSP for consent to use a user's accounts: the hub forwards it to the DFSP",
                    "a PISP's consent request, as the DFSP",
                    "it texts its customer an OTP, or offers its login page, and answers how to authenticate"),
        "GET": _Op(_NOT_ROUTED, ""),
        "PUT": _Op("A DFSP answers a consent request with how the user authenticates (an OTP, or its login page): "
                   "the hub forwards it to the PISP",
                   "a DFSP's answer to its consent request (how the user authenticates), as the PISP"),
        "PATCH": _Op("A PISP sends the auth token the user got from the DFSP: the hub forwards it to the DFSP",
                     "the auth token of a consent request, as the DFSP",
                     "it checks it and issues a consent to the PISP"),
        "error": _forwarded_error("a consent request"),
    },
    "consents": {
        "POST": _Op("A DFSP issues a consent (to the PISP) or registers its credential (at the auth-service): the "
                    "hub forwards it to FSPIOP-Destination",
                    "a consent (issued by a DFSP, or with a credential to register)"),
        "GET": _Op("Ask the holder of a consent for it: the hub forwards the request to FSPIOP-Destination",
                   "a question about a consent"),
        "PUT": _Op("A consent's credential, signed by the PISP or verified by the auth-service: the hub forwards "
                   "it to FSPIOP-Destination",
                   "a consent's credential (signed by the PISP, or verified by the auth-service)"),
        "PATCH": _Op("A consent's new status (its credential verified, or the consent revoked): the hub forwards "
                     "it to FSPIOP-Destination",
                     "a consent's new status (its credential verified, or the consent revoked)"),
        "DELETE": _Op("Revoke a consent (unlink an account): the hub forwards the request to the DFSP or the "
                      "auth-service FSPIOP-Destination names",
                      "a request to revoke a consent"),
        "error": _forwarded_error("a consent"),
    },
    "thirdpartyRequests/transactions": {
        "POST": _Op("A PISP asks a DFSP to pay from a linked account: the hub forwards the request to the DFSP",
                    "a PISP's request to pay from a linked account, as the DFSP"),
        "GET": _Op("A PISP asks for the state of its third-party transaction request: the hub forwards it to the "
                   "DFSP",
                   "a question about a third-party transaction request"),
        "PUT": _Op("A DFSP answers a third-party transaction request with its state: the hub forwards it to the PISP",
                   "the state of a third-party transaction request"),
        "PATCH": _Op("A DFSP tells the PISP how its third-party transaction ended: the hub forwards it",
                     "how a third-party transaction ended"),
        "error": _forwarded_error("a third-party transaction request"),
    },
    "thirdpartyRequests/authorizations": {
        "POST": _Op("A DFSP asks the PISP's user to sign the terms of a payment (a challenge): the hub forwards it "
                    "to the PISP",
                    "a challenge for the user to sign, as the PISP"),
        "GET": _Op(_NOT_ROUTED, ""),
        "PUT": _Op("The PISP answers a challenge with the user's signature, or a refusal: the hub forwards it to "
                   "the DFSP",
                   "the user's signature of a challenge, or a refusal"),
        "error": _forwarded_error("a third-party authorization"),
    },
    "thirdpartyRequests/verifications": {
        "POST": _Op("A DFSP asks the auth-service to check a signature with the consent's key: the hub forwards it "
                    "to the auth-service",
                    "a request to check a signature with the consent's key"),
        "GET": _Op(_NOT_ROUTED, ""),
        "PUT": _Op("The auth-service answers a verification: the hub forwards it to the DFSP",
                   "the auth-service's answer to a verification"),
        "error": _forwarded_error("a verification"),
    },
    "thirdpartyRequests/*": {  # the sim port: one route for the three kinds
        "POST": _Op("", "a third-party request of the kind the path names (a payment to make, as the DFSP; a "
                        "challenge to sign, as the PISP)"),
        "GET": _Op("", "a question about a third-party request",
                   "a DFSP answers with a transaction request's state"),
        "PUT": _Op("", "an answer about a third-party request (its state, a signature, a verification's outcome)"),
        "PATCH": _Op("", "how a third-party transaction ended, as the PISP"),
        "error": _Op("", "an error callback about a third-party request"),
    },
    "services": {
        "GET": _Op("Which participants provide a service (THIRD_PARTY_DFSP, PISP, AUTH_SERVICE): the hub answers "
                   "itself, with PUT /services/{ServiceType}",
                   "a question about which participants provide a service"),
        "PUT": _Op("The participants that provide a service: the hub forwards the list to FSPIOP-Destination",
                   "the participants that provide a service, as it asked"),
        "error": _forwarded_error("a list of service providers"),
    },
}


def _fspiop_op(method: str, path: str) -> tuple[str, str] | None:
    """(resource, operation key of _FSPIOP_OPS) of an FSPIOP path, its parameters named as they may
    be: /transfers/{transfer_id}/error -> ("transfers", "error"); None when it is not of a shape
    FSPIOP has (/transfers/recent)."""
    parts = path.strip("/").split("/")
    error = parts[-1] == "error"
    if error:
        parts = parts[:-1]
    if not parts:
        return None
    resource, rest = parts[0], parts[1:]
    if resource == "thirdpartyRequests" and rest:
        resource, rest = f"{resource}/{'*' if rest[0].startswith('{') else rest[0]}", rest[1:]
    if not all(p.startswith("{") and p.endswith("}") for p in rest):
        return None
    if resource == "participants" and len(rest) < 2:
        resource = "participants[batch]"
    if not rest:  # the collection
        key = method if method == "POST" and not error else None
    elif len(rest) in ((2, 3) if resource in ("parties", "participants") else (1,)):  # one item
        key = "error" if error else (method if method != "POST" or resource == "participants" else None)
    else:
        key = None
    return (resource, key) if key is not None and resource in _FSPIOP_OPS else None


def fspiop_summary(method: str, path: str, *, receiver: str = "hub") -> str | None:
    """The summary of an FSPIOP operation: what the hub does with it (receiver "hub"), or what the
    receiver does with a message delivered to it ("sim": a simulated DFSP, "auth": centralAuth)."""
    found = _fspiop_op(method, path)
    op = _FSPIOP_OPS[found[0]].get(found[1]) if found is not None else None
    sub = " (a party with a SubId)" if found and found[0] in ("parties", "participants") \
        and len(path.strip("/").removesuffix("/error").split("/")) == 4 else ""
    if receiver == "hub":
        return op.hub + sub if op is not None and op.hub else None
    third_party = found is not None and found[0].split("/")[0] in _TP_RESOURCES
    if receiver == "sim":
        who = "A simulated DFSP or PISP" if third_party else "A simulated DFSP"
        if op is None or not op.message:  # the sim's route takes every method; no switch sends this one
            return f"{who} takes it (202 or 200) and keeps it only as an unmatched message: no switch " \
                   f"delivers {method} on this path" if third_party else None
        return f"{who} receives {op.message}{sub}" + (f": {op.sim}" if op.sim else "")
    return _AUTH_DOES.get(found) if found is not None else None


_TP_RESOURCES = frozenset({"accounts", "consentRequests", "consents", "thirdpartyRequests", "services"})


# ------------------------------------------------------------------------------ Admin API


class _Admin(msgspec.Struct, rename="camel", omit_defaults=True, kw_only=True):
    pass


Name = Annotated[str, Meta(pattern=inputs.NAME_PATTERN.pattern)]
Text = Annotated[str, Meta(min_length=1, max_length=256, pattern=r"\S")]
AdminAmount = Annotated[str | float | int, Meta(description="an amount, as a number or a decimal string")]
Id = Annotated[str, Meta(description="a UUID in lower case or a ULID",
                         pattern=f"{inputs.UUID_PATTERN.pattern}|{inputs.ULID_PATTERN.pattern}")]


class NewParticipant(_Admin):
    name: Name
    currency: Currency
    is_proxy: bool = False


class Activation(_Admin):
    is_active: bool


class NewEndpoint(_Admin):
    type: Annotated[str, Meta(pattern=ENDPOINT_TYPE_PATTERN.pattern)]
    value: Annotated[str, Meta(min_length=1, max_length=512, pattern=r"\S")]


class Limit(_Admin):
    type: Literal[LIMIT_TYPES]  # type: ignore[valid-type]
    value: AdminAmount
    alarm_percentage: Annotated[float, Meta(ge=0, le=100)] = 10


class LimitChange(_Admin):
    currency: Currency
    limit: Limit


class InitialPositionAndLimits(_Admin):
    currency: Currency
    limit: Limit
    initial_position: AdminAmount = 0


class NewHubAccount(_Admin):
    currency: Currency
    type: Text


class FundsAmount(_Admin):
    amount: AdminAmount
    currency: Currency


class FundsMove(_Admin):
    transfer_id: Id
    external_reference: Text
    action: Literal[FUNDS_ACTIONS]  # type: ignore[valid-type]
    reason: Text
    amount: FundsAmount


class FundsOutFinish(_Admin):
    action: Literal[FUNDS_OUT_FINISH_ACTIONS]  # type: ignore[valid-type]
    reason: Text


class NewSettlementModel(_Admin, forbid_unknown_fields=True):
    name: Name
    settlement_granularity: Literal["GROSS", "NET"]
    settlement_interchange: Literal["BILATERAL", "MULTILATERAL"]
    settlement_delay: Literal["IMMEDIATE", "DEFERRED"]
    currency: Currency | None
    require_liquidity_check: bool
    ledger_account_type: Text
    settlement_account_type: Text
    auto_position_reset: bool


class JwsKey(_Admin):
    public_key: Annotated[str, Meta(description="an RSA public key of at least 2048 bits, PEM: the key "
                                                "(-----BEGIN PUBLIC KEY-----) or an X.509 certificate "
                                                "holding it (-----BEGIN CERTIFICATE-----), whose public "
                                                "key is stored", min_length=1)]


class NewLedgerAccountType(_Admin):
    name: Annotated[str, Meta(pattern=r"^\w{2,30}$")]
    description: Text
    is_active: bool
    is_settleable: bool


_ADMIN_BODIES: dict[tuple[str, str], type] = {
    ("POST", "/participants"): NewParticipant,
    ("PUT", "/participants/{name}"): Activation,
    ("POST", "/participants/{name}/endpoints"): NewEndpoint,
    ("PUT", "/participants/{name}/limits"): LimitChange,
    ("PUT", "/participants/{name}/jwsKey"): JwsKey,
    ("POST", "/participants/{name}/initialPositionAndLimits"): InitialPositionAndLimits,
    ("POST", "/participants/{name}/accounts"): NewHubAccount,
    ("PUT", "/participants/{name}/accounts/{account_id}"): Activation,
    ("POST", "/participants/{name}/accounts/{account_id}"): FundsMove,
    ("PUT", "/participants/{name}/accounts/{account_id}/transfers/{transfer_id}"): FundsOutFinish,
    ("POST", "/settlementModels"): NewSettlementModel,
    ("PUT", "/settlementModels/{name}"): Activation,
    ("POST", "/ledgerAccountTypes"): NewLedgerAccountType,
}

# one line per operation, from docs/admin-api.md
_ADMIN_SUMMARIES: dict[tuple[str, str], str] = {
    ("GET", "/participants"): "List the participants with their accounts (?isProxy: only proxies, or only the others)",
    ("POST", "/participants"): "Create a participant (a DFSP) in a currency: it gets the accounts of the currency's "
                               "settlement model, inactive until its initial position and limits are set",
    ("GET", "/participants/limits"): "Every participant's limits (Net Debit Caps), by ?currency and ?type",
    ("GET", "/participants/{name}"): "One participant, with its accounts",
    ("PUT", "/participants/{name}"): "Activate or deactivate a participant ({isActive})",
    ("GET", "/participants/{name}/accounts"): "A participant's accounts, with their balances and reserved amounts",
    ("POST", "/participants/{name}/accounts"): "Open a hub account (HUB_RECONCILIATION, HUB_MULTILATERAL_SETTLEMENT) "
                                               "in a currency: for the participant Hub only",
    ("POST", "/participants/{name}/accounts/{account_id}"): "Record funds in on a DFSP's SETTLEMENT account, or "
                                                            "prepare a funds-out (the amount is taken off at once)",
    ("PUT", "/participants/{name}/accounts/{account_id}"): "Activate or deactivate one of a participant's POSITION "
                                                           "accounts ({isActive})",
    ("PUT", "/participants/{name}/accounts/{account_id}/transfers/{transfer_id}"):
        "Finish a prepared funds-out: commit it (the hub's reconciliation account gets its side) or abort it "
        "(the DFSP gets its funds back)",
    ("GET", "/participants/{name}/endpoints"): "A participant's callback endpoints, or the one of the ?type given",
    ("POST", "/participants/{name}/endpoints"): "Add or replace one of a participant's callback endpoints: a URL "
                                                "template for one type of message",
    ("POST", "/participants/{name}/initialPositionAndLimits"): "Set a participant's Net Debit Cap and initial "
                                                               "position in a currency, and activate its accounts",
    ("GET", "/participants/{name}/limits"): "A participant's limits (its Net Debit Caps), by ?currency and ?type",
    ("PUT", "/participants/{name}/limits"): "Change a participant's Net Debit Cap in one currency",
    ("GET", "/participants/{name}/positions"): "A participant's positions, one per currency (or the ?currency given)",
    ("GET", "/participants/{name}/jwsKey"): "The RSA public key a participant's FSPIOP-Signature is checked with",
    ("PUT", "/participants/{name}/jwsKey"): "Register a participant's RSA public key (PEM, or an X.509 certificate) "
                                            "for its FSPIOP-Signature",
    ("DELETE", "/participants/{name}/jwsKey"): "Remove a participant's public key for FSPIOP-Signature",
    ("GET", "/hub/jwsKey"): "The public key the hub signs its own messages with (under --sign-messages)",
    ("GET", "/settlementModels"): "List the settlement models",
    ("POST", "/settlementModels"): "Create a settlement model (granularity, interchange, delay, currency, accounts); "
                                   "one without a currency is the default",
    ("GET", "/settlementModels/{name}"): "One settlement model",
    ("PUT", "/settlementModels/{name}"): "Activate or deactivate a settlement model ({isActive})",
    ("GET", "/ledgerAccountTypes"): "List the ledger account types",
    ("POST", "/ledgerAccountTypes"): "Create a ledger account type: every DFSP gets an account of it in each of its "
                                     "currencies",
}

# one line per operation, from docs/settlement-api.md
_SETTLEMENT_SUMMARIES: dict[tuple[str, str], str] = {
    ("GET", "/v2/health"): "The hub's health, where the Settlement API's specification has it (as GET /health)",
    ("GET", "/v2/settlementWindows"): "Find settlement windows by participant, state, currency or date (at least "
                                      "one filter)",
    ("GET", "/v2/settlementWindows/{window_id}"): "One settlement window",
    ("POST", "/v2/settlementWindows/{window_id}"): "Close a settlement window (the open one); the answer is the new open window",
    ("GET", "/v2/settlementWindows/{window_id}/positions"): "A window's net positions per participant and "
                                                             "currency (miniloop's own)",
    ("GET", "/v2/settlements"): "Find settlements by state, window, participant, account, currency or date (at "
                                "least one filter)",
    ("POST", "/v2/settlements"): "Create a settlement of closed windows under a settlement model",
    ("GET", "/v2/settlements/{settlement_id}"): "One settlement, with its participants' accounts",
    ("PUT", "/v2/settlements/{settlement_id}"): "Record the settlement bank's progress on accounts of a settlement, "
                                                "or abort it",
    ("GET", "/v2/settlements/{settlement_id}/participants/{participant_id}"): "A settlement, with one participant's "
                                                                              "accounts only",
    ("PUT", "/v2/settlements/{settlement_id}/participants/{participant_id}"): "Record the settlement bank's progress "
                                                                              "on one participant's accounts",
    ("GET", "/v2/settlements/{settlement_id}/participants/{participant_id}/accounts/{account_id}"):
        "A settlement, with one account only",
    ("PUT", "/v2/settlements/{settlement_id}/participants/{participant_id}/accounts/{account_id}"):
        "Record the settlement bank's progress on one account of a settlement",
}


# ------------------------------------------------------------------------------ ALS admin

_AUTH_SERVICE = "/authService"
PartyIdType = Literal[PARTY_ID_TYPES]  # type: ignore[valid-type]


class OracleEndpoint(_Admin):
    value: Annotated[str, Meta(min_length=1, max_length=512, pattern=r"\S")]
    endpoint_type: Literal["URL"]


class NewOracle(_Admin, forbid_unknown_fields=True):
    oracle_id_type: PartyIdType
    endpoint: OracleEndpoint
    currency: Currency | None = None
    is_default: bool = False


class OracleChange(_Admin, forbid_unknown_fields=True):
    """Any of a new oracle's fields: only those given change."""
    oracle_id_type: PartyIdType | None = None
    endpoint: OracleEndpoint | None = None
    currency: Currency | None = None
    is_default: bool | None = None


class PartyOwner(_Admin):
    fsp_id: Name
    currency: Currency | None = None


class BatchParty(_Admin):
    party_id_type: PartyIdType
    party_identifier: Annotated[str, Meta(min_length=1, max_length=128, pattern=r"\S")]
    fsp_id: Name
    party_sub_id_or_type: Annotated[str, Meta(max_length=128)] | None = None


class PartyBatch(_Admin):
    party_list: Annotated[list[BatchParty], Meta(min_length=1, max_length=10_000)]
    request_id: str | None = None
    currency: Currency | None = None


_ALS_BODIES: dict[tuple[str, str], type] = {
    ("POST", "/oracles"): NewOracle,
    ("PUT", "/oracles/{oracle_id}"): OracleChange,
    ("POST", "/oracle/participants"): PartyBatch,
    ("POST", "/oracle/participants/{type}/{id}"): PartyOwner,
    ("PUT", "/oracle/participants/{type}/{id}"): PartyOwner,
    ("POST", "/oracle/participants/{type}/{id}/{sub_id}"): PartyOwner,
    ("PUT", "/oracle/participants/{type}/{id}/{sub_id}"): PartyOwner,
    ("PUT", _AUTH_SERVICE + "/consents/{consent_id}"): ConsentsIDPutResponse,
    ("PUT", _AUTH_SERVICE + "/thirdpartyRequests/verifications/{request_id}"):
        ThirdpartyRequestsVerificationsIDPutResponse,
}


def als_admin_parameters(method: str, path: str, handler: Any) -> list[dict[str, Any]]:
    """The filters of GET /oracles and of a party lookup; for /authService, the FSPIOP headers
    (FSPIOP-Destination optional: the switch has already routed the message by it)."""
    if method == "GET" and path == "/oracles":
        return [_query("type", {"type": "string", "enum": list(PARTY_ID_TYPES)}), _CURRENCY_FILTER]
    if method == "GET" and path.startswith("/oracle/participants/"):
        return [_CURRENCY_FILTER, _query("partySubIdOrType", {"type": "string", "minLength": 1})]
    if path.startswith(_AUTH_SERVICE + "/"):
        params = fspiop_parameters(method, path.removeprefix(_AUTH_SERVICE), handler)
        return [{**p, "required": False} if p["name"] == "FSPIOP-Destination" else p for p in params]
    return []


def als_admin_body_media(method: str, path: str) -> list[str]:
    if path.startswith(_AUTH_SERVICE + "/"):
        return fspiop_body_media(method, path.removeprefix(_AUTH_SERVICE))
    return ["application/json"]


def als_admin_path_schema(path: str, name: str) -> dict[str, Any] | None:
    if path.startswith("/oracle/participants/") and name == "type":
        return {"type": "string", "enum": list(PARTY_ID_TYPES)}
    return None

# /oracles and the built-in oracle's Oracle API, one line per operation (docs/admin-api.md); the
# auth-service's by resource and path shape (fspiop_summary, receiver "auth": _AUTH_DOES)
_ALS_SUMMARIES: dict[tuple[str, str], str] = {
    ("GET", "/oracles"): "List the active oracles: which oracle serves which party id type (and currency)",
    ("POST", "/oracles"): "Register an oracle for a party id type (and currency), possibly as its default",
    ("PUT", "/oracles/{oracle_id}"): "Change an oracle: only the fields sent",
    ("DELETE", "/oracles/{oracle_id}"): "Remove an oracle: it is no longer listed nor asked",
    ("POST", "/oracle/participants"): "The built-in oracle: register many parties at once, each succeeding or "
                                      "failing alone",
    ("GET", "/oracle/participants/{type}/{id}"): "The built-in oracle: which FSP serves a party",
    ("POST", "/oracle/participants/{type}/{id}"): "The built-in oracle: register a party as served by an FSP",
    ("PUT", "/oracle/participants/{type}/{id}"): "The built-in oracle: move a party to another FSP",
    ("DELETE", "/oracle/participants/{type}/{id}"): "The built-in oracle: remove a party",
}
_ALS_SUMMARIES.update({(method, path + "/{sub_id}"): text + " (with a SubId)"
                       for (method, path), text in list(_ALS_SUMMARIES.items()) if path.endswith("{id}")})

# what centralAuth does with what it receives (docs/thirdparty.md, "The hub's auth-service")
_AUTH_DOES: dict[tuple[str, str], str] = {
    ("consents", "POST"): "A DFSP registers a consent's credential at centralAuth: it checks that the credential "
                          "signs the consent's challenge, keeps the consent and its key, and answers PUT "
                          "/consents/{ID} VERIFIED, or an error callback",
    ("consents", "PUT"): "A consent's credential sent to centralAuth: nothing waits for it, so it is checked and "
                         "answered 200, no more",
    ("consents", "PATCH"): "The consent's DFSP tells centralAuth it revoked the consent: recorded (another sender "
                           "gets error 6103)",
    ("consents", "DELETE"): "Revoke a consent at centralAuth: it marks it REVOKED and sends PATCH /consents/{ID} to "
                            "the consent's DFSP, and to the sender if that is someone else",
    ("consents", "error"): "An error callback about a consent, sent to centralAuth: announced as an event",
    ("thirdpartyRequests/verifications", "POST"): "A DFSP asks centralAuth to check a signature of a challenge with "
                                                  "the consent's key: it answers PUT "
                                                  "/thirdpartyRequests/verifications/{ID} VERIFIED, or an error "
                                                  "callback (6201, 6103)",
    ("thirdpartyRequests/verifications", "PUT"): "A verification's answer sent to centralAuth: nothing waits for it, "
                                                 "so it is checked and answered 200, no more",
    ("thirdpartyRequests/verifications", "error"): "An error callback about a verification, sent to centralAuth: "
                                                   "announced as an event",
}


def als_admin_summary(method: str, path: str) -> str | None:
    if path.startswith(_AUTH_SERVICE + "/"):
        return fspiop_summary(method, path.removeprefix(_AUTH_SERVICE), receiver="auth")
    return _ALS_SUMMARIES.get((method, path))


# ------------------------------------------------------------------------------ the APIs

APIS: dict[str, Api] = {
    "fspiop": Api(
        title="miniloop FSPIOP API",
        description="Every FSPIOP resource (v1.0 and v1.1) and the Third-party API v1.0, as miniloop "
                    "serves them: a request is answered 202 or 200 with no body once recorded; what "
                    "happens next reaches the DFSPs as callbacks (docs/fspiop-api.md).",
        parameters=fspiop_parameters,
        body_media=fspiop_body_media,
        path_schema=fspiop_path_schema,
        summary=fspiop_summary,
        # GET /consentRequests/{ID} and the like: in the Third-party API, routed by no switch (2002)
        not_served=lambda handler: getattr(inspect.unwrap(handler), "__name__", "") == "tp_not_implemented",
        empty_answers=True,
    ),
    "admin": Api(
        title="miniloop Admin API (central-ledger)",
        description="Participants, accounts, limits, funds and settlement models (docs/admin-api.md).",
        bodies=_ADMIN_BODIES,
        summary=lambda method, path: _ADMIN_SUMMARIES.get((method, path)),
    ),
    "settlement": Api(
        title="miniloop Settlement API v2",
        description="Settlement windows and settlements (docs/settlement-api.md).",
        summary=lambda method, path: _SETTLEMENT_SUMMARIES.get((method, path)),
    ),
    "als_admin": Api(
        title="miniloop account lookup admin API",
        description="Which oracle serves which party id type (/oracles), the built-in oracle's Oracle "
                    "API (/oracle) and the hub-hosted auth-service, participant centralAuth "
                    "(/authService) (docs/admin-api.md, docs/thirdparty.md).",
        parameters=als_admin_parameters,
        bodies=_ALS_BODIES,
        body_media=als_admin_body_media,
        path_schema=als_admin_path_schema,
        summary=als_admin_summary,
    ),
}
