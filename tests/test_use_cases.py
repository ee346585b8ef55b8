"""Every use case of FSPIOP's table (FSPIOP.md §6) through the simulators' driving API, on the demo hub.

Real hub, real simulators, real HTTP on loopback: payer-initiated ones through POST /<dfsp>/send with
a "useCase" (P2P, merchant payment, cash-in, cash-out, refund), payee-initiated ones through POST
/<dfsp>/requestToPay (merchant request, agent and ATM cash-out, with the OTP on the payer's phone),
and merchant QR codes (POST /<dfsp>/qr, POST /<dfsp>/payQr). Each test measures the balances and
positions it moves before and after, so the tests of this module share one hub.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from conftest import Hub, HubLauncher
from sim_api import post, get, balance, position
from mobile_sim.qr import read_payload

D = Decimal
TIMEOUT = 40


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()






def messages_of(result: dict[str, Any], method: str, path_start: str, direction: str | None = None) -> list[dict]:
    return [m for m in result["messages"] if m["method"] == method and m["path"].startswith(path_start)
            and (direction is None or m["direction"] == direction)]


def phone(hub: Hub, dfsp: str, customer: str) -> list[dict[str, Any]]:
    r = get(hub, f"/{dfsp}/customers/{customer}/messages")
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def settings(hub: Hub, dfsp: str, customer: str, answer: str) -> None:
    r = httpx.put(f"{hub.urls['sim']}/{dfsp}/customers/{customer}/settings", json={"requestToPay": answer},
                  timeout=TIMEOUT)
    assert r.status_code == 200 and r.json()["settings"] == {"requestToPay": answer}, r.text


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


# --------------------------------------------------------------------------- payer-initiated


@pytest.mark.parametrize("use_case, payer, payee, to, amount, transaction_type", [
    (None, ("greenwallet", "27710000002"), ("bluewallet", "27720000001"), {"id": "27720000001"}, "5",
     ("TRANSFER", "PAYER", "CONSUMER")),
    ("merchant-pay", ("greenwallet", "27710000001"), ("merchantbank", "27730000002"), {"id": "27730000002"}, "10",
     ("PAYMENT", "PAYER", "CONSUMER")),
    ("cash-in", ("greenwallet", "GREENKIOSK"), ("bluewallet", "27720000001"), {"id": "27720000001"}, "50",
     ("DEPOSIT", "PAYER", "AGENT")),
    ("cash-out", ("bluewallet", "27720000001"), ("greenwallet", "GREENKIOSK"), {"idType": "BUSINESS", "id": "GREENKIOSK"},
     "40", ("WITHDRAWAL", "PAYER", "CONSUMER")),
])
def test_payer_initiated_use_cases_commit_with_their_transaction_type(
        demo: Hub, use_case: str | None, payer: tuple[str, str], payee: tuple[str, str], to: dict[str, str],
        amount: str, transaction_type: tuple[str, str, str]) -> None:
    payer_before, payee_before = balance(demo, *payer), balance(demo, *payee)
    positions_before = position(demo, payer[0]), position(demo, payee[0])
    order = {"from": payer[1], "to": to, "amount": amount}
    if use_case:
        order["useCase"] = use_case
    r = post(demo, f"/{payer[0]}/send", order)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["state"] == "COMMITTED" and result["useCase"] == (use_case or "p2p")
    expected = dict(zip(("scenario", "initiator", "initiatorType"), transaction_type, strict=True))
    (quote,) = messages_of(result, "POST", "/quotes", "out")
    assert quote["body"]["transactionType"] == expected
    received = D(result["quote"]["payeeReceiveAmount"]["amount"])
    assert balance(demo, *payer) == payer_before - D(amount)
    assert balance(demo, *payee) == payee_before + received
    assert position(demo, payer[0]) == positions_before[0] + D(amount)
    assert position(demo, payee[0]) == positions_before[1] - D(amount)
    texts = phone(demo, *payer)
    assert texts[0]["kind"] == "paid" and texts[0]["transferId"] == result["transferId"]
    assert phone(demo, *payee)[0]["kind"] == "received"


def test_cash_out_gives_a_code_through_get_transactions(demo: Hub) -> None:
    """A customer-initiated cash-out, then GET /transactions/{ID} to the agent's DFSP: COMPLETED and
    the code the customer shows to collect the cash."""
    r = post(demo, "/bluewallet/send", {"from": "27720000002", "to": {"idType": "BUSINESS", "id": "GREENKIOSK"},
                                        "amount": "15", "useCase": "cash-out"})
    assert r.status_code == 200, r.text
    transaction_id = r.json()["transactionId"]
    r = get(demo, f"/bluewallet/transactionStatus/{transaction_id}")
    assert r.status_code == 200, r.text
    status = r.json()
    assert status["transactionState"] == "COMPLETED" and status["payeeFsp"] == "greenwallet"
    assert len(status["code"]) == 8 and status["completedTimestamp"]
    assert [(m["direction"], m["method"], m["path"]) for m in status["messages"]] == [
        ("out", "GET", f"/transactions/{transaction_id}"), ("in", "PUT", f"/transactions/{transaction_id}")]
    # a payment the DFSP never made is refused at once
    r = get(demo, f"/bluewallet/transactionStatus/{uuid.uuid4()}")
    assert r.status_code == 400 and r.json()["errorInformation"]["errorCode"] == "3207"


def test_a_payee_dfsp_answers_an_unknown_transaction_with_3207(demo: Hub) -> None:
    """GET /transactions/{ID} for a transaction the payee's DFSP was never paid in (sent straight to the
    sim as the hub would forward it): PUT /transactions/{ID}/error 3207, routed back to the asker."""
    unknown = str(uuid.uuid4())
    r = httpx.get(f"{demo.urls['sim']}/merchantbank/transactions/{unknown}", timeout=TIMEOUT,
                  headers={"FSPIOP-Source": "greenwallet", "FSPIOP-Destination": "merchantbank",
                           "Accept": "application/vnd.interoperability.transactions+json;version=1",
                           "Date": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert r.status_code == 202

    def arrived() -> bool:
        unmatched = get(demo, "/greenwallet/transfers/recent").json()["unmatchedCallbacks"]
        return any(u["path"] == f"/transactions/{unknown}/error" and u["source"] == "merchantbank" for u in unmatched)

    wait_for(arrived)


def test_a_refund_of_a_merchant_payment_pays_the_customer_back(demo: Hub) -> None:
    r = post(demo, "/greenwallet/send", {"from": "27710000002", "to": {"id": "27730000001"}, "amount": "20",
                                         "useCase": "merchant-pay"})
    assert r.status_code == 200, r.text
    original = r.json()["transactionId"]
    customer_before, merchant_before = balance(demo, "greenwallet", "27710000002"), \
        balance(demo, "merchantbank", "27730000001")
    r = post(demo, "/merchantbank/send", {"from": "27730000001", "useCase": "refund", "refundOf": original,
                                          "reason": "returned goods", "amount": "20"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["state"] == "COMMITTED"
    assert result["payee"]["partyIdInfo"] == {"partyIdType": "MSISDN", "partyIdentifier": "27710000002",
                                              "fspId": "greenwallet"}  # "to" left out: the original payer
    (quote,) = messages_of(result, "POST", "/quotes", "out")
    assert quote["body"]["transactionType"] == {
        "scenario": "REFUND", "initiator": "PAYER", "initiatorType": "BUSINESS",
        "refundInfo": {"originalTransactionId": original, "refundReason": "returned goods"}}
    assert balance(demo, "greenwallet", "27710000002") == customer_before + 20
    assert balance(demo, "merchantbank", "27730000001") == merchant_before - 20


@pytest.mark.parametrize("changes, code, words", [
    ({"refundOf": "11111111-1111-4111-8111-111111111111"}, "3207", "was never paid"),
    ({"refundOf": "not-a-uuid"}, "3100", "refundOf"),
    ({"refundOf": None}, "3100", "refundOf"),
    ({"from": "27730000002"}, "3100", "not 27730000002"),
    ({"amount": "1000"}, "3100", "more than"),
])
def test_a_refund_of_something_the_merchant_was_not_paid_is_refused(
        demo: Hub, changes: dict[str, Any], code: str, words: str) -> None:
    r = post(demo, "/greenwallet/send", {"from": "27710000003", "to": {"id": "27730000001"}, "amount": "3",
                                         "useCase": "merchant-pay"})
    assert r.status_code == 200, r.text
    order = {"from": "27730000001", "useCase": "refund", "refundOf": r.json()["transactionId"], "amount": "3"}
    order.update(changes)
    order = {k: v for k, v in order.items() if v is not None}
    r = post(demo, "/merchantbank/send", order)
    assert r.status_code == 400, r.text
    info = r.json()["errorInformation"]
    assert info["errorCode"] == code and words in info["errorDescription"], info


def test_use_case_fields_are_checked(demo: Hub) -> None:
    r = post(demo, "/greenwallet/send", {"from": "27710000001", "to": {"id": "27730000001"}, "amount": "1",
                                         "useCase": "gift"})
    assert r.status_code == 400 and "useCase must be one of" in r.text
    r = post(demo, "/greenwallet/send", {"from": "27710000001", "to": {"id": "27730000001"}, "amount": "1",
                                         "refundOf": str(uuid.uuid4())})
    assert r.status_code == 400 and "refund" in r.text


# --------------------------------------------------------------------------- payee-initiated


def test_merchant_request_to_pay_with_the_right_otp_commits(demo: Hub) -> None:
    """Corner Grocery asks Kwame (bluewallet) for 30: the payer's DFSP quotes RECEIVE (merchantbank's 1 %
    fee comes on top: 30.30), texts Kwame an OTP, the POS types it in, the transfer commits."""
    payer_before, merchant_before = balance(demo, "bluewallet", "27720000001"), \
        balance(demo, "merchantbank", "27730000001")
    blue, merchant = position(demo, "bluewallet"), position(demo, "merchantbank")
    r = post(demo, "/merchantbank/requestToPay", {"from": "27730000001", "payer": "MSISDN/27720000001",
                                                  "amount": "30", "useCase": "merchant-request", "note": "groceries"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["state"] == "COMMITTED", result
    request_id = result["transactionRequestId"]
    expected = {"scenario": "PAYMENT", "initiator": "PAYEE", "initiatorType": "BUSINESS"}
    assert result["transactionType"] == expected
    steps = [(m["direction"], m["method"], m["path"].split("?")[0]) for m in result["messages"]]
    assert steps == [
        ("out", "GET", "/parties/MSISDN/27720000001"), ("in", "PUT", "/parties/MSISDN/27720000001"),
        ("out", "POST", "/transactionRequests"), ("in", "PUT", f"/transactionRequests/{request_id}"),
        ("in", "POST", "/quotes"), ("out", "PUT", f"/quotes/{result['quoteId']}"),
        ("in", "GET", f"/authorizations/{request_id}"), ("out", "PUT", f"/authorizations/{request_id}"),
        ("in", "POST", "/transfers"), ("out", "PUT", f"/transfers/{result['transferId']}"),
    ], steps
    (request,) = messages_of(result, "POST", "/transactionRequests")
    assert request["body"]["transactionType"] == expected and request["body"]["authenticationType"] == "OTP"
    assert request["body"]["payer"] == {"partyIdType": "MSISDN", "partyIdentifier": "27720000001",
                                        "fspId": "bluewallet"}
    (received,) = messages_of(result, "PUT", f"/transactionRequests/{request_id}")
    assert received["body"] == {"transactionRequestState": "RECEIVED"}
    (quote,) = messages_of(result, "POST", "/quotes")
    assert quote["body"]["transactionRequestId"] == request_id and quote["body"]["transactionType"] == expected
    assert quote["body"]["amountType"] == "RECEIVE"
    (ask,) = messages_of(result, "GET", "/authorizations")
    assert ask["path"] == f"/authorizations/{request_id}?authenticationType=OTP&retriesLeft=3&amount=30.3&currency=USD"
    texts = phone(demo, "bluewallet", "27720000001")
    otp = next(t for t in texts if t["kind"] == "otp" and t["transactionRequestId"] == request_id)
    assert len(otp["otp"]) == 6 and otp["otp"] in otp["text"]
    (entered,) = messages_of(result, "PUT", f"/authorizations/{request_id}")
    assert entered["body"] == {"authenticationInfo": {"authentication": "OTP", "authenticationValue": otp["otp"]},
                               "responseType": "ENTERED"}
    assert result["quote"]["transferAmount"] == {"amount": "30.3", "currency": "USD"}
    assert result["quote"]["payeeReceiveAmount"] == {"amount": "30", "currency": "USD"}
    assert result["transactionId"] == result["transferId"]
    assert result["balances"]["customer"] == "27730000001"
    assert balance(demo, "bluewallet", "27720000001") == payer_before - D("30.3")
    assert balance(demo, "merchantbank", "27730000001") == merchant_before + 30
    assert position(demo, "bluewallet") == blue + D("30.3")
    assert position(demo, "merchantbank") == merchant - D("30.3")
    kinds = [t["kind"] for t in phone(demo, "bluewallet", "27720000001")[:3]]
    assert kinds == ["paid", "otp", "request"]
    requests = get(demo, "/bluewallet/transfers/recent").json()["transactionRequests"]
    mine = next(q for q in requests if q["transactionRequestId"] == request_id)
    assert mine["state"] == "COMPLETED" and mine["otpTries"] == 1


def test_the_payer_dfsp_answers_get_transaction_requests(demo: Hub) -> None:
    """GET /transactionRequests/{ID} from the payee's DFSP (sent straight to the sim, as the hub forwards
    it): the payer's DFSP answers with the state and the transactionId; an unknown id is 3206."""
    r = post(demo, "/merchantbank/requestToPay", {"from": "27730000002", "payer": "MSISDN/27720000001",
                                                  "amount": "1", "authentication": "none"})
    assert r.status_code == 200, r.text
    result = r.json()
    unknown = str(uuid.uuid4())
    for request_id in (result["transactionRequestId"], unknown):
        sent = httpx.get(f"{demo.urls['sim']}/bluewallet/transactionRequests/{request_id}", timeout=TIMEOUT,
                         headers={"FSPIOP-Source": "merchantbank", "FSPIOP-Destination": "bluewallet",
                                  "Accept": "application/vnd.interoperability.transactionRequests+json;version=1",
                                  "Date": "Mon, 01 Jan 2024 00:00:00 GMT"})
        assert sent.status_code == 202

    def arrived() -> set[str]:
        unmatched = get(demo, "/merchantbank/transfers/recent").json()["unmatchedCallbacks"]
        return {u["path"] for u in unmatched if u["path"].startswith("/transactionRequests/")}

    wait_for(lambda: len(arrived()) == 2)
    assert arrived() == {f"/transactionRequests/{result['transactionRequestId']}",
                         f"/transactionRequests/{unknown}/error"}


