"""What every miniloop HTTP app shares: JSON in and out, FSPIOP error bodies, /health, /metrics.

Errors are always `{"errorInformation": {"errorCode", "errorDescription"}}`: an FspiopError
raised anywhere below keeps its code; an unknown path is 404/3002, a method the path does not
have is 405/3000, a body that is not JSON is 400/3101, and anything unexpected is 500/2001
(logged with its traceback, never shown to the caller).
"""

from __future__ import annotations

import hmac
import inspect
import logging
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import wraps
from time import perf_counter
from typing import TYPE_CHECKING, Any

import msgspec
from sanic import HTTPResponse, Request, Sanic
from sanic.http import Http
from sanic.response import empty
from sanic.exceptions import MethodNotAllowed, NotFound, PayloadTooLarge, SanicException

from miniloop import __version__
from miniloop.fspiop.errors import FspiopError
from miniloop.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from miniloop.metrics import HubMetrics

log = logging.getLogger(__name__)

BODY_MAX_BYTES = 5 * 1024 * 1024 + 1024  # the FSPIOP limit is 5 MiB of body
HEADERS_MAX_BYTES = 16 * 1024  # and 16 KiB of headers (Sanic's ceiling too; one limit per process)

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


def new_app(name: str, health: dict[str, Any], *, strict_slashes: bool = False,
            health_paths: tuple[str, ...] = ("/health",)) -> Sanic:
    """A Sanic app with miniloop's error handling, size limits and a /health route.

    `health` is shared by every app: its "checks" function says how the datastore and the
    broker are. `serve_metrics` adds /metrics and request metrics once the routes are all there.
    """
    app = Sanic(name, configure_logging=False, strict_slashes=strict_slashes)
    app.config.ACCESS_LOG = False
    app.config.REQUEST_MAX_SIZE = BODY_MAX_BYTES
    app.config.REQUEST_MAX_HEADER_SIZE = HEADERS_MAX_BYTES
    app.config.KEEP_ALIVE_TIMEOUT = 60
    app.config.NOISY_EXCEPTIONS = False
    app.config.TOUCHUP = False  # see compile_out_unused_signals

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

    for number, path in enumerate(health_paths):
        app.add_route(health_check, path, methods=["GET"], name=f"health_{number}")

    def failed(request: Request, exc: Exception, error: FspiopError) -> HTTPResponse:
        """The error answer; counted here if no handler ran (serve_metrics counts those that did),
        and told to `app.ctx.on_refused` when the app has one (the FSPIOP port announces refusals)."""
        response = error_reply(error)
        on_refused = getattr(app.ctx, "on_refused", None)
        if on_refused is not None:
            try:
                on_refused(request, error)
            except Exception:  # announcing is a courtesy: it never changes the answer
                log.exception("announcing the refusal of %s %s failed", request.method, request.path)
        count_unhandled = getattr(app.ctx, "count_unhandled", None)
        if count_unhandled is not None and (request.route is None or isinstance(exc, PayloadTooLarge)):
            count_unhandled(request, response.status)
        return response

    @app.exception(FspiopError)
    async def fspiop_error(request: Request, exc: FspiopError) -> HTTPResponse:
        return failed(request, exc, exc)

    @app.exception(NotFound)
    async def unknown_uri(request: Request, exc: Exception) -> HTTPResponse:
        return failed(request, exc, FspiopError("3002", "Not Found"))

    @app.exception(MethodNotAllowed)
    async def method_not_allowed(request: Request, exc: Exception) -> HTTPResponse:
        if request.path.endswith("/") and request.path != "/":  # "PUT /transfers/": the id is missing
            return failed(request, exc, FspiopError("3002", "Not Found"))
        return failed(request, exc, FspiopError("3000", "Method Not Allowed", status=405))

    @app.exception(PayloadTooLarge)
    async def too_large(request: Request, exc: Exception) -> HTTPResponse:
        if "header" in str(exc).lower():  # Sanic raises the same exception for both
            return failed(request, exc, FspiopError(
                "3104", f"the headers are larger than {_size_text(HEADERS_MAX_BYTES)}", status=400))
        limit = _size_text(app.config.REQUEST_MAX_SIZE)
        return failed(request, exc, FspiopError("3104", f"the body is larger than {limit}", status=413))

    @app.exception(SanicException)
    async def http_error(request: Request, exc: SanicException) -> HTTPResponse:
        status = getattr(exc, "status_code", 400) or 400
        code = "3000" if status < 500 else "2001"
        return failed(request, exc, FspiopError(code, str(exc) or None, status=status))

    @app.exception(Exception)
    async def unexpected(request: Request, exc: Exception) -> HTTPResponse:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return failed(request, exc, FspiopError("2001", None))

    return app


def _size_text(limit: int) -> str:
    """BODY_MAX_BYTES -> "5 MiB", 16384 -> "16 KiB" (the slack a limit has for rounding is dropped)."""
    for unit, size in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if limit >= size:
            return f"{limit // size} {unit}"
    return f"{limit} bytes"


def require_token(app: Sanic, token: str, *, open_prefixes: tuple[str, ...] = ()) -> None:
    """Every request to `app` needs `Authorization: Bearer <token>`, except /health and paths
    under `open_prefixes`; else 401 with an FSPIOP error body (3000). The token is compared in
    constant time and never logged or echoed."""
    expected = f"Bearer {token}".encode()

    @app.on_request
    async def check_token(request: Request) -> None:
        path = request.path
        if path in ("/health", "/v2/health") or (open_prefixes and path.startswith(open_prefixes)):
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise FspiopError("3000", "this API needs Authorization: Bearer <the hub's admin token>",
                              status=401)


