"""The mobile wallet simulator in a browser: phones, tills, the hub pane and the workshop's join page.

`wallet_app` builds the Sanic app of the wallet port (`--wallet-port`, 3080). The page is one
static single-page app (static/index.html and its scripts, written against the JSON API below);
it reads `location.pathname` to choose its layout. Nothing is loaded from the internet, so a
workshop on an offline Wi-Fi works.

Routes:

- `GET /`, `/phone/<dfsp>/<id>`, `/till/<dfsp>/<id>`, `/hub`, `/pisp`, `/join`: the page;
  `GET /static/<file>`: its files (no directory outside static/, 404 otherwise).
- `GET /api/config`: the simulated DFSPs and their customers, the PISPs, the join URL, the URLs.
- `GET|POST|PUT /api/sim/<path>`: the sim port's driving API (docs/simulator.md), forwarded as it
  is, status and body as the sim answers. The last QR_KEPT merchant QR codes made through it are
  kept for `GET /api/qrs`, so a phone can pick the code a till shows (phones on a LAN over plain
  http have no camera).
- `GET /api/hub`: the DFSPs' positions, Net Debit Caps and settlement balances (Admin API) and
  the open settlement window (Settlement API).
- `POST /api/join` `{"name"?}`: a new customer at a wallet DFSP, round-robin (the sim's
  `POST /<dfsp>/customers`); `GET /api/join-qr`: the join URL and its QR code.
- `GET /api/events`: server-sent events (mobile_sim.web.events).

Every refusal is an FSPIOP error body, as on the other ports. Every answer says
`Cache-Control: no-cache`, so a page edited on disk is reloaded.
"""

from __future__ import annotations

import itertools
import re
from collections import deque
from pathlib import Path
from typing import Any

import msgspec
from sanic import HTTPResponse, Request, Sanic

from miniloop.api.common import json_body, new_app, reply
from miniloop.fspiop.errors import FspiopError
from mobile_sim import qr
from mobile_sim.pricing import text
from mobile_sim.web.events import Events, now_text
from mobile_sim.web.upstream import FORWARD_TIMEOUT_S, Upstream, hub_view

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon", ".json": "application/json",
    ".webmanifest": "application/manifest+json", ".woff2": "font/woff2", ".txt": "text/plain; charset=utf-8",
}
_STATIC_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # one path segment, never "." or ".."
PAGES = ("/", "/hub", "/pisp", "/join", "/phone/<dfsp>/<customer_id>", "/till/<dfsp>/<customer_id>")
QR_KEPT = 20
_QR_PATH = re.compile(r"([^/]+)/qr")
URL_NAMES = ("fspiop", "admin", "settlement", "als_admin", "sim", "wallet", "nats")
_decode = msgspec.json.Decoder().decode


def wallet_app(sim: Any, urls: dict[str, str], health: dict[str, Any], join_url: str | None, *,
               admin_token: str | None = None) -> Sanic:
    """The wallet port's app. `sim` is the running Simulator (None on an --empty hub), `urls` the
    hub's URLs (fspiop, admin, settlement, als_admin, sim, wallet, nats), `join_url` the address
    phones on the LAN open to join (None when the hub listens on loopback only), `admin_token` what
    the Admin and Settlement APIs ask for, if anything (never sent elsewhere)."""
    app = new_app("miniloop_wallet", health)
    app.config.RESPONSE_TIMEOUT = FORWARD_TIMEOUT_S + 20  # a forwarded driving call may take that long
    app.ctx.sim = sim
    app.ctx.urls = urls
    app.ctx.join_url = join_url
    upstream = Upstream(admin_token)
    events = Events(sim, urls.get("nats"))
    app.ctx.events = events

    async def open_clients(app: Sanic) -> None:
        await upstream.open()
        await events.start()

    async def end_streams(app: Sanic) -> None:
        events.stop()

    async def close_clients(app: Sanic) -> None:
        await events.close()
        await upstream.close()

    app.register_listener(open_clients, "before_server_start")
    app.register_listener(end_streams, "before_server_stop")
    app.register_listener(close_clients, "after_server_stop")

    @app.on_response
    async def no_cache(request: Request, response: HTTPResponse) -> None:
        response.headers.setdefault("Cache-Control", "no-cache")

    _page_routes(app)
    _api_routes(app, sim, urls, join_url, upstream, events)
    return app


# --------------------------------------------------------------------------- the page and its files


def _static_file(name: str) -> HTTPResponse:
    parts = name.split("/")
    if not all(_STATIC_NAME.fullmatch(part) for part in parts):
        raise FspiopError("3002", "Not Found")
    path = STATIC_DIR.joinpath(*parts)
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    try:
        resolved = path.resolve(strict=True)
    except OSError:
        raise FspiopError("3002", f"no file {name}") from None
    if content_type is None or not resolved.is_file() or STATIC_DIR.resolve() not in resolved.parents:
        raise FspiopError("3002", f"no file {name}")
    return HTTPResponse(resolved.read_bytes(), content_type=content_type)


