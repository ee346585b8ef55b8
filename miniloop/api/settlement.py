"""central-settlement's Settlement API v2 (port 3007, base path /v2)."""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request, Sanic

from miniloop.api.common import new_app, reply
from miniloop.services.settlement import SettlementWindows


def settlement_app(windows: SettlementWindows, health: dict[str, Any]) -> Sanic:
    app = new_app("miniloop_settlement", health)

    @app.get("/v2/settlementWindows")
    async def find_windows(request: Request) -> HTTPResponse:
        return reply(await windows.find({k: v[0] for k, v in request.args.items()}))

    @app.get("/v2/settlementWindows/<window_id:int>")
    async def get_window(request: Request, window_id: int) -> HTTPResponse:
        return reply(await windows.get(window_id))

    return app
