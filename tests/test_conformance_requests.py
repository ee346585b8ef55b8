"""Conformance, payee-initiated payments and bulk quotes: `/transactionRequests`, `/authorizations`,
`/transactions` and `/bulkQuotes` between test DFSPs through a real hub.

The hub only routes these (as Mojaloop's transaction-requests-service and the quoting-service in
pass-through mode do), so what matters to a DFSP is that each message reaches the other side
unchanged, headers and query string included, and that the hub's own refusals are the ones it
can act on: 3201 as a callback when the other side cannot be reached, 1001 when delivery failed,
400 at once for a broken body, header or query.
"""

from __future__ import annotations

import copy
import json
import secrets
import socket
from collections.abc import Callable
from typing import Any

import pytest
from fspiop_dfsp import (
    Received,
    Scene,
    Secret,
    assert_hub_originated,
    b64url,
    dumps,
    error_body,
    imf_date,
    in_seconds,
    new_id,
    now_iso,
    party,
    sync_error,
    watch_events,
)



# --------------------------------------------------------------------------- bodies


def transaction_request_body(payee: str, payer: str, amount: str = "25", currency: str = "USD") -> dict[str, Any]:
    """POST /transactionRequests: a merchant (payee) asks a customer's DFSP (payer) to pay."""
    return {
        "transactionRequestId": new_id(),
        "payee": {**party(payee), "merchantClassificationCode": "5411", "name": "Corner Shop"},
        "payer": party(payer)["partyIdInfo"],
        "amount": {"amount": amount, "currency": currency},
        "transactionType": {"scenario": "PAYMENT", "initiator": "PAYEE", "initiatorType": "BUSINESS"},
        "note": "conformance test",
        "geoCode": {"latitude": "-1.2921", "longitude": "36.8219"},
        "authenticationType": "OTP",
        "expiration": in_seconds(60),
    }


def individual_quote(payee: str, amount: str = "10", currency: str = "USD") -> dict[str, Any]:
    return {
        "quoteId": new_id(),
        "transactionId": new_id(),
        "payee": party(payee),
        "amountType": "SEND",
        "amount": {"amount": amount, "currency": currency},
        "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
        "note": "salary",
    }


def bulk_quote_body(payer: str, payee: str, count: int = 2, currency: str = "USD") -> dict[str, Any]:
    return {
        "bulkQuoteId": new_id(),
        "payer": party(payer),
        "individualQuotes": [individual_quote(payee, str(i + 1), currency) for i in range(count)],
        "expiration": in_seconds(60),
    }


def quote_result(quote: dict[str, Any]) -> dict[str, Any]:
    """The payee's terms for one individual quote of a bulk."""
    return {
        "quoteId": quote["quoteId"],
        "payee": quote["payee"],
        "transferAmount": quote["amount"],
        "payeeReceiveAmount": quote["amount"],
        "payeeFspFee": {"amount": "0", "currency": quote["amount"]["currency"]},
        "ilpPacket": b64url(secrets.token_bytes(48)),
        "condition": Secret().condition,
    }


AUTHORIZATION_QUERY = "authenticationType=OTP&retriesLeft=2&amount=102&currency=USD"


# --------------------------------------------------------------------------- sending and checking


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class Sent:
    """One request sent with known Date and traceparent, so that what arrives can be compared."""

    def __init__(self, scene: Scene, method: str, path: str, source: str, destination: str | None,
                 body: Any = None, **options: Any) -> None:
        self.headers = {"date": imf_date(), "traceparent": new_traceparent(), **options.pop("headers", {})}
        self.raw = dumps(body) if body is not None else None
        self.response = scene.fspiop.send(method, path, source, destination, body, headers=self.headers, **options)
        self.expected = scene.fspiop.headers_for(method, path, source, destination, headers=self.headers,
                                                 **{k: v for k, v in options.items() if k != "content"})

    def assert_status(self, status: int) -> None:
        assert self.response.status_code == status, self.response.text
        if status in (200, 202):
            assert self.response.content == b""

    def assert_arrived_unchanged(self, got: Received) -> None:
        """The FSPIOP headers the sender set, and the body bytes, as the receiver got them."""
        for name in ("fspiop-source", "fspiop-destination", "date", "traceparent", "content-type", "accept"):
            assert got.headers.get(name) == self.expected.get(name), (name, got)
        if self.raw is not None:
            assert got.raw == self.raw


