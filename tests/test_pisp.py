"""The simulated PISP (budgetapp) and the simulated DFSPs' third-party side, end to end on the demo hub.

Real hub, real simulators, real HTTP: account linking with the OTP and the WEB channel, a
third-party transfer, and the refusals the scenarios need (bad signature 6201, wrong OTP 6203,
unsupported scope 6101, a revoked consent 6103 after unlinking from either side). The hub's
third-party routing and its auth-service (centralAuth) take part in every flow. Each test links
its own customer, so the tests of the module share one hub.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from conftest import Hub, HubLauncher, wait_until
from sim_api import post, get, balance, position

from miniloop.ledger.check import check_ledger

D = Decimal
PISP = "budgetapp"


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()






def wire(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(direction, method, path without the id) of each message of a flow's wire log."""
    out = []
    for m in result["messages"]:
        parts = m["path"].split("/")
        path = "/".join(p if len(p) < 30 else "{ID}" for p in parts)  # ids are UUIDs
        out.append((m["direction"], m["method"], path))
    return out


def link(hub: Hub, dfsp: str, user: str, **extra: Any) -> httpx.Response:
    return post(hub, f"/{PISP}/link", {"dfsp": dfsp, "userId": user, **extra})


def linked(hub: Hub, dfsp: str, user: str, **extra: Any) -> dict[str, Any]:
    r = link(hub, dfsp, user, **extra)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "LINKED", body
    return body


def oracle_owner(hub: Hub, address: str) -> httpx.Response:
    oracles = hub.als.get("/oracles", params={"type": "THIRD_PARTY_LINK"}).json()
    assert oracles, "no oracle serves THIRD_PARTY_LINK"
    return httpx.get(f"{oracles[0]['endpoint']['value']}/participants/THIRD_PARTY_LINK/{address}", timeout=10)


def test_the_pisp_is_a_participant_with_thirdparty_endpoints(demo: Hub) -> None:
    endpoints = {e["type"] for e in demo.admin.get(f"/participants/{PISP}/endpoints").json()}
    assert "TP_CB_URL_CONSENT_REQUEST_PUT" in endpoints and "TP_CB_URL_CONSENT_REQUEST_POST" not in endpoints
    assert "FSPIOP_CALLBACK_URL_PARTIES_PUT" in endpoints
    wallet = {e["type"] for e in demo.admin.get("/participants/greenwallet/endpoints").json()}
    assert {"TP_CB_URL_CONSENT_REQUEST_POST", "TP_CB_URL_TRANSACTION_REQUEST_POST"} <= wallet
    assert PISP not in [d["name"] for d in get(demo, "/dfsps").json()]
    assert get(demo, "/pisps").json()[0]["name"] == PISP


