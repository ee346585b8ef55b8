"""central-settlement's Settlement API v2 (port 3007, base path /v2): windows and settlements.

Paths, bodies and errors are central-settlement's; the rules live in
miniloop.services.settlement_windows and miniloop.services.settlements, and docs/settlement-api.md
lists where miniloop answers differently and why.
"""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request, Sanic

from miniloop.api.common import new_app, reply
from miniloop.api.params import sqlite_int_params
from miniloop.fspiop.models import decode
from miniloop.services.settlement_report import SettlementReports
from miniloop.services.settlement_windows import SettlementWindows, WindowClosure
from miniloop.services.settlements import (
    NewSettlement, OneAccountUpdate, ParticipantAccountsUpdate, SettlementUpdate, Settlements,
)


def settlement_app(windows: SettlementWindows, settlements: Settlements, health: dict[str, Any]) -> Sanic:
    app = new_app("miniloop_settlement", health, health_paths=("/health", "/v2/health"))  # the spec's is /v2
    sqlite_int_params(app)
    reports = SettlementReports(settlements.ledger.path)

    def args(request: Request) -> dict[str, str]:
        return {k: v[0] for k, v in request.args.items()}

    # ------------------------------------------------------------ windows

    @app.get("/v2/settlementWindows")
    async def find_windows(request: Request) -> HTTPResponse:
        return reply(await windows.find(args(request)))

    @app.get("/v2/settlementWindows/<window_id:int>")
    async def get_window(request: Request, window_id: int) -> HTTPResponse:
        return reply(await windows.get(window_id))

    @app.post("/v2/settlementWindows/<window_id:int>")
    async def close_window(request: Request, window_id: int) -> HTTPResponse:
        return reply(await windows.close(window_id, decode(WindowClosure, request.body)))

    @app.get("/v2/settlementWindows/<window_id:int>/positions")
    async def window_positions(request: Request, window_id: int) -> HTTPResponse:
        """A miniloop extension: net positions per participant (miniloop.services.settlement_report)."""
        return reply(await reports.positions(window_id))

    # ------------------------------------------------------------ settlements

    @app.post("/v2/settlements")
    async def create_settlement(request: Request) -> HTTPResponse:
        return reply(await settlements.create(decode(NewSettlement, request.body)))

    @app.get("/v2/settlements")
    async def find_settlements(request: Request) -> HTTPResponse:
        return reply(await settlements.find(args(request)))

    @app.get("/v2/settlements/<settlement_id:int>")
    async def get_settlement(request: Request, settlement_id: int) -> HTTPResponse:
        return reply(await settlements.get(settlement_id))

    @app.put("/v2/settlements/<settlement_id:int>")
    async def update_settlement(request: Request, settlement_id: int) -> HTTPResponse:
        return reply(await settlements.update(settlement_id, decode(SettlementUpdate, request.body)))

    @app.get("/v2/settlements/<settlement_id:int>/participants/<participant_id:int>")
    async def get_participant(request: Request, settlement_id: int, participant_id: int) -> HTTPResponse:
        return reply(await settlements.get_participant(settlement_id, participant_id))

    @app.put("/v2/settlements/<settlement_id:int>/participants/<participant_id:int>")
    async def update_participant(request: Request, settlement_id: int, participant_id: int) -> HTTPResponse:
        body = decode(ParticipantAccountsUpdate, request.body)
        return reply(await settlements.update_participant(settlement_id, participant_id, body.accounts))

    @app.get("/v2/settlements/<settlement_id:int>/participants/<participant_id:int>/accounts/<account_id:int>")
    async def get_account(request: Request, settlement_id: int, participant_id: int, account_id: int) -> HTTPResponse:
        return reply(await settlements.get_participant(settlement_id, participant_id, account_id))

    @app.put("/v2/settlements/<settlement_id:int>/participants/<participant_id:int>/accounts/<account_id:int>")
    async def update_account(request: Request, settlement_id: int, participant_id: int,
                             account_id: int) -> HTTPResponse:
        body = decode(OneAccountUpdate, request.body)
        return reply(await settlements.update_account(settlement_id, participant_id, account_id, body))

    return app