def test_a_wrong_otp_until_no_retries_are_left_is_rejected_and_moves_no_money(demo: Hub) -> None:
    payer_before, merchant_before = balance(demo, "bluewallet", "27720000001"), \
        balance(demo, "merchantbank", "27730000001")
    r = post(demo, "/merchantbank/requestToPay", {"from": "27730000001", "payer": "MSISDN/27720000001",
                                                  "amount": "5", "otp": "12345"})  # 5 digits: never the OTP
    assert r.status_code == 502, r.text
    result = r.json()
    assert result["state"] == "REJECTED" and result["step"] == "authorization"
    assert result["error"]["errorCode"] == "4101" and "wrong OTP" in result["error"]["errorDescription"]
    assert [a["retriesLeft"] for a in result["authorizations"]] == ["3", "2", "1"]
    assert [a["entered"] for a in result["authorizations"]] == ["12345"] * 3
    rejected = messages_of(result, "PUT", f"/transactionRequests/{result['transactionRequestId']}")[-1]
    assert rejected["body"]["transactionRequestState"] == "REJECTED"
    assert result["transferId"] is None and not messages_of(result, "POST", "/transfers")
    assert balance(demo, "bluewallet", "27720000001") == payer_before
    assert balance(demo, "merchantbank", "27730000001") == merchant_before


