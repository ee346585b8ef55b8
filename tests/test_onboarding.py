"""Onboarding a hub through the Admin API, step by step as OPERATIONS-APIS.md §1.1 writes it,
and moving funds in and out of a DFSP's settlement account."""

from __future__ import annotations

import pytest
from conftest import Hub, HubLauncher, error_code, funds_body, new_transfer_id, unique_name

ENDPOINTS = {  # a few callback types, with the templates Mojaloop's test scripts use
    "FSPIOP_CALLBACK_URL_PARTIES_GET": "{base}/parties/{{{{partyIdType}}}}/{{{{partyIdentifier}}}}",
    "FSPIOP_CALLBACK_URL_PARTICIPANT_PUT": "{base}/participants/{{{{partyIdType}}}}/{{{{partyIdentifier}}}}",
    "FSPIOP_CALLBACK_URL_QUOTES": "{base}",
    "FSPIOP_CALLBACK_URL_TRANSFER_POST": "{base}/transfers",
    "FSPIOP_CALLBACK_URL_TRANSFER_PUT": "{base}/transfers/{{{{transferId}}}}",
    "FSPIOP_CALLBACK_URL_TRANSFER_ERROR": "{base}/transfers/{{{{transferId}}}}/error",
}


def endpoints_for(name: str) -> dict[str, str]:
    base = f"http://{name}.example:4000"
    return {t: v.format(base=base) for t, v in ENDPOINTS.items()}