def test_link_with_otp_then_pay(demo: Hub) -> None:
    result = linked(demo, "greenwallet", "27710000001", channel="OTP")
    address = "greenwallet.27710000001"
    assert result["accounts"] == [{"accountNickname": "Amara Okafor at greenwallet", "address": address,
                                   "currency": "USD"}]
    assert result["scopes"] == [{"address": address, "actions": ["ACCOUNTS_TRANSFER", "ACCOUNTS_GET_BALANCE"]}]
    assert wire(result) == [
        ("out", "GET", "/services/THIRD_PARTY_DFSP"), ("in", "PUT", "/services/THIRD_PARTY_DFSP"),
        ("out", "GET", "/accounts/27710000001"), ("in", "PUT", "/accounts/27710000001"),
        ("out", "POST", "/consentRequests"), ("in", "PUT", "/consentRequests/{ID}"),
        ("out", "PATCH", "/consentRequests/{ID}"), ("in", "POST", "/consents"),
        ("out", "PUT", "/consents/{ID}"), ("in", "PATCH", "/consents/{ID}"),
    ]
    otp = [m for m in get(demo, "/greenwallet/customers/27710000001/messages").json()["messages"]
           if m["kind"] == "otp" and m.get("consentRequestId") == result["consentRequestId"]]
    assert len(otp) == 1 and "budgetapp" in otp[0]["text"]
    # the link is in the ALS, served by the DFSP
    found = oracle_owner(demo, address)
    assert found.status_code == 200, found.text
    assert found.json() == {"partyList": [{"fspId": "greenwallet"}]}
    links = get(demo, f"/{PISP}/links").json()["links"]
    assert links[0]["consentId"] == result["consentId"] and links[0]["state"] == "LINKED"
    consents = get(demo, "/greenwallet/consents").json()["consents"]
    assert consents[0]["consentId"] == result["consentId"] and consents[0]["state"] == "ACTIVE"

    before = {n: position(demo, n) for n in ("greenwallet", "bluewallet")}
    payer_before, payee_before = balance(demo, "greenwallet", "27710000001"), balance(demo, "bluewallet", "27720000001")
    r = post(demo, f"/{PISP}/pay", {"consentId": result["consentId"], "to": "MSISDN/27720000001", "amount": "40"})
    assert r.status_code == 200, r.text
    paid = r.json()
    assert paid["state"] == "COMMITTED" and paid["transferId"], paid
    assert wire(paid) == [
        ("out", "GET", "/parties/MSISDN/27720000001"), ("in", "PUT", "/parties/MSISDN/27720000001"),
        ("out", "POST", "/thirdpartyRequests/transactions"), ("in", "PUT", "/thirdpartyRequests/transactions/{ID}"),
        ("in", "POST", "/thirdpartyRequests/authorizations"), ("out", "PUT", "/thirdpartyRequests/authorizations/{ID}"),
        ("in", "PATCH", "/thirdpartyRequests/transactions/{ID}"),
    ]
    assert paid["authorization"]["transferAmount"] == {"amount": "40", "currency": "USD"}
    assert balance(demo, "greenwallet", "27710000001") == payer_before - 40
    assert balance(demo, "bluewallet", "27720000001") == payee_before + 40
    assert position(demo, "greenwallet") == before["greenwallet"] + 40
    assert position(demo, "bluewallet") == before["bluewallet"] - 40
    recent = get(demo, "/greenwallet/transfers/recent").json()["transfers"]
    assert any(t["transferId"] == paid["transferId"] and t["state"] == "COMMITTED" for t in recent)