def new_health(checks: Callable[[], list[dict[str, str]]]) -> dict[str, Any]:
    """The state /health reports: start time, and `checks` to run on each request."""
    return {
        "started_monotonic": time.monotonic(),
        "start_time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "checks": checks,
    }


def compile_out_unused_signals(apps: Iterable[Sanic]) -> None:
    """Let Sanic remove its per-request signal dispatches, once per process.

    Sanic dispatches about seven lifecycle signals per request; none of our apps listens to
    them, and with them in place a third of the HTTP server's time went to looking up signals
    that do not exist (docs/performance.md). Its "touch-up" recompiles the shared HTTP classes
    without those calls, but only works the first time in a process (it needs the original
    source), so only the first app of the first hub in a process asks for it.
    """
    already = getattr(Http, "__touched__", False)
    for app in apps:
        app.config.TOUCHUP = not already
        already = True


# --------------------------------------------------------------------------- /metrics

_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
UNMATCHED = "unmatched"  # the route label of a request no route matched


class _Series:
    """The request metrics of one (server, method, route): a counter cell per status, a histogram
    cell. Both appear in /metrics with the route's first request, not before."""

    __slots__ = ("metrics", "key", "by_status", "hist")

    def __init__(self, metrics: HubMetrics, key: tuple[str, str, str]) -> None:
        self.metrics = metrics
        self.key = key
        self.by_status: dict[int, Any] = {}
        self.hist: Any = None

    def record(self, status: int, request: Request) -> None:
        """One answered request: counted under its status, timed from Sanic's start stamp (the
        end of its headers); 0 s if Sanic did not stamp it."""
        stream = request.stream
        start = None if stream is None else stream.perft0
        seconds = perf_counter() - start if start else 0.0
        cell = self.by_status.get(status)
        if cell is None:
            cell = self.by_status[status] = self.metrics.http_requests.labels(*self.key, status)
        cell.value += 1
        hist = self.hist
        if hist is None:
            hist = self.hist = self.metrics.http_duration.labels(*self.key)
        hist.counts[bisect_left(hist.bounds, seconds)] += 1  # HistogramCell.observe, inlined
        hist.sum += seconds


def serve_metrics(app: Sanic, server: str, metrics: HubMetrics) -> None:
    """Add GET /metrics to `app`, and count and time every request it answers.

    Call it once every route is added, before the app starts. Like /health, /metrics needs no
    FSPIOP headers. Requests are labelled with the route's pattern as written
    (`/transfers/<transfer_id>`), never the raw path, so the number of series stays bounded; a
    request no route matched is `route="unmatched"`.

    How: each route's handler is wrapped (`_timed`). That was measured cheaper than a Sanic
    response middleware (about 0.7 µs a request against 1.7 µs: Sanic's middleware loop costs
    more than the wrapper's extra coroutine) and needs no signal handler. The time is taken from
    Sanic's own start stamp (the end of the request's headers), so the wrapper reads the clock
    once. Requests that never reach a handler (no route, a method the route lacks, a body too
    large, a malformed request) are counted by the error handlers of `new_app`, through
    `app.ctx.count_unhandled`.
    """

    @app.get("/metrics")
    async def metrics_endpoint(request: Request) -> HTTPResponse:
        return HTTPResponse(await metrics.scrape(), content_type=CONTENT_TYPE)

    series: dict[tuple[str, str], _Series] = {}

    def series_of(method: str, route: str) -> _Series:
        if method not in _METHODS:  # whatever a client sends, the label stays bounded
            method = "other"
        found = series.get((method, route))
        if found is None:
            found = series[(method, route)] = _Series(metrics, (server, method, route))
        return found

    for route in app.router.routes:
        pattern = "/" + route.raw_path
        by_method = {method: series_of(method, pattern) for method in route.methods}
        route.ctx.metrics = by_method
        route.handler = _timed(route.handler, by_method)

    def count_unhandled(request: Request, status: int) -> None:
        route = request.route
        by_method = None if route is None else getattr(route.ctx, "metrics", None)
        s = by_method.get(request.method) if by_method else None
        if s is None:
            s = series_of(request.method, UNMATCHED)
        s.record(status, request)

    app.ctx.count_unhandled = count_unhandled


def _timed(handler: Any, by_method: dict[str, _Series]) -> Any:
    """`handler`, counting and timing what it answers (or raises) in its route's series."""
    only = next(iter(by_method.values())) if len(by_method) == 1 else None

    if not inspect.iscoroutinefunction(handler):
        @wraps(handler)
        def timed_sync(request: Request, *args: Any, **kwargs: Any) -> Any:
            try:
                response = handler(request, *args, **kwargs)
            except Exception as exc:
                (only or by_method[request.method]).record(_status_of(exc), request)
                raise
            status = _status(request) if response is None else response.status
            (only or by_method[request.method]).record(status, request)
            return response

        return timed_sync

    @wraps(handler)
    async def timed(request: Request, *args: Any, **kwargs: Any) -> Any:
        try:
            response = await handler(request, *args, **kwargs)
        except Exception as exc:  # answered by new_app's error handlers, with this status
            (only or by_method[request.method]).record(_status_of(exc), request)
            raise
        status = _status(request) if response is None else response.status
        (only or by_method[request.method]).record(status, request)
        return response

    return timed


def _status(request: Request) -> int:
    """The status of what a handler that returned nothing sent itself (`request.respond`)."""
    response = request.stream.response if request.stream is not None else None
    return getattr(response, "status", 200)


def _status_of(exc: BaseException) -> int:
    """The status new_app's error handlers answer `exc` with."""
    if isinstance(exc, FspiopError):
        return exc.status
    if isinstance(exc, SanicException):
        return getattr(exc, "status_code", None) or 400
    return 500