def test_onboarding_sequence_on_an_empty_hub(hubs: HubLauncher) -> None:
    hub = hubs.start(empty=True)
    admin, als = hub.admin, hub.als
    assert hub.seeded is False

    # --- an empty hub: only the Hub participant, without accounts, and one OPEN window
    r = admin.get("/participants")
    assert r.status_code == 200
    assert [(p["name"], p["accounts"]) for p in r.json()] == [("Hub", []), ("centralAuth", [])]
    r = hub.settlement.get("settlementWindows", params={"state": "OPEN"})
    assert r.status_code == 200, r.text
    windows = r.json()
    assert len(windows) == 1 and windows[0]["state"] == "OPEN"

    # --- 1, 2: the hub accounts
    for account_type in ("HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"):
        r = admin.post("/participants/Hub/accounts", json={"currency": "USD", "type": account_type})
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "Hub"
    r = admin.get("/participants/Hub")
    hub_accounts = {a["ledgerAccountType"]: a for a in r.json()["accounts"]}
    assert set(hub_accounts) == {"HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"}
    assert all(a["currency"] == "USD" and a["isActive"] == 1 for a in hub_accounts.values())

    # --- 3: the settlement model
    model = {
        "name": "DEFERREDNET", "settlementGranularity": "NET", "settlementInterchange": "MULTILATERAL",
        "settlementDelay": "DEFERRED", "currency": "USD", "requireLiquidityCheck": True,
        "ledgerAccountType": "POSITION", "settlementAccountType": "SETTLEMENT", "autoPositionReset": True,
    }
    r = admin.post("/settlementModels", json=model)
    assert r.status_code == 201, r.text
    r = admin.get("/settlementModels/DEFERREDNET")
    assert r.status_code == 200, r.text
    assert r.json()["settlementGranularity"] == "NET" and r.json()["currency"] == "USD"

    # --- 4: the oracle, on the ALS admin API
    r = als.post("/oracles", json={
        "oracleIdType": "MSISDN", "endpoint": {"value": "http://oracle", "endpointType": "URL"},
        "currency": "USD", "isDefault": True,
    })
    assert r.status_code == 201, r.text

    # --- 5..8 for each DFSP
    dfsps = {"dfspa": {"ndc": 10000, "funds": "10000"}, "dfspb": {"ndc": 5000, "funds": "7500.5"}}
    for name, plan in dfsps.items():
        # 5: the participant, with inactive POSITION and SETTLEMENT accounts
        r = admin.post("/participants", json={"name": name, "currency": "USD"})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["name"] == name
        assert sorted((a["ledgerAccountType"], a["currency"], a["isActive"]) for a in created["accounts"]) == [
            ("POSITION", "USD", 0), ("SETTLEMENT", "USD", 0)]

        # 6: the NDC and the initial position
        r = admin.post(f"/participants/{name}/initialPositionAndLimits", json={
            "currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": plan["ndc"]}, "initialPosition": 0,
        })
        assert r.status_code == 201, r.text

        # 7: the callback endpoints
        for endpoint_type, value in endpoints_for(name).items():
            r = admin.post(f"/participants/{name}/endpoints", json={"type": endpoint_type, "value": value})
            assert r.status_code == 201, r.text

        # 8: find the SETTLEMENT account, then funds in
        r = admin.get(f"/participants/{name}/accounts")
        assert r.status_code == 200, r.text
        (settlement_id,) = [a["id"] for a in r.json() if a["ledgerAccountType"] == "SETTLEMENT"]
        r = admin.post(f"/participants/{name}/accounts/{settlement_id}", json={
            "transferId": new_transfer_id(), "externalReference": "deposit-1", "action": "recordFundsIn",
            "reason": "initial deposit", "amount": {"amount": plan["funds"], "currency": "USD"},
        })
        assert r.status_code == 202, r.text

    # --- the final state
    names = [p["name"] for p in admin.get("/participants").json()]
    assert names == ["Hub", "centralAuth", "dfspa", "dfspb"]
    expected_all_limits = []
    for name, plan in dfsps.items():
        participant = admin.get(f"/participants/{name}").json()
        assert participant["isActive"] == 1
        assert sorted((a["ledgerAccountType"], a["isActive"]) for a in participant["accounts"]) == [
            ("POSITION", 1), ("SETTLEMENT", 1)]

        limit = {"type": "NET_DEBIT_CAP", "value": plan["ndc"], "alarmPercentage": 10}
        r = admin.get(f"/participants/{name}/limits")
        assert r.status_code == 200, r.text
        assert r.json() == [{"currency": "USD", "limit": limit}]
        expected_all_limits.append({"name": name, "currency": "USD", "limit": limit})

        accounts = {a["ledgerAccountType"]: a for a in admin.get(f"/participants/{name}/accounts").json()}
        funds = float(plan["funds"])
        settlement_value = accounts["SETTLEMENT"]["value"]
        assert isinstance(settlement_value, (int, float)) and not isinstance(settlement_value, bool)
        assert settlement_value == -funds  # negative = funded
        assert accounts["POSITION"]["value"] == 0
        assert accounts["POSITION"]["isActive"] == 1 and accounts["SETTLEMENT"]["isActive"] == 1

        r = admin.get(f"/participants/{name}/positions")
        assert r.status_code == 200, r.text
        assert [(p["currency"], p["value"]) for p in r.json()] == [("USD", 0)]
        r = admin.get(f"/participants/{name}/positions", params={"currency": "USD"})
        assert r.status_code == 200, r.text
        position = r.json()
        assert isinstance(position, dict)
        assert position["currency"] == "USD" and position["value"] == 0 and isinstance(position["value"], int)

        r = admin.get(f"/participants/{name}/endpoints")
        assert r.status_code == 200, r.text
        assert {e["type"]: e["value"] for e in r.json()} == endpoints_for(name)
        r = admin.get(f"/participants/{name}/endpoints", params={"type": "FSPIOP_CALLBACK_URL_TRANSFER_PUT"})
        assert r.json() == {"type": "FSPIOP_CALLBACK_URL_TRANSFER_PUT",
                            "value": f"http://{name}.example:4000/transfers/{{{{transferId}}}}"}

    r = admin.get("/participants/limits")
    assert r.status_code == 200, r.text
    assert r.json() == expected_all_limits

    oracles = [o for o in als.get("/oracles").json()  # CONSENT and THIRD_PARTY_LINK: the hub's own
               if o["oracleIdType"] not in ("CONSENT", "THIRD_PARTY_LINK")]
    assert [(o["oracleIdType"], o["currency"], o["endpoint"]["value"]) for o in oracles] == [
        ("MSISDN", "USD", "http://oracle")]
    windows = hub.settlement.get("settlementWindows", params={"state": "OPEN"}).json()
    assert len(windows) == 1


# ------------------------------------------------------------------------------------ funds


@pytest.fixture(scope="module")
def hub(module_hubs: HubLauncher) -> Hub:
    """One empty hub with USD set up; each test onboards its own DFSP."""
    hub = module_hubs.start(empty=True)
    hub.setup_currency("USD")
    return hub