def test_a_customer_who_declines_rejects_the_request(demo: Hub) -> None:
    settings(demo, "bluewallet", "27720000003", "decline")
    try:
        before = balance(demo, "bluewallet", "27720000003")
        r = post(demo, "/merchantbank/requestToPay", {"from": "27730000002", "payer": "MSISDN/27720000003",
                                                      "amount": "12"})
        assert r.status_code == 502, r.text
        result = r.json()
        assert result["state"] == "REJECTED" and "declined" in result["error"]["errorDescription"]
        assert not messages_of(result, "POST", "/quotes")
        assert balance(demo, "bluewallet", "27720000003") == before
        assert [t["kind"] for t in phone(demo, "bluewallet", "27720000003")[:2]] == ["declined", "request"]
    finally:
        settings(demo, "bluewallet", "27720000003", "approve")


def test_a_cancel_at_the_pos_rejects_the_request(demo: Hub) -> None:
    r = post(demo, "/merchantbank/requestToPay", {"from": "27730000002", "payer": "MSISDN/27710000001",
                                                  "amount": "2", "otp": "cancel"})
    assert r.status_code == 502, r.text
    result = r.json()
    assert result["state"] == "REJECTED" and result["authorizations"][0]["responseType"] == "REJECTED"


def test_a_request_the_payer_never_answers_times_out_cleanly(demo: Hub) -> None:
    settings(demo, "bluewallet", "27720000002", "ignore")
    try:
        before = balance(demo, "bluewallet", "27720000002")
        started = time.monotonic()
        r = post(demo, "/merchantbank/requestToPay", {"from": "27730000001", "payer": "MSISDN/27720000002",
                                                      "amount": "9", "timeoutSeconds": 2})
        assert r.status_code == 504, r.text
        assert time.monotonic() - started < 10
        result = r.json()
        assert result["state"] == "TIMED_OUT" and result["transactionRequestState"] == "RECEIVED"
        assert balance(demo, "bluewallet", "27720000002") == before

        def expired() -> bool:
            requests = get(demo, "/bluewallet/transfers/recent").json()["transactionRequests"]
            mine = [q for q in requests if q["transactionRequestId"] == result["transactionRequestId"]]
            return bool(mine) and mine[0]["state"] == "EXPIRED"

        wait_for(expired)
    finally:
        settings(demo, "bluewallet", "27720000002", "approve")


