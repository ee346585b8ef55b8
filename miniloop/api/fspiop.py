"""The FSPIOP API (port 3000): every FSPIOP resource on one port, as Mojaloop's gateway serves them.

Each route is thin: check the headers (miniloop.fspiop.headers, in the specification's order),
check that FSPIOP-Source is a registered, active participant, decode the body
(miniloop.fspiop.models), hand the request to its service, and answer 202 (GET/POST/DELETE) or
200 (PUT/PATCH) with no body once the service has recorded it durably (the Third-party API's
routes answer the code its switch file gives each one: docs/thirdparty.md). Anything that goes wrong
later reaches the DFSP as an error callback, never as this answer.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import msgspec
from sanic import HTTPResponse, Request, Sanic
from sanic.response import empty

from miniloop.api.common import new_app
from miniloop.bus import subjects
from miniloop.fspiop import headers, models
from miniloop.fspiop import request_models, signature
from miniloop.fspiop import bulk_models
from miniloop.fspiop import thirdparty_models as tp
from miniloop.fspiop.errors import FspiopError
from miniloop.services.als import AccountLookup, PartyKey
from miniloop.services.bulk_transfers import BulkTransfers
from miniloop.services.directory import Directory
from miniloop.services.oracles import PARTY_ID_TYPES
from miniloop.services.outbox import Inbound
from miniloop.services.quotes import Quotes
from miniloop.services.requests import ENTITIES, Requests
from miniloop.services.thirdparty import Thirdparty
from miniloop.services.transfers import Transfers
from miniloop.tls import SourceBinding

_canonical = msgspec.json.Encoder()
_generic = msgspec.json.Decoder()


@dataclass
class Services:
    directory: Directory
    lookup: AccountLookup
    quotes: Quotes
    transfers: Transfers
    requests: Requests  # /transactionRequests, /authorizations, /transactions, /bulkQuotes
    bulk_transfers: BulkTransfers
    thirdparty: Thirdparty  # the Third-party API v1.0: /consentRequests, /consents, /accounts ...
    # --verify-signatures: a request from a participant with a registered JWS key must carry a
    # valid FSPIOP-Signature (miniloop.fspiop.signature); participants without one are not checked
    verify_signatures: bool = False
    # --tls-client-ca (miniloop.tls.SourceBinding): FSPIOP-Source must be named by the client
    # certificate; None: not checked (plain http, or --tls-any-source)
    source_binding: SourceBinding | None = None


def body_hash(raw: bytes) -> str:
    """Mojaloop's duplicate-check hash: base64 SHA-256 of the JSON as sent, key order kept.

    The JSON is re-encoded compactly first, so spacing alone never makes a request "modified".
    """
    try:
        canonical = _canonical.encode(_generic.decode(raw))
    except msgspec.DecodeError:
        canonical = raw
    return base64.b64encode(hashlib.sha256(canonical).digest()).decode().rstrip("=")


async def inbound(request: Request, services: Services, resource: str, *, destination_required: bool = True) -> Inbound:
    """The header checks, in order, then the registry check of FSPIOP-Source, then (mutual TLS)
    that the client certificate names it, then (with --verify-signatures, for a source with a
    registered key) its FSPIOP-Signature."""
    checked = headers.check(request.method, resource, request.headers, destination_required=destination_required)
    await services.directory.require_active(checked.source)
    if services.source_binding is not None:
        services.source_binding.check(request, checked.source)
    raw = request.body or b""
    if services.verify_signatures:
        key = await services.directory.public_key(checked.source)
        if key is not None:
            signature.verify(checked.forwarded.get("fspiop-signature"), key, method=request.method,
                             uri=request.path, source=checked.source, destination=checked.destination,
                             body=raw, query=request.query_string)
    version = checked.content_version or _accept_version(checked.forwarded.get("accept", ""))
    return Inbound(checked.source, checked.destination, version, request.path, checked.forwarded, raw,
                   body_hash(raw) if raw else "", request.query_string)


def _accept_version(accept: str) -> str:
    """The version a GET's answers use: 1.0 only if that is all the client accepts."""
    return "1.0" if "version=1.0" in accept and "version=1.1" not in accept else "1.1"


