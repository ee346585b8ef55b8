"""The sim port: every simulated DFSP's FSPIOP API under /<dfsp>, plus a small API to drive them.

Why one port with a prefix per DFSP: the seed registers each simulated DFSP's callback endpoints
under `<sim URL>/<dfsp name>` (miniloop.fspiop.endpoints), so the switch reaches them over real
HTTP on loopback exactly as it reaches an outside DFSP.

FSPIOP routes (called by the switch): GET /parties/..., POST /quotes, POST /transfers, and the
callbacks PUT /parties/..., PUT /quotes/{ID}, PUT /transfers/{ID}, their /error, and PATCH
/transfers/{ID}. Each answers at once, 202 for GET/POST and 200 for PUT/PATCH, once it has checked
that FSPIOP-Source is there and the body is a JSON object; the work then runs in the background
(mobile_sim.sim). Too much work in flight: 503 / 2003.

Driving API (for people, the wallet page and scenarios):
- POST /<dfsp>/send: a customer pays someone (mobile_sim.send);
- GET /<dfsp>/customers: [{id, idType, name, balance, reserved}];
- GET /<dfsp>/transfers/recent: {"transfers": newest first, "unmatchedCallbacks": [...]};
- GET /dfsps: the simulated DFSPs, their currency and fee rule.
"""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request, Sanic

from miniloop import hubfile
from miniloop.api.common import json_body, new_app, reply
from miniloop.fspiop.errors import FspiopError
from mobile_sim import send as send_flow
from mobile_sim.dfsp import SimDfsp, simulated
from mobile_sim.pricing import text
from mobile_sim.sim import Incoming, Simulator


def sim_app(hub: hubfile.HubFile | None, switch_url: str, health: dict[str, Any]) -> Sanic:
    """The Sanic app of the sim port; with no hub file (--empty) it serves /health only."""
    app = new_app("miniloop_sim", health)
    dfsps = simulated(hub)
    if not dfsps:
        return app
    sim = Simulator(dfsps, switch_url)
    app.ctx.sim = sim

    async def open_client(app: Sanic) -> None:
        await sim.start()

    async def wake_waiters(app: Sanic) -> None:
        sim.stopping()

    async def close_client(app: Sanic) -> None:
        await sim.stop()

    app.register_listener(open_client, "before_server_start")
    app.register_listener(wake_waiters, "before_server_stop")
    app.register_listener(close_client, "after_server_stop")
    _fspiop_routes(app, sim)
    _driving_routes(app, sim)
    return app


def _dfsp(sim: Simulator, name: str) -> SimDfsp:
    dfsp = sim.dfsps.get(name)
    if dfsp is None:
        raise FspiopError("3002", f"{name} is not a simulated DFSP")
    return dfsp


def _take(sim: Simulator, request: Request, dfsp_name: str, resource: str, ids: tuple[str | None, ...],
          is_error: bool = False) -> HTTPResponse:
    """Check the little a DFSP checks at once, answer 202/200, and hand the work to the simulator."""
    dfsp = _dfsp(sim, dfsp_name)
    source = request.headers.get("fspiop-source")
    if not source:
        raise FspiopError("3102", "fspiop-source is required")
    body = json_body(request) if request.method in ("POST", "PUT", "PATCH") else None
    prefix = f"/{dfsp.name}"
    path = request.path[len(prefix):] if request.path.startswith(prefix) else request.path
    message = Incoming(
        dfsp=dfsp, method=request.method, path=path, resource=resource, ids=ids, is_error=is_error,
        source=source, destination=request.headers.get("fspiop-destination"),
        traceparent=request.headers.get("traceparent"), body=body,
    )
    if not sim.accept(message):
        raise FspiopError("2003", "the simulated DFSPs are busy", status=503)
    return reply(None, 202 if request.method in ("GET", "POST") else 200)


def _fspiop_routes(app: Sanic, sim: Simulator) -> None:
    party = "/<dfsp>/parties/<id_type>/<party_id>"

    @app.route(party, methods=["GET", "PUT"], name="sim_party")
    async def party_route(request: Request, dfsp: str, id_type: str, party_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "parties", (id_type, party_id, None))

    @app.route(party + "/<sub_id>", methods=["GET", "PUT"], name="sim_party_sub")
    async def party_sub_route(request: Request, dfsp: str, id_type: str, party_id: str, sub_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "parties", (id_type, party_id, sub_id))

    @app.put(party + "/error", name="sim_party_error")
    async def party_error(request: Request, dfsp: str, id_type: str, party_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "parties", (id_type, party_id, None), is_error=True)

    @app.put(party + "/<sub_id>/error", name="sim_party_sub_error")
    async def party_sub_error(request: Request, dfsp: str, id_type: str, party_id: str, sub_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, "parties", (id_type, party_id, sub_id), is_error=True)

    for resource in ("quotes", "transfers"):
        _resource_routes(app, sim, resource)


def _resource_routes(app: Sanic, sim: Simulator, resource: str) -> None:
    """POST /<resource>, PUT /<resource>/{ID} (and PATCH for transfers), PUT /<resource>/{ID}/error."""
    callback_methods = ["PUT", "PATCH"] if resource == "transfers" else ["PUT"]

    @app.post(f"/<dfsp>/{resource}", name=f"sim_{resource}_post")
    async def post(request: Request, dfsp: str) -> HTTPResponse:
        return _take(sim, request, dfsp, resource, ())

    @app.route(f"/<dfsp>/{resource}/<item_id>", methods=callback_methods, name=f"sim_{resource}_put")
    async def put(request: Request, dfsp: str, item_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, resource, (item_id,))

    @app.put(f"/<dfsp>/{resource}/<item_id>/error", name=f"sim_{resource}_error")
    async def error(request: Request, dfsp: str, item_id: str) -> HTTPResponse:
        return _take(sim, request, dfsp, resource, (item_id,), is_error=True)


def _driving_routes(app: Sanic, sim: Simulator) -> None:
    @app.get("/dfsps", name="sim_dfsps")
    async def list_dfsps(request: Request) -> HTTPResponse:
        return reply([
            {"name": d.name, "currency": d.currency, "customers": len(d.books.customers),
             "quoteFeeFixed": text(d.fees.fixed), "quoteFeePercent": text(d.fees.percent)}
            for d in sim.dfsps.values()
        ])

    @app.post("/<dfsp>/send", name="sim_send")
    async def send(request: Request, dfsp: str) -> HTTPResponse:
        status, body = await send_flow.send(sim, _dfsp(sim, dfsp), json_body(request))
        return reply(body, status)

    @app.get("/<dfsp>/customers", name="sim_customers")
    async def customers(request: Request, dfsp: str) -> HTTPResponse:
        return reply([c.view() for c in _dfsp(sim, dfsp).books.customers.values()])

    @app.get("/<dfsp>/transfers/recent", name="sim_recent")
    async def recent(request: Request, dfsp: str) -> HTTPResponse:
        found = _dfsp(sim, dfsp)
        return reply({"transfers": found.books.recent(), "unmatchedCallbacks": list(found.unmatched)[::-1]})
