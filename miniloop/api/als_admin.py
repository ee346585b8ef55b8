"""The account-lookup-service admin API (port 4001): which oracle serves which party id type.

The built-in oracle's Oracle API is served on the same port under /oracle (miniloop.api.oracle),
and the hub-hosted auth-service, participant centralAuth, under /authService
(miniloop.api.auth_service).
"""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request, Sanic

from miniloop.api.auth_service import auth_service_blueprint
from miniloop.api.common import json_body, new_app, reply
from miniloop.api.params import sqlite_int_params
from miniloop.api.oracle import oracle_blueprint
from miniloop.services.auth_service import AuthService
from miniloop.services.oracles import Oracles


def als_admin_app(oracles: Oracles, health: dict[str, Any], auth_service: AuthService | None = None) -> Sanic:
    app = new_app("miniloop_als_admin", health)
    sqlite_int_params(app)
    app.blueprint(oracle_blueprint(oracles))
    if auth_service is not None:
        app.blueprint(auth_service_blueprint(auth_service))

    @app.get("/oracles")
    async def list_oracles(request: Request) -> HTTPResponse:
        return reply(await oracles.list(request.args.get("type"), request.args.get("currency")))

    @app.post("/oracles")
    async def create_oracle(request: Request) -> HTTPResponse:
        await oracles.create(json_body(request))
        return reply(None, 201)

    @app.put("/oracles/<oracle_id:int>")
    async def update_oracle(request: Request, oracle_id: int) -> HTTPResponse:
        await oracles.update(oracle_id, json_body(request))
        return reply(None, 204)

    @app.delete("/oracles/<oracle_id:int>")
    async def delete_oracle(request: Request, oracle_id: int) -> HTTPResponse:
        await oracles.delete(oracle_id)
        return reply(None, 204)

    return app
