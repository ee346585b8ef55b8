"""The sim and wallet ports' OpenAPI descriptions (GET /openapi.json, mobile_sim.openapi): valid
OpenAPI 3, listing exactly the routes each app serves, with the bodies, headers and answers the
handlers really have, and a one-line summary of every operation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sanic import Sanic

from miniloop import hubfile
from miniloop.api.common import new_health
from miniloop.api.openapi import describe, serve_openapi
from mobile_sim.app import sim_app
from mobile_sim.openapi import apis
from mobile_sim.web import wallet_app
from tests.test_openapi import _described, _served, _validate, assert_summaries


def _apps() -> dict[str, Sanic]:
    """The demo hub's sim and wallet apps, built in this process (not started)."""
    health = new_health(lambda: [])
    sim = sim_app(hubfile.load(None), "http://127.0.0.1:1", health)
    apps = {"sim": sim, "wallet": wallet_app(sim.ctx.sim, {}, health, None)}
    described = apis(apps)
    for name, app in apps.items():
        serve_openapi(app, name, described)
    return apps


APPS = _apps()
APIS = apis(APPS)
Sanic._app_registry.clear()  # the apps above are not started; let the tests make their own


@pytest.mark.parametrize("name", ["sim", "wallet"])
def test_description_is_valid_and_lists_every_route(name: str) -> None:
    app = APPS[name]
    doc = describe(app, APIS[name])
    _validate(doc)
    assert _described(doc) == _served(app)
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            params = [p for p in operation["parameters"] if p["in"] == "path"]
            assert {p["name"] for p in params} == {n.strip("{}") for n in path.split("/") if n.startswith("{")}, where
            assert {"4XX", "5XX"} <= set(operation["responses"]), where
            if method in ("post", "put", "patch") and (method, path) != ("post", "/{dfsp}/consents/{consent_id}/revoke"):
                assert "requestBody" in operation, f"{where} has no body in the description"


@pytest.mark.parametrize("name", ["sim", "wallet"])
def test_every_operation_has_a_summary(name: str) -> None:
    assert_summaries(describe(APPS[name], APIS[name]))


def test_summaries_say_what_an_operation_does() -> None:
    sim = describe(APPS["sim"], APIS["sim"])["paths"]
    prepare = sim["/{dfsp}/transfers"]["post"]["summary"]
    assert prepare.startswith("A simulated DFSP receives the prepare of a transfer, as the payee's FSP")
    assert sim["/{name}/consents/{item}"]["patch"]["summary"].startswith("A simulated DFSP or PISP receives")
    assert "unmatched" in sim["/{name}/accounts/{item}"]["delete"]["summary"]  # not in the Third-party API
    assert sim["/{dfsp}/send"]["post"]["summary"].startswith("A customer of the DFSP pays someone")
    assert sim["/{dfsp}/consents"]["get"]["summary"].startswith("The DFSP's consents")  # driving, same path
    wallet = describe(APPS["wallet"], APIS["wallet"])["paths"]
    assert wallet["/api/events"]["get"]["summary"].startswith("Server-sent events")


def test_sim_fspiop_routes_want_fspiop_source_and_answer_with_no_body() -> None:
    doc = describe(APPS["sim"], APIS["sim"])
    prepare = doc["paths"]["/{dfsp}/transfers"]["post"]
    headers = {p["name"]: p["required"] for p in prepare["parameters"] if p["in"] == "header"}
    assert headers == {"FSPIOP-Source": True, "FSPIOP-Destination": False}
    assert "application/vnd.interoperability.transfers+json;version=1.1" in prepare["requestBody"]["content"]
    assert list(prepare["responses"])[0] == "202" and "content" not in prepare["responses"]["202"]
    assert list(doc["paths"]["/{dfsp}/quotes/{item_id}"]["put"]["responses"])[0] == "200"
    dfsp = next(p for p in prepare["parameters"] if p["name"] == "dfsp")
    assert dfsp["schema"]["enum"] == ["bluewallet", "budgetapp", "greenwallet", "merchantbank"]
    link = doc["paths"]["/{name}/link"]["post"]
    assert next(p for p in link["parameters"] if p["name"] == "name")["schema"]["enum"] == ["budgetapp"]
    kind = doc["paths"]["/{name}/thirdpartyRequests/{kind}"]["post"]["parameters"][1]
    assert kind["schema"]["enum"] == ["transactions", "authorizations", "verifications"]


def test_sim_driving_bodies_and_answers() -> None:
    doc = describe(APPS["sim"], APIS["sim"])
    schemas = doc["components"]["schemas"]
    send = doc["paths"]["/{dfsp}/send"]["post"]
    assert send["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Send")
    assert {"200", "502", "504"} <= set(send["responses"])
    assert set(schemas["Send"]["required"]) == {"from", "amount"}
    assert schemas["Send"]["additionalProperties"] is False
    assert schemas["Generate"]["properties"]["count"]["maximum"] == 5000
    assert sorted(schemas["Fault"]["properties"]["mode"]["enum"]) == ["down", "normal", "reject", "silent", "slow"]
    login = doc["paths"]["/{dfsp}/tplogin/{request_id}"]
    assert "text/html" in login["get"]["responses"]["200"]["content"]
    assert list(login["post"]["responses"])[0] == "303"
    assert "502" not in doc["paths"]["/{dfsp}/customers"]["get"]["responses"]


def test_wallet_pages_files_and_events() -> None:
    doc = describe(APPS["wallet"], APIS["wallet"])
    assert "text/html" in doc["paths"]["/phone/{dfsp}/{customer_id}"]["get"]["responses"]["200"]["content"]
    static = doc["paths"]["/static/{name}"]["get"]
    assert "index.html" in static["parameters"][0]["schema"]["enum"]
    assert "text/javascript" in static["responses"]["200"]["content"]
    events = doc["paths"]["/api/events"]["get"]["responses"]["200"]
    assert list(events["content"]) == ["text/event-stream"]
    join = doc["paths"]["/api/join"]["post"]["requestBody"]
    assert join["content"]["application/json"]["schema"]["$ref"].endswith("/WalletJoin")
    assert join["required"] is False  # a phone joins with no body at all


def test_a_hub_serves_the_sim_and_wallet_descriptions(module_hubs: Any) -> None:
    hub = module_hubs.start()
    for name in ("sim", "wallet"):
        answer = httpx.get(hub.urls[name] + "/openapi.json", timeout=10)
        assert answer.status_code == 200, name
        doc = answer.json()
        _validate(doc)
        assert ("GET", "/openapi.json") in _described(doc)
        assert ("GET", "/metrics") in _described(doc)
        assert_summaries(doc)
