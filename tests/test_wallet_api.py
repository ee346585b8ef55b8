"""The simulators' interactive API for the wallet page, over the real hub, as a person would use it.

A customer confirms a payment in two steps (the party, then the quote), or declines, or never
answers; a customer set to "ask" approves or declines a request to pay on their phone while the
merchant's till types the OTP the customer reads out; a visitor joins a wallet and gets paid.
Each test makes its own customers with POST /<dfsp>/customers (join), so the balances it checks
move only because of it. One demo hub per module (and per xdist worker).
"""

from __future__ import annotations

import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest
from conftest import Hub, HubLauncher, error_code
from test_use_cases import (
    TIMEOUT,
    balance,
    get,
    messages_of,
    phone,
    post,
    settings,
    wait_for,
)

D = Decimal
MERCHANT = ("merchantbank", "27730000001")  # Corner Grocery; merchantbank charges 1 %


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


@pytest.fixture(scope="module")
def background() -> Any:
    """Calls that wait for a person (a till waiting for the customer's approval) run here."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


def put(hub: Hub, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.put(f"{hub.urls['sim']}{path}", json=body, timeout=TIMEOUT)


def join(hub: Hub, dfsp: str, **body: Any) -> dict[str, Any]:
    r = post(hub, f"/{dfsp}/customers", body)
    assert r.status_code == 201, r.text
    return r.json()


def customer(hub: Hub, dfsp: str, customer_id: str) -> dict[str, Any]:
    r = get(hub, f"/{dfsp}/customers/{customer_id}")
    assert r.status_code == 200, r.text
    return r.json()


def paths(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(m["direction"], m["method"], m["path"].split("/")[1].split("?")[0]) for m in result["messages"]]


def confirmed_send(hub: Hub, payer: dict[str, Any], payee: dict[str, Any], amount: str, **extra: Any) -> dict[str, Any]:
    """POST /send with confirm; it answers at the first pause."""
    r = post(hub, f"/{payer['dfsp']}/send", {"from": payer["id"], "to": {"id": payee["id"]}, "amount": amount,
                                             "confirm": True, **extra})
    assert r.status_code == 200, r.text
    result = r.json()
    assert (result["state"], result["step"], result["quote"]) == ("WAITING_FOR_PARTY_ACCEPTANCE", "lookup", None)
    return result


# --------------------------------------------------------------------------- confirm steps in /send


def test_a_confirmed_send_pauses_for_the_party_and_the_quote_then_commits(demo: Hub) -> None:
    payer = join(demo, "greenwallet", name="Nomsa Payer", balance="200")
    payee = join(demo, "bluewallet", name="Kofi Payee", balance="0")

    paused = confirmed_send(demo, payer, payee, "25", note="rent")
    transfer_id = paused["transferId"]
    assert paused["payee"]["name"] == "Kofi Payee"
    assert paused["payee"]["partyIdInfo"]["fspId"] == "bluewallet"
    assert paths(paused) == [("out", "GET", "parties"), ("in", "PUT", "parties")]
    assert paused["balances"] == {"customer": payer["id"], "before": "200", "after": "200", "reserved": "0"}
    assert get(demo, f"/greenwallet/send/{transfer_id}").json()["state"] == "WAITING_FOR_PARTY_ACCEPTANCE"

    r = put(demo, f"/greenwallet/send/{transfer_id}", {"acceptParty": True})
    assert r.status_code == 200, r.text
    quoted = r.json()
    assert (quoted["state"], quoted["step"]) == ("WAITING_FOR_QUOTE_ACCEPTANCE", "quote")
    terms = {k: quoted["quote"][k]["amount"] for k in ("transferAmount", "payeeFspFee", "payeeReceiveAmount")}
    assert terms == {"transferAmount": "25", "payeeFspFee": "0", "payeeReceiveAmount": "25"}
    assert paths(quoted)[2:] == [("out", "POST", "quotes"), ("in", "PUT", "quotes")]
    assert quoted["balances"]["reserved"] == "0"  # nothing is held before the customer accepts the quote
    assert balance(demo, "greenwallet", payer["id"]) == 200

    r = put(demo, f"/greenwallet/send/{transfer_id}", {"acceptQuote": True})
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["state"], done["step"]) == ("COMMITTED", "transfer")
    assert paths(done)[4:] == [("out", "POST", "transfers"), ("in", "PUT", "transfers")]
    assert done["balances"] == {"customer": payer["id"], "before": "200", "after": "175", "reserved": "0"}
    assert balance(demo, "bluewallet", payee["id"]) == 25
    assert phone(demo, "greenwallet", payer["id"])[0]["text"] == "You paid 25 USD to Kofi Payee. New balance: 175 USD."
    assert phone(demo, "bluewallet", payee["id"])[0]["kind"] == "received"

    # the finished flow can still be read, but no longer answered
    assert get(demo, f"/greenwallet/send/{transfer_id}").json()["state"] == "COMMITTED"
    r = put(demo, f"/greenwallet/send/{transfer_id}", {"acceptQuote": True})
    assert r.status_code == 404 and error_code(r) == "3208", r.text


@pytest.mark.parametrize("declined_at", ["acceptParty", "acceptQuote"])
def test_declining_at_a_pause_cancels_and_moves_nothing(demo: Hub, declined_at: str) -> None:
    payer = join(demo, "greenwallet", balance="100")
    payee = join(demo, "bluewallet", balance="0")
    transfer_id = confirmed_send(demo, payer, payee, "40")["transferId"]
    if declined_at == "acceptQuote":
        r = put(demo, f"/greenwallet/send/{transfer_id}", {"acceptParty": True})
        assert r.json()["state"] == "WAITING_FOR_QUOTE_ACCEPTANCE", r.text

    r = put(demo, f"/greenwallet/send/{transfer_id}", {declined_at: False})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["state"] == "CANCELLED" and "error" not in result
    assert not messages_of(result, "POST", "/transfers")
    assert result["balances"] == {"customer": payer["id"], "before": "100", "after": "100", "reserved": "0"}
    assert balance(demo, "bluewallet", payee["id"]) == 0
    assert get(demo, f"/greenwallet/send/{transfer_id}").json()["state"] == "CANCELLED"
    r = put(demo, f"/greenwallet/send/{transfer_id}", {"acceptParty": True})
    assert r.status_code == 404 and error_code(r) == "3208"


def test_answers_to_a_paused_send_are_checked(demo: Hub) -> None:
    payer = join(demo, "greenwallet", balance="50")
    payee = join(demo, "bluewallet")
    transfer_id = confirmed_send(demo, payer, payee, "5")["transferId"]

    unknown = str(uuid.uuid4())
    r = put(demo, f"/greenwallet/send/{unknown}", {"acceptParty": True})
    assert r.status_code == 404 and error_code(r) == "3208", r.text
    assert get(demo, f"/greenwallet/send/{unknown}").status_code == 404
    r = put(demo, f"/bluewallet/send/{transfer_id}", {"acceptParty": True})  # another DFSP's flow
    assert r.status_code == 404 and error_code(r) == "3208"
    r = put(demo, f"/greenwallet/send/{transfer_id}", {"acceptQuote": True})  # the wrong pause
    assert r.status_code == 400 and error_code(r) == "3100"
    assert "waits for acceptParty" in r.json()["errorInformation"]["errorDescription"]
    for bad in ({"acceptParty": "yes"}, {"acceptParty": 1}, {"acceptParty": True, "acceptQuote": True},
                {"accept": True}, {}):
        r = put(demo, f"/greenwallet/send/{transfer_id}", bad)
        assert r.status_code == 400 and error_code(r) == "3100", (bad, r.text)
    # none of that moved the flow on
    assert get(demo, f"/greenwallet/send/{transfer_id}").json()["state"] == "WAITING_FOR_PARTY_ACCEPTANCE"
    assert put(demo, f"/greenwallet/send/{transfer_id}", {"acceptParty": False}).json()["state"] == "CANCELLED"

    r = post(demo, "/greenwallet/send", {"from": payer["id"], "to": {"id": payee["id"]}, "amount": "1",
                                         "confirm": "yes"})
    assert r.status_code == 400 and error_code(r) == "3100"
    # a send without confirm runs as always; it is finished when its POST answers
    r = post(demo, "/greenwallet/send", {"from": payer["id"], "to": {"id": payee["id"]}, "amount": "1"})
    assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text
    plain = r.json()["transferId"]
    assert get(demo, f"/greenwallet/send/{plain}").json()["state"] == "COMMITTED"
    r = put(demo, f"/greenwallet/send/{plain}", {"acceptParty": True})
    assert r.status_code == 404 and error_code(r) == "3208"


def test_a_confirmation_that_never_comes_times_out_with_nothing_held(demo: Hub) -> None:
    payer = join(demo, "greenwallet", balance="60")
    payee = join(demo, "bluewallet", balance="0")
    transfer_id = confirmed_send(demo, payer, payee, "20", timeoutSeconds=2)["transferId"]
    r = put(demo, f"/greenwallet/send/{transfer_id}", {"acceptParty": True})
    assert r.json()["state"] == "WAITING_FOR_QUOTE_ACCEPTANCE", r.text

    def ended() -> dict[str, Any] | None:
        body = get(demo, f"/greenwallet/send/{transfer_id}").json()
        return body if body["state"] != "WAITING_FOR_QUOTE_ACCEPTANCE" else None

    result = wait_for(ended)
    assert result["state"] == "TIMED_OUT" and result["error"]["errorCode"] == "2004"
    assert "acceptQuote" in result["error"]["errorDescription"]
    assert not messages_of(result, "POST", "/transfers")
    assert customer(demo, "greenwallet", payer["id"])["balance"] == "60"
    assert customer(demo, "greenwallet", payer["id"])["reserved"] == "0"
    assert balance(demo, "bluewallet", payee["id"]) == 0
    r = put(demo, f"/greenwallet/send/{transfer_id}", {"acceptQuote": True})
    assert r.status_code == 404 and error_code(r) == "3208"


def test_pay_qr_with_confirm_shows_the_merchant_then_the_fee(demo: Hub) -> None:
    payer = join(demo, "greenwallet", balance="30")
    r = post(demo, "/merchantbank/qr", {"from": MERCHANT[1], "amount": "10", "reference": "TILL-3"})
    assert r.status_code == 200, r.text
    merchant_before = balance(demo, *MERCHANT)
    r = post(demo, "/greenwallet/payQr", {"from": payer["id"], "payload": r.json()["payload"], "confirm": True})
    assert r.status_code == 200, r.text
    paused = r.json()
    assert (paused["state"], paused["useCase"]) == ("WAITING_FOR_PARTY_ACCEPTANCE", "merchant-pay")
    assert paused["payee"]["name"] == "Corner Grocery"
    quoted = put(demo, f"/greenwallet/send/{paused['transferId']}", {"acceptParty": True}).json()
    assert quoted["state"] == "WAITING_FOR_QUOTE_ACCEPTANCE"
    assert (quoted["quote"]["payeeFspFee"]["amount"], quoted["quote"]["payeeReceiveAmount"]["amount"]) == ("0.1", "9.9")
    r = put(demo, f"/greenwallet/send/{paused['transferId']}", {"acceptQuote": True})
    assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text
    assert balance(demo, "greenwallet", payer["id"]) == 20
    assert balance(demo, *MERCHANT) == merchant_before + D("9.9")


# --------------------------------------------------------------------------- requests to pay answered on the phone


def till_asks(hub: Hub, pool: ThreadPoolExecutor, payer: dict[str, Any], amount: str,
              **extra: Any) -> Future[httpx.Response]:
    """The merchant's till starts a request to pay whose OTP a person types ("otp": "ask")."""
    order = {"from": MERCHANT[1], "payer": f"MSISDN/{payer['id']}", "amount": amount, "otp": "ask", **extra}
    return pool.submit(post, hub, "/merchantbank/requestToPay", order)


