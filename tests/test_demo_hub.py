"""The demo hub a plain `miniloop up` seeds: ready DFSPs, an MSISDN oracle, healthy servers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from conftest import Hub, HubLauncher


@pytest.fixture(scope="module")
def hub(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


@pytest.fixture(scope="module")
def dfsps(hub: Hub) -> list[dict[str, Any]]:
    r = hub.admin.get("/participants")
    assert r.status_code == 200, r.text
    return [p for p in r.json() if p["name"] not in ("Hub", "centralAuth")]  # centralAuth: the auth-service


def test_it_says_it_was_seeded(hub: Hub) -> None:
    assert hub.seeded is True


def test_at_least_three_dfsps_with_active_accounts(dfsps: list[dict[str, Any]]) -> None:
    assert len(dfsps) >= 3
    for dfsp in dfsps:
        assert dfsp["isActive"] == 1
        active = {(a["ledgerAccountType"], a["currency"]) for a in dfsp["accounts"] if a["isActive"] == 1}
        currencies = {c for _, c in active}
        assert currencies, dfsp
        for currency in currencies:
            assert {("POSITION", currency), ("SETTLEMENT", currency)} <= active, dfsp


def test_hub_has_its_accounts(hub: Hub) -> None:
    accounts = hub.admin.get("/participants/Hub").json()["accounts"]
    types = {a["ledgerAccountType"] for a in accounts if a["isActive"] == 1}
    assert {"HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"} <= types


def test_every_dfsp_has_a_net_debit_cap(hub: Hub, dfsps: list[dict[str, Any]]) -> None:
    all_limits = hub.admin.get("/participants/limits").json()
    for dfsp in dfsps:
        r = hub.admin.get(f"/participants/{dfsp['name']}/limits")
        assert r.status_code == 200, r.text
        limits = r.json()
        assert limits, dfsp["name"]
        for item in limits:
            assert item["limit"]["type"] == "NET_DEBIT_CAP"
            assert item["limit"]["value"] > 0
            assert {"name": dfsp["name"], **item} in all_limits


def test_every_dfsp_is_funded_and_has_no_position(hub: Hub, dfsps: list[dict[str, Any]]) -> None:
    for dfsp in dfsps:
        accounts = hub.admin.get(f"/participants/{dfsp['name']}/accounts").json()
        settlement = [a for a in accounts if a["ledgerAccountType"] == "SETTLEMENT"]
        assert settlement and all(a["value"] < 0 for a in settlement), accounts
        positions = hub.admin.get(f"/participants/{dfsp['name']}/positions").json()
        assert positions and all(p["value"] == 0 for p in positions)


def test_every_dfsp_has_fspiop_callbacks(hub: Hub, dfsps: list[dict[str, Any]]) -> None:
    for dfsp in dfsps:
        r = hub.admin.get(f"/participants/{dfsp['name']}/endpoints")
        assert r.status_code == 200, r.text
        endpoints = {e["type"]: e["value"] for e in r.json()}
        for endpoint_type in ("FSPIOP_CALLBACK_URL_TRANSFER_POST", "FSPIOP_CALLBACK_URL_TRANSFER_PUT",
                              "FSPIOP_CALLBACK_URL_TRANSFER_ERROR", "FSPIOP_CALLBACK_URL_PARTIES_GET",
                              "FSPIOP_CALLBACK_URL_PARTIES_PUT", "FSPIOP_CALLBACK_URL_QUOTES"):
            assert endpoint_type in endpoints, (dfsp["name"], endpoint_type)
            assert endpoints[endpoint_type].startswith("http"), endpoints[endpoint_type]
        assert "{{transferId}}" in endpoints["FSPIOP_CALLBACK_URL_TRANSFER_PUT"]
        assert "{{transferId}}" in endpoints["FSPIOP_CALLBACK_URL_TRANSFER_ERROR"]


def test_there_is_an_msisdn_oracle(hub: Hub) -> None:
    r = hub.als.get("/oracles")
    assert r.status_code == 200, r.text
    msisdn = [o for o in r.json() if o["oracleIdType"] == "MSISDN"]
    assert msisdn, r.json()
    assert msisdn[0]["endpoint"]["endpointType"] == "URL"
    r = hub.als.get("/oracles", params={"type": "MSISDN"})
    assert [o["oracleIdType"] for o in r.json()] == ["MSISDN"] * len(r.json()) and r.json()


def test_a_settlement_model_and_one_open_window(hub: Hub) -> None:
    assert hub.admin.get("/settlementModels").json()
    windows = hub.settlement.get("settlementWindows", params={"state": "OPEN"}).json()
    assert len(windows) == 1


@pytest.mark.parametrize("api", ["fspiop", "admin", "als_admin", "sim", "settlement"])
def test_health(hub: Hub, api: str) -> None:
    base = hub.urls[api]
    if api == "settlement":
        assert base.endswith("/v2")
        base = base.removesuffix("/v2")
    r = httpx.get(base + "/health", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["status"] == "OK"
    if api == "settlement":  # the Settlement API's definition puts it under /v2 as well
        assert httpx.get(hub.urls[api] + "/health", timeout=10).json()["status"] == "OK"


def test_the_seeded_oracle_url_is_the_builtin_oracle_and_answers_for_customers(hub: Hub) -> None:
    oracles = hub.als.get("/oracles", params={"type": "MSISDN"}).json()
    assert len(oracles) == 1
    endpoint = oracles[0]["endpoint"]["value"]
    found = httpx.get(f"{endpoint}/participants/MSISDN/27710000001", timeout=10)
    assert found.status_code == 200
    assert found.json() == {"partyList": [{"fspId": "greenwallet"}]}
    unknown = httpx.get(f"{endpoint}/participants/MSISDN/19999999999", timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["errorInformation"]["errorCode"] == "3204"


def test_builtin_oracle_registers_moves_and_deletes_a_party(hub: Hub) -> None:
    base = f"{hub.urls['als_admin']}/oracle/participants/EMAIL/ada@example.org"
    assert httpx.post(base, json={"fspId": "bluewallet", "currency": "USD"}, timeout=10).status_code == 201
    assert httpx.get(base, timeout=10).json() == {"partyList": [{"fspId": "bluewallet"}]}
    assert httpx.put(base, json={"fspId": "greenwallet", "currency": "USD"}, timeout=10).status_code == 204
    assert httpx.get(base, params={"currency": "USD"}, timeout=10).json() == {"partyList": [{"fspId": "greenwallet"}]}
    assert httpx.delete(base, timeout=10).status_code == 204
    assert httpx.get(base, timeout=10).status_code == 404
    bad = httpx.post(base, json={"fspId": "no such fsp!"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["errorInformation"]["errorCode"] == "3101"


def test_builtin_oracle_batch_refuses_a_bad_sub_id_alone(hub: Hub) -> None:
    """Found by fuzzing: a partySubIdOrType that is not a string answered 500 for the whole batch."""
    batch = {"partyList": [
        {"partyIdType": "EMAIL", "partyIdentifier": "bad@example.org", "fspId": "bluewallet", "partySubIdOrType": [None]},
        {"partyIdType": "EMAIL", "partyIdentifier": "good@example.org", "fspId": "bluewallet", "partySubIdOrType": "HOME"},
    ]}
    answer = httpx.post(f"{hub.urls['als_admin']}/oracle/participants", json=batch, timeout=10)
    assert answer.status_code == 201, answer.text
    bad, good = answer.json()["partyList"]
    assert bad["errorInformation"]["errorCode"] == "3101"
    assert "errorInformation" not in good
    base = f"{hub.urls['als_admin']}/oracle/participants/EMAIL"
    found = httpx.get(f"{base}/good@example.org/HOME", timeout=10).json()
    assert found == {"partyList": [{"fspId": "bluewallet", "partySubIdOrType": "HOME"}]}
    assert httpx.get(f"{base}/bad@example.org", timeout=10).status_code == 404