def send(scene: Scene, method: str, path: str, source: str, destination: str | None, body: Any = None,
         status: int | None = None, **options: Any) -> Sent:
    sent = Sent(scene, method, path, source, destination, body, **options)
    if status is not None:
        sent.assert_status(status)
    return sent


def forwarded(scene: Scene, sent: Sent, to: str, method: str, path: str, since: int) -> Received:
    """What `to` received for `sent`, checked to be unchanged."""
    got = scene.dfsps.wait_for(to, method, path, since=since, exact=True)
    sent.assert_arrived_unchanged(got)
    return got


# --------------------------------------------------------------------------- forwarding


def test_transaction_request_is_forwarded_and_answered(scene: Scene) -> None:
    """`POST /transactionRequests` from the payee's DFSP reaches the payer's DFSP unchanged, its
    `PUT /transactionRequests/{ID}` answer comes back unchanged, and so does a `GET` re-ask.

    A request to pay is the start of a merchant payment; the merchant's DFSP learns only from the
    payer's answer whether the customer will pay, so both must arrive exactly as sent.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    body = transaction_request_body(payee, payer)
    path = f"/transactionRequests/{body['transactionRequestId']}"

    mark = scene.dfsps.mark(payer)
    sent = send(scene, "POST", "/transactionRequests", payee, payer, body, status=202)
    got = forwarded(scene, sent, payer, "POST", "/transactionRequests", mark)
    assert got.body == body

    mark = scene.dfsps.mark(payee)
    answer = {"transactionId": new_id(), "transactionRequestState": "RECEIVED"}
    sent = send(scene, "PUT", path, payer, payee, answer, status=200)
    assert forwarded(scene, sent, payee, "PUT", path, mark).body == answer

    mark = scene.dfsps.mark(payer)
    sent = send(scene, "GET", path, payee, payer, status=202)
    assert forwarded(scene, sent, payer, "GET", path, mark).raw == b""


def test_authorization_is_forwarded_with_its_query_string(scene: Scene) -> None:
    """`GET /authorizations/{ID}?authenticationType=OTP&retriesLeft=2&amount=102&currency=USD` from
    the payer's DFSP reaches the payee's DFSP with the query string as sent, and the payee's
    `PUT /authorizations/{ID}` (the OTP the customer typed) reaches the payer's DFSP unchanged.

    The query is the whole request: the payee's device shows the amount and asks for the OTP, and
    retriesLeft tells it whether this is the last try.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    path = f"/authorizations/{new_id()}"

    mark = scene.dfsps.mark(payee)
    sent = send(scene, "GET", f"{path}?{AUTHORIZATION_QUERY}", payer, payee, status=202)
    got = forwarded(scene, sent, payee, "GET", path, mark)
    assert got.query == AUTHORIZATION_QUERY

    answer = {"authenticationInfo": {"authentication": "OTP", "authenticationValue": "123456"},
              "responseType": "ENTERED"}
    mark = scene.dfsps.mark(payer)
    sent = send(scene, "PUT", path, payee, payer, answer, status=200)
    assert forwarded(scene, sent, payer, "PUT", path, mark).body == answer