def waiting_request(hub: Hub, payer: dict[str, Any]) -> dict[str, Any]:
    """The request to pay waiting on the payer's phone (polled: it arrives through the hub)."""
    def arrived() -> dict[str, Any] | None:
        r = get(hub, f"/{payer['dfsp']}/customers/{payer['id']}/requests")
        assert r.status_code == 200, r.text
        requests = r.json()["requests"]
        return requests[0] if requests else None

    return wait_for(arrived)


def answer(hub: Hub, payer: dict[str, Any], request_id: str, decision: str) -> httpx.Response:
    return post(hub, f"/{payer['dfsp']}/customers/{payer['id']}/requests/{request_id}", {"answer": decision})


def otp_on_phone(hub: Hub, payer: dict[str, Any], request_id: str) -> str:
    return next(m["otp"] for m in phone(hub, payer["dfsp"], payer["id"])
                if m["kind"] == "otp" and m["transactionRequestId"] == request_id)


def test_a_customer_approves_on_the_phone_and_the_till_types_the_otp(demo: Hub, background: Any) -> None:
    payer = join(demo, "bluewallet", name="Ama Serwaa", balance="100")
    assert customer(demo, "bluewallet", payer["id"])["settings"] == {"requestToPay": "ask"}
    merchant_before = balance(demo, *MERCHANT)
    till = till_asks(demo, background, payer, "30", note="groceries")

    request = waiting_request(demo, payer)
    assert request["payee"] == {"name": "Corner Grocery", "fspId": "merchantbank"}
    assert (request["amount"], request["currency"], request["note"]) == ("30", "USD", "groceries")
    assert (request["useCase"], request["state"]) == ("merchant-request", "WAITING")
    assert request["transactionType"] == {"scenario": "PAYMENT", "initiator": "PAYEE", "initiatorType": "BUSINESS"}
    assert request["receivedAt"] < request["expiresAt"]
    request_id = request["transactionRequestId"]
    assert phone(demo, "bluewallet", payer["id"])[0]["text"] == "Corner Grocery asks you to pay 30 USD (groceries)."
    assert not till.done()  # the till waits for the customer

    r = answer(demo, payer, request_id, "approve")
    assert r.status_code == 200, r.text
    assert r.json()["transactionRequestId"] == request_id and r.json()["answer"] == "approve"
    r = till.result(timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    waiting = r.json()
    assert (waiting["state"], waiting["step"], waiting["retriesLeft"]) == ("WAITING_FOR_OTP", "authorization", 3)
    assert waiting["quote"]["transferAmount"]["amount"] == "30.3"  # the merchant's 1 % on top
    assert get(demo, f"/merchantbank/requestToPay/{request_id}").json()["state"] == "WAITING_FOR_OTP"
    assert get(demo, f"/bluewallet/customers/{payer['id']}/requests").json()["requests"] == []

    r = put(demo, f"/merchantbank/requestToPay/{request_id}", {"otp": otp_on_phone(demo, payer, request_id)})
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["state"], done["transactionRequestState"]) == ("COMMITTED", "RECEIVED")
    assert done["authorizations"][0]["responseType"] == "ENTERED"
    assert balance(demo, "bluewallet", payer["id"]) == D("69.7")
    assert balance(demo, *MERCHANT) == merchant_before + 30
    assert phone(demo, "bluewallet", payer["id"])[0]["kind"] == "paid"
    assert get(demo, f"/merchantbank/requestToPay/{request_id}").json()["state"] == "COMMITTED"