def hub_reconciliation(hub: Hub) -> float:
    return hub.account_value("Hub", "HUB_RECONCILIATION")


def test_funds_in_credits_the_settlement_account_and_debits_the_hub(hub: Hub) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=None)
    before = hub_reconciliation(hub)
    r = hub.funds(name, ids["SETTLEMENT"], "recordFundsIn", 1234.5)
    assert r.status_code == 202, r.text
    assert r.content == b""
    assert hub.account_value(name) == -1234.5
    assert hub_reconciliation(hub) == before + 1234.5
    assert hub.account_value(name, "POSITION") == 0


def test_funds_out_prepare_then_commit(hub: Hub) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=10000)
    recon = hub_reconciliation(hub)
    transfer_id = new_transfer_id()
    r = hub.funds(name, ids["SETTLEMENT"], "recordFundsOutPrepareReserve", "3000", transfer_id=transfer_id)
    assert r.status_code == 202, r.text
    assert hub.account_value(name) == -7000  # reserved: the DFSP side moves at once
    assert hub_reconciliation(hub) == recon

    r = hub.admin.put(f"/participants/{name}/accounts/{ids['SETTLEMENT']}/transfers/{transfer_id}",
                      json={"action": "recordFundsOutCommit", "reason": "paid out"})
    assert r.status_code == 202, r.text
    assert hub.account_value(name) == -7000
    assert hub_reconciliation(hub) == recon - 3000


def test_funds_out_prepare_then_abort(hub: Hub) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=10000)
    recon = hub_reconciliation(hub)
    transfer_id = new_transfer_id()
    r = hub.funds(name, ids["SETTLEMENT"], "recordFundsOutPrepareReserve", 2500, transfer_id=transfer_id)
    assert r.status_code == 202, r.text
    assert hub.account_value(name) == -7500

    r = hub.admin.put(f"/participants/{name}/accounts/{ids['SETTLEMENT']}/transfers/{transfer_id}",
                      json={"action": "recordFundsOutAbort", "reason": "cancelled"})
    assert r.status_code == 202, r.text
    assert hub.account_value(name) == -10000
    assert hub_reconciliation(hub) == recon


def test_funds_out_larger_than_the_balance_changes_nothing(hub: Hub) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=1000)
    recon = hub_reconciliation(hub)
    transfer_id = new_transfer_id()
    r = hub.funds(name, ids["SETTLEMENT"], "recordFundsOutPrepareReserve", "1000.01", transfer_id=transfer_id)
    assert r.status_code == 202, r.text  # as in Mojaloop: accepted, then aborted for insufficient funds
    assert hub.account_value(name) == -1000
    # and it cannot be committed afterwards: it is not RESERVED
    r = hub.admin.put(f"/participants/{name}/accounts/{ids['SETTLEMENT']}/transfers/{transfer_id}",
                      json={"action": "recordFundsOutCommit", "reason": "should not work"})
    assert r.status_code == 400, r.text
    assert error_code(r) == "3000"
    assert hub.account_value(name) == -1000
    assert hub_reconciliation(hub) == recon


def test_finishing_a_funds_out_twice_or_one_that_does_not_exist(hub: Hub) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=1000)
    transfer_id = new_transfer_id()
    assert hub.funds(name, ids["SETTLEMENT"], "recordFundsOutPrepareReserve", 400,
                     transfer_id=transfer_id).status_code == 202
    url = f"/participants/{name}/accounts/{ids['SETTLEMENT']}/transfers/{transfer_id}"
    assert hub.admin.put(url, json={"action": "recordFundsOutCommit", "reason": "paid"}).status_code == 202
    recon = hub_reconciliation(hub)
    for action in ("recordFundsOutCommit", "recordFundsOutAbort"):
        r = hub.admin.put(url, json={"action": action, "reason": "again"})
        assert r.status_code == 400 and error_code(r) == "3000", r.text
    r = hub.admin.put(f"/participants/{name}/accounts/{ids['SETTLEMENT']}/transfers/{new_transfer_id()}",
                      json={"action": "recordFundsOutCommit", "reason": "no such transfer"})
    assert r.status_code == 400 and error_code(r) == "3200", r.text
    assert hub.account_value(name) == -600
    assert hub_reconciliation(hub) == recon


