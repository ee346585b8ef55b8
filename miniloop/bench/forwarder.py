"""The baseline of `miniloop bench --baseline`: what HTTP alone allows on this machine.

A switch that does nothing but forward: Sanic in, the same pooled aiohttp client out, every
request answered 202/200 at once and passed on to the DFSP named by FSPIOP-Destination, with
its headers and body unchanged. No ledger, no NATS, no checks. The hub does this plus everything
a switch must do, so the hub's figures divided by these say what the switch's own work costs.

Run as `python -m miniloop.bench.forwarder PORT_FILE ROUTES_JSON`: it listens on a free port,
writes the port to PORT_FILE, and forwards to the base URLs of ROUTES_JSON ({"dfsp": "http://..."}).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import aiohttp
from sanic import Request, Sanic
from sanic.response import empty

from miniloop.api.common import compile_out_unused_signals

WORKERS = 64  # as miniloop.notify
QUEUE_MAX = 20_000


def forwarder_app(routes: dict[str, str]) -> Sanic:
    app = Sanic("miniloop_bench_forwarder", configure_logging=False)
    app.config.ACCESS_LOG = False
    app.config.KEEP_ALIVE_TIMEOUT = 60
    queue: asyncio.Queue[tuple[str, str, dict[str, str], bytes]] = asyncio.Queue(QUEUE_MAX)

    async def sender(session: aiohttp.ClientSession) -> None:
        while True:
            method, url, headers, body = await queue.get()
            try:
                async with session.request(method, url, data=body or None, headers=headers) as response:
                    await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                pass

    @app.before_server_start
    async def start(app: Sanic) -> None:
        app.ctx.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=WORKERS * 2, limit_per_host=WORKERS),
            timeout=aiohttp.ClientTimeout(total=10),
            skip_auto_headers=("User-Agent", "Content-Type", "Accept", "Accept-Encoding"),
        )
        app.ctx.senders = [asyncio.get_running_loop().create_task(sender(app.ctx.session)) for _ in range(WORKERS)]

    async def forward(request: Request, path: str) -> object:
        destination = request.headers.get("fspiop-destination", "")
        base = routes.get(destination)
        if base is None:
            return empty(400)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        queue.put_nowait((request.method, base + "/" + path, headers, request.body))
        return empty(202 if request.method in ("POST", "GET") else 200)

    app.add_route(forward, "/<path:path>", methods=["GET", "POST", "PUT", "PATCH"])
    return app


def main() -> None:
    port_file, routes = Path(sys.argv[1]), json.loads(sys.argv[2])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)  # connections wait in the backlog until the app serves
    app = forwarder_app(routes)
    compile_out_unused_signals([app])
    port_file.write_text(str(sock.getsockname()[1]))
    app.run(sock=sock, single_process=True, access_log=False)


if __name__ == "__main__":
    main()