def test_a_wrong_otp_asks_again_with_fewer_retries(demo: Hub, background: Any) -> None:
    payer = join(demo, "bluewallet", balance="100")
    till = till_asks(demo, background, payer, "10")
    request_id = waiting_request(demo, payer)["transactionRequestId"]
    assert answer(demo, payer, request_id, "approve").status_code == 200
    assert till.result(timeout=TIMEOUT).json()["retriesLeft"] == 3

    right = otp_on_phone(demo, payer, request_id)
    wrong = "1" + right if len(right) < 10 else "123"
    r = put(demo, f"/merchantbank/requestToPay/{request_id}", {"otp": wrong})
    assert r.status_code == 200, r.text
    again = r.json()
    assert (again["state"], again["retriesLeft"]) == ("WAITING_FOR_OTP", 2)
    assert [a["entered"] for a in again["authorizations"] if "entered" in a] == [wrong]

    r = put(demo, f"/merchantbank/requestToPay/{request_id}", {"otp": right})
    assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text
    assert [a["retriesLeft"] for a in r.json()["authorizations"]] == ["3", "2"]
    assert balance(demo, "bluewallet", payer["id"]) == D("89.9")


def test_declining_on_the_phone_rejects_the_request(demo: Hub, background: Any) -> None:
    payer = join(demo, "bluewallet", balance="100")
    merchant_before = balance(demo, *MERCHANT)
    till = till_asks(demo, background, payer, "15")
    request_id = waiting_request(demo, payer)["transactionRequestId"]
    r = answer(demo, payer, request_id, "decline")
    assert r.status_code == 200 and r.json()["state"] == "REJECTED", r.text

    r = till.result(timeout=TIMEOUT)
    assert r.status_code == 502, r.text
    result = r.json()
    assert (result["state"], result["step"], result["error"]["errorCode"]) == ("REJECTED", "request", "4101")
    assert "declined" in result["error"]["errorDescription"]
    assert phone(demo, "bluewallet", payer["id"])[0]["kind"] == "declined"
    assert balance(demo, "bluewallet", payer["id"]) == 100
    assert balance(demo, *MERCHANT) == merchant_before
    r = answer(demo, payer, request_id, "approve")  # too late: it no longer waits
    assert r.status_code == 404 and error_code(r) == "3206"


