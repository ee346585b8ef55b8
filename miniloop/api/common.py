"""What every miniloop HTTP app shares: JSON in and out, FSPIOP error bodies, /health.

Errors are always `{"errorInformation": {"errorCode", "errorDescription"}}`: an FspiopError
raised anywhere below keeps its code; an unknown path is 404/3002, a method the path does not
have is 405/3000, a body that is not JSON is 400/3101, and anything unexpected is 500/2001
(logged with its traceback, never shown to the caller).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from collections.abc import Callable
from typing import Any

import msgspec
from sanic import HTTPResponse, Request, Sanic
from sanic.response import empty
from sanic.exceptions import MethodNotAllowed, NotFound, PayloadTooLarge, SanicException

from miniloop import __version__
from miniloop.fspiop.errors import FspiopError

log = logging.getLogger(__name__)

BODY_MAX_BYTES = 5 * 1024 * 1024 + 1024  # the FSPIOP limit is 5 MiB of body
HEADERS_MAX_BYTES = 64 * 1024  # and 64 KiB of headers

_encode = msgspec.json.Encoder(decimal_format="number").encode
_decode = msgspec.json.Decoder().decode


def reply(data: Any = None, status: int = 200) -> HTTPResponse:
    """A JSON answer; no body at all when `data` is None (201/202/204 as Mojaloop sends them)."""
    if data is None:
        return empty(status)
    return HTTPResponse(_encode(data), status=status, content_type="application/json")


def error_reply(error: FspiopError) -> HTTPResponse:
    return HTTPResponse(_encode(error.body()), status=error.status, content_type="application/json")


def json_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or 3101 Malformed syntax."""
    raw = request.body
    if not raw:
        raise FspiopError("3101", "Invalid request payload: the body is empty")
    try:
        body = _decode(raw)
    except msgspec.DecodeError:
        raise FspiopError("3101", "Invalid request payload JSON format") from None
    if not isinstance(body, dict):
        raise FspiopError("3101", "Invalid request payload: a JSON object is expected")
    return body


def new_app(name: str, health: dict[str, Any], *, strict_slashes: bool = False) -> Sanic:
    """A Sanic app with miniloop's error handling, size limits and a /health route.

    `health` is shared by every app: its "checks" function says how the datastore and the
    broker are.
    """
    app = Sanic(name, configure_logging=False, strict_slashes=strict_slashes)
    app.config.ACCESS_LOG = False
    app.config.REQUEST_MAX_SIZE = BODY_MAX_BYTES
    app.config.REQUEST_MAX_HEADER_SIZE = HEADERS_MAX_BYTES
    app.config.KEEP_ALIVE_TIMEOUT = 60
    app.config.NOISY_EXCEPTIONS = False
    app.config.TOUCHUP = False

    @app.get("/health")
    async def health_check(request: Request) -> HTTPResponse:
        services = health["checks"]()
        ok = all(s["status"] == "OK" for s in services)
        return reply(
            {
                "status": "OK" if ok else "DOWN",
                "uptime": round(time.monotonic() - health["started_monotonic"], 3),
                "startTime": health["start_time"],
                "versionNumber": __version__,
                "services": services,
            },
            200 if ok else 502,
        )

    @app.exception(FspiopError)
    async def fspiop_error(request: Request, exc: FspiopError) -> HTTPResponse:
        return error_reply(exc)

    @app.exception(NotFound)
    async def unknown_uri(request: Request, exc: Exception) -> HTTPResponse:
        return error_reply(FspiopError("3002", "Not Found"))

    @app.exception(MethodNotAllowed)
    async def method_not_allowed(request: Request, exc: Exception) -> HTTPResponse:
        if request.path.endswith("/") and request.path != "/":  # "PUT /transfers/": the id is missing
            return error_reply(FspiopError("3002", "Not Found"))
        return error_reply(FspiopError("3000", "Method Not Allowed", status=405))

    @app.exception(PayloadTooLarge)
    async def too_large(request: Request, exc: Exception) -> HTTPResponse:
        return error_reply(FspiopError("3104", "the body is larger than 5 MiB", status=413))

    @app.exception(SanicException)
    async def http_error(request: Request, exc: SanicException) -> HTTPResponse:
        status = getattr(exc, "status_code", 400) or 400
        code = "3000" if status < 500 else "2001"
        return error_reply(FspiopError(code, str(exc) or None, status=status))

    @app.exception(Exception)
    async def unexpected(request: Request, exc: Exception) -> HTTPResponse:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return error_reply(FspiopError("2001", None))

    return app


def new_health(checks: Callable[[], list[dict[str, str]]]) -> dict[str, Any]:
    """The state /health reports: start time, and `checks` to run on each request."""
    return {
        "started_monotonic": time.monotonic(),
        "start_time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "checks": checks,
    }
