"""Admin API and ALS admin API errors: the right status and errorCode, and nothing changed."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import Hub, HubLauncher, deferred_net_model, error_code, unique_name


@pytest.fixture(scope="module")
def hub(module_hubs: HubLauncher) -> Hub:
    """One empty hub with USD set up; tests use their own participant names and currencies."""
    hub = module_hubs.start(empty=True)
    hub.setup_currency("USD")
    return hub


def assert_error(r: httpx.Response, status: int, code: str, text: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert error_code(r) == code, r.text
    info = r.json()["errorInformation"]
    assert isinstance(info["errorDescription"], str) and info["errorDescription"]
    if text is not None:
        assert text in info["errorDescription"], info
    return info


def participants(hub: Hub) -> Any:
    r = hub.admin.get("/participants")
    assert r.status_code == 200
    return r.json()


# ------------------------------------------------------------------------------- participants


def test_duplicate_participant(hub: Hub) -> None:
    name = unique_name()
    assert hub.admin.post("/participants", json={"name": name, "currency": "USD"}).status_code == 201
    before = participants(hub)
    r = hub.admin.post("/participants", json={"name": name, "currency": "USD"})
    assert_error(r, 400, "3000", "already been registered")
    assert participants(hub) == before


def test_unknown_participant(hub: Hub) -> None:
    r = hub.admin.get(f"/participants/{unique_name('nobody')}")
    assert_error(r, 400, "3200")


@pytest.mark.parametrize("body", [
    pytest.param({"currency": "XYZ"}, id="invalid-currency"),
    pytest.param({"currency": "usd"}, id="lower-case-currency"),
    pytest.param({"name": "a", "currency": "USD"}, id="name-too-short"),
    pytest.param({"name": "x" * 31, "currency": "USD"}, id="name-too-long"),
    pytest.param({"currency": "USD", "createdBy": "me"}, id="unknown-field"),
])
def test_participant_with_invalid_fields(hub: Hub, body: dict[str, Any]) -> None:
    body = {"name": unique_name(), **body}
    before = participants(hub)
    r = hub.admin.post("/participants", json=body)
    assert_error(r, 400, "3101")
    assert participants(hub) == before


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]"], ids=["garbage", "empty", "not-an-object"])
def test_participant_with_invalid_json_body(hub: Hub, content: bytes) -> None:
    before = participants(hub)
    r = hub.admin.post("/participants", content=content, headers={"content-type": "application/json"})
    assert_error(r, 400, "3101")
    assert participants(hub) == before


def test_participant_before_hub_accounts_exist(hubs: HubLauncher) -> None:
    fresh = hubs.start(empty=True)
    before = participants(fresh)
    r = fresh.admin.post("/participants", json={"name": "dfspa", "currency": "USD"})
    assert_error(r, 400, "3003", "Hub reconciliation account")
    assert participants(fresh) == before
    assert [p["name"] for p in before] == ["Hub", "centralAuth"]


def test_participant_in_a_currency_without_hub_accounts(hub: Hub) -> None:
    before = participants(hub)
    r = hub.admin.post("/participants", json={"name": unique_name(), "currency": "KES"})
    assert_error(r, 400, "3003")
    assert participants(hub) == before


# ------------------------------------------------------------------------------- hub accounts


def test_hub_account_for_a_dfsp(hub: Hub) -> None:
    name = unique_name()
    hub.onboard(name)
    before = hub.admin.get(f"/participants/{name}").json()
    r = hub.admin.post(f"/participants/{name}/accounts", json={"currency": "USD", "type": "HUB_RECONCILIATION"})
    assert_error(r, 400, "3003", "reserved for creation of Hub account types")
    assert hub.admin.get(f"/participants/{name}").json() == before


def test_duplicate_hub_account(hub: Hub) -> None:
    before = hub.admin.get("/participants/Hub").json()
    r = hub.admin.post("/participants/Hub/accounts", json={"currency": "USD", "type": "HUB_RECONCILIATION"})
    assert_error(r, 400, "3003", "already been registered")
    assert hub.admin.get("/participants/Hub").json() == before


def test_hub_account_of_a_type_that_is_not_a_hub_type(hub: Hub) -> None:
    before = hub.admin.get("/participants/Hub").json()
    r = hub.admin.post("/participants/Hub/accounts", json={"currency": "USD", "type": "POSITION"})
    assert_error(r, 400, "3003")
    assert hub.admin.get("/participants/Hub").json() == before


# ------------------------------------------------------------------------------- limits


def test_initial_position_and_limits_twice(hub: Hub) -> None:
    name = unique_name()
    hub.onboard(name, ndc=10000)
    limits = hub.admin.get(f"/participants/{name}/limits").json()
    positions = hub.admin.get(f"/participants/{name}/positions").json()
    r = hub.admin.post(f"/participants/{name}/initialPositionAndLimits", json={
        "currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": 20000}, "initialPosition": 5,
    })
    assert_error(r, 400, "3000", "already set")
    assert hub.admin.get(f"/participants/{name}/limits").json() == limits
    assert hub.admin.get(f"/participants/{name}/positions").json() == positions


def test_adjust_limit_with_a_negative_value(hub: Hub) -> None:
    name = unique_name()
    hub.onboard(name, ndc=10000)
    limits = hub.admin.get(f"/participants/{name}/limits").json()
    r = hub.admin.put(f"/participants/{name}/limits", json={
        "currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": -1, "alarmPercentage": 10},
    })
    assert_error(r, 400, "3101")
    assert hub.admin.get(f"/participants/{name}/limits").json() == limits


def test_adjust_limit_works(hub: Hub) -> None:
    """The counterpart of the error above: a valid adjustment is applied and echoed."""
    name = unique_name()
    hub.onboard(name, ndc=10000)
    r = hub.admin.put(f"/participants/{name}/limits", json={
        "currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": 7000, "alarmPercentage": 20},
    })
    assert r.status_code == 200, r.text
    assert r.json() == {"currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": 7000, "alarmPercentage": 20}}
    assert hub.admin.get(f"/participants/{name}/limits").json() == [r.json()]


# ------------------------------------------------------------------------------- settlement models


def models(hub: Hub) -> Any:
    r = hub.admin.get("/settlementModels")
    assert r.status_code == 200
    return r.json()


def test_invalid_settlement_model_combination(hub: Hub) -> None:
    before = models(hub)
    body = {**deferred_net_model("USD", unique_name("model")), "settlementDelay": "IMMEDIATE"}
    r = hub.admin.post("/settlementModels", json=body)  # IMMEDIATE / NET / MULTILATERAL
    assert_error(r, 400, "3000", "combination is not supported")
    assert models(hub) == before


def test_duplicate_settlement_model(hub: Hub) -> None:
    before = models(hub)
    assert [m["name"] for m in before] == ["DEFERREDNET"]
    r = hub.admin.post("/settlementModels", json=deferred_net_model("USD", "DEFERREDNET"))
    assert_error(r, 400, "3000", "already exists")
    assert models(hub) == before


# ------------------------------------------------------------------------------- funds


def test_funds_in_to_a_position_account(hub: Hub) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=100)
    accounts = hub.admin.get(f"/participants/{name}/accounts").json()
    r = hub.funds(name, ids["POSITION"], "recordFundsIn", 50)
    assert_error(r, 400, "3000", "not SETTLEMENT")
    assert hub.admin.get(f"/participants/{name}/accounts").json() == accounts


@pytest.mark.parametrize("amount", [0, "0", "1.12345", 1.12345, -5, "abc"],
                         ids=["zero", "zero-text", "5-decimals-text", "5-decimals-number", "negative", "text"])
def test_funds_in_with_an_invalid_amount(hub: Hub, amount: Any) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=100)
    accounts = hub.admin.get(f"/participants/{name}/accounts").json()
    r = hub.funds(name, ids["SETTLEMENT"], "recordFundsIn", amount)
    assert_error(r, 400, "3101")
    assert hub.admin.get(f"/participants/{name}/accounts").json() == accounts


# ------------------------------------------------------------------------------- routing


@pytest.mark.parametrize("api", ["admin", "als_admin", "fspiop", "sim"])
def test_unknown_path(hub: Hub, api: str) -> None:
    with httpx.Client(base_url=hub.urls[api], timeout=10) as client:
        r = client.get("/no/such/path")
    assert_error(r, 404, "3002")


def test_unknown_path_on_the_settlement_api(hub: Hub) -> None:
    r = hub.settlement.get("noSuchThing")
    assert_error(r, 404, "3002")


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/participants"), ("PATCH", "/participants/Hub"),
                                              ("DELETE", "/settlementModels")])
def test_wrong_method(hub: Hub, method: str, path: str) -> None:
    before = participants(hub)
    r = hub.admin.request(method, path)
    assert r.status_code == 405, r.text
    assert "errorInformation" in r.json()
    assert participants(hub) == before


# ------------------------------------------------------------------------------- ALS admin /oracles


def oracles(hub: Hub, **params: str) -> Any:
    r = hub.als.get("/oracles", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def oracle_body(id_type: str, currency: str | None = None, url: str = "http://oracle.example") -> dict[str, Any]:
    body: dict[str, Any] = {"oracleIdType": id_type, "endpoint": {"value": url, "endpointType": "URL"}}
    if currency:
        body["currency"] = currency
    return body


def test_oracle_with_a_bad_id_type(hub: Hub) -> None:
    before = oracles(hub)
    r = hub.als.post("/oracles", json=oracle_body("PHONE_NUMBER", "USD"))
    assert_error(r, 400, "3101")
    assert oracles(hub) == before


def test_duplicate_oracle(hub: Hub) -> None:
    r = hub.als.post("/oracles", json=oracle_body("EMAIL", "EUR"))
    assert r.status_code == 201, r.text
    before = oracles(hub)
    r = hub.als.post("/oracles", json=oracle_body("EMAIL", "EUR", url="http://other.example"))
    assert_error(r, 400, "3003")
    assert oracles(hub) == before


def test_put_unknown_oracle(hub: Hub) -> None:
    before = oracles(hub)
    r = hub.als.put("/oracles/999999", json=oracle_body("MSISDN", "USD"))
    assert_error(r, 400, "3003", "Oracle not found")
    assert oracles(hub) == before


def test_oracle_list_then_delete(hub: Hub) -> None:
    r = hub.als.post("/oracles", json={**oracle_body("PERSONAL_ID", "GBP"), "isDefault": True})
    assert r.status_code == 201, r.text
    assert r.content == b""
    (oracle,) = oracles(hub, type="PERSONAL_ID", currency="GBP")
    assert isinstance(oracle["oracleId"], str) and oracle["oracleId"]
    assert oracle["isDefault"] is True
    assert oracle["oracleIdType"] == "PERSONAL_ID" and oracle["currency"] == "GBP"
    assert oracle["endpoint"] == {"value": "http://oracle.example", "endpointType": "URL"}
    for listed in oracles(hub):
        assert isinstance(listed["oracleId"], str) and isinstance(listed["isDefault"], bool)

    r = hub.als.delete(f"/oracles/{oracle['oracleId']}")
    assert r.status_code == 204, r.text
    assert oracles(hub, type="PERSONAL_ID", currency="GBP") == []
    assert all(o["oracleId"] != oracle["oracleId"] for o in oracles(hub))
    # deleting again (or an unknown id) is not an error, as in the ALS
    assert hub.als.delete(f"/oracles/{oracle['oracleId']}").status_code == 204


def test_oracle_without_is_default_is_not_default(hub: Hub) -> None:
    r = hub.als.post("/oracles", json=oracle_body("ACCOUNT_ID", "JPY"))
    assert r.status_code == 201, r.text
    (oracle,) = oracles(hub, type="ACCOUNT_ID", currency="JPY")
    assert oracle["isDefault"] is False


def test_put_oracle_changes_it(hub: Hub) -> None:
    r = hub.als.post("/oracles", json=oracle_body("IBAN", "CHF"))
    assert r.status_code == 201, r.text
    (oracle,) = oracles(hub, type="IBAN", currency="CHF")
    r = hub.als.put(f"/oracles/{oracle['oracleId']}", json=oracle_body("IBAN", "CHF", url="http://new.example"))
    assert r.status_code == 204, r.text
    (changed,) = oracles(hub, type="IBAN", currency="CHF")
    assert changed["oracleId"] == oracle["oracleId"]
    assert changed["endpoint"]["value"] == "http://new.example"
