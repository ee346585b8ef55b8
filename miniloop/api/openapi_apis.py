"""What each API's description adds to what its routes say (miniloop.api.openapi).

- FSPIOP: the headers every FSPIOP request carries, with the rules miniloop.fspiop.headers
  applies (the versioned media types of the route's resource, the IMF-fixdate Date, FSP ids),
  and the versioned media types of the bodies.
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
        params.append({"name": "currency", "in": "query", "required": False,
                       "schema": {"type": "string", "minLength": 3, "maxLength": 3}})
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


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def als_admin_parameters(method: str, path: str, handler: Any) -> list[dict[str, Any]]:
    """The filters of GET /oracles and of a party lookup; for /authService, the FSPIOP headers
    (FSPIOP-Destination optional: the switch has already routed the message by it)."""
    currency = {"type": "string", "minLength": 3, "maxLength": 3}
    if method == "GET" and path == "/oracles":
        return [_query("type", {"type": "string", "enum": list(PARTY_ID_TYPES)}), _query("currency", currency)]
    if method == "GET" and path.startswith("/oracle/participants/"):
        return [_query("currency", currency), _query("partySubIdOrType", {"type": "string", "minLength": 1})]
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
        # GET /consentRequests/{ID} and the like: in the Third-party API, routed by no switch (2002)
        not_served=lambda handler: getattr(inspect.unwrap(handler), "__name__", "") == "tp_not_implemented",
        empty_answers=True,
    ),
    "admin": Api(
        title="miniloop Admin API (central-ledger)",
        description="Participants, accounts, limits, funds and settlement models (docs/admin-api.md).",
        bodies=_ADMIN_BODIES,
    ),
    "settlement": Api(
        title="miniloop Settlement API v2",
        description="Settlement windows and settlements (docs/settlement-api.md).",
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
    ),
}