def test_funds_out_of_exactly_the_balance_is_allowed(hub: Hub) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=1000)
    r = hub.funds(name, ids["SETTLEMENT"], "recordFundsOutPrepareReserve", 1000)
    assert r.status_code == 202, r.text
    assert hub.account_value(name) == 0


def test_resent_identical_funds_in_is_applied_once(hub: Hub) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=None)
    body = funds_body("recordFundsIn", "500", "USD", new_transfer_id())
    for _ in range(2):
        r = hub.admin.post(f"/participants/{name}/accounts/{ids['SETTLEMENT']}", json=body)
        assert r.status_code == 202, r.text
    assert hub.account_value(name) == -500


def test_same_transfer_id_with_another_amount_is_refused(hub: Hub) -> None:
    name = unique_name()
    ids = hub.onboard(name, funds=None)
    transfer_id = new_transfer_id()
    r = hub.funds(name, ids["SETTLEMENT"], "recordFundsIn", "500", transfer_id=transfer_id)
    assert r.status_code == 202, r.text
    r = hub.funds(name, ids["SETTLEMENT"], "recordFundsIn", "600", transfer_id=transfer_id)
    assert r.status_code == 400, r.text
    assert error_code(r) == "3106"
    assert hub.account_value(name) == -500


# One amount is bounded (1e14) and so is a balance: funds-in that would push an account past what a
# 64-bit integer holds are refused, never rounded through a float.
def test_a_balance_beyond_what_the_ledger_holds_is_refused_not_rounded(hubs: HubLauncher) -> None:
    from decimal import Decimal

    hub = hubs.start(empty=True)  # its own hub: this test breaks the Hub's reconciliation account
    hub.setup_currency("USD")
    name = unique_name()
    ids = hub.onboard(name, funds=None)
    expected = Decimal(0)
    for amount in ["100000000000000"] * 10 + ["0.0001"]:
        r = hub.funds(name, ids["SETTLEMENT"], "recordFundsIn", amount)
        assert r.status_code in (202, 400), r.text
        if r.status_code == 202:
            expected -= Decimal(amount)
        accounts = hub.admin.get(f"/participants/{name}/accounts").json(parse_float=Decimal)
        (value,) = [Decimal(a["value"]) for a in accounts if a["ledgerAccountType"] == "SETTLEMENT"]
        assert value == expected, f"after a funds-in of {amount} answered {r.status_code}"


def test_a_second_currency_for_a_participant(hub: Hub) -> None:
    hub_accounts = {(a["ledgerAccountType"], a["currency"])
                    for a in hub.admin.get("/participants/Hub").json()["accounts"]}
    if ("HUB_RECONCILIATION", "EUR") not in hub_accounts:
        hub.setup_currency("EUR", model_name="DEFERREDNETEUR")
    name = unique_name()
    hub.onboard(name, currency="USD", ndc=1000, funds=100)
    r = hub.admin.post("/participants", json={"name": name, "currency": "EUR"})
    assert r.status_code == 201, r.text
    assert sorted((a["ledgerAccountType"], a["currency"]) for a in r.json()["accounts"]) == [
        ("POSITION", "EUR"), ("POSITION", "USD"), ("SETTLEMENT", "EUR"), ("SETTLEMENT", "USD")]
    r = hub.admin.post(f"/participants/{name}/initialPositionAndLimits", json={
        "currency": "EUR", "limit": {"type": "NET_DEBIT_CAP", "value": 2000}, "initialPosition": 0})
    assert r.status_code == 201, r.text
    limits = hub.admin.get(f"/participants/{name}/limits").json()
    assert sorted((item["currency"], item["limit"]["value"]) for item in limits) == [("EUR", 2000), ("USD", 1000)]
    assert hub.admin.get(f"/participants/{name}/limits", params={"currency": "EUR"}).json() == [
        {"currency": "EUR", "limit": {"type": "NET_DEBIT_CAP", "value": 2000, "alarmPercentage": 10}}]
    positions = hub.admin.get(f"/participants/{name}/positions").json()
    assert sorted(p["currency"] for p in positions) == ["EUR", "USD"]
    assert hub.admin.get(f"/participants/{name}/positions", params={"currency": "EUR"}).json()["value"] == 0
    # the same currency again is refused
    r = hub.admin.post("/participants", json={"name": name, "currency": "EUR"})
    assert r.status_code == 400 and error_code(r) == "3000"
