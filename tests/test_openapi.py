"""Our own OpenAPI descriptions (GET /openapi.json on the FSPIOP, Admin, Settlement and ALS admin ports):
valid OpenAPI 3, listing exactly the routes each app serves (miniloop.api.openapi), each operation
with a one-line summary of what it does."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sanic import Sanic

from miniloop.api.admin import admin_app
from miniloop.api.als_admin import als_admin_app
from miniloop.api.common import new_health
from miniloop.api.fspiop import fspiop_app
from miniloop.api.openapi import describe, fallback_summary, serve_openapi
from miniloop.api.openapi_apis import APIS
from miniloop.api.settlement import settlement_app

_HEALTH = new_health(lambda: [])
_RE_PARAM = re.compile(r"<([^:>]+)(?::[a-z]+)?>")


def _apps() -> dict[str, Sanic]:
    """The four apps, built in this process (their services are not called to describe them)."""
    nothing = SimpleNamespace(lookup=None, quotes=None, transfers=None, requests=None,
                              bulk_transfers=None, thirdparty=None, directory=None)
    ledger = SimpleNamespace(path=Path("/nonexistent/miniloop.db"))
    apps = {
        "fspiop": fspiop_app(_HEALTH, nothing),  # type: ignore[arg-type]
        "admin": admin_app(None, None, _HEALTH),  # type: ignore[arg-type]
        "settlement": settlement_app(None, SimpleNamespace(ledger=ledger), _HEALTH),  # type: ignore[arg-type]
        "als_admin": als_admin_app(None, _HEALTH, SimpleNamespace()),  # type: ignore[arg-type]
    }
    for name, app in apps.items():
        serve_openapi(app, name)
    return apps


def _validate(doc: dict[str, Any]) -> None:
    try:
        from openapi_spec_validator import validate
    except ImportError:  # schemathesis' own loading, then
        import schemathesis

        schema = schemathesis.openapi.from_dict(doc)
        for result in schema.get_all_operations():
            result.ok()
        return
    validate(doc)


def _served(app: Sanic) -> set[tuple[str, str]]:
    """(METHOD, path shape) of every route: parameters as `{}`, whatever their names."""
    return {(method, "/" + _RE_PARAM.sub("{}", route.raw_path).lstrip("/"))
            for route in app.router.routes for method in route.methods}


def _described(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
            for path, operations in doc["paths"].items() for method in operations}


def assert_summaries(doc: dict[str, Any]) -> None:
    """Every operation has a summary of its own: one line, not the fallback `METHOD path (handler)`
    an operation gets when nothing describes it (so a new route without one fails here)."""
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            summary = operation.get("summary") or ""
            assert summary.strip() and "\n" not in summary and len(summary) <= 240, where
            fallback = re.escape(fallback_summary(method.upper(), path, "HANDLER")).replace("HANDLER", r"\w+")
            assert not re.fullmatch(fallback, summary), f"{where} has no summary of its own: {summary!r}"


APPS = _apps()
Sanic._app_registry.clear()  # the apps above are not started; let the tests make their own


@pytest.mark.parametrize("name", ["fspiop", "admin", "settlement", "als_admin"])
def test_description_is_valid_and_lists_every_route(name: str) -> None:
    app = APPS[name]
    doc = describe(app, APIS[name])
    _validate(doc)
    assert doc["openapi"].startswith("3.")
    assert _described(doc) == _served(app)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert names == set(re.findall(r"\{([^}]+)\}", path)), where
            assert {"4XX", "5XX"} <= set(operation["responses"]), where
            if method in ("post", "put", "patch") and path not in ("/openapi.json",):
                assert "requestBody" in operation, f"{where} has no body in the description"


@pytest.mark.parametrize("name", ["fspiop", "admin", "settlement", "als_admin"])
def test_every_operation_has_a_summary(name: str) -> None:
    assert_summaries(describe(APPS[name], APIS[name]))


def test_summaries_say_what_an_operation_does() -> None:
    fspiop = describe(APPS["fspiop"], APIS["fspiop"])["paths"]
    assert fspiop["/transfers"]["post"]["summary"].startswith("Prepare a transfer: ")
    assert "reserves the amount on the payer's position" in fspiop["/transfers"]["post"]["summary"]
    assert fspiop["/transfers/{transfer_id}/error"]["put"]["summary"].startswith("The payee's FSP rejects")
    assert "an error callback about a quote" in fspiop["/quotes/{quote_id}/error"]["put"]["summary"].lower()
    assert "501" in fspiop["/consentRequests/{resource_id}"]["get"]["summary"]
    assert fspiop["/parties/{type}/{id}/{sub_id}"]["get"]["summary"].endswith("(a party with a SubId)")
    assert fspiop["/health"]["get"]["summary"].startswith("The hub's health")
    admin = describe(APPS["admin"], APIS["admin"])["paths"]
    assert admin["/participants/{name}/initialPositionAndLimits"]["post"]["summary"].startswith(
        "Set a participant's Net Debit Cap")
    als = describe(APPS["als_admin"], APIS["als_admin"])["paths"]
    assert als["/authService/consents"]["post"]["summary"].startswith("A DFSP registers a consent's credential")
    # without the hook, an operation falls back to `METHOD path (handler)`, which the check above refuses
    bare = describe(APPS["admin"], dataclasses.replace(APIS["admin"], summary=lambda method, path: None))
    assert bare["paths"]["/participants"]["post"]["summary"] == fallback_summary(
        "POST", "/participants", "create_participant")
    with pytest.raises(AssertionError, match="no summary of its own"):
        assert_summaries(bare)


def test_fspiop_operations_name_their_headers_and_bodies() -> None:
    doc = describe(APPS["fspiop"], APIS["fspiop"])
    prepare = doc["paths"]["/transfers"]["post"]
    headers = {p["name"]: p["required"] for p in prepare["parameters"] if p["in"] == "header"}
    assert headers == {"Accept": True, "Content-Type": True, "Date": True, "FSPIOP-Source": True,
                       "FSPIOP-Destination": True}
    assert set(prepare["requestBody"]["content"]) == {
        "application/vnd.interoperability.transfers+json;version=1.1",
        "application/vnd.interoperability.transfers+json;version=1.0"}
    assert prepare["requestBody"]["content"][
        "application/vnd.interoperability.transfers+json;version=1.1"]["schema"]["$ref"].endswith(
        "/TransfersPostRequest")
    assert list(prepare["responses"])[0] == "202"
    fulfil = doc["paths"]["/transfers/{transfer_id}"]["put"]
    assert fulfil["requestBody"]["content"][
        "application/vnd.interoperability.transfers+json;version=1.1"]["schema"]["$ref"].endswith(
        "/TransfersIDPutResponse")
    assert list(fulfil["responses"])[0] == "200"
    lookup = doc["paths"]["/parties/{type}/{id}"]["get"]
    destination = next(p for p in lookup["parameters"] if p["name"] == "FSPIOP-Destination")
    assert destination["required"] is False  # the hub finds the payee's FSP
    schemas = doc["components"]["schemas"]
    assert schemas["Money"]["properties"]["amount"]["pattern"].startswith("^")
    error = schemas["ErrorInformation"]
    assert set(error["required"]) == {"errorCode", "errorDescription"}


def test_admin_and_settlement_answers() -> None:
    admin = describe(APPS["admin"], APIS["admin"])
    assert list(admin["paths"]["/participants"]["post"]["responses"])[0] == "201"
    funds = admin["paths"]["/participants/{name}/accounts/{account_id}"]["post"]
    assert list(funds["responses"])[0] == "202"
    assert funds["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/FundsMove")
    assert next(p for p in funds["parameters"] if p["name"] == "account_id")["schema"]["type"] == "integer"
    settlement = describe(APPS["settlement"], APIS["settlement"])
    close = settlement["paths"]["/v2/settlementWindows/{window_id}"]["post"]
    assert close["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/WindowClosure")


def test_als_admin_bodies_and_auth_service_headers() -> None:
    doc = describe(APPS["als_admin"], APIS["als_admin"])
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    create = paths["/oracles"]["post"]
    assert list(create["responses"])[0] == "201"
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/NewOracle")
    assert set(schemas["NewOracle"]["required"]) == {"oracleIdType", "endpoint"}
    assert schemas["OracleEndpoint"]["properties"]["endpointType"]["enum"] == ["URL"]
    lookup = paths["/oracle/participants/{type}/{id}"]["get"]
    assert "MSISDN" in next(p for p in lookup["parameters"] if p["name"] == "type")["schema"]["enum"]
    batch = paths["/oracle/participants"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch["$ref"].endswith("/PartyBatch") and schemas["PartyBatch"]["required"] == ["partyList"]
    verify = paths["/authService/thirdpartyRequests/verifications"]["post"]
    headers = {p["name"]: p["required"] for p in verify["parameters"] if p["in"] == "header"}
    assert headers == {"Accept": True, "Content-Type": True, "Date": True, "FSPIOP-Source": True,
                       "FSPIOP-Destination": False}
    assert set(verify["requestBody"]["content"]) == {"application/vnd.interoperability.thirdparty+json;version=1.0"}
    assert list(verify["responses"])[0] == "202"


def test_a_hub_serves_its_descriptions(module_hubs: Any) -> None:
    hub = module_hubs.start()
    for name in ("fspiop", "admin", "settlement", "als_admin"):
        base = hub.urls[name].removesuffix("/v2")
        answer = httpx.get(base + "/openapi.json", timeout=10)
        assert answer.status_code == 200, name
        doc = answer.json()
        _validate(doc)
        assert ("GET", "/openapi.json") in _described(doc)
        assert_summaries(doc)  # with the hub's /metrics