@pytest.mark.parametrize("payee, payer, use_case, expected", [
    (("greenwallet", "GREENKIOSK"), ("bluewallet", "27720000001"), "agent-cash-out", ("WITHDRAWAL", "PAYEE", "AGENT")),
    (("merchantbank", "MBATM001"), ("greenwallet", "27710000001"), "atm-cash-out", ("WITHDRAWAL", "PAYEE", "DEVICE")),
])
def test_cash_out_at_an_agent_or_atm(demo: Hub, payee: tuple[str, str], payer: tuple[str, str], use_case: str,
                                     expected: tuple[str, str, str]) -> None:
    payer_before, payee_before = balance(demo, *payer), balance(demo, *payee)
    r = post(demo, f"/{payee[0]}/requestToPay", {"from": payee[1], "payer": f"MSISDN/{payer[1]}", "amount": "100",
                                                 "useCase": use_case})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["state"] == "COMMITTED"
    (quote,) = messages_of(result, "POST", "/quotes")
    assert quote["body"]["transactionType"] == dict(zip(("scenario", "initiator", "initiatorType"), expected,
                                                        strict=True))
    paid = D(result["quote"]["transferAmount"]["amount"])
    assert balance(demo, *payer) == payer_before - paid
    assert balance(demo, *payee) == payee_before + 100
    assert len(result["code"]) == 8  # a WITHDRAWAL gets a cash-out code
    status = get(demo, f"/{payer[0]}/transactionStatus/{result['transactionId']}").json()
    assert (status["transactionState"], status["code"]) == ("COMPLETED", result["code"])


