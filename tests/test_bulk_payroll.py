"""Bulk payroll on the seeded demo hub: a business pays 1,000 employees across two DFSPs.

Real hub, real simulators, real HTTP on loopback: the employees are generated at greenwallet and
bluewallet (POST /<dfsp>/customers/generate, which registers them in the hub's oracle with POST
/participants), then merchantbank's City Taxi Co pays them with POST /merchantbank/bulkPay: 1,000
lookups, then one POST /bulkQuotes and one POST /bulkTransfers per payee DFSP through the hub.
Each test is independent (its own employees and payer), so xdist may spread them over workers.
The payee side's pure functions are tested in-process at the end.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from conftest import Hub, HubLauncher
from sim_api import position
from miniloop.fspiop import ilp
from miniloop.ledger.check import check_ledger
from mobile_sim import bulk
from mobile_sim.dfsp import Books, Customer, SimDfsp, secret_for
from mobile_sim.fspiop_client import Answer
from mobile_sim.pricing import FeeRule
from mobile_sim.sim import Incoming
from mobile_sim.tasks import Waiters

PAY_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


def sim_post(hub: Hub, path: str, body: dict[str, Any], timeout: float = PAY_TIMEOUT_S) -> httpx.Response:
    return httpx.post(f"{hub.urls['sim']}{path}", json=body, timeout=timeout)



def customers(hub: Hub, dfsp: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(f"{hub.urls['sim']}/{dfsp}/customers", timeout=10)
    assert r.status_code == 200, r.text
    return {c["id"]: c for c in r.json()}


def generate(hub: Hub, dfsp: str, count: int, prefix: str) -> list[str]:
    r = sim_post(hub, f"/{dfsp}/customers/generate", {"count": count, "prefix": prefix})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "REGISTERED" and body["created"] == count and body["registered"] == count, body
    width = max(4, len(str(count)))
    ids = [f"{prefix}{n:0{width}d}" for n in range(1, count + 1)]
    assert (body["first"], body["last"]) == (ids[0], ids[-1])
    return ids


def assert_ledger_ok(hub: Hub) -> None:
    report = check_ledger(hub.data_dir / "miniloop.db")
    assert report.ok, report.problems


def test_business_pays_1000_employees_across_two_dfsps(demo: Hub) -> None:
    started = time.monotonic()
    green_ids = generate(demo, "greenwallet", 500, "2771100")
    blue_ids = generate(demo, "bluewallet", 500, "2772100")
    generated = time.monotonic()
    before = {name: position(demo, name) for name in ("merchantbank", "greenwallet", "bluewallet")}
    payer_before = Decimal(customers(demo, "merchantbank")["CITYTAXI"]["balance"])
    assert payer_before == 5000  # the demo hub's City Taxi Co: 1,000 x 5 USD fits exactly

    payments = [{"to": f"MSISDN/{i}", "amount": "5"} for i in green_ids + blue_ids]
    r = sim_post(demo, "/merchantbank/bulkPay",
                 {"from": "CITYTAXI", "payments": payments, "reference": "Salaries March"})
    paid = time.monotonic()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "COMPLETED", body
    assert body["counts"] == {"payments": 1000, "paid": 1000, "failed": 0, "unknown": 0}
    assert body["total"] == {"requested": "5000", "paid": "5000"}
    assert body["failures"] == [] and body["failuresNotListed"] == 0
    assert body["lookups"]["parties"] == 1000 and body["lookups"]["found"] == 1000
    assert sorted(b["payeeFsp"] for b in body["bulks"]) == ["bluewallet", "greenwallet"]
    for one in body["bulks"]:
        assert (one["state"], one["payments"], one["paid"], one["failed"]) == ("COMPLETED", 500, 500, 0), one
    # the wire log: one line per bulk message, four per bulk
    lines = [(m["direction"], m["method"], m["path"].split("/")[1]) for m in body["messages"]]
    assert len(lines) == 8, body["messages"]
    for expected in (("out", "POST", "bulkQuotes"), ("in", "PUT", "bulkQuotes"),
                     ("out", "POST", "bulkTransfers"), ("in", "PUT", "bulkTransfers")):
        assert lines.count(expected) == 2, lines
    assert all(m["items"] == 500 for m in body["messages"] if "items" in m)
    assert {m["state"] for m in body["messages"] if "state" in m} == {"COMPLETED"}
    assert body["balances"] == {"customer": "CITYTAXI", "before": "5000", "after": "0", "reserved": "0"}

    # the employees got their pay (the wallets charge no fee), and the hub's positions moved
    for dfsp, ids in (("greenwallet", green_ids), ("bluewallet", blue_ids)):
        books = customers(demo, dfsp)
        assert {books[i]["balance"] for i in ids} == {"5"}, dfsp
        assert {books[i]["reserved"] for i in ids} == {"0"}
    assert customers(demo, "merchantbank")["CITYTAXI"]["balance"] == "0"
    for dfsp in ("merchantbank", "greenwallet", "bluewallet"):  # every bulk callback was expected
        recent = httpx.get(f"{demo.urls['sim']}/{dfsp}/transfers/recent", timeout=10).json()
        assert not [c for c in recent["unmatchedCallbacks"] if "/bulk" in c["path"]], recent["unmatchedCallbacks"]
    assert position(demo, "merchantbank") == before["merchantbank"] + 5000
    assert position(demo, "greenwallet") == before["greenwallet"] - 2500
    assert position(demo, "bluewallet") == before["bluewallet"] - 2500
    assert_ledger_ok(demo)
    print(f"\ngenerate 2 x 500: {generated - started:.2f} s; bulkPay 1,000: {paid - generated:.2f} s "
          f"(lookups {body['lookups']['elapsedMs']} ms, whole flow {body['elapsedMs']} ms)")


def test_payroll_with_unknown_payees_is_partial(demo: Hub) -> None:
    """Payees nobody serves fail at the lookup and are listed; the others are paid."""
    known = generate(demo, "greenwallet", 20, "2771200")
    unknown = ["27799990001", "27799990002", "27799990003"]
    payer_before = Decimal(customers(demo, "merchantbank")["27730000002"]["balance"])
    payments = [{"to": f"MSISDN/{i}", "amount": "10"} for i in known[:10] + unknown + known[10:]]
    r = sim_post(demo, "/merchantbank/bulkPay", {"from": "27730000002", "payments": payments})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "PARTIAL", body
    assert body["counts"] == {"payments": 23, "paid": 20, "failed": 3, "unknown": 0}
    assert body["total"] == {"requested": "230", "paid": "200"}
    assert sorted(f["to"] for f in body["failures"]) == [f"MSISDN/{i}" for i in unknown]
    for failure in body["failures"]:
        assert failure["step"] == "lookup" and failure["errorCode"] == "3200", failure
        assert failure["amount"] == "10" and "errorDescription" in failure
    assert [(b["payeeFsp"], b["state"], b["paid"]) for b in body["bulks"]] == [("greenwallet", "COMPLETED", 20)]
    assert Decimal(body["balances"]["after"]) == payer_before - 200
    books = customers(demo, "greenwallet")
    assert {books[i]["balance"] for i in known} == {"10"}
    assert_ledger_ok(demo)


def test_a_transfer_over_the_payer_dfsps_net_debit_cap_fails_alone(hubs: HubLauncher) -> None:
    """The hub prepares each transfer of a bulk on its own: with merchantbank's NDC of 100,000, the
    third 45,000 payment fails with 4200 and only its hold on the payer is released. A fresh hub,
    so that this does not use up the NDC the other tests need."""
    hub = hubs.start()
    r = sim_post(hub, "/merchantbank/customers/generate",
                 {"count": 1, "prefix": "2773900", "namePrefix": "Big Corp", "balance": "150000"})
    assert r.status_code == 200, r.text
    employees = generate(hub, "greenwallet", 3, "2771900")
    r = sim_post(hub, "/merchantbank/bulkPay", {"from": "27739000001", "payments": [
        {"to": f"MSISDN/{i}", "amount": "45000"} for i in employees]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["state"], body["counts"]["paid"], body["counts"]["failed"]) == ("PARTIAL", 2, 1), body
    (failure,) = body["failures"]
    assert (failure["to"], failure["step"], failure["errorCode"]) == (f"MSISDN/{employees[2]}", "transfer", "4200")
    assert [(b["state"], b["paid"], b["failed"]) for b in body["bulks"]] == [("PARTIAL", 2, 1)]
    assert body["balances"] == {"customer": "27739000001", "before": "150000", "after": "60000", "reserved": "0"}
    books = customers(hub, "greenwallet")
    assert [books[i]["balance"] for i in employees] == ["45000", "45000", "0"]
    assert position(hub, "merchantbank") == 90000 and position(hub, "greenwallet") == -90000
    assert_ledger_ok(hub)


def test_payroll_larger_than_the_balance_is_refused_before_anything_is_sent(demo: Hub) -> None:
    grocery = customers(demo, "merchantbank")["27730000001"]
    half = Decimal(grocery["balance"]) / 2
    recent_before = httpx.get(f"{demo.urls['sim']}/merchantbank/transfers/recent", timeout=10).json()
    payments = [{"to": "MSISDN/27710000001", "amount": str(half)}, {"to": "MSISDN/27720000001", "amount": str(half + 1)}]
    r = sim_post(demo, "/merchantbank/bulkPay", {"from": "27730000001", "payments": payments})
    assert r.status_code == 400, r.text
    info = r.json()["errorInformation"]
    assert info["errorCode"] == "4000", info
    assert "insufficient balance" in info["errorDescription"] and "27730000001" in info["errorDescription"]
    assert customers(demo, "merchantbank")["27730000001"] == grocery
    assert httpx.get(f"{demo.urls['sim']}/merchantbank/transfers/recent", timeout=10).json() == recent_before


@pytest.mark.parametrize(("body", "words"), [
    ({"from": "CITYTAXI", "payments": []}, "payments must be a list of 1 to 5000"),
    ({"from": "CITYTAXI", "payments": [{"to": "MSISDN/1", "amount": "1"}] * 5001}, "1 to 5000"),
    ({"from": "CITYTAXI", "payments": [{"to": "MSISDN/1", "amount": 1.5}]}, "never a float"),
    ({"from": "CITYTAXI", "payments": [{"to": "27710000001", "amount": "1"}]}, "TYPE/ID"),
    ({"from": "CITYTAXI", "payments": [{"to": "MSISDN/1", "amount": "0.001"}]}, "at most 2 decimals"),
    ({"from": "NOBODY", "payments": [{"to": "MSISDN/1", "amount": "1"}]}, "not a customer of merchantbank"),
    ({"from": "CITYTAXI", "payments": [{"to": "MSISDN/1", "amount": "1"}], "currency": "EUR"}, "USD only"),
    ({"from": "CITYTAXI", "payments": [{"to": "MSISDN/1", "amount": "1"}], "bonus": 1}, "bonus is not a field"),
])
def test_bad_bulk_pay_bodies_are_refused(demo: Hub, body: dict[str, Any], words: str) -> None:
    r = sim_post(demo, "/merchantbank/bulkPay", body, timeout=10)
    assert r.status_code == 400, r.text
    info = r.json()["errorInformation"]
    assert info["errorCode"] == "3100" and words in info["errorDescription"], info


def test_generate_refuses_bad_bodies_and_taken_numbers(demo: Hub) -> None:
    for body, words in (({"count": 0, "prefix": "27713"}, "count must be"),
                        ({"count": 5001, "prefix": "27713"}, "count must be"),
                        ({"count": 3, "prefix": "0771"}, "prefix must be digits"),
                        ({"count": 3, "prefix": "1234567890123"}, "at most 11"),
                        ({"count": 3, "prefix": "27713", "namePrefix": "<b>"}, "namePrefix"),
                        ({"count": 1, "prefix": "2771000"}, "27710000001 is already a customer")):
        r = sim_post(demo, "/greenwallet/customers/generate", body, timeout=10)
        assert r.status_code == 400, (body, r.text)
        assert words in r.json()["errorInformation"]["errorDescription"], (body, r.text)
    r = sim_post(demo, "/greenwallet/customers/generate", {"count": 2, "prefix": "2771300", "namePrefix": "Driver",
                                                           "balance": "7.5"}, timeout=10)
    assert r.status_code == 200, r.text
    assert [c for c in customers(demo, "greenwallet").values() if c["id"].startswith("2771300")] == [
        {"id": "27713000001", "idType": "MSISDN", "name": "Driver 0001", "balance": "7.5", "reserved": "0"},
        {"id": "27713000002", "idType": "MSISDN", "name": "Driver 0002", "balance": "7.5", "reserved": "0"},
    ]
    lines = [(m["direction"], m["method"], m["path"]) for m in r.json()["messages"]]
    assert lines[0] == ("out", "POST", "/participants") and lines[1][:2] == ("in", "PUT"), lines


# --- the payee side, in-process ------------------------------------------------------------------


def _payee(name: str = "bluewallet") -> SimDfsp:
    customer = Customer("27720000001", "MSISDN", "Kwame Mensah", 0)
    return SimDfsp(name, "USD", FeeRule(), Books([customer]), secret_for(name))


def _quote(quote_id: str, party_id: str, amount: str = "5") -> dict[str, Any]:
    return {"quoteId": quote_id, "transactionId": f"tx-{quote_id}", "amountType": "SEND",
            "payee": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": party_id, "fspId": "bluewallet"}},
            "amount": {"amount": amount, "currency": "USD"},
            "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "BUSINESS"}}


PAYER = {"partyIdInfo": {"partyIdType": "BUSINESS", "partyIdentifier": "CITYTAXI", "fspId": "merchantbank"}}


def test_bulk_quote_prices_each_quote_and_fails_unknown_payees_alone() -> None:
    dfsp = _payee()
    request = {"bulkQuoteId": "b1", "payer": PAYER,
               "individualQuotes": [_quote("q1", "27720000001"), _quote("q2", "27729999999")]}
    answer = bulk.bulk_quote_answer(dfsp, request)
    good, bad = answer["individualQuoteResults"]
    assert good["quoteId"] == "q1" and good["transferAmount"] == {"amount": "5", "currency": "USD"}
    assert good["payeeReceiveAmount"] == {"amount": "5", "currency": "USD"} and "expiration" not in good
    assert ilp.transaction_from_packet(good["ilpPacket"])["expiration"] == answer["expiration"]
    assert bad["quoteId"] == "q2" and bad["errorInformation"]["errorCode"] == "3204"
    assert "ilpPacket" not in bad
    # a resend gets the same terms again
    assert bulk.bulk_quote_answer(dfsp, request) == answer


def test_bulk_transfer_credits_good_transfers_and_refuses_bad_ones() -> None:
    dfsp = _payee()
    quoted = bulk.bulk_quote_answer(dfsp, {"bulkQuoteId": "b1", "payer": PAYER,
                                           "individualQuotes": [_quote("q1", "27720000001", "7"),
                                                                _quote("q2", "27720000001", "3")]})
    r1, r2 = quoted["individualQuoteResults"]
    transfers = {"bulkTransferId": "t", "bulkQuoteId": "b1", "payerFsp": "merchantbank", "payeeFsp": "bluewallet",
                 "individualTransfers": [
                     {"transferId": "tx-q1", "transferAmount": r1["transferAmount"], "ilpPacket": r1["ilpPacket"],
                      "condition": r1["condition"]},
                     {"transferId": "tx-q2", "transferAmount": r2["transferAmount"], "ilpPacket": r2["ilpPacket"],
                      "condition": r1["condition"]},  # not the condition of its packet
                 ]}
    results, credited = bulk.transfer_results(dfsp, transfers)
    assert credited == ["tx-q1"]
    assert results[0] == {"transferId": "tx-q1", "fulfilment": ilp.fulfilment_for(dfsp.secret, r1["ilpPacket"])}
    assert results[1]["transferId"] == "tx-q2" and results[1]["errorInformation"]["errorCode"] == "5105"
    assert dfsp.books.customer("MSISDN", "27720000001").balance == 70000  # 7 USD in units


def _incoming(dfsp: SimDfsp, bulk_id: str, body: dict[str, Any], is_error: bool = False) -> Incoming:
    path = f"/bulkTransfers/{bulk_id}" + ("/error" if is_error else "")
    return Incoming(dfsp=dfsp, method="PUT", path=path, resource="bulkTransfers", ids=(bulk_id,), is_error=is_error,
                    source="Hub", destination=dfsp.name, traceparent=None, body=body)


def test_the_hubs_final_put_settles_both_sides_of_the_books() -> None:
    """Payee: a credited transfer the hub reports failed is taken back. Payer: fulfilled ones are
    debited, the rest released, and an /error releases everything."""
    payee_dfsp = _payee()
    quoted = bulk.bulk_quote_answer(payee_dfsp, {"bulkQuoteId": "b1", "payer": PAYER, "individualQuotes": [
        _quote("q1", "27720000001", "7"), _quote("q2", "27720000001", "3")]})
    r1, r2 = quoted["individualQuoteResults"]
    results, credited = bulk.transfer_results(payee_dfsp, {
        "bulkTransferId": "t", "bulkQuoteId": "b1", "payerFsp": "merchantbank", "payeeFsp": "bluewallet",
        "individualTransfers": [{"transferId": f"tx-{r['quoteId']}", "transferAmount": r["transferAmount"],
                                 "ilpPacket": r["ilpPacket"], "condition": r["condition"]} for r in (r1, r2)]})
    assert credited == ["tx-q1", "tx-q2"]
    employee = payee_dfsp.books.customer("MSISDN", "27720000001")
    assert employee.balance == 100000
    sim: Any = SimpleNamespace(bulk=bulk.BulkState())
    sim.bulk.remember(bulk.BulkRecord("bluewallet", "in", "t", credited))
    final = {"bulkTransferState": "COMPLETED", "individualTransferResults": [
        results[0], {"transferId": "tx-q2", "errorInformation": {"errorCode": "3303", "errorDescription": "x"}}]}
    assert asyncio.run(bulk.settle_books(sim, _incoming(payee_dfsp, "t", final))) is True
    assert employee.balance == 70000  # the 3 USD of the expired transfer were taken back
    asyncio.run(bulk.settle_books(sim, _incoming(payee_dfsp, "t", final)))  # a resend moves nothing
    assert employee.balance == 70000

    payer_dfsp = SimDfsp("merchantbank", "USD", FeeRule(), Books([Customer("CITYTAXI", "BUSINESS", "City Taxi Co",
                                                                         200000)]), secret_for("merchantbank"))
    business = payer_dfsp.books.customer("BUSINESS", "CITYTAXI")
    for transfer_id, units in (("tx-q1", 70000), ("tx-q2", 30000)):
        payer_dfsp.books.reserve(transfer_id, business, units, "bluewallet", "USD")
    sim.bulk.remember(bulk.BulkRecord("merchantbank", "out", "t", ["tx-q1", "tx-q2"]))
    assert asyncio.run(bulk.settle_books(sim, _incoming(payer_dfsp, "t", {"bulkTransferState": "PROCESSING"}))) is False
    assert business.reserved == 100000  # not final yet: nothing moves
    asyncio.run(bulk.settle_books(sim, _incoming(payer_dfsp, "t", final)))
    assert (business.balance, business.reserved) == (130000, 0)

    for transfer_id in ("tx-a", "tx-b"):
        payer_dfsp.books.reserve(transfer_id, business, 10000, "bluewallet", "USD")
    sim.bulk.remember(bulk.BulkRecord("merchantbank", "out", "u", ["tx-a", "tx-b"]))
    error = {"errorInformation": {"errorCode": "5105", "errorDescription": "Payee FSP rejected transaction"}}
    asyncio.run(bulk.settle_books(sim, _incoming(payer_dfsp, "u", error, is_error=True)))
    assert (business.balance, business.reserved) == (130000, 0)


def test_a_payroll_whose_lookups_get_no_answer_times_out_and_sends_nothing_more() -> None:
    """A switch that accepts every request and never calls back: the lookups end at the deadline,
    no bulk is sent, nothing is held, and the answer is TIMED_OUT (504)."""
    sent: list[tuple[str, str]] = []

    async def send(dfsp: SimDfsp, method: str, path: str, body: Any, *, destination: Any, traceparent: Any) -> Answer:
        sent.append((method, path))
        return Answer(202)

    async def run() -> tuple[int, dict[str, Any]]:
        sim: Any = SimpleNamespace(waiters=Waiters(), send=send, bulk=bulk.BulkState())
        payer = SimDfsp("merchantbank", "USD", FeeRule(), Books([Customer("CITYTAXI", "BUSINESS", "City Taxi Co",
                                                                          10_000_000)]), secret_for("merchantbank"))
        return await bulk.pay(sim, payer, {"from": "CITYTAXI", "timeoutSeconds": 1, "payments": [
            {"to": "MSISDN/27711000001", "amount": "5"}, {"to": "MSISDN/27711000002", "amount": 5}]})

    status, body = asyncio.run(run())
    assert (status, body["state"]) == (504, "TIMED_OUT"), body
    assert sent == [("GET", "/parties/MSISDN/27711000001"), ("GET", "/parties/MSISDN/27711000002")]
    assert body["bulks"] == [] and body["messages"] == []
    assert [(f["to"], f["step"], f.get("errorCode"), f["errorDescription"]) for f in body["failures"]] == [
        (f"MSISDN/2771100000{n}", "lookup", None, "no answer before the deadline") for n in (1, 2)]
    assert body["balances"] == {"customer": "CITYTAXI", "before": "1000", "after": "1000", "reserved": "0"}
