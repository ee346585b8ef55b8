"""The built-in oracle, served with the ALS Oracle API under /oracle on the ALS admin port.

The Oracle API is plain synchronous REST (unlike FSPIOP): GET answers 200 with the party list or
404; POST registers (201); PUT changes the owner (204); DELETE removes (204); POST /participants
registers a batch. The seeded hub registers this URL in /oracles for its customers' id types, so
account lookups go through the same path as with an external oracle.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request

from miniloop.api.common import json_body, reply
from miniloop.fspiop.errors import FspiopError
from miniloop.services import inputs
from miniloop.services.oracles import PARTY_ID_TYPES, Oracles


def oracle_blueprint(oracles: Oracles) -> Blueprint:
    bp = Blueprint("builtin_oracle", url_prefix="/oracle")

    def party_type(value: str) -> str:
        return inputs.one_of(value, "Type", PARTY_ID_TYPES)

    async def lookup(request: Request, type_: str, id_: str, sub_id: str) -> HTTPResponse:
        sub = request.args.get("partySubIdOrType", sub_id)
        found = await oracles.find_party(party_type(type_), id_, sub, request.args.get("currency"))
        if not found:
            return reply(FspiopError("3204", f"{type_} {id_} is not registered").body(), 404)
        return reply({"partyList": found})

    async def register(request: Request, type_: str, id_: str, sub_id: str, status: int) -> HTTPResponse:
        body = json_body(request)
        fsp_id = inputs.participant_name(inputs.required(body, "fspId"))
        currency = inputs.currency(body["currency"]) if body.get("currency") else ""
        await oracles.register_party(party_type(type_), id_, fsp_id, sub_id, currency)
        return reply(None, status)

    async def get_party(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        return await lookup(request, type_, id_, sub_id)

    async def post_party(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        return await register(request, type_, id_, sub_id, 201)

    async def put_party(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        return await register(request, type_, id_, sub_id, 204)

    async def delete_party(request: Request, type_: str, id_: str, sub_id: str = "") -> HTTPResponse:
        await oracles.delete_party(party_type(type_), id_, sub_id)
        return reply(None, 204)

    # each on /participants/{Type}/{ID} and on /participants/{Type}/{ID}/{SubId}
    for handler, method in ((get_party, "GET"), (post_party, "POST"), (put_party, "PUT"), (delete_party, "DELETE")):
        for suffix, uri in (("", "/participants/<type_>/<id_>"), ("_sub", "/participants/<type_>/<id_>/<sub_id>")):
            bp.add_route(handler, uri, methods=[method], name=handler.__name__ + suffix)

    @bp.post("/participants")
    async def post_batch(request: Request) -> HTTPResponse:
        body = json_body(request)
        party_list = inputs.required(body, "partyList")
        if not isinstance(party_list, list) or not 1 <= len(party_list) <= 10_000:
            raise inputs.malformed('"partyList" must be a list of 1 to 10000 parties')
        currency = inputs.currency(body["currency"]) if body.get("currency") else ""
        results: list[dict[str, Any]] = []
        for party in party_list:
            try:
                if not isinstance(party, dict):
                    raise inputs.malformed("each party must be an object")
                await oracles.register_party(
                    party_type(inputs.required(party, "partyIdType")),
                    inputs.text(inputs.required(party, "partyIdentifier"), "partyIdentifier", max_length=128),
                    inputs.participant_name(inputs.required(party, "fspId")),
                    _sub_id(party.get("partySubIdOrType")),
                    currency,
                )
                results.append({"partyId": party})
            except FspiopError as exc:
                results.append({"partyId": party, **exc.body()})
        return reply({"partyList": results}, 201)

    return bp


def _sub_id(value: Any) -> str:
    """A batch party's optional partySubIdOrType: absent, or a string like the path's {SubId}."""
    if value is None or value == "":
        return ""
    return inputs.text(value, "partySubIdOrType", max_length=128)