def test_u2f_authorization_answer_is_forwarded(scene: Scene) -> None:
    """`PUT /authorizations/{ID}` with a U2F `{pinValue, counter}` value (in v1.1's implementation
    file) is accepted and forwarded like an OTP."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    path = f"/authorizations/{new_id()}"
    answer = {"authenticationInfo": {"authentication": "U2F",
                                     "authenticationValue": {"pinValue": "a1b2c3", "counter": "1"}},
              "responseType": "ENTERED"}
    mark = scene.dfsps.mark(payer)
    sent = send(scene, "PUT", path, payee, payer, answer, status=200)
    assert forwarded(scene, sent, payer, "PUT", path, mark).body == answer


def test_transaction_is_forwarded(scene: Scene) -> None:
    """`GET /transactions/{ID}` from the payer's DFSP reaches the payee's, and the payee's
    `PUT /transactions/{ID}` (COMPLETED, with a voucher code) reaches the payer's unchanged."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    path = f"/transactions/{new_id()}"

    mark = scene.dfsps.mark(payee)
    sent = send(scene, "GET", path, payer, payee, status=202)
    forwarded(scene, sent, payee, "GET", path, mark)

    answer = {"completedTimestamp": now_iso(), "transactionState": "COMPLETED", "code": "Voucher1234"}
    mark = scene.dfsps.mark(payer)
    sent = send(scene, "PUT", path, payee, payer, answer, status=200)
    assert forwarded(scene, sent, payer, "PUT", path, mark).body == answer


def test_bulk_quote_of_1000_quotes_is_forwarded_intact(scene: Scene) -> None:
    """`POST /bulkQuotes` with the API's maximum of 1,000 individual quotes reaches the payee's DFSP
    byte for byte, and a `GET /bulkQuotes/{ID}` re-ask is forwarded too.

    A salary run is exactly this size; a hub that dropped or reordered one quote would pay the
    wrong people.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    body = bulk_quote_body(payer, payee, count=1000)
    mark = scene.dfsps.mark(payee)
    sent = send(scene, "POST", "/bulkQuotes", payer, payee, body, status=202)
    got = forwarded(scene, sent, payee, "POST", "/bulkQuotes", mark)
    assert len(got.body["individualQuotes"]) == 1000
    assert got.body == body

    path = f"/bulkQuotes/{body['bulkQuoteId']}"
    mark = scene.dfsps.mark(payee)
    sent = send(scene, "GET", path, payer, payee, status=202)
    forwarded(scene, sent, payee, "GET", path, mark)


def test_bulk_quote_answer_with_one_failed_quote_is_forwarded_intact(scene: Scene) -> None:
    """`PUT /bulkQuotes/{ID}` where one individual result carries `errorInformation` instead of
    terms reaches the payer's DFSP unchanged: one refused quote does not fail the bulk."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    request = bulk_quote_body(payer, payee, count=3)
    results = [quote_result(quote) for quote in request["individualQuotes"]]
    results[1] = {"quoteId": request["individualQuotes"][1]["quoteId"],
                  "errorInformation": {"errorCode": "5106", "errorDescription": "Payee unsupported currency"}}
    answer = {"individualQuoteResults": results, "expiration": in_seconds(60)}
    path = f"/bulkQuotes/{request['bulkQuoteId']}"

    mark = scene.dfsps.mark(payer)
    sent = send(scene, "PUT", path, payee, payer, answer, status=200)
    got = forwarded(scene, sent, payer, "PUT", path, mark)
    assert got.body == answer
    assert got.body["individualQuoteResults"][1]["errorInformation"]["errorCode"] == "5106"