def test_answers_on_the_phone_and_at_the_till_are_checked(demo: Hub, background: Any) -> None:
    payer = join(demo, "bluewallet", balance="100")
    till = till_asks(demo, background, payer, "5")
    request_id = waiting_request(demo, payer)["transactionRequestId"]

    for bad in ({"answer": "maybe"}, {"answer": "approve", "pin": "1"}, {}):
        r = post(demo, f"/bluewallet/customers/{payer['id']}/requests/{request_id}", bad)
        assert r.status_code == 400 and error_code(r) == "3100", (bad, r.text)
    r = answer(demo, payer, str(uuid.uuid4()), "approve")
    assert r.status_code == 404 and error_code(r) == "3206"
    other = join(demo, "bluewallet")
    r = answer(demo, other, request_id, "approve")  # not that customer's request
    assert r.status_code == 404 and error_code(r) == "3206"
    # the till cannot type an OTP before the payer's DFSP asks for one
    r = put(demo, f"/merchantbank/requestToPay/{request_id}", {"otp": "123456"})
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    r = put(demo, f"/merchantbank/requestToPay/{uuid.uuid4()}", {"otp": "123456"})
    assert r.status_code == 404 and error_code(r) == "3206"
    assert get(demo, f"/merchantbank/requestToPay/{uuid.uuid4()}").status_code == 404

    assert answer(demo, payer, request_id, "approve").status_code == 200
    assert till.result(timeout=TIMEOUT).json()["state"] == "WAITING_FOR_OTP"
    for bad in ({"otp": "12"}, {"otp": "12345678901"}, {"otp": 123456}, {"otp": "12a456"}, {"otp": "1234", "x": 1}):
        r = put(demo, f"/merchantbank/requestToPay/{request_id}", bad)
        assert r.status_code == 400 and error_code(r) == "3100", (bad, r.text)
    r = put(demo, f"/merchantbank/requestToPay/{request_id}", {"otp": "cancel"})
    assert r.status_code == 502, r.text
    assert (r.json()["state"], r.json()["authorizations"][-1]["responseType"]) == ("REJECTED", "REJECTED")
    assert balance(demo, "bluewallet", payer["id"]) == 100