def accepted() -> HTTPResponse:
    return empty(202)


def ok() -> HTTPResponse:
    return empty(200)


_SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,32}")
_SHOWN_HEADERS = ("accept", "content-type", "date", "fspiop-source", "fspiop-destination")
_SHOWN_BODY_MAX = 4096
# secrets a refused body may carry (an OTP in PUT /authorizations, the authToken of PATCH
# /consentRequests): never published, whatever the JSON around them looks like
_SECRET_VALUE = re.compile(
    rb'("(?:authenticationValue|authToken|otp|pinValue)"\s*:\s*)("(?:[^"\\]|\\.)*"|\{[^}]*\}|[^,}\]\s]+)')


def _without_secrets(raw: bytes) -> bytes:
    """`raw` with the value of every secret field replaced by "***" (before it is cut short)."""
    if b"auth" not in raw and b"otp" not in raw and b"pinValue" not in raw:
        return raw
    return _SECRET_VALUE.sub(rb'\1"***"', raw)


def refusal_event(request: Request, error: FspiopError) -> tuple[str, dict[str, Any]]:
    """`request.refused`: what a DFSP sent that the hub answered with an error, and why.

    Why: a DFSP whose callback is refused never reaches its counterpart, so the only place the
    reason shows is this answer. Publishing it lets a tester (miniloop scenario) name the rule.
    """
    source = request.headers.get("fspiop-source") or ""
    key = source if _SUBJECT_TOKEN.fullmatch(source) else "unknown"
    body = _without_secrets(request.body or b"")[:_SHOWN_BODY_MAX].decode("utf-8", "replace")
    return subjects.request(key, "refused"), {
        "type": "request.refused", "at": models.datetime_text(), "method": request.method, "path": request.path,
        "status": error.status, "errorCode": error.code, "errorDescription": error.description,
        "source": source, "destination": request.headers.get("fspiop-destination") or "",
        "headers": {name: request.headers[name] for name in _SHOWN_HEADERS if name in request.headers},
        "body": body,
    }