@pytest.mark.parametrize(("resource", "code"), [
    ("transactionRequests", "4101"), ("authorizations", "5100"), ("transactions", "5104"), ("bulkQuotes", "5101"),
])
def test_error_callbacks_are_forwarded(scene: Scene, resource: str, code: str) -> None:
    """`PUT /<resource>/{ID}/error` from one DFSP reaches the other unchanged (the payer refusing
    a request to pay, the payee refusing a bulk quote ...)."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    sender, receiver = (payer, payee) if resource == "transactionRequests" else (payee, payer)
    path = f"/{resource}/{new_id()}/error"
    body = error_body(code, "Payer rejected transaction request - test")
    mark = scene.dfsps.mark(receiver)
    sent = send(scene, "PUT", path, sender, receiver, body, status=200)
    got = forwarded(scene, sent, receiver, "PUT", path, mark)
    assert got.body == body and got.error_code == code


# --------------------------------------------------------------------------- the other side cannot be reached

# (method, resource, who sends: the payer or the payee)
MESSAGES = [
    ("POST", "transactionRequests", "payee"),
    ("GET", "transactionRequests", "payee"),
    ("PUT", "transactionRequests", "payer"),
    ("GET", "authorizations", "payer"),
    ("PUT", "authorizations", "payee"),
    ("GET", "transactions", "payer"),
    ("PUT", "transactions", "payee"),
    ("POST", "bulkQuotes", "payer"),
    ("GET", "bulkQuotes", "payer"),
    ("PUT", "bulkQuotes", "payee"),
]


def message(method: str, resource: str, sender: str, receiver: str) -> tuple[str, Any, str]:
    """(path, body, path of the resource id) of a valid message of this kind from `sender`.

    A POST /transactionRequests comes from the payee, a POST /bulkQuotes from the payer; the
    other messages carry no FSP in their bodies.
    """
    if method == "POST":
        if resource == "transactionRequests":
            body = transaction_request_body(payee=sender, payer=receiver)
            return "/transactionRequests", body, f"/transactionRequests/{body['transactionRequestId']}"
        body = bulk_quote_body(payer=sender, payee=receiver)
        return "/bulkQuotes", body, f"/bulkQuotes/{body['bulkQuoteId']}"
    path = f"/{resource}/{new_id()}"
    if method == "GET":
        return path + (f"?{AUTHORIZATION_QUERY}" if resource == "authorizations" else ""), None, path
    answers = {
        "transactionRequests": {"transactionRequestState": "ACCEPTED", "transactionId": new_id()},
        "authorizations": {"authenticationInfo": {"authentication": "OTP", "authenticationValue": "1234"},
                           "responseType": "ENTERED"},
        "transactions": {"transactionState": "COMPLETED", "completedTimestamp": now_iso()},
        "bulkQuotes": {"individualQuoteResults": [], "expiration": in_seconds(60)},
    }
    return path, answers[resource], path


def _refused_with_3201(scene: Scene, method: str, resource: str, sender: str, receiver: str) -> Received:
    path, body, resource_path = message(method, resource, sender, receiver)
    mark = scene.dfsps.mark(sender)
    send(scene, method, path, sender, receiver, body, status=202 if method != "PUT" else 200)
    error = scene.dfsps.error_callback(sender, resource_path, since=mark)
    assert error.error_code == "3201", error
    assert_hub_originated(error, sender, version="1.1")
    return error


@pytest.mark.parametrize(("method", "resource", "role"), MESSAGES)
def test_unknown_destination_gets_3201(scene: Scene, method: str, resource: str, role: str) -> None:
    """A message to a DFSP that does not exist is accepted, then its sender gets
    `PUT /<resource>/{ID}/error` 3201 "Destination FSP Error" from the Hub.

    Without it the sender would wait for an answer nobody can give until its own timeout.
    """
    sender = scene.dfsp(role)
    error = _refused_with_3201(scene, method, resource, sender, "nosuchfsp")
    assert "nosuchfsp" in error.error_description


@pytest.mark.parametrize(("method", "resource", "role"), [
    ("POST", "transactionRequests", "payee"), ("GET", "authorizations", "payer"),
    ("PUT", "transactions", "payee"), ("POST", "bulkQuotes", "payer"), ("PUT", "bulkQuotes", "payee"),
])
def test_inactive_destination_gets_3201(scene: Scene, method: str, resource: str, role: str) -> None:
    """A message to a DFSP the operator deactivated gets 3201 too (CONFORMANCE #20, as for quotes):
    an inactive DFSP takes part in no payment, even when its endpoints still answer."""
    sender, receiver = scene.dfsp(role), scene.dfsp("inactive")
    scene.set_active(receiver, False)
    mark = scene.dfsps.mark(receiver)
    error = _refused_with_3201(scene, method, resource, sender, receiver)
    assert "not active" in error.error_description
    assert scene.dfsps.received(receiver)[mark:] == []


@pytest.mark.parametrize(("method", "resource", "role"), [
    ("POST", "transactionRequests", "payee"), ("GET", "authorizations", "payer"), ("PUT", "authorizations", "payee"),
    ("GET", "transactions", "payer"), ("POST", "bulkQuotes", "payer"),
])
def test_destination_without_endpoint_gets_3201(scene: Scene, method: str, resource: str, role: str) -> None:
    """A destination that registered no endpoint for the message (TRX_REQ_SERVICE, AUTHORIZATIONS,
    BULK_QUOTES) cannot be reached either: 3201, as Mojaloop's services answer."""
    sender, receiver = scene.dfsp(role), scene.dfsp("silent", endpoints=False)
    error = _refused_with_3201(scene, method, resource, sender, receiver)
    assert "endpoint" in error.error_description


def test_error_callback_to_unknown_destination_is_dropped(scene: Scene) -> None:
    """`PUT /transactionRequests/{ID}/error` to a DFSP that does not exist is accepted and dropped:
    an error about an error callback would only go round in circles."""
    payer = scene.dfsp("payer")
    path = f"/transactionRequests/{new_id()}"
    mark = scene.dfsps.mark(payer)
    send(scene, "PUT", path + "/error", payer, "nosuchfsp", error_body("4101"), status=200)
    # the writer applies requests in order: once the GET's 3201 arrives, the error was handled too
    send(scene, "GET", path, payer, "nosuchfsp", status=202)
    scene.dfsps.error_callback(payer, path, since=mark)
    assert [r.path for r in scene.dfsps.received(payer)[mark:]] == [path + "/error"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("method", "resource", "role"), [
    ("POST", "transactionRequests", "payee"), ("GET", "authorizations", "payer"), ("POST", "bulkQuotes", "payer"),
])
def test_request_that_cannot_be_delivered_gets_1001(scene: Scene, method: str, resource: str, role: str) -> None:
    """A request whose destination does not answer (after the hub's retries) gives its sender
    `PUT /<resource>/{ID}/error` 1001 "Destination communication error"."""
    from miniloop.fspiop.endpoints import for_base_url

    sender, receiver = scene.dfsp(role), scene.dfsp("dead", endpoints=False)
    for endpoint_type, value in for_base_url(f"http://127.0.0.1:{_closed_port()}/{receiver}").items():
        r = scene.hub.admin.post(f"/participants/{receiver}/endpoints", json={"type": endpoint_type, "value": value})
        assert r.status_code == 201, r.text
    path, body, resource_path = message(method, resource, sender, receiver)
    mark = scene.dfsps.mark(sender)
    send(scene, method, path, sender, receiver, body, status=202)
    error = scene.dfsps.error_callback(sender, resource_path, since=mark, timeout=15)
    assert error.error_code == "1001", error
    assert_hub_originated(error, sender)


def test_bulk_quote_in_a_currency_the_payer_cannot_trade_gets_3100(scene: Scene) -> None:
    """`POST /bulkQuotes` makes the checks of `POST /quotes`: a payer without a POSITION account
    in the bulk's currency gets 3100, and nothing reaches the payee."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    body = bulk_quote_body(payer, payee, currency="EUR")
    mark, payee_mark = scene.dfsps.mark(payer), scene.dfsps.mark(payee)
    send(scene, "POST", "/bulkQuotes", payer, payee, body, status=202)
    error = scene.dfsps.error_callback(payer, f"/bulkQuotes/{body['bulkQuoteId']}", since=mark)
    assert error.error_code == "3100", error
    assert "EUR" in error.error_description
    assert scene.dfsps.find(payee, "POST", "/bulkQuotes", since=payee_mark) is None


# --------------------------------------------------------------------------- refused at once


def _without(body: dict[str, Any], dotted: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, leaf = dotted.split(".")
    node: Any = body
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    del node[leaf]
    return body


def _with(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, leaf = dotted.split(".")
    node: Any = body
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[leaf] = value
    return body


BAD_BODIES: dict[str, Callable[[str, str], tuple[str, str, str, dict[str, Any]]]] = {
    # name: (payer, payee) -> (method, path, named field, body)
    "transaction request without payee": lambda payer, payee: (
        "POST", "/transactionRequests", "payee", _without(transaction_request_body(payee, payer), "payee")),
    "transaction request without payer.partyIdentifier": lambda payer, payee: (
        "POST", "/transactionRequests", "payer.partyIdentifier",
        _without(transaction_request_body(payee, payer), "payer.partyIdentifier")),
    "transaction request with amount 5.0": lambda payer, payee: (
        "POST", "/transactionRequests", "amount.amount",
        _with(transaction_request_body(payee, payer), "amount.amount", "5.0")),
    "transaction request with authenticationType PIN": lambda payer, payee: (
        "POST", "/transactionRequests", "authenticationType",
        _with(transaction_request_body(payee, payer), "authenticationType", "PIN")),
    "transaction request answer in state DONE": lambda payer, payee: (
        "PUT", f"/transactionRequests/{new_id()}", "transactionRequestState", {"transactionRequestState": "DONE"}),
    "authorization answer without responseType": lambda payer, payee: (
        "PUT", f"/authorizations/{new_id()}", "responseType",
        {"authenticationInfo": {"authentication": "OTP", "authenticationValue": "1234"}}),
    "authorization answer with a spaced value": lambda payer, payee: (
        "PUT", f"/authorizations/{new_id()}", "authenticationValue",
        {"authenticationInfo": {"authentication": "QRCODE", "authenticationValue": "a b"}, "responseType": "ENTERED"}),
    "transaction answer with a 2-character code": lambda payer, payee: (
        "PUT", f"/transactions/{new_id()}", "code", {"transactionState": "COMPLETED", "code": "ab"}),
    "bulk quote with a bad individual amount": lambda payer, payee: (
        "POST", "/bulkQuotes", "individualQuotes[1].amount.amount",
        _with(bulk_quote_body(payer, payee), "individualQuotes.1.amount.amount", "-1")),
    "bulk quote without individualQuotes": lambda payer, payee: (
        "POST", "/bulkQuotes", "individualQuotes", _without(bulk_quote_body(payer, payee), "individualQuotes")),
    "bulk quote with 1,001 quotes": lambda payer, payee: (
        "POST", "/bulkQuotes", "individualQuotes", bulk_quote_body(payer, payee, count=1001)),
    "bulk quote answer without expiration": lambda payer, payee: (
        "PUT", f"/bulkQuotes/{new_id()}", "expiration", {"individualQuoteResults": []}),
    "bulk quote answer with a bad condition": lambda payer, payee: (
        "PUT", f"/bulkQuotes/{new_id()}", "individualQuoteResults[0].condition",
        {"individualQuoteResults": [{"quoteId": new_id(), "condition": "short"}], "expiration": in_seconds(60)}),
    "error callback without errorCode": lambda payer, payee: (
        "PUT", f"/transactions/{new_id()}/error", "errorCode",
        {"errorInformation": {"errorDescription": "Payee rejected transaction"}}),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_body_is_refused_with_3100_naming_the_field(scene: Scene, case: str) -> None:
    """A body that breaks the FSPIOP 1.1 schema is refused at once, 400/3100, and the description
    names the field by its JSON path; nothing is forwarded.

    The sender learns synchronously what to fix, instead of an answer that never comes.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    method, path, field, body = BAD_BODIES[case](payer, payee)
    sender, receiver = (payee, payer) if path.startswith("/transactionRequests") and method == "POST" else (payer, payee)
    mark = scene.dfsps.mark(receiver)
    r = scene.fspiop.send(method, path, sender, receiver, body)
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3100", description
    assert field in description, description
    assert scene.dfsps.received(receiver)[mark:] == []


@pytest.mark.parametrize(("method", "resource", "role"), MESSAGES)
def test_missing_fspiop_destination_is_3102(scene: Scene, method: str, resource: str, role: str) -> None:
    """Every one of these messages is routed by FSPIOP-Destination alone: without it the request
    is 400/3102 naming fspiop-destination (CONFORMANCE #26, as for quotes)."""
    sender, receiver = scene.dfsp(role), scene.dfsp("other")
    path, body, _ = message(method, resource, sender, receiver)
    r = scene.fspiop.send(method, path, sender, None, body)
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3102", description
    assert "fspiop-destination" in description.lower()


@pytest.mark.parametrize("resource", ["transactionRequests", "authorizations", "transactions", "bulkQuotes"])
def test_unsupported_version_is_406(scene: Scene, resource: str) -> None:
    """Content-Type version 2.0 on a callback of these resources is 406/3001 (CONFORMANCE #30)."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    path, body, _ = message("PUT", resource, payee, payer)
    r = scene.fspiop.send("PUT", path, payee, payer, body, version="2.0")
    assert r.status_code == 406, r.text
    assert sync_error(r)[0] == "3001"


def test_post_transaction_request_accepting_an_unsupported_version_is_406(scene: Scene) -> None:
    """#30 on `POST /transactionRequests`: Accept version 7 is 406/3001, and the extension list
    names the versions the hub speaks, so the payee's DFSP can negotiate down."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    r = scene.fspiop.post("/transactionRequests", payee, payer, transaction_request_body(payee, payer),
                          accept_version="7")
    assert r.status_code == 406, r.text
    assert sync_error(r)[0] == "3001"
    assert {"key": "1", "value": "1"} in r.json()["errorInformation"]["extensionList"]["extension"]