def test_an_otp_nobody_types_times_out(demo: Hub) -> None:
    payer = join(demo, "bluewallet", balance="100")
    settings(demo, "bluewallet", payer["id"], "approve")  # approves at once: only the till is slow
    r = post(demo, "/merchantbank/requestToPay", {"from": MERCHANT[1], "payer": f"MSISDN/{payer['id']}",
                                                 "amount": "5", "otp": "ask", "timeoutSeconds": 2})
    assert r.status_code == 200 and r.json()["state"] == "WAITING_FOR_OTP", r.text
    request_id = r.json()["transactionRequestId"]

    def ended() -> dict[str, Any] | None:
        body = get(demo, f"/merchantbank/requestToPay/{request_id}").json()
        return body if body["state"] != "WAITING_FOR_OTP" else None

    result = wait_for(ended)
    assert result["state"] == "TIMED_OUT" and result["error"]["errorCode"] == "2004"
    assert balance(demo, "bluewallet", payer["id"]) == 100
    r = put(demo, f"/merchantbank/requestToPay/{request_id}", {"otp": "123456"})
    assert r.status_code == 404 and error_code(r) == "3206"


# --------------------------------------------------------------------------- joining a wallet


def all_numbers(hub: Hub) -> set[str]:
    return {c["id"] for d in ("greenwallet", "bluewallet", "merchantbank") for c in get(hub, f"/{d}/customers").json()}