def test_link_with_the_web_channel_and_pay_by_link_address(demo: Hub) -> None:
    result = linked(demo, "bluewallet", "27720000002", channel="WEB")
    assert ("web", "POST") in [(m["direction"], m["method"]) for m in result["messages"]]
    page, login = [m for m in result["messages"] if m["direction"] == "web"]
    assert page["method"] == "GET" and page["status"] == 200 and page["path"].startswith(demo.urls["sim"])
    assert login["status"] == 303 and "authToken=" in login["location"]
    assert login["location"].startswith(f"{demo.urls['sim']}/{PISP}/linked?")
    assert "Log in and allow" in httpx.get(page["path"], timeout=10).text
    found = oracle_owner(demo, "bluewallet.27720000002")
    assert found.json() == {"partyList": [{"fspId": "bluewallet"}]}
    before = balance(demo, "bluewallet", "27720000002")
    r = post(demo, f"/{PISP}/pay", {"link": "bluewallet.27720000002", "to": "MSISDN/27730000001", "amount": "25"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "COMMITTED"
    assert balance(demo, "bluewallet", "27720000002") == before - 25  # SEND: the fee comes out of the 25


def test_a_fido_credential_links_and_signs(demo: Hub) -> None:
    result = linked(demo, "bluewallet", "27720000003", credential="FIDO")
    put = [m for m in result["messages"] if m["method"] == "PUT" and m["path"].startswith("/consents/")][0]
    assert put["body"]["credential"]["credentialType"] == "FIDO"
    assert set(put["body"]["credential"]["fidoPayload"]["response"]) == {"clientDataJSON", "attestationObject"}
    view = {lk["consentId"]: lk for lk in get(demo, f"/{PISP}/links").json()["links"]}[result["consentId"]]
    assert view["credentialType"] == "FIDO" and view["credentialId"]
    before = balance(demo, "bluewallet", "27720000003")
    r = post(demo, f"/{PISP}/pay", {"consentId": result["consentId"], "to": "MSISDN/27710000002", "amount": "5"})
    assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text
    signed = [m for m in r.json()["messages"] if m["method"] == "PUT" and "authorizations" in m["path"]][0]
    assert signed["body"]["signedPayload"]["signedPayloadType"] == "FIDO"
    r = post(demo, f"/{PISP}/pay", {"consentId": result["consentId"], "to": "MSISDN/27710000002", "amount": "5",
                                    "signature": "bad"})
    assert r.status_code == 502 and r.json()["error"]["errorCode"] == "6201", r.text
    assert balance(demo, "bluewallet", "27720000003") == before - 5


def test_denied_web_login_is_refused_with_6102(demo: Hub) -> None:
    r = link(demo, "greenwallet", "GREENKIOSK", channel="WEB", login="deny")
    assert r.status_code == 502, r.text
    body = r.json()
    assert body["state"] == "REJECTED" and body["error"]["errorCode"] == "6102", body


def test_bad_signature_is_refused_with_6201(demo: Hub) -> None:
    result = linked(demo, "greenwallet", "27710000002")
    before = balance(demo, "greenwallet", "27710000002")
    r = post(demo, f"/{PISP}/pay", {"consentId": result["consentId"], "to": "MSISDN/27720000003", "amount": "10",
                                    "signature": "bad"})
    assert r.status_code == 502, r.text
    body = r.json()
    assert body["state"] == "REJECTED" and body["error"]["errorCode"] == "6201", body
    assert ("in", "PUT", "/thirdpartyRequests/transactions/{ID}/error") in wire(body)
    r = post(demo, f"/{PISP}/pay", {"consentId": result["consentId"], "to": "MSISDN/27720000003", "amount": "10",
                                    "signature": "decline"})
    assert r.status_code == 502, r.text
    assert r.json()["state"] == "REJECTED" and "error" not in r.json(), r.json()
    assert wire(r.json())[-1] == ("in", "PATCH", "/thirdpartyRequests/transactions/{ID}")
    assert balance(demo, "greenwallet", "27710000002") == before


def test_wrong_otp_is_refused_with_6203(demo: Hub) -> None:
    r = link(demo, "greenwallet", "27710000003", otp="wrong")
    assert r.status_code == 502, r.text
    body = r.json()
    assert body["state"] == "REJECTED" and body["error"]["errorCode"] == "6203", body
    assert body["consentId"] is None
    assert wire(body)[-1] == ("in", "PUT", "/consentRequests/{ID}/error")


def test_unsupported_scope_is_refused_with_6101(demo: Hub) -> None:
    r = link(demo, "bluewallet", "27720000003", scopes=["ACCOUNTS_STATEMENT"])
    assert r.status_code == 502, r.text
    body = r.json()
    assert body["state"] == "REJECTED" and body["error"]["errorCode"] == "6101", body
    assert wire(body)[-1] == ("in", "PUT", "/consentRequests/{ID}/error")


def test_unlink_from_the_pisp_then_a_payment_is_refused(demo: Hub) -> None:
    result = linked(demo, "bluewallet", "27720000001")
    r = post(demo, f"/{PISP}/unlink", {"consentId": result["consentId"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "REVOKED" and body["revokedAt"], body
    assert wire(body) == [("out", "DELETE", "/consents/{ID}"), ("in", "PATCH", "/consents/{ID}")]
    assert oracle_owner(demo, "bluewallet.27720000001").status_code == 404
    assert get(demo, "/bluewallet/consents").json()["consents"][0]["state"] == "REVOKED"
    before = balance(demo, "bluewallet", "27720000001")
    r = post(demo, f"/{PISP}/pay", {"consentId": result["consentId"], "to": "MSISDN/27710000001", "amount": "5"})
    assert r.status_code == 502, r.text
    assert r.json()["state"] == "REJECTED" and r.json()["error"]["errorCode"] == "6103", r.json()
    assert balance(demo, "bluewallet", "27720000001") == before


def test_linking_an_account_again_replaces_the_old_link(demo: Hub) -> None:
    first = linked(demo, "greenwallet", "27710000003", otp="phone")
    second = linked(demo, "greenwallet", "27710000003", channel="WEB")
    consents = {c["consentId"]: c for c in get(demo, "/greenwallet/consents").json()["consents"]}
    assert consents[second["consentId"]]["state"] == "ACTIVE"
    assert consents[first["consentId"]]["state"] == "REVOKED"
    assert consents[first["consentId"]]["reason"] == f"replaced by consent {second['consentId']}"
    assert oracle_owner(demo, "greenwallet.27710000003").json() == {"partyList": [{"fspId": "greenwallet"}]}

    def revoked() -> bool:  # the PISP hears of it after the new link's PATCH
        links = {lk["consentId"]: lk for lk in get(demo, f"/{PISP}/links").json()["links"]}
        return links[first["consentId"]]["state"] == "REVOKED"

    wait_until(revoked, 10, what="the old link revoked at the PISP")


def test_unlink_from_the_dfsp_then_a_payment_is_refused(demo: Hub) -> None:
    result = linked(demo, "greenwallet", "GREENKIOSK", channel="WEB")
    r = post(demo, f"/greenwallet/consents/{result['consentId']}/revoke", {})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "REVOKED"
    assert [(m["method"], m["destination"]) for m in r.json()["messages"] if m["direction"] == "out"] == [
        ("PATCH", PISP), ("PATCH", "centralAuth"), ("DELETE", None)]
    assert oracle_owner(demo, "greenwallet.GREENKIOSK").status_code == 404
    link_now = {lk["consentId"]: lk for lk in get(demo, f"/{PISP}/links").json()["links"]}[result["consentId"]]
    assert link_now["state"] == "REVOKED" and link_now["revokedBy"] == "greenwallet"
    r = post(demo, f"/{PISP}/pay", {"consentId": result["consentId"], "to": "MSISDN/27720000002", "amount": "5"})
    assert r.status_code == 502, r.text
    assert r.json()["state"] == "REJECTED" and r.json()["error"]["errorCode"] == "6103", r.json()


def test_bad_driving_input_is_refused(demo: Hub) -> None:
    r = post(demo, f"/{PISP}/link", {"dfsp": "greenwallet", "userId": "27710000001", "channel": "SMS"})
    assert r.status_code == 400 and r.json()["errorInformation"]["errorCode"] == "3100"
    r = post(demo, f"/{PISP}/pay", {"consentId": "nope", "to": "MSISDN/1", "amount": "1"})
    assert r.status_code == 400 and r.json()["errorInformation"]["errorCode"] == "3100"
    r = post(demo, "/greenwallet/link", {"dfsp": "bluewallet", "userId": "27720000001"})
    assert r.status_code == 404 and r.json()["errorInformation"]["errorCode"] == "3002"


def test_the_ledger_checks_out(demo: Hub) -> None:
    report = check_ledger(demo.data_dir / "miniloop.db")
    assert report.ok, report.problems


def test_a_pisp_in_the_hub_file_has_no_customers(tmp_path: Any) -> None:
    from miniloop import hubfile
    from miniloop.errors import ConfigError

    path = tmp_path / "hub.toml"
    path.write_text('currencies = ["USD"]\n[[dfsps]]\nname = "app"\nkind = "pisp"\n'
                    'customers = [{ id = "1", name = "X" }]\n')
    with pytest.raises(ConfigError, match="is a PISP"):
        hubfile.load(path)
    assert [d.kind for d in hubfile.load(None).dfsps if d.name == PISP] == ["pisp"]