@pytest.mark.parametrize(("query", "code", "named"), [
    ("retriesLeft=2&amount=102&currency=USD", "3102", "authenticationType"),
    ("authenticationType=OTP&amount=102&currency=USD", "3102", "retriesLeft"),
    ("authenticationType=OTP&retriesLeft=2&currency=USD", "3102", "amount"),
    ("authenticationType=OTP&retriesLeft=2&amount=102", "3102", "currency"),
    ("", "3102", "authenticationType"),
    ("authenticationType=PIN&retriesLeft=2&amount=102&currency=USD", "3100", "authenticationType"),
    ("authenticationType=OTP&retriesLeft=0&amount=102&currency=USD", "3100", "retriesLeft"),
    ("authenticationType=OTP&retriesLeft=2&amount=1.50&currency=USD", "3100", "amount"),
    ("authenticationType=OTP&retriesLeft=2&amount=102&currency=usd", "3100", "currency"),
])
def test_authorization_query_is_checked(scene: Scene, query: str, code: str, named: str) -> None:
    """`GET /authorizations/{ID}` requires authenticationType, retriesLeft, amount and currency in
    its query (API Definition 6.6.3.1): a missing one is 400/3102, a malformed one 400/3100, each
    naming the parameter, and nothing is forwarded."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    mark = scene.dfsps.mark(payee)
    r = scene.fspiop.get(f"/authorizations/{new_id()}" + (f"?{query}" if query else ""), payer, payee)
    assert r.status_code == 400, r.text
    got_code, description = sync_error(r)
    assert got_code == code, description
    assert named in description
    assert scene.dfsps.received(payee)[mark:] == []


# --------------------------------------------------------------------------- events


def test_a_payee_initiated_payment_publishes_its_steps(scene: Scene) -> None:
    """The steps of a merchant payment are announced on NATS, in order, without the OTP: the
    request to pay, the payer's answer, the authorization asked and answered, the transaction's
    outcome, and a refusal by error callback."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    body = transaction_request_body(payee, payer)
    request_id, transaction_id = body["transactionRequestId"], new_id()
    otp = "918273"

    def act() -> None:
        send(scene, "POST", "/transactionRequests", payee, payer, body, status=202)
        send(scene, "PUT", f"/transactionRequests/{request_id}", payer, payee,
             {"transactionId": transaction_id, "transactionRequestState": "ACCEPTED"}, status=200)
        send(scene, "GET", f"/authorizations/{request_id}?{AUTHORIZATION_QUERY}", payer, payee, status=202)
        send(scene, "PUT", f"/authorizations/{request_id}", payee, payer,
             {"authenticationInfo": {"authentication": "OTP", "authenticationValue": otp},
              "responseType": "ENTERED"}, status=200)
        send(scene, "GET", f"/transactions/{transaction_id}", payer, payee, status=202)
        send(scene, "PUT", f"/transactions/{transaction_id}", payee, payer,
             {"transactionState": "COMPLETED", "code": "Voucher1234"}, status=200)
        send(scene, "PUT", f"/transactionRequests/{request_id}/error", payer, payee, error_body("4101"), status=200)

    events = watch_events(scene.hub.urls["nats"], [
        f"ml.event.transactionRequest.{request_id}.>", f"ml.event.authorization.{request_id}.>",
        f"ml.event.transaction.{transaction_id}.>"], 7, act)

    assert [e["subject"] for e in events] == [
        f"ml.event.transactionRequest.{request_id}.requested",
        f"ml.event.transactionRequest.{request_id}.answered",
        f"ml.event.authorization.{request_id}.requested",
        f"ml.event.authorization.{request_id}.answered",
        f"ml.event.transaction.{transaction_id}.requested",
        f"ml.event.transaction.{transaction_id}.answered",
        f"ml.event.transactionRequest.{request_id}.rejected",
    ]
    requested, answered, asked, authorized, _, completed, rejected = events
    assert requested["type"] == "transactionRequest.requested"
    assert (requested["payeeFsp"], requested["payerFsp"], requested["amount"], requested["currency"]) == (
        payee, payer, "25", "USD")
    assert requested["authenticationType"] == "OTP"
    assert (answered["transactionRequestState"], answered["transactionId"]) == ("ACCEPTED", transaction_id)
    assert (asked["retriesLeft"], asked["amount"], asked["authenticationType"]) == ("2", "102", "OTP")
    assert (authorized["responseType"], authorized["authenticationType"]) == ("ENTERED", "OTP")
    assert completed["transactionState"] == "COMPLETED"
    assert (rejected["by"], rejected["errorCode"]) == (payer, "4101")
    assert all(otp not in json.dumps(e) and "Voucher1234" not in json.dumps(e) for e in events)