def test_a_new_customer_joins_with_a_fresh_number(demo: Hub, background: Any) -> None:
    taken = all_numbers(demo)
    joined = join(demo, "greenwallet", name="Zanele Mokoena", balance="120.5")
    assert joined == {"dfsp": "greenwallet", "id": joined["id"], "idType": "MSISDN", "name": "Zanele Mokoena",
                      "balance": "120.5", "reserved": "0", "settings": {"requestToPay": "ask"}}
    assert joined["id"].isdigit() and joined["id"].startswith("277") and joined["id"] not in taken
    assert customer(demo, "greenwallet", joined["id"]) == {k: v for k, v in joined.items() if k != "dfsp"}
    assert joined["id"] in {c["id"] for c in get(demo, "/greenwallet/customers").json()}

    # two at once still get two numbers of their own; the defaults apply
    both = [f.result(timeout=TIMEOUT) for f in [background.submit(post, demo, "/greenwallet/customers", {})
                                                for _ in range(2)]]
    assert [r.status_code for r in both] == [201, 201], [r.text for r in both]
    first, second = (r.json() for r in both)
    assert first["id"] != second["id"] and {first["id"], second["id"]}.isdisjoint(taken | {joined["id"]})
    assert first["name"].startswith("Guest ") and first["balance"] == "500"


def test_a_joined_customer_is_found_by_lookup_and_paid(demo: Hub) -> None:
    payee = join(demo, "bluewallet", name="Baraka Newcomer", balance="0")
    payer = join(demo, "greenwallet", balance="80")
    r = post(demo, "/greenwallet/send", {"from": payer["id"], "to": {"id": payee["id"]}, "amount": "12.5"})
    assert r.status_code == 200, r.text
    assert r.json()["payee"]["name"] == "Baraka Newcomer"
    assert r.json()["payee"]["partyIdInfo"] == {"partyIdType": "MSISDN", "partyIdentifier": payee["id"],
                                                "fspId": "bluewallet"}
    assert balance(demo, "bluewallet", payee["id"]) == D("12.5")
    assert phone(demo, "bluewallet", payee["id"])[0]["kind"] == "received"


@pytest.mark.parametrize("body", [
    {"name": ""}, {"name": "   "}, {"name": "x" * 65}, {"name": "bell\x07"}, {"name": 5},
    {"balance": "-1"}, {"balance": 1.5}, {"balance": "1.234"}, {"balance": "lots"}, {"balance": True},
    {"idType": "EMAIL"}, {"phone": "27710000099"},
])
def test_bad_joins_are_refused_and_add_no_one(demo: Hub, body: dict[str, Any]) -> None:
    before = len(get(demo, "/greenwallet/customers").json())
    r = post(demo, "/greenwallet/customers", body)
    assert r.status_code == 400 and error_code(r) == "3100", r.text
    assert len(get(demo, "/greenwallet/customers").json()) == before


def test_one_customer_and_an_unknown_one(demo: Hub) -> None:
    found = customer(demo, "greenwallet", "27710000001")
    assert (found["name"], found["idType"]) == ("Amara Okafor", "MSISDN")
    assert found["settings"] == {"requestToPay": "approve"}
    assert customer(demo, "greenwallet", "GREENKIOSK")["idType"] == "BUSINESS"
    r = get(demo, "/greenwallet/customers/27799999999")
    assert r.status_code == 404 and error_code(r) == "3204", r.text
