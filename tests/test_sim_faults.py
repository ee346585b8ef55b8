"""Injected faults in the simulated DFSPs (mobile_sim.faults): GET/PUT /<dfsp>/faults, and what a payer sees.

Over the real demo hub: greenwallet's customers pay Corner Grocery at merchantbank while
merchantbank is slow, silent, rejecting or down, and the hub's answers (timeouts, 3303 at expiry,
the payee's error codes, 1001 when it cannot deliver) reach the payer. The tests of this module
share one hub and run one after the other; each puts merchantbank back to normal when it ends.
Last, with a toy switch: every wire event on the feed carries its FSPIOP headers, and a fault
change is published.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import httpx
import pytest
from sanic import Sanic
from test_mobile_sim_unit import ToySwitch, run_with_switch

from conftest import Hub, HubLauncher, wait_until
from sim_api import post, get, position

D = Decimal
TIMEOUT = 60
PAYER = ("greenwallet", "27710000001")
GROCERY = {"idType": "MSISDN", "id": "27730000001"}  # Corner Grocery at merchantbank


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


@pytest.fixture
def hub(demo: Hub) -> Iterator[Hub]:
    yield demo
    for dfsp in ("greenwallet", "bluewallet", "merchantbank"):
        r = put(demo, f"/{dfsp}/faults", {"mode": "normal"})
        assert r.status_code == 200, r.text


def put(hub: Hub, path: str, body: Any) -> httpx.Response:
    return httpx.put(f"{hub.urls['sim']}{path}", json=body, timeout=TIMEOUT)




def fault(hub: Hub, dfsp: str, **body: Any) -> dict[str, Any]:
    r = put(hub, f"/{dfsp}/faults", body)
    assert r.status_code == 200, r.text
    return r.json()


def pay(hub: Hub, amount: str = "3", **extra: Any) -> httpx.Response:
    return post(hub, f"/{PAYER[0]}/send", {"from": PAYER[1], "to": GROCERY, "amount": amount, **extra})


def customer(hub: Hub) -> dict[str, Any]:
    r = get(hub, f"/{PAYER[0]}/customers/{PAYER[1]}")
    assert r.status_code == 200, r.text
    return r.json()



def wait_for(check: Any, timeout: float = 20.0) -> Any:
    return wait_until(check, timeout, what="the expected state")


def error_code(r: httpx.Response) -> str:
    return r.json()["errorInformation"]["errorCode"]


def to_the_quote(hub: Hub, timeout_s: int = 30) -> str:
    """A /send with confirm, accepted up to its quote: the transferId, waiting for acceptQuote."""
    r = pay(hub, confirm=True, timeoutSeconds=timeout_s)
    assert r.status_code == 200 and r.json()["state"] == "WAITING_FOR_PARTY_ACCEPTANCE", r.text
    transfer_id = r.json()["transferId"]
    r = put(hub, f"/{PAYER[0]}/send/{transfer_id}", {"acceptParty": True})
    assert r.status_code == 200 and r.json()["state"] == "WAITING_FOR_QUOTE_ACCEPTANCE", r.text
    return transfer_id


# --------------------------------------------------------------------------- the route


def test_a_dfsp_starts_normal_and_get_shows_the_fault_set(hub: Hub) -> None:
    r = get(hub, "/merchantbank/faults")
    assert r.status_code == 200
    assert r.json() == {"dfsp": "merchantbank", "mode": "normal", "delaySeconds": None, "errorCode": None}
    assert fault(hub, "merchantbank", mode="slow") == {
        "dfsp": "merchantbank", "mode": "slow", "delaySeconds": 5.0, "errorCode": None}
    assert get(hub, "/merchantbank/faults").json()["mode"] == "slow"
    assert fault(hub, "merchantbank", mode="slow", delaySeconds=0.5)["delaySeconds"] == 0.5
    assert fault(hub, "merchantbank", mode="reject", errorCode="5104") == {
        "dfsp": "merchantbank", "mode": "reject", "delaySeconds": None, "errorCode": "5104"}
    assert fault(hub, "merchantbank", mode="reject")["errorCode"] is None  # the natural code per request
    assert fault(hub, "merchantbank", mode="silent")["mode"] == "silent"
    assert get(hub, "/greenwallet/faults").json()["mode"] == "normal"  # one DFSP's fault only
    assert fault(hub, "merchantbank", mode="normal") == {
        "dfsp": "merchantbank", "mode": "normal", "delaySeconds": None, "errorCode": None}


@pytest.mark.parametrize("body", [
    {}, {"mode": "broken"}, {"mode": "SLOW"}, {"mode": "slow", "delaySeconds": 0}, {"mode": "slow", "delaySeconds": 61},
    {"mode": "slow", "delaySeconds": "5"}, {"mode": "slow", "delaySeconds": True}, {"mode": "silent", "delaySeconds": 1},
    {"mode": "reject", "errorCode": "51"}, {"mode": "reject", "errorCode": 5105}, {"mode": "reject", "errorCode": "9999"},
    {"mode": "down", "errorCode": "5105"}, {"mode": "normal", "extra": 1},
])
def test_bad_fault_bodies_are_400_3100(hub: Hub, body: dict[str, Any]) -> None:
    r = put(hub, "/merchantbank/faults", body)
    assert r.status_code == 400, r.text
    assert error_code(r) == "3100"
    assert get(hub, "/merchantbank/faults").json()["mode"] == "normal"


def test_faults_of_an_unknown_dfsp_are_404_3002(hub: Hub) -> None:
    for r in (get(hub, "/nobank/faults"), put(hub, "/nobank/faults", {"mode": "down"})):
        assert r.status_code == 404 and error_code(r) == "3002", r.text
    r = httpx.put(f"{hub.urls['sim']}/merchantbank/faults", content=b"[1]", timeout=TIMEOUT)
    assert r.status_code == 400, r.text


# --------------------------------------------------------------------------- each mode, seen from a payer


def test_a_slow_payee_still_commits_after_the_delay(hub: Hub) -> None:
    fault(hub, "merchantbank", mode="slow", delaySeconds=1)
    started = time.monotonic()
    r = pay(hub)
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text
    assert elapsed >= 1.0
    # its lookup, quote and transfer each waited: the payee's callbacks come at least 1 s after each request
    messages = r.json()["messages"]
    sent = next(m for m in messages if m["method"] == "POST" and m["path"] == "/quotes")
    answered = next(m for m in messages if m["method"] == "PUT" and m["path"].startswith("/quotes/"))
    assert answered["elapsedMs"] - sent["elapsedMs"] >= 1000


def test_a_silent_payee_times_the_lookup_out(hub: Hub) -> None:
    fault(hub, "merchantbank", mode="silent")
    before = customer(hub)
    r = pay(hub, timeoutSeconds=2)
    assert r.status_code == 504, r.text
    assert (r.json()["state"], r.json()["step"]) == ("TIMED_OUT", "lookup")
    assert customer(hub)["balance"] == before["balance"] and customer(hub)["reserved"] == "0"


def test_a_transfer_to_a_silent_payee_expires_with_3303_and_releases_the_money(hub: Hub) -> None:
    transfer_id = to_the_quote(hub, timeout_s=5)
    fault(hub, "merchantbank", mode="silent")
    payer_position, payee_position = position(hub, "greenwallet"), position(hub, "merchantbank")
    before = customer(hub)
    r = put(hub, f"/{PAYER[0]}/send/{transfer_id}", {"acceptQuote": True})
    body = r.json()
    # the payer waited until the end of its time; the hub's 3303 comes at the transfer's expiration,
    # which is that same moment: the /send ends TIMED_OUT, or ABORTED if the 3303 came first
    assert (r.status_code, body["state"]) in ((504, "TIMED_OUT"), (502, "ABORTED")), r.text
    assert body["step"] == "transfer"
    if body["state"] == "ABORTED":
        assert body["error"]["errorCode"] == "3303"

    def expired_at(dfsp: str) -> bool:
        unmatched = get(hub, f"/{dfsp}/transfers/recent").json()["unmatchedCallbacks"]
        return any(c["path"] == f"/transfers/{transfer_id}/error" and c["source"] == "Hub" for c in unmatched)

    wait_for(lambda: expired_at("merchantbank"))  # the hub told the payee too (a callback: silent does not drop it)
    if body["state"] == "TIMED_OUT":
        wait_for(lambda: expired_at("greenwallet"))
    wait_for(lambda: customer(hub)["reserved"] == "0")
    assert customer(hub)["balance"] == before["balance"]
    recent = get(hub, f"/{PAYER[0]}/transfers/recent").json()["transfers"]
    assert [t["state"] for t in recent if t["transferId"] == transfer_id] == ["ABORTED"]
    wait_for(lambda: position(hub, "greenwallet") == payer_position)
    assert position(hub, "merchantbank") == payee_position


def test_a_rejecting_payee_refuses_the_lookup_with_3204(hub: Hub) -> None:
    fault(hub, "merchantbank", mode="reject")
    r = pay(hub)
    assert r.status_code == 502, r.text
    assert (r.json()["state"], r.json()["step"], r.json()["error"]["errorCode"]) == ("ABORTED", "lookup", "3204")


def test_a_rejecting_payee_refuses_the_quote_with_5101(hub: Hub) -> None:
    r = pay(hub, confirm=True)  # the lookup goes through; the payee rejects from its quote on
    assert r.json()["state"] == "WAITING_FOR_PARTY_ACCEPTANCE", r.text
    transfer_id = r.json()["transferId"]
    fault(hub, "merchantbank", mode="reject")
    r = put(hub, f"/{PAYER[0]}/send/{transfer_id}", {"acceptParty": True})
    assert r.status_code == 502, r.text
    assert (r.json()["state"], r.json()["step"]) == ("ABORTED", "quote")
    assert r.json()["error"]["errorCode"] == "5101"
    assert r.json()["error"]["errorDescription"].startswith("Payee rejected quote")


def test_a_rejecting_payee_refuses_the_transfer_with_its_error_code(hub: Hub) -> None:
    transfer_id = to_the_quote(hub)
    fault(hub, "merchantbank", mode="reject", errorCode="5104")
    payer_position = position(hub, "greenwallet")
    before = customer(hub)
    r = put(hub, f"/{PAYER[0]}/send/{transfer_id}", {"acceptQuote": True})
    assert r.status_code == 502, r.text
    assert (r.json()["state"], r.json()["step"], r.json()["error"]["errorCode"]) == ("ABORTED", "transfer", "5104")
    assert customer(hub)["balance"] == before["balance"] and customer(hub)["reserved"] == "0"
    wait_for(lambda: position(hub, "greenwallet") == payer_position)


def test_a_payee_that_is_down_answers_503_and_the_hub_gives_the_payer_1001(hub: Hub) -> None:
    fault(hub, "merchantbank", mode="down")
    r = httpx.get(f"{hub.urls['sim']}/merchantbank/parties/MSISDN/27730000001",
                  headers={"FSPIOP-Source": "greenwallet"}, timeout=TIMEOUT)
    assert r.status_code == 503 and error_code(r) == "2003", r.text
    assert get(hub, "/merchantbank/customers").status_code == 200  # the driving API still works
    r = pay(hub, timeoutSeconds=20)
    assert r.status_code == 502, r.text
    assert (r.json()["state"], r.json()["step"], r.json()["error"]["errorCode"]) == ("ABORTED", "lookup", "1001")


def test_a_quote_to_a_payee_that_went_down_gets_1001(hub: Hub) -> None:
    r = pay(hub, confirm=True, timeoutSeconds=20)
    transfer_id = r.json()["transferId"]
    fault(hub, "merchantbank", mode="down")
    r = put(hub, f"/{PAYER[0]}/send/{transfer_id}", {"acceptParty": True})
    assert r.status_code == 502, r.text
    assert (r.json()["state"], r.json()["step"], r.json()["error"]["errorCode"]) == ("ABORTED", "quote", "1001")


def test_a_faulty_payer_still_pays_and_back_to_normal_a_payment_commits(hub: Hub) -> None:
    fault(hub, "greenwallet", mode="silent")  # silent as payee only: its own payments out still work
    r = pay(hub)
    assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text
    fault(hub, "greenwallet", mode="normal")
    fault(hub, "merchantbank", mode="reject")
    assert pay(hub).status_code == 502
    fault(hub, "merchantbank", mode="normal")
    r = pay(hub)
    assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text


# --------------------------------------------------------------------------- the feed, with a toy switch


def test_wire_events_carry_the_fspiop_headers_and_fault_changes_are_published() -> None:
    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        sim = Sanic.get_app("miniloop_sim").ctx.sim
        subscription = sim.feed.subscribe()
        async with session.post(f"{url}/payerfsp/send", json={"from": "111", "to": {"id": "221"}, "amount": "10"}) as r:
            assert r.status == 200, await r.text()
        async with session.put(f"{url}/payeefsp/faults", json={"mode": "reject", "errorCode": "5105"}) as r:
            assert r.status == 200, await r.text()
        events: list[dict[str, Any]] = []
        while not any(e["kind"] == "fault" for e in events):
            event = await subscription.get(timeout=5)
            assert event is not None, events
            events.append(event)
        subscription.close()
        wires = [e for e in events if e["kind"] == "wire"]
        assert {e["direction"] for e in wires} == {"in", "out"}
        for e in wires:
            headers = e["headers"]
            assert all(name == name.lower() for name in headers), headers
            assert headers["fspiop-source"] == e["source"], e
            assert headers["content-type"].startswith("application/vnd.interoperability."), e
            assert headers["date"].endswith("GMT") and "traceparent" in headers, e
            if e["method"] in ("GET", "POST"):
                assert headers["accept"].startswith("application/vnd.interoperability."), e
            if e["method"] == "GET" and e["direction"] == "out":  # the payer's lookup: the hub finds the owner
                assert "fspiop-destination" not in headers
            else:
                assert headers["fspiop-destination"] == e["destination"], e
        assert len({e["headers"]["traceparent"].split("-")[1] for e in wires}) == 1  # one trace
        (changed,) = [e for e in events if e["kind"] == "fault"]
        assert {k: changed[k] for k in ("dfsp", "mode", "delaySeconds", "errorCode")} == {
            "dfsp": "payeefsp", "mode": "reject", "delaySeconds": None, "errorCode": "5105"}

    run_with_switch(test)
