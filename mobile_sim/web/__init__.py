"""The mobile wallet simulator: phones, tills and the hub pane in a browser (docs/wallet.md).

`wallet_app` builds the Sanic app of the wallet port. (Placeholder until the page lands: it
answers /health only.)
"""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from miniloop.api.common import new_app


def wallet_app(sim: Any, urls: dict[str, str], health: dict[str, Any], join_url: str | None) -> Sanic:
    """The wallet port's app. `sim` is the running Simulator (None on an --empty hub), `urls` the
    hub's URLs (fspiop, admin, settlement, als_admin, sim, wallet, nats), `join_url` the address
    phones on the LAN open to join (None when the hub listens on loopback only)."""
    app = new_app("miniloop_wallet", health)
    app.ctx.sim = sim
    app.ctx.urls = urls
    app.ctx.join_url = join_url
    return app
