"""Our own OpenAPI 3.1 descriptions, served at `GET /openapi.json` on the FSPIOP, Admin and
Settlement ports (and the sim and wallet ports, mobile_sim.openapi), made from the routes each
Sanic app really serves.

Why generated: a hand-written description drifts from the code; this one cannot list a route the
app does not have, nor miss one. Each route of the app becomes an operation: its path parameters
from the route's pattern (`<transfer_id>` is `{transfer_id}`, `<id:int>` an integer), its request
body from the msgspec Struct the handler decodes (found in the handler's own code, see
`body_model`), its answer from the status the handler returns, and every error as the one FSPIOP
error body. What a route cannot tell about itself (the FSPIOP headers, the Admin API's bodies,
which are checked field by field rather than by a Struct, a one-line summary of what each
operation does) comes from the per-API builders in miniloop.api.openapi_apis.

The body schemas are msgspec's JSON Schema for the Structs (`msgspec.json.schema_components`),
with the patterns turned from Python's `\\A...\\Z` into JSON Schema's `^...$`.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sanic import HTTPResponse, Request, Sanic

from miniloop import __version__
from miniloop.api.params import SQLITE_INT_MAX
from miniloop.fspiop.models import ErrorInformationObject

OPENAPI_VERSION = "3.1.0"
PATH = "/openapi.json"
REF = "#/components/schemas/{name}"
ERROR_SCHEMA = "ErrorInformationObject"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")  # in the order operations are listed
_PARAM = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z_]+))?>")
_NO_BODY = frozenset({"GET", "DELETE"})


@dataclass
class Api:
    """What an API adds to what its routes say about themselves."""

    title: str
    description: str
    # (method, path template) -> extra parameters (headers, query) of that operation
    parameters: Callable[[str, str, Any], list[dict[str, Any]]] = lambda method, path, handler: []
    # (method, path template) -> the body's Struct when the handler does not decode one itself
    bodies: dict[tuple[str, str], type] = field(default_factory=dict)
    # (method, path template) of the operations whose body may be left out altogether
    optional_bodies: frozenset[tuple[str, str]] = frozenset()
    # the media type of request bodies of an operation (FSPIOP's are versioned per resource)
    body_media: Callable[[str, str], list[str]] = lambda method, path: ["application/json"]
    # True: success answers have no body (FSPIOP's 200/202); False: a JSON body
    empty_answers: bool = False
    # (path template, parameter) -> the parameter's schema when it is narrower than "a segment"
    path_schema: Callable[[str, str], dict[str, Any] | None] = lambda path, name: None
    # handler -> True for a route the API has but this hub does not serve: it always answers 501
    not_served: Callable[[Any], bool] = lambda handler: False
    # (method, path template, handler) -> (status, answer) of success when the handler's code cannot
    # tell: a status chosen at run time, or an answer that is not JSON (an HTML page, a file, an
    # event stream); None: read from the handler's code, as for every route of the hub's own APIs
    success: Callable[[str, str, Any], tuple[int, dict[str, Any]] | None] = lambda method, path, handler: None
    # (method, path template) -> further answers of an operation by status ("502": a payment that
    # failed downstream, with the flow's body), also "4XX" when not only the FSPIOP error body
    more_answers: Callable[[str, str], dict[str, dict[str, Any]]] = lambda method, path: {}
    # (method, path template) -> the operation's summary, one line saying what it does; None: the
    # routes every port shares (GENERIC_SUMMARIES), else the handler's docstring, else the fallback
    summary: Callable[[str, str], str | None] = lambda method, path: None


# what /health, /metrics and /openapi.json do, on every port that has them
GENERIC_SUMMARIES: dict[tuple[str, str], str] = {
    ("GET", "/health"): "The hub's health, as on every port: up or down, its uptime, and the state of the "
                        "ledger's writer and of NATS",
    ("GET", "/metrics"): "The hub's metrics, in Prometheus' text format (docs/metrics.md)",
    ("GET", PATH): "This description: an OpenAPI 3.1 document made from the routes this port serves",
}


def fallback_summary(method: str, path: str, handler_name: str) -> str:
    """The summary of an operation nothing describes: `POST /participants (create_participant)`."""
    return f"{method} {path} ({handler_name})"


def serve_openapi(app: Sanic, name: str, apis: dict[str, Api] | None = None) -> None:
    """Add `GET /openapi.json` to `app` if `name` is an API with a description (fspiop, admin,
    settlement); the description is built on the first request, once every route is there."""
    if apis is None:
        from miniloop.api.openapi_apis import APIS as apis  # noqa: N811 - the per-API builders
    api = apis.get(name)
    if api is None:
        return
    built: list[bytes] = []

    async def openapi_json(request: Request) -> HTTPResponse:
        if not built:
            built.append(msgspec.json.encode(describe(app, api)))
        return HTTPResponse(built[0], content_type="application/json")

    app.add_route(openapi_json, PATH, methods=["GET"], name="openapi_json")


# --------------------------------------------------------------------------- the description


def describe(app: Sanic, api: Api) -> dict[str, Any]:
    """The OpenAPI document of every route `app` serves."""
    paths: dict[str, dict[str, Any]] = {}
    structs: set[type] = {ErrorInformationObject}
    for path, method, handler, params in routes(app):
        model = api.bodies.get((method, path)) or body_model(handler)
        operation = _operation(app, api, path, method, handler, params, model)
        if model is not None:
            structs.add(model)
        paths.setdefault(path, {})[method.lower()] = operation
    _, components = msgspec.json.schema_components(sorted(structs, key=lambda s: s.__name__), ref_template=REF)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": api.title, "version": __version__, "description": api.description},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": _json_schema_patterns(components)},
    }


def routes(app: Sanic) -> Iterable[tuple[str, str, Any, list[tuple[str, str]]]]:
    """(path template, method, handler, [(parameter, type)]) of every route of `app`.

    Two routes of one path shape may name their parameters differently (`GET
    /authorizations/<transaction_request_id>`, `PUT /authorizations/<resource_id>`); OpenAPI wants
    one template per path, so the names of the first route (by name) are used for all.
    """
    found = []
    names_of_shape: dict[str, list[str]] = {}
    for route in sorted(app.router.routes, key=lambda r: r.name):
        raw = "/" + route.raw_path if not route.raw_path.startswith("/") else route.raw_path
        shape = _PARAM.sub("{}", raw)
        names = names_of_shape.setdefault(shape, [name.rstrip("_") or name for name, _ in _PARAM.findall(raw)])
        params = [(name, kind or "str") for name, (_, kind) in zip(names, _PARAM.findall(raw))]
        parts = iter(names)
        path = _PARAM.sub(lambda m: "{" + next(parts) + "}", raw)
        for method in _METHODS:
            if method in route.methods:
                found.append((path, method, route.handler, params))
    return sorted(found, key=lambda r: (r[0], _METHODS.index(r[1])))


def _operation(app: Sanic, api: Api, path: str, method: str, handler: Any,
               params: list[tuple[str, str]], model: type | None) -> dict[str, Any]:
    name = getattr(inspect.unwrap(handler), "__name__", "handler")
    doc = inspect.getdoc(inspect.unwrap(handler)) or ""
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{_slug(path)}",
        "summary": api.summary(method, path) or GENERIC_SUMMARIES.get((method, path))
        or (doc.split("\n\n")[0].replace("\n", " ") if doc else fallback_summary(method, path, name)),
        "tags": [path.strip("/").split("/")[0 if not path.startswith("/v2/") else 1] or "root"],
        "parameters": [_path_parameter(p, kind, api.path_schema(path, p)) for p, kind in params]
        + api.parameters(method, path, handler),
    }
    if model is not None and method not in _NO_BODY:
        schema = {"$ref": REF.format(name=model.__name__)}
        operation["requestBody"] = {
            "required": (method, path) not in api.optional_bodies,
            "content": {media: {"schema": schema} for media in api.body_media(method, path)},
        }
    status, answer = api.success(method, path, handler) or _success(api, path, method, handler)
    error = {"description": "refused: the FSPIOP error body, `errorCode` names the rule",
             "content": {"application/json": {"schema": {"$ref": REF.format(name=ERROR_SCHEMA)}}}}
    operation["responses"] = {str(status): answer, "4XX": error, "5XX": error, **api.more_answers(method, path)}
    return operation


def _success(api: Api, path: str, method: str, handler: Any) -> tuple[int, dict[str, Any]]:
    """The success answer as the handler's code tells it: its status, and a JSON body (none for
    FSPIOP's answers and 204), the Prometheus text for /metrics."""
    status = 501 if api.not_served(handler) else success_status(handler, method)
    answer: dict[str, Any] = {"description": "done" if status < 300 else "see the body"}
    if not api.empty_answers and status != 204 and path != "/metrics":
        answer["content"] = {"application/json": {"schema": {}}}
    if path == "/metrics":
        answer["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return status, answer


def _path_parameter(name: str, kind: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    if schema is not None:
        pass
    elif kind == "int":
        schema: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": SQLITE_INT_MAX}  # params.py
    else:  # Sanic's `str`: one non-empty path segment
        schema = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"


# --------------------------------------------------------------------------- reading handlers


def body_model(handler: Any) -> type | None:
    """The msgspec Struct a handler decodes its body with, read from the handler's own code.

    A handler names its body's Struct in its code (`models.decode(models.QuotesPostRequest, ...)`,
    `relay(request, "parties", models.PartiesTypeIDPutResponse)`), or holds it in its closure when
    one function serves several routes (`add_routed`'s `answer`, `add_tp`'s `model`). The names
    it uses are looked up in its module's globals, and in the modules those globals are.
    """
    fn = inspect.unwrap(handler)
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if _is_struct(value):
            return value
    scope = fn.__globals__
    modules = [v for v in scope.values() if isinstance(v, types.ModuleType)]
    for name in code.co_names:
        value = scope.get(name)
        if _is_struct(value):
            return value
        for module in modules:
            value = getattr(module, name, None)
            if _is_struct(value) and getattr(value, "__module__", "").startswith("miniloop"):
                return value
    return None


def success_status(handler: Any, method: str) -> int:
    """The status a handler answers with when all goes well, read from its code: a status it
    names (`reply(..., 201)`, a closure's `status`), `accepted()` (202), `ok()` (200), else 200."""
    fn = inspect.unwrap(handler)
    code = getattr(fn, "__code__", None)
    if code is None:
        return 200
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        if name == "status":
            try:
                return int(cell.cell_contents)
            except (ValueError, TypeError):
                pass
    named = [c for c in code.co_consts if isinstance(c, int) and not isinstance(c, bool) and 200 <= c < 300]
    if named:
        return named[0]
    if "accepted" in code.co_names:
        return 202
    return 200


def _is_struct(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, msgspec.Struct)


def _json_schema_patterns(schema: Any) -> Any:
    """msgspec writes the Structs' Python patterns (`\\A...\\Z`); JSON Schema's are ECMA's (`^...$`)."""
    if isinstance(schema, dict):
        return {k: (_ecma(v) if k == "pattern" and isinstance(v, str) else _json_schema_patterns(v))
                for k, v in schema.items()}
    if isinstance(schema, list):
        return [_json_schema_patterns(v) for v in schema]
    return schema


def _ecma(pattern: str) -> str:
    if pattern.startswith("\\A"):
        pattern = "^" + pattern[2:]
    if pattern.endswith("\\Z"):
        pattern = pattern[:-2] + "$"
    return pattern