def test_a_request_to_pay_without_authentication_needs_no_otp(demo: Hub) -> None:
    r = post(demo, "/merchantbank/requestToPay", {"from": "27730000002", "payer": "MSISDN/27710000002",
                                                  "amount": "7", "authentication": "none"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["state"] == "COMMITTED" and not messages_of(result, "GET", "/authorizations")
    assert "authenticationType" not in messages_of(result, "POST", "/transactionRequests")[0]["body"]


@pytest.mark.parametrize("changes, words", [
    ({"payer": None}, "payer is required"),
    ({"payer": "PHONE/1"}, "id type"),
    ({"useCase": "merchant-pay"}, "useCase must be one of"),
    ({"otp": "12"}, "otp must be"),
    ({"authentication": "QRCODE"}, "authentication must be"),
    ({"amount": 1.5}, "never a float"),
    ({"from": "nobody"}, "not a customer"),
])
def test_bad_requests_to_pay_are_refused(demo: Hub, changes: dict[str, Any], words: str) -> None:
    body = {"from": "27730000001", "payer": "MSISDN/27720000001", "amount": "1"}
    body.update(changes)
    r = post(demo, "/merchantbank/requestToPay", {k: v for k, v in body.items() if v is not None})
    assert r.status_code == 400 and words in r.json()["errorInformation"]["errorDescription"], r.text


def test_an_authorization_nobody_waits_for_is_3206(demo: Hub) -> None:
    unknown = str(uuid.uuid4())
    r = httpx.get(f"{demo.urls['sim']}/merchantbank/authorizations/{unknown}", timeout=TIMEOUT,
                  params={"authenticationType": "OTP", "retriesLeft": "1", "amount": "1", "currency": "USD"},
                  headers={"FSPIOP-Source": "bluewallet", "FSPIOP-Destination": "merchantbank",
                           "Accept": "application/vnd.interoperability.authorizations+json;version=1",
                           "Date": "Mon, 01 Jan 2024 00:00:00 GMT"})
    assert r.status_code == 202

    def arrived() -> bool:
        unmatched = get(demo, "/bluewallet/transfers/recent").json()["unmatchedCallbacks"]
        return any(u["path"] == f"/authorizations/{unknown}/error" for u in unmatched)

    wait_for(arrived)


# --------------------------------------------------------------------------- merchant QR


def test_a_dynamic_qr_round_trip_pays_the_merchant(demo: Hub) -> None:
    r = post(demo, "/merchantbank/qr", {"from": "27730000001", "amount": "12.50", "reference": "INV-7"})
    assert r.status_code == 200, r.text
    qr = r.json()
    assert qr["svg"].startswith("<svg") and "</svg>" in qr["svg"]
    assert "█" in qr["ascii"] and len(qr["ascii"].splitlines()) > 10
    payload = read_payload(qr["payload"])
    assert (payload.fsp, payload.id_type, payload.party_id, payload.name, payload.amount, payload.currency,
            payload.reference) == ("merchantbank", "MSISDN", "27730000001", "Corner Grocery", "12.5", "USD", "INV-7")
    assert qr["qr"]["amount"] == "12.5"
    payer_before = balance(demo, "bluewallet", "27720000001")
    r = post(demo, "/bluewallet/payQr", {"from": "27720000001", "payload": qr["payload"]})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["state"] == "COMMITTED" and result["useCase"] == "merchant-pay"
    (quote,) = messages_of(result, "POST", "/quotes", "out")
    assert quote["body"]["transactionType"] == {"scenario": "PAYMENT", "initiator": "PAYER",
                                                "initiatorType": "CONSUMER"}
    assert quote["body"]["note"] == "Corner Grocery INV-7"
    assert quote["body"]["amount"] == {"amount": "12.5", "currency": "USD"}
    assert balance(demo, "bluewallet", "27720000001") == payer_before - D("12.5")
    # the QR's amount is the amount: another one is refused
    r = post(demo, "/bluewallet/payQr", {"from": "27720000001", "payload": qr["payload"], "amount": "13"})
    assert r.status_code == 400 and "12.5" in r.text


def test_a_static_qr_needs_the_amount_from_the_payer(demo: Hub) -> None:
    r = post(demo, "/merchantbank/qr", {"from": "27730000002"})
    assert r.status_code == 200, r.text
    payload = r.json()["payload"]
    assert "amount=" not in payload
    r = post(demo, "/greenwallet/payQr", {"from": "27710000003", "payload": payload})
    assert r.status_code == 400 and "static" in r.text
    r = post(demo, "/greenwallet/payQr", {"from": "27710000003", "payload": payload, "amount": "3"})
    assert r.status_code == 200, r.text
    assert r.json()["payee"]["name"] == "City Pharmacy"


@pytest.mark.parametrize("payload, words", [
    ("hello", "not a miniloop merchant QR"),
    ("mlqr:2?fsp=a&type=MSISDN&id=1&name=A", "version"),
    ("mlqr:1?fsp=merchantbank&type=MSISDN&id=27730000001", "no name"),
    ("mlqr:1?fsp=merchantbank&type=PHONE&id=1&name=A", "type must be one of"),
    ("mlqr:1?fsp=merchantbank&type=MSISDN&id=1&name=A&amount=-1&currency=USD", "greater than 0"),
    ("mlqr:1?fsp=merchantbank&type=MSISDN&id=1&name=A&tip=1", "not a field"),
])
def test_a_bad_qr_payload_is_refused(demo: Hub, payload: str, words: str) -> None:
    r = post(demo, "/greenwallet/payQr", {"from": "27710000001", "payload": payload, "amount": "1"})
    assert r.status_code == 400, r.text
    info = r.json()["errorInformation"]
    assert info["errorCode"] == "3100" and words in info["errorDescription"], info


def test_a_qr_naming_the_wrong_fsp_is_not_paid(demo: Hub) -> None:
    """The lookup finds the merchant at merchantbank, but the QR says bluewallet: nothing moves."""
    payload = "mlqr:1?fsp=bluewallet&type=MSISDN&id=27730000001&name=Corner%20Grocery&amount=1&currency=USD"
    before = balance(demo, "greenwallet", "27710000001")
    r = post(demo, "/greenwallet/payQr", {"from": "27710000001", "payload": payload})
    assert r.status_code == 502, r.text
    assert r.json()["step"] == "lookup" and "QR names bluewallet" in r.json()["error"]["errorDescription"]
    assert balance(demo, "greenwallet", "27710000001") == before


def test_customer_settings_and_phone_are_checked(demo: Hub) -> None:
    r = httpx.put(f"{demo.urls['sim']}/greenwallet/customers/27710000001/settings", json={"requestToPay": "maybe"},
                  timeout=TIMEOUT)
    assert r.status_code == 400 and "requestToPay must be one of" in r.text
    r = get(demo, "/greenwallet/customers/27719999999/messages")
    assert r.status_code == 400 and "not a customer" in r.text
    r = get(demo, "/greenwallet/customers/27710000001/settings")
    assert r.status_code == 200 and r.json()["settings"] == {"requestToPay": "approve"}