def _page_routes(app: Sanic) -> None:
    async def page(request: Request, **_: str) -> HTTPResponse:
        try:
            return _static_file("index.html")
        except FspiopError:
            raise FspiopError("2001", "the wallet page is missing (mobile_sim/web/static/index.html)") from None

    for number, path in enumerate(PAGES):
        app.add_route(page, path, methods=["GET"], name=f"wallet_page_{number}")

    @app.get("/static/<name:path>", name="wallet_static")
    async def static(request: Request, name: str) -> HTTPResponse:
        return _static_file(name)


# --------------------------------------------------------------------------- the JSON API


def _config(sim: Any, urls: dict[str, str], join_url: str | None) -> dict[str, Any]:
    pisps = sorted(sim.pisps) if sim is not None else []
    dfsps = [] if sim is None else [
        {"name": d.name, "currency": d.currency, "quoteFeePercent": text(d.fees.percent),
         "quoteFeeFixed": text(d.fees.fixed),
         "customers": [c.view() for c in d.books.customers.values()]}
        for d in sim.dfsps.values() if d.name not in sim.pisps]
    return {"dfsps": dfsps, "pisps": pisps, "joinUrl": join_url,
            "urls": {name: urls.get(name) for name in URL_NAMES}}


def wallet_dfsps(sim: Any) -> list[str]:
    """The DFSPs a workshop participant may join: simulated wallets, not merchant banks or PISPs.
    A wallet is a DFSP that charges no quote fee and has at least one customer with a phone
    number (with the demo hub: greenwallet and bluewallet)."""
    if sim is None:
        return []
    return [d.name for d in sim.dfsps.values()
            if d.name not in sim.pisps and not d.fees.fixed and not d.fees.percent
            and any(c.id_type == "MSISDN" for c in d.books.customers.values())]


def _api_routes(app: Sanic, sim: Any, urls: dict[str, str], join_url: str | None, upstream: Upstream,
                events: Events) -> None:
    qrs: deque[dict[str, Any]] = deque(maxlen=QR_KEPT)
    turn = itertools.count()

    @app.get("/api/config", name="wallet_config")
    async def config(request: Request) -> HTTPResponse:
        return reply(_config(sim, urls, join_url))

    @app.route("/api/sim/<path:path>", methods=["GET", "POST", "PUT"], name="wallet_sim")
    async def forward(request: Request, path: str) -> HTTPResponse:
        raw_path = request.path[len("/api/sim/"):]  # as sent, still percent-encoded
        url = f"{urls['sim']}/{raw_path}" + (f"?{request.query_string}" if request.query_string else "")
        status, body, content_type = await upstream.forward(request.method, url, request.body)
        if request.method == "POST" and status == 200:
            found = _QR_PATH.fullmatch(raw_path)
            if found:
                _keep_qr(qrs, found.group(1), request.body, body)
        return HTTPResponse(body, status=status, content_type=content_type or "application/json")

    @app.get("/api/qrs", name="wallet_qrs")
    async def recent_qrs(request: Request) -> HTTPResponse:
        return reply({"qrs": list(qrs)[::-1]})

    @app.get("/api/hub", name="wallet_hub")
    async def hub(request: Request) -> HTTPResponse:
        return reply(await hub_view(upstream, urls["admin"], urls["settlement"]))

    @app.post("/api/join", name="wallet_join")
    async def join(request: Request) -> HTTPResponse:
        order = json_body(request) if request.body else {}
        unknown = sorted(set(order) - {"name"})
        if unknown:
            raise FspiopError("3100", f"{unknown[0]} is not a field of /api/join (fields: name)")
        name = order.get("name")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise FspiopError("3100", "name must be a non-empty string, or left out")
        wallets = wallet_dfsps(sim)
        if not wallets:
            raise FspiopError("3002", "this hub simulates no wallet DFSP to join")
        dfsp = wallets[next(turn) % len(wallets)]
        body = msgspec.json.encode({"name": name.strip()} if name else {})
        status, answer, content_type = await upstream.forward("POST", f"{urls['sim']}/{dfsp}/customers", body)
        return HTTPResponse(answer, status=status, content_type=content_type or "application/json")

    @app.get("/api/join-qr", name="wallet_join_qr")
    async def join_qr(request: Request) -> HTTPResponse:
        if join_url is None:
            # the prefix "Unknown URI - " leaves 114 characters of the 128
            raise FspiopError("3002", "no join address on loopback: start with `miniloop up --host 0.0.0.0`")
        return reply({"url": join_url, "svg": qr.svg(join_url)})

    @app.get("/api/events", name="wallet_events")
    async def stream(request: Request) -> None:
        await events.stream(request)


def _keep_qr(qrs: deque[dict[str, Any]], dfsp: str, order: bytes, answer: bytes) -> None:
    """Remember a QR code a till made, for GET /api/qrs."""
    try:
        made, asked = _decode(answer), _decode(order) if order else {}
    except msgspec.DecodeError:
        return
    if not isinstance(made, dict) or not isinstance(asked, dict) or "payload" not in made:
        return
    qrs.append({"payload": made["payload"], "qr": made.get("qr"), "svg": made.get("svg"), "createdAt": now_text(),
                "dfsp": dfsp, "customer": asked.get("from")})
