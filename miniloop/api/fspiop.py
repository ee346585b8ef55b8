"""The FSPIOP API (port 3000): every FSPIOP resource on one port, as Mojaloop's gateway serves them.

Until the resources are wired in, every path answers 404 with error 3002.
"""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from miniloop.api.common import new_app


def fspiop_app(health: dict[str, Any]) -> Sanic:
    return new_app("miniloop_fspiop", health)