def test_a_bulk_quote_publishes_requested_and_answered(scene: Scene) -> None:
    """`bulkQuote.requested` and `bulkQuote.answered` count the quotes and the failed ones."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    body = bulk_quote_body(payer, payee, count=3)
    bulk_id = body["bulkQuoteId"]
    results = [quote_result(q) for q in body["individualQuotes"]]
    results[2] = {"quoteId": body["individualQuotes"][2]["quoteId"], "errorInformation": error_body("5101")[
        "errorInformation"]}

    def act() -> None:
        send(scene, "POST", "/bulkQuotes", payer, payee, body, status=202)
        send(scene, "PUT", f"/bulkQuotes/{bulk_id}", payee, payer,
             {"individualQuoteResults": results, "expiration": in_seconds(60)}, status=200)

    requested, answered = watch_events(scene.hub.urls["nats"], [f"ml.event.bulkQuote.{bulk_id}.>"], 2, act)
    assert requested["subject"] == f"ml.event.bulkQuote.{bulk_id}.requested"
    assert (requested["payerFsp"], requested["payeeFsp"], requested["individualQuotes"]) == (payer, payee, 3)
    assert requested["currencies"] == ["USD"]
    assert answered["subject"] == f"ml.event.bulkQuote.{bulk_id}.answered"
    assert (answered["individualQuoteResults"], answered["failed"]) == (3, 1)


def test_an_id_that_is_not_a_subject_token_is_forwarded_without_an_event(scene: Scene) -> None:
    """Path ids are not checked (the API types them as any string): `PUT /transactions/a.b` is
    forwarded, and publishes nothing rather than a subject with an extra level."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    mark = scene.dfsps.mark(payer)
    r = scene.fspiop.put("/transactions/a.b", payee, payer, {"transactionState": "PENDING"})
    assert r.status_code == 200, r.text
    scene.dfsps.wait_for(payer, "PUT", "/transactions/a.b", since=mark, exact=True)


def test_a_method_the_api_does_not_have_is_405(scene: Scene) -> None:
    """`POST /authorizations/{ID}` is not in the API (only GET and PUT are): 405, as on any known path."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    r = scene.fspiop.post(f"/authorizations/{new_id()}", payer, payee, {"responseType": "ENTERED"})
    assert r.status_code == 405, r.text
