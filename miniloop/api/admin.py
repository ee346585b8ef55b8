"""central-ledger's Admin API (port 3001): participants, accounts, limits, funds, settlement models.

Paths, status codes and bodies are Mojaloop's, so onboarding scripts written for a Mojaloop hub
work unchanged; docs/admin-api.md lists where miniloop answers differently and why.
"""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request, Sanic

from miniloop.api.common import json_body, new_app, reply
from miniloop.api.params import sqlite_int_params
from miniloop.fspiop.errors import not_found
from miniloop.services.participants import Participants
from miniloop.services.settlement_models import SettlementModels


def admin_app(participants: Participants, models: SettlementModels, health: dict[str, Any],
              hub_jws_key: str | None = None) -> Sanic:
    """`hub_jws_key`: the PEM public key the hub signs its own messages with (--sign-messages)."""
    app = new_app("miniloop_admin", health)
    sqlite_int_params(app)

    # ------------------------------------------------------------ participants

    @app.get("/participants")
    async def list_participants(request: Request) -> HTTPResponse:
        is_proxy = request.args.get("isProxy")
        flag = None if is_proxy is None else is_proxy.lower() in ("true", "1")
        return reply(await participants.list(flag))

    @app.post("/participants")
    async def create_participant(request: Request) -> HTTPResponse:
        return reply(await participants.create(json_body(request)), 201)

    @app.get("/participants/limits")
    async def all_limits(request: Request) -> HTTPResponse:
        return reply(await participants.limits(None, request.args.get("currency"), request.args.get("type")))

    @app.get("/participants/<name>")
    async def get_participant(request: Request, name: str) -> HTTPResponse:
        return reply(await participants.get(name))

    @app.put("/participants/<name>")
    async def update_participant(request: Request, name: str) -> HTTPResponse:
        return reply(await participants.set_active(name, json_body(request)))

    # ------------------------------------------------------------ JWS keys (FSPIOP-Signature)
    # miniloop's own routes (central-ledger has none): docs/admin-api.md, docs/reliability.md

    @app.get("/participants/<name>/jwsKey")
    async def get_jws_key(request: Request, name: str) -> HTTPResponse:
        return reply(await participants.jws_key(name))

    @app.put("/participants/<name>/jwsKey")
    async def put_jws_key(request: Request, name: str) -> HTTPResponse:
        return reply(await participants.set_jws_key(name, json_body(request)))

    @app.delete("/participants/<name>/jwsKey")
    async def delete_jws_key(request: Request, name: str) -> HTTPResponse:
        await participants.remove_jws_key(name)
        return reply(None, 204)

    @app.get("/hub/jwsKey")
    async def get_hub_jws_key(request: Request) -> HTTPResponse:
        if hub_jws_key is None:
            raise not_found("the hub signs nothing: start it with --sign-messages")
        return reply({"publicKey": hub_jws_key})

    # ------------------------------------------------------------ endpoints and limits

    @app.get("/participants/<name>/endpoints")
    async def get_endpoints(request: Request, name: str) -> HTTPResponse:
        endpoints = await participants.endpoints(name)
        wanted = request.args.get("type")
        if wanted is not None:  # Mojaloop answers one object (or {}) when a type is asked for
            return reply(next((e for e in endpoints if e["type"] == wanted), {}))
        return reply(endpoints)

    @app.post("/participants/<name>/endpoints")
    async def add_endpoint(request: Request, name: str) -> HTTPResponse:
        await participants.add_endpoint(name, json_body(request))
        return reply(None, 201)

    @app.get("/participants/<name>/limits")
    async def get_limits(request: Request, name: str) -> HTTPResponse:
        return reply(await participants.limits(name, request.args.get("currency"), request.args.get("type")))

    @app.put("/participants/<name>/limits")
    async def adjust_limit(request: Request, name: str) -> HTTPResponse:
        return reply(await participants.adjust_limit(name, json_body(request)))

    @app.post("/participants/<name>/initialPositionAndLimits")
    async def initial_position_and_limits(request: Request, name: str) -> HTTPResponse:
        await participants.initial_position_and_limits(name, json_body(request))
        return reply(None, 201)

    @app.get("/participants/<name>/positions")
    async def get_positions(request: Request, name: str) -> HTTPResponse:
        return reply(await participants.positions(name, request.args.get("currency")))

    # ------------------------------------------------------------ accounts and funds

    @app.get("/participants/<name>/accounts")
    async def get_accounts(request: Request, name: str) -> HTTPResponse:
        return reply(await participants.accounts(name))

    @app.post("/participants/<name>/accounts")
    async def create_hub_account(request: Request, name: str) -> HTTPResponse:
        return reply(await participants.create_hub_account(name, json_body(request)), 201)

    @app.put("/participants/<name>/accounts/<account_id:int>")
    async def update_account(request: Request, name: str, account_id: int) -> HTTPResponse:
        await participants.set_account_active(name, account_id, json_body(request))
        return reply(None, 200)

    @app.post("/participants/<name>/accounts/<account_id:int>")
    async def move_funds(request: Request, name: str, account_id: int) -> HTTPResponse:
        await participants.move_funds(name, account_id, json_body(request))
        return reply(None, 202)

    @app.put("/participants/<name>/accounts/<account_id:int>/transfers/<transfer_id>")
    async def finish_funds_out(request: Request, name: str, account_id: int, transfer_id: str) -> HTTPResponse:
        await participants.finish_funds_out(name, account_id, transfer_id, json_body(request))
        return reply(None, 202)

    # ------------------------------------------------------------ settlement models, account types

    @app.get("/settlementModels")
    async def list_models(request: Request) -> HTTPResponse:
        return reply(await models.list())

    @app.post("/settlementModels")
    async def create_model(request: Request) -> HTTPResponse:
        await models.create(json_body(request))
        return reply(None, 201)

    @app.get("/settlementModels/<name>")
    async def get_model(request: Request, name: str) -> HTTPResponse:
        return reply(await models.get(name))

    @app.put("/settlementModels/<name>")
    async def update_model(request: Request, name: str) -> HTTPResponse:
        return reply(await models.set_active(name, json_body(request)))

    @app.get("/ledgerAccountTypes")
    async def list_account_types(request: Request) -> HTTPResponse:
        return reply(await models.account_types())

    @app.post("/ledgerAccountTypes")
    async def create_account_type(request: Request) -> HTTPResponse:
        await models.create_account_type(json_body(request))
        return reply(None, 201)

    return app