def fspiop_app(health: dict[str, Any], services: Services,
               announce: Callable[[list[tuple[str, dict[str, Any]]]], None] | None = None) -> Sanic:
    """The FSPIOP app; `announce` publishes a `request.refused` event for every error answer."""
    app = new_app("miniloop_fspiop", health, strict_slashes=True)
    if announce is not None:
        app.ctx.on_refused = lambda request, error: announce([refusal_event(request, error)])
    lookup, quotes, transfers = services.lookup, services.quotes, services.transfers

    def party_key(type_: str, id_: str, sub_id: str = "") -> PartyKey:
        if type_ not in PARTY_ID_TYPES:
            raise FspiopError("3101", f"{type_} is not a party id type")
        if not 1 <= len(id_) <= 128 or len(sub_id) > 128:
            raise FspiopError("3101", "a party identifier is 1 to 128 characters")
        return PartyKey(type_, id_, sub_id)

    async def relay(request: Request, resource: str, model: type) -> HTTPResponse:
        """A callback from one FSP to another (PUT, PUT .../error): checked, routed by FSPIOP-Destination."""
        msg = await inbound(request, services, resource)
        models.decode(model, msg.body)
        await lookup.relay(msg, "PUT")
        return ok()

    # ---------------------------------------------------------------- /parties (account lookup)

    async def get_party(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        key = party_key(type_, id_, sub_id)
        msg = await inbound(request, services, "parties", destination_required=False)
        await lookup.lookup(msg, key, request.args.get("currency"))
        return accepted()

    async def put_party(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        party_key(type_, id_, sub_id)
        return await relay(request, "parties", models.PartiesTypeIDPutResponse)

    async def put_party_error(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        party_key(type_, id_, sub_id)
        return await relay(request, "parties", models.ErrorInformationObject)

    for suffix, uri in (("", "/parties/<type_>/<id_>"), ("_sub", "/parties/<type_>/<id_>/<sub_id>")):
        app.add_route(get_party, uri, methods=["GET"], name="get_party" + suffix)
        app.add_route(put_party, uri, methods=["PUT"], name="put_party" + suffix)
        app.add_route(put_party_error, uri + "/error", methods=["PUT"], name="put_party_error" + suffix)

    # ---------------------------------------------------------------- /participants (the ALS)

    async def post_participant(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        key = party_key(type_, id_, sub_id)
        msg = await inbound(request, services, "participants", destination_required=False)
        body = models.decode(models.ParticipantsTypeIDSubIDPostRequest, msg.body)
        await lookup.register(msg, key, body.fsp_id, body.currency)
        return accepted()

    async def get_participant(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        key = party_key(type_, id_, sub_id)
        msg = await inbound(request, services, "participants", destination_required=False)
        await lookup.find_owner(msg, key, request.args.get("currency"))
        return accepted()

    async def delete_participant(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        key = party_key(type_, id_, sub_id)
        msg = await inbound(request, services, "participants", destination_required=False)
        await lookup.remove(msg, key)
        return accepted()

    async def put_participant(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        """A callback of the /participants resource sent by an FSP: routed like any callback."""
        party_key(type_, id_, sub_id)
        return await relay(request, "participants", models.ParticipantsTypeIDPutResponse)

    async def put_participant_error(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        party_key(type_, id_, sub_id)
        return await relay(request, "participants", models.ErrorInformationObject)

    for suffix, uri in (("", "/participants/<type_>/<id_>"), ("_sub", "/participants/<type_>/<id_>/<sub_id>")):
        app.add_route(post_participant, uri, methods=["POST"], name="post_participant" + suffix)
        app.add_route(get_participant, uri, methods=["GET"], name="get_participant" + suffix)
        app.add_route(delete_participant, uri, methods=["DELETE"], name="delete_participant" + suffix)
        app.add_route(put_participant, uri, methods=["PUT"], name="put_participant" + suffix)
        app.add_route(put_participant_error, uri + "/error", methods=["PUT"], name="put_participant_error" + suffix)

    @app.post("/participants")
    async def post_participants_batch(request: Request) -> HTTPResponse:
        msg = await inbound(request, services, "participants", destination_required=False)
        body = models.decode(models.ParticipantsPostRequest, msg.body)
        parties = msgspec.to_builtins(body.party_list)  # as dicts with the API's names, for the answer
        await lookup.register_batch(msg, body.request_id, parties, body.currency)
        return accepted()

    @app.put("/participants/<request_id>")
    async def put_batch(request: Request, request_id: str) -> HTTPResponse:
        return await relay(request, "participants", models.ParticipantsIDPutResponse)

    @app.put("/participants/<request_id>/error")
    async def put_batch_error(request: Request, request_id: str) -> HTTPResponse:
        return await relay(request, "participants", models.ErrorInformationObject)

    # ---------------------------------------------------------------- /quotes

    @app.post("/quotes")
    async def post_quote(request: Request) -> HTTPResponse:
        msg = await inbound(request, services, "quotes")
        await quotes.request(msg, models.decode(models.QuotesPostRequest, msg.body))
        return accepted()

    @app.get("/quotes/<quote_id>")
    async def get_quote(request: Request, quote_id: str) -> HTTPResponse:
        msg = await inbound(request, services, "quotes")
        await quotes.relay(msg, "GET", quote_id)
        return accepted()

    @app.put("/quotes/<quote_id>")
    async def put_quote(request: Request, quote_id: str) -> HTTPResponse:
        msg = await inbound(request, services, "quotes")
        await quotes.answer(msg, quote_id, models.decode(models.QuotesIDPutResponse, msg.body))
        return ok()

    @app.put("/quotes/<quote_id>/error")
    async def put_quote_error(request: Request, quote_id: str) -> HTTPResponse:
        msg = await inbound(request, services, "quotes")
        body = models.decode(models.ErrorInformationObject, msg.body)
        await quotes.relay(msg, "PUT", quote_id, body.error_information.error_code)
        return ok()

    # ---------------------------------------------------------------- /transfers

    @app.post("/transfers")
    async def post_transfer(request: Request) -> HTTPResponse:
        msg = await inbound(request, services, "transfers")
        await transfers.prepare(msg, models.decode(models.TransfersPostRequest, msg.body))
        return accepted()

    @app.get("/transfers/<transfer_id>")
    async def get_transfer(request: Request, transfer_id: str) -> HTTPResponse:
        msg = await inbound(request, services, "transfers", destination_required=False)
        await transfers.get(msg, transfer_id)
        return accepted()

    @app.put("/transfers/<transfer_id>")
    async def put_transfer(request: Request, transfer_id: str) -> HTTPResponse:
        msg = await inbound(request, services, "transfers")
        await transfers.fulfil(msg, transfer_id, models.decode(models.TransfersIDPutResponse, msg.body))
        return ok()

    @app.put("/transfers/<transfer_id>/error")
    async def put_transfer_error(request: Request, transfer_id: str) -> HTTPResponse:
        msg = await inbound(request, services, "transfers")
        await transfers.reject(msg, transfer_id, models.decode(models.ErrorInformationObject, msg.body))
        return ok()

    # ---------------------------------------------------------------- /bulkTransfers

    bulk = services.bulk_transfers

    @app.post("/bulkTransfers")
    async def post_bulk_transfer(request: Request) -> HTTPResponse:
        msg = await inbound(request, services, "bulkTransfers")
        await bulk.prepare(msg, models.decode(bulk_models.BulkTransfersPostRequest, msg.body))
        return accepted()

    @app.get("/bulkTransfers/<bulk_transfer_id>")
    async def get_bulk_transfer(request: Request, bulk_transfer_id: str) -> HTTPResponse:
        msg = await inbound(request, services, "bulkTransfers", destination_required=False)
        await bulk.get(msg, bulk_transfer_id)
        return accepted()

    @app.put("/bulkTransfers/<bulk_transfer_id>")
    async def put_bulk_transfer(request: Request, bulk_transfer_id: str) -> HTTPResponse:
        msg = await inbound(request, services, "bulkTransfers")
        await bulk.fulfil(msg, bulk_transfer_id, models.decode(bulk_models.BulkTransfersIDPutResponse, msg.body))
        return ok()

    @app.put("/bulkTransfers/<bulk_transfer_id>/error")
    async def put_bulk_transfer_error(request: Request, bulk_transfer_id: str) -> HTTPResponse:
        msg = await inbound(request, services, "bulkTransfers")
        await bulk.reject(msg, bulk_transfer_id, models.decode(models.ErrorInformationObject, msg.body))
        return ok()

    # ---------------------------------------------------------------- payee-initiated payments, bulk quotes
    # /transactionRequests, /authorizations, /transactions and /bulkQuotes: checked, then routed by
    # FSPIOP-Destination and not stored (miniloop.services.requests).

    routed = services.requests

    @app.post("/transactionRequests")
    async def post_transaction_request(request: Request) -> HTTPResponse:
        msg = await inbound(request, services, "transactionRequests")
        body = models.decode(request_models.TransactionRequestsPostRequest, msg.body)
        await routed.request_transaction(msg, body)
        return accepted()

    @app.get("/authorizations/<transaction_request_id>")
    async def get_authorization(request: Request, transaction_request_id: str) -> HTTPResponse:
        """The payer's FSP asks the payee's device for the OTP; the query string is forwarded as sent."""
        msg = await inbound(request, services, "authorizations")
        query = request_models.authorizations_query(request.args)
        await routed.authorize(msg, transaction_request_id, query)
        return accepted()

    @app.post("/bulkQuotes")
    async def post_bulk_quote(request: Request) -> HTTPResponse:
        msg = await inbound(request, services, "bulkQuotes")
        await routed.request_bulk_quote(msg, models.decode(request_models.BulkQuotesPostRequest, msg.body))
        return accepted()

    def add_routed(resource: str, answer: type) -> None:
        """GET /<resource>/{ID}, its callback PUT /<resource>/{ID} (body `answer`) and PUT .../error."""

        async def get(request: Request, resource_id: str) -> HTTPResponse:
            msg = await inbound(request, services, resource)
            await routed.relay(msg, "GET", resource, resource_id)
            return accepted()

        async def put(request: Request, resource_id: str) -> HTTPResponse:
            msg = await inbound(request, services, resource)
            await routed.relay(msg, "PUT", resource, resource_id, models.decode(answer, msg.body))
            return ok()

        async def put_error(request: Request, resource_id: str) -> HTTPResponse:
            msg = await inbound(request, services, resource)
            body = models.decode(models.ErrorInformationObject, msg.body)
            await routed.relay(msg, "PUT", resource, resource_id, body)
            return ok()

        uri, name = f"/{resource}/<resource_id>", ENTITIES[resource]
        if resource != "authorizations":  # GET /authorizations/{ID} has a query to check: above
            app.add_route(get, uri, methods=["GET"], name=f"get_{name}")
        app.add_route(put, uri, methods=["PUT"], name=f"put_{name}")
        app.add_route(put_error, uri + "/error", methods=["PUT"], name=f"put_{name}_error")

    add_routed("transactionRequests", request_models.TransactionRequestsIDPutResponse)
    add_routed("authorizations", request_models.AuthorizationsIDPutResponse)
    add_routed("transactions", request_models.TransactionsIDPutResponse)
    add_routed("bulkQuotes", request_models.BulkQuotesIDPutResponse)

    # ---------------------------------------------------------------- the Third-party API v1.0 (PISPs)
    # docs/thirdparty.md: routed by FSPIOP-Destination through the TP_CB_URL_* endpoints and not
    # stored (miniloop.services.thirdparty), as Mojaloop's thirdparty-api-svc does, but on this
    # port; GET /services/{ServiceType} is answered by the hub itself.

    third = services.thirdparty

    async def tp_inbound(request: Request, *, destination_required: bool = True) -> Inbound:
        """`inbound` for a third-party resource: its answers are in the API's one version, 1.0."""
        msg = await inbound(request, services, request.path.split("/", 2)[1],
                            destination_required=destination_required)
        return replace(msg, version=headers.THIRDPARTY_VERSIONS[0])

    def add_tp(method: str, uri: str, resource: str, model: type | None, status: int, id_field: str = "") -> None:
        """`method uri`, body `model` (None: no body), answered `status` once recorded. A POST's
        id (where errors about it go) is its body's `id_field`, every other message's the path's."""

        async def handler(request: Request, resource_id: str = "") -> HTTPResponse:
            msg = await tp_inbound(request)
            body = models.decode(model, msg.body) if model is not None else None
            await third.route(msg, method, resource, getattr(body, id_field) if id_field else resource_id, body)
            return empty(status)

        name = re.sub(r"[^a-z0-9]+", "_", f"tp {method} {uri}".lower().replace("<resource_id>", "id")).strip("_")
        app.add_route(handler, uri, methods=[method], name=name)

    error = models.ErrorInformationObject
    for method, uri, resource, model, status, id_field in (
        # method, path, resource, body, answer (the API's), id field of a POST's body
        ("POST", "/consentRequests", "consentRequests", tp.ConsentRequestsPostRequest, 202, "consent_request_id"),
        ("PUT", "/consentRequests/<resource_id>", "consentRequests", tp.ConsentRequestsIDPutResponse, 202, ""),
        ("PATCH", "/consentRequests/<resource_id>", "consentRequests", tp.ConsentRequestsIDPatchRequest, 202, ""),
        ("PUT", "/consentRequests/<resource_id>/error", "consentRequests", error, 200, ""),
        ("POST", "/consents", "consents", tp.ConsentsPostRequest, 202, "consent_id"),
        ("GET", "/consents/<resource_id>", "consents", None, 202, ""),
        ("PUT", "/consents/<resource_id>", "consents", tp.ConsentsIDPutResponse, 202, ""),
        ("PATCH", "/consents/<resource_id>", "consents", tp.ConsentsIDPatchRequest, 200, ""),
        ("DELETE", "/consents/<resource_id>", "consents", None, 202, ""),
        ("PUT", "/consents/<resource_id>/error", "consents", error, 200, ""),
        ("GET", "/accounts/<resource_id>", "accounts", None, 202, ""),
        ("PUT", "/accounts/<resource_id>", "accounts", tp.AccountsIDPutResponse, 200, ""),
        ("PUT", "/accounts/<resource_id>/error", "accounts", error, 200, ""),
        ("POST", "/thirdpartyRequests/transactions", "thirdpartyRequests/transactions",
         tp.ThirdpartyRequestsTransactionsPostRequest, 202, "transaction_request_id"),
        ("GET", "/thirdpartyRequests/transactions/<resource_id>", "thirdpartyRequests/transactions", None, 202, ""),
        ("PUT", "/thirdpartyRequests/transactions/<resource_id>", "thirdpartyRequests/transactions",
         tp.ThirdpartyRequestsTransactionsIDPutResponse, 200, ""),
        ("PATCH", "/thirdpartyRequests/transactions/<resource_id>", "thirdpartyRequests/transactions",
         tp.ThirdpartyRequestsTransactionsIDPatchResponse, 200, ""),
        ("PUT", "/thirdpartyRequests/transactions/<resource_id>/error", "thirdpartyRequests/transactions",
         error, 200, ""),
        ("POST", "/thirdpartyRequests/authorizations", "thirdpartyRequests/authorizations",
         tp.ThirdpartyRequestsAuthorizationsPostRequest, 202, "authorization_request_id"),
        ("PUT", "/thirdpartyRequests/authorizations/<resource_id>", "thirdpartyRequests/authorizations",
         tp.ThirdpartyRequestsAuthorizationsIDPutResponse, 200, ""),
        ("PUT", "/thirdpartyRequests/authorizations/<resource_id>/error", "thirdpartyRequests/authorizations",
         error, 200, ""),
        ("POST", "/thirdpartyRequests/verifications", "thirdpartyRequests/verifications",
         tp.ThirdpartyRequestsVerificationsPostRequest, 202, "verification_request_id"),
        ("PUT", "/thirdpartyRequests/verifications/<resource_id>", "thirdpartyRequests/verifications",
         tp.ThirdpartyRequestsVerificationsIDPutResponse, 200, ""),
        ("PUT", "/thirdpartyRequests/verifications/<resource_id>/error", "thirdpartyRequests/verifications",
         error, 200, ""),
    ):
        add_tp(method, uri, resource, model, status, id_field)

    async def tp_not_implemented(request: Request, resource_id: str) -> HTTPResponse:
        """In the API, but neither Mojaloop's switch nor its endpoint types have a route for them."""
        await tp_inbound(request)
        raise FspiopError("2002", f"{request.method} {request.path.rsplit('/', 1)[0]}/{{ID}} is not routed by the hub")

    for uri in ("/consentRequests/<resource_id>", "/thirdpartyRequests/authorizations/<resource_id>",
                "/thirdpartyRequests/verifications/<resource_id>"):
        app.add_route(tp_not_implemented, uri, methods=["GET"], name="tp_get_" + uri.split("/")[-2])

    def service_type(value: str) -> str:
        if value not in tp.SERVICE_TYPES:
            raise FspiopError("3100", f"ServiceType must be one of {', '.join(tp.SERVICE_TYPES)}, not {value[:32]}")
        return value

    @app.get("/services/<type_>")
    async def get_services(request: Request, type_: str) -> HTTPResponse:
        """Which participants provide a service: the hub answers PUT /services/{ServiceType} itself."""
        type_ = service_type(type_)
        msg = await tp_inbound(request, destination_required=False)
        await third.list_services(msg, type_)
        return accepted()

    @app.put("/services/<type_>")
    async def put_services(request: Request, type_: str) -> HTTPResponse:
        type_ = service_type(type_)
        msg = await tp_inbound(request)
        body = models.decode(tp.ServicesServiceTypePutResponse, msg.body)
        await third.route(msg, "PUT", "services", type_, body)
        return ok()

    @app.put("/services/<type_>/error")
    async def put_services_error(request: Request, type_: str) -> HTTPResponse:
        type_ = service_type(type_)
        msg = await tp_inbound(request)
        body = models.decode(models.ErrorInformationObject, msg.body)
        await third.route(msg, "PUT", "services", type_, body)
        return ok()

    return app
