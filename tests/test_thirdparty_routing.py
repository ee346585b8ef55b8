"""Conformance, the Third-party API v1.0 (PISPs) through a real hub: `/consentRequests`,
`/consents`, `/accounts`, `/thirdpartyRequests/...` routed between test participants, `GET
/services/{ServiceType}` answered by the hub, and the CONSENT and THIRD_PARTY_LINK party types in
the account lookup service.

The hub only routes these (as Mojaloop's thirdparty-api-svc does), so what matters to a PISP or a
DFSP is that each message reaches the other side unchanged, at the endpoint the receiver
registered for it, and that the hub's own refusals are ones it can act on: 3201 as a `PUT
.../error` from the Hub when the other side cannot be reached, 1001 when a request could not be
delivered, 400 at once for a broken body or header.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import socket
from collections.abc import Callable
from typing import Any

import pytest
from fspiop_dfsp import watch_events, HUB, Received, Scene, b64url, dumps, error_body, imf_date, in_seconds, new_id, now_iso, party, \
    sync_error

from miniloop.fspiop.endpoints import THIRDPARTY_PATHS, for_base_url, thirdparty_for_base_url

TP = {"resource": "thirdparty", "version": "1.0"}  # the headers Mojaloop's third-party SDKs send
TP_CONTENT_TYPE = "application/vnd.interoperability.thirdparty+json;version=1.0"


# --------------------------------------------------------------------------- participants


def tp_participant(scene: Scene, prefix: str, role: str = "dfsp", *, base_url: str | None = None) -> str:
    """A participant with the FSPIOP endpoints and the Third-party API's TP_CB_URL_* endpoints of
    `role` (dfsp, pisp, auth-service), registered through the Admin API like any endpoint."""
    name = scene.dfsp(prefix)
    register_tp(scene, name, thirdparty_for_base_url(base_url or scene.dfsps.base_url(name), role))
    return name


def register_tp(scene: Scene, name: str, endpoints: dict[str, str]) -> None:
    for endpoint_type, value in endpoints.items():
        r = scene.hub.admin.post(f"/participants/{name}/endpoints", json={"type": endpoint_type, "value": value})
        assert r.status_code == 201, r.text


# --------------------------------------------------------------------------- bodies

ADDRESS = "dfspa.alice.1234"


def scopes() -> list[dict[str, Any]]:
    return [{"address": ADDRESS, "actions": ["ACCOUNTS_TRANSFER", "ACCOUNTS_GET_BALANCE"]},
            {"address": "dfspa.alice.5678", "actions": ["ACCOUNTS_STATEMENT"]}]


def consent_request_body() -> dict[str, Any]:
    return {"consentRequestId": new_id(), "userId": "alice@dfspa", "scopes": scopes(),
            "authChannels": ["WEB", "OTP"], "callbackUri": "pisp-app://linked"}


def consent_request_answer() -> dict[str, Any]:
    return {"scopes": scopes(), "authChannels": ["WEB"], "callbackUri": "pisp-app://linked",
            "authUri": "https://dfspa.example/login?session=1"}


def consent_body(credential: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"consentId": new_id(), "consentRequestId": new_id(), "scopes": scopes(),
                            "status": "ISSUED"}
    if credential:
        body["credential"] = generic_credential("PENDING")
    return body


def generic_credential(status: str) -> dict[str, Any]:
    return {"credentialType": "GENERIC", "status": status,
            "genericPayload": {"publicKey": b64url(os.urandom(65)), "signature": b64url(os.urandom(64))}}


def tp_transaction_body(dfsp: str, payee: str) -> dict[str, Any]:
    return {
        "transactionRequestId": new_id(),
        "payee": party(payee),
        "payer": {"partyIdType": "THIRD_PARTY_LINK", "partyIdentifier": "link-" + secrets.token_hex(8),
                  "fspId": dfsp},
        "amountType": "SEND",
        "amount": {"amount": "12.5", "currency": "USD"},
        "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
        "expiration": in_seconds(60),
    }


def authorization_body(pisp_user_dfsp: str, payee: str) -> dict[str, Any]:
    return {
        "authorizationRequestId": new_id(), "transactionRequestId": new_id(),
        "challenge": b64url(os.urandom(32)),
        "transferAmount": {"amount": "12.5", "currency": "USD"},
        "payeeReceiveAmount": {"amount": "12.5", "currency": "USD"},
        "fees": {"amount": "0", "currency": "USD"},
        "payer": {"partyIdType": "THIRD_PARTY_LINK", "partyIdentifier": "link-1", "fspId": pisp_user_dfsp},
        "payee": party(payee),
        "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
        "expiration": in_seconds(60),
    }


def verification_body() -> dict[str, Any]:
    return {"verificationRequestId": new_id(), "challenge": b64url(os.urandom(32)), "consentId": new_id(),
            "signedPayloadType": "GENERIC", "genericSignedPayload": b64url(os.urandom(64))}


SIGNED_AUTHORIZATION = {"responseType": "ACCEPTED",
                        "signedPayload": {"signedPayloadType": "GENERIC", "genericSignedPayload": "c2lnbmVk"}}


# --------------------------------------------------------------------------- sending and checking


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class Sent:
    """One third-party request sent with known Date and traceparent, so that what arrives can be
    compared with what was sent."""

    def __init__(self, scene: Scene, method: str, path: str, source: str, destination: str | None,
                 body: Any = None, **options: Any) -> None:
        self.headers = {"date": imf_date(), "traceparent": new_traceparent(), **options.pop("headers", {})}
        options = {**TP, **options}
        self.raw = dumps(body) if body is not None else None
        self.response = scene.fspiop.send(method, path, source, destination, body, headers=self.headers, **options)
        self.expected = scene.fspiop.headers_for(method, path, source, destination, headers=self.headers,
                                                 **options)

    def assert_status(self, status: int) -> None:
        assert self.response.status_code == status, self.response.text
        assert self.response.content == b""

    def assert_arrived_unchanged(self, got: Received) -> None:
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


def assert_from_hub(request: Received, to: str) -> None:
    """A message the hub itself sent: FSPIOP-Source Hub, the third-party media type, the
    FSPIOP-URI and FSPIOP-HTTP-Method of the message itself, a traceparent."""
    h = request.headers
    assert h.get("fspiop-source") == HUB, request
    assert h.get("fspiop-destination") == to, request
    assert h.get("content-type") == TP_CONTENT_TYPE, request
    assert h.get("fspiop-uri") == request.path, request
    assert h.get("fspiop-http-method") == request.method, request
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", h.get("traceparent", "")), request


# --------------------------------------------------------------------------- every route, forwarded

# name: (pisp, dfsp) -> (method, path, sender, receiver, body, answer status); the sender is
# "pisp" or "dfsp", as the API's flows send them.
Message = tuple[str, str, str, str, Any, int]
ROUTES: dict[str, Callable[[str, str], Message]] = {
    "POST /consentRequests": lambda p, d: ("POST", "/consentRequests", p, d, consent_request_body(), 202),
    "PUT /consentRequests/{ID}": lambda p, d: (
        "PUT", f"/consentRequests/{new_id()}", d, p, consent_request_answer(), 202),
    "PATCH /consentRequests/{ID}": lambda p, d: (
        "PATCH", f"/consentRequests/{new_id()}", p, d, {"authToken": "123456"}, 202),
    "PUT /consentRequests/{ID}/error": lambda p, d: (
        "PUT", f"/consentRequests/{new_id()}/error", d, p, error_body("6203", "Invalid auth token"), 200),
    "POST /consents": lambda p, d: ("POST", "/consents", d, p, consent_body(), 202),
    "POST /consents (to the auth-service)": lambda p, d: ("POST", "/consents", d, p, consent_body(True), 202),
    "GET /consents/{ID}": lambda p, d: ("GET", f"/consents/{new_id()}", p, d, None, 202),
    "PUT /consents/{ID}": lambda p, d: (
        "PUT", f"/consents/{new_id()}", p, d,
        {"status": "ISSUED", "scopes": scopes(), "credential": generic_credential("PENDING")}, 202),
    "PUT /consents/{ID} (verified)": lambda p, d: (
        "PUT", f"/consents/{new_id()}", p, d, {"scopes": scopes(), "credential": generic_credential("VERIFIED")}, 202),
    "PATCH /consents/{ID}": lambda p, d: (
        "PATCH", f"/consents/{new_id()}", d, p, {"credential": {"status": "VERIFIED"}}, 200),
    "PATCH /consents/{ID} (revoked)": lambda p, d: (
        "PATCH", f"/consents/{new_id()}", d, p, {"status": "REVOKED", "revokedAt": now_iso()}, 200),
    "DELETE /consents/{ID}": lambda p, d: ("DELETE", f"/consents/{new_id()}", p, d, None, 202),
    "PUT /consents/{ID}/error": lambda p, d: (
        "PUT", f"/consents/{new_id()}/error", d, p, error_body("6200", "Invalid consent credential"), 200),
    "GET /accounts/{ID}": lambda p, d: ("GET", "/accounts/alice@dfspa", p, d, None, 202),
    "PUT /accounts/{ID}": lambda p, d: (
        "PUT", "/accounts/alice@dfspa", d, p,
        {"accounts": [{"accountNickname": "Alice's savings", "address": ADDRESS, "currency": "USD"}]}, 200),
    "PUT /accounts/{ID} (accountList)": lambda p, d: (
        "PUT", "/accounts/alice@dfspa", d, p,
        {"accountList": [{"accountNickname": "Alice's savings", "address": ADDRESS, "currency": "USD"}]}, 200),
    "PUT /accounts/{ID}/error": lambda p, d: (
        "PUT", "/accounts/alice@dfspa/error", d, p, error_body("6205", "No accounts found"), 200),
    "POST /thirdpartyRequests/transactions": lambda p, d: (
        "POST", "/thirdpartyRequests/transactions", p, d, tp_transaction_body(d, d), 202),
    "GET /thirdpartyRequests/transactions/{ID}": lambda p, d: (
        "GET", f"/thirdpartyRequests/transactions/{new_id()}", p, d, None, 202),
    "PUT /thirdpartyRequests/transactions/{ID}": lambda p, d: (
        "PUT", f"/thirdpartyRequests/transactions/{new_id()}", d, p,
        {"transactionId": new_id(), "transactionRequestState": "RECEIVED"}, 200),
    "PATCH /thirdpartyRequests/transactions/{ID}": lambda p, d: (
        "PATCH", f"/thirdpartyRequests/transactions/{new_id()}", d, p,
        {"transactionRequestState": "ACCEPTED", "transactionState": "COMPLETED", "completedTimestamp": now_iso()},
        200),
    "PUT /thirdpartyRequests/transactions/{ID}/error": lambda p, d: (
        "PUT", f"/thirdpartyRequests/transactions/{new_id()}/error", d, p, error_body("6003"), 200),
    "POST /thirdpartyRequests/authorizations": lambda p, d: (
        "POST", "/thirdpartyRequests/authorizations", d, p, authorization_body(d, d), 202),
    "PUT /thirdpartyRequests/authorizations/{ID}": lambda p, d: (
        "PUT", f"/thirdpartyRequests/authorizations/{new_id()}", p, d, SIGNED_AUTHORIZATION, 200),
    "PUT /thirdpartyRequests/authorizations/{ID} (rejected)": lambda p, d: (
        "PUT", f"/thirdpartyRequests/authorizations/{new_id()}", p, d, {"responseType": "REJECTED"}, 200),
    "PUT /thirdpartyRequests/authorizations/{ID}/error": lambda p, d: (
        "PUT", f"/thirdpartyRequests/authorizations/{new_id()}/error", p, d, error_body("6104"), 200),
    "POST /thirdpartyRequests/verifications": lambda p, d: (
        "POST", "/thirdpartyRequests/verifications", d, p, verification_body(), 202),
    "PUT /thirdpartyRequests/verifications/{ID}": lambda p, d: (
        "PUT", f"/thirdpartyRequests/verifications/{new_id()}", p, d, {"authenticationResponse": "VERIFIED"}, 200),
    "PUT /thirdpartyRequests/verifications/{ID}/error": lambda p, d: (
        "PUT", f"/thirdpartyRequests/verifications/{new_id()}/error", p, d, error_body("6201"), 200),
    "PUT /services/{ServiceType}": lambda p, d: ("PUT", "/services/PISP", d, p, {"providers": [p]}, 200),
    "PUT /services/{ServiceType}/error": lambda p, d: (
        "PUT", "/services/PISP/error", d, p, error_body("6000"), 200),
}


@pytest.fixture(scope="module")
def pisp(scene: Scene) -> str:
    return tp_participant(scene, "pisp", "pisp")


@pytest.fixture(scope="module")
def dfsp(scene: Scene) -> str:
    return tp_participant(scene, "tpdfsp", "dfsp")


def _expected_endpoint(method: str, path: str) -> str:
    """The TP_CB_URL_* type a message is addressed with (Mojaloop's types; DELETE as GET)."""
    parts = path.strip("/").split("/")
    stems = {"consentRequests": "CONSENT_REQUEST", "consents": "CONSENT", "accounts": "ACCOUNTS",
             "services": "SERVICES", "transactions": "TRANSACTION_REQUEST",
             "authorizations": "TRANSACTION_REQUEST_AUTH", "verifications": "TRANSACTION_REQUEST_VERIFY"}
    if parts[0] == "thirdpartyRequests":
        parts = parts[1:]
    stem = stems[parts[0]]
    if len(parts) == 1:
        return f"TP_CB_URL_{stem}_POST"
    if parts[-1] == "error":
        return f"TP_CB_URL_{stem}_PUT_ERROR"
    return f"TP_CB_URL_{stem}_{'GET' if method == 'DELETE' else method}"


@pytest.mark.parametrize("route", list(ROUTES))
def test_each_route_is_forwarded_unchanged(scene: Scene, pisp: str, dfsp: str, route: str) -> None:
    """Every third-party message reaches FSPIOP-Destination at the URL its TP_CB_URL_* endpoint
    gives, with the FSPIOP headers and the body bytes as the sender sent them, and is answered
    with the API's status (202 or 200) and no body."""
    method, path, sender, receiver, body, status = ROUTES[route](pisp, dfsp)
    expected_url = THIRDPARTY_PATHS[_expected_endpoint(method, path)]
    mark = scene.dfsps.mark(receiver)
    sent = send(scene, method, path, sender, receiver, body, status=status)
    got = scene.dfsps.wait_for(receiver, method, path, since=mark, exact=True)
    sent.assert_arrived_unchanged(got)
    url_pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{\{\w+\}\}", expected_url))
    assert re.fullmatch(url_pattern, got.path), (expected_url, got.path)
    if body is not None:
        assert got.body == body


def test_every_api_operation_is_routed_or_refused_on_purpose(scene: Scene, pisp: str, dfsp: str) -> None:
    """The API's GETs that neither Mojaloop's switch nor its endpoint types route
    (`GET /consentRequests/{ID}`, `/thirdpartyRequests/authorizations/{ID}`, `.../verifications/{ID}`)
    are 501/2002, not a 405 that would suggest a mistyped path; nothing is forwarded."""
    mark = scene.dfsps.mark(dfsp)
    for path in (f"/consentRequests/{new_id()}", f"/thirdpartyRequests/authorizations/{new_id()}",
                 f"/thirdpartyRequests/verifications/{new_id()}"):
        r = scene.fspiop.get(path, pisp, dfsp, **TP)
        assert r.status_code == 501, r.text
        assert sync_error(r)[0] == "2002"
    r = scene.fspiop.send("POST", f"/consents/{new_id()}", pisp, dfsp, consent_body(), **TP)
    assert r.status_code == 405, r.text
    assert scene.dfsps.received(dfsp)[mark:] == []


def test_mojaloop_style_base_url_endpoints_get_the_path_appended(scene: Scene, pisp: str) -> None:
    """Mojaloop registers a TP_CB_URL_* endpoint as a bare base URL and appends the message's path;
    a participant onboarded that way is reached at `<base>/consentRequests/{ID}` too."""
    name = scene.dfsp("mojadfsp")
    base = scene.dfsps.base_url(name)
    register_tp(scene, name, {"TP_CB_URL_CONSENT_REQUEST_POST": base, "TP_CB_URL_CONSENT_REQUEST_PATCH": base + "/"})
    body = consent_request_body()
    mark = scene.dfsps.mark(name)
    send(scene, "POST", "/consentRequests", pisp, name, body, status=202)
    assert scene.dfsps.wait_for(name, "POST", "/consentRequests", since=mark, exact=True).body == body
    path = f"/consentRequests/{body['consentRequestId']}"
    send(scene, "PATCH", path, pisp, name, {"authToken": "123456"}, status=202)
    scene.dfsps.wait_for(name, "PATCH", path, since=mark, exact=True)


# --------------------------------------------------------------------------- the other side cannot be reached

# (method, path, body) of a message whose sender expects an answer or a refusal, and the path its
# refusal comes back on
def refusable(pisp: str, dfsp: str) -> list[tuple[str, str, Any, str]]:
    request, transaction = consent_request_body(), tp_transaction_body(dfsp, dfsp)
    consent_id, tx_id = new_id(), new_id()
    return [
        ("POST", "/consentRequests", request, f"/consentRequests/{request['consentRequestId']}"),
        ("PATCH", f"/consentRequests/{new_id()}", {"authToken": "abc"}, None),
        ("DELETE", f"/consents/{consent_id}", None, f"/consents/{consent_id}"),
        ("GET", "/accounts/bob", None, "/accounts/bob"),
        ("POST", "/thirdpartyRequests/transactions", transaction,
         f"/thirdpartyRequests/transactions/{transaction['transactionRequestId']}"),
        ("PATCH", f"/thirdpartyRequests/transactions/{tx_id}",
         {"transactionRequestState": "ACCEPTED", "transactionState": "COMPLETED"},
         f"/thirdpartyRequests/transactions/{tx_id}"),
        ("PUT", f"/consents/{consent_id}", {"scopes": scopes(), "credential": generic_credential("VERIFIED")},
         f"/consents/{consent_id}"),
    ]


def _error_path(method: str, path: str, resource_path: str | None) -> str:
    return (resource_path or path) + "/error"


@pytest.mark.parametrize("case", range(7))
def test_unknown_destination_gets_3201_from_the_hub(scene: Scene, pisp: str, case: int) -> None:
    """A message to a participant that does not exist is accepted, then its sender gets
    `PUT .../error` 3201 from FSPIOP-Source Hub at its own TP_CB_URL_*_PUT_ERROR endpoint."""
    method, path, body, resource_path = refusable(pisp, "nosuchfsp")[case]
    mark = scene.dfsps.mark(pisp)
    sent = send(scene, method, path, pisp, "nosuchfsp", body)
    assert sent.response.status_code in (200, 202), sent.response.text
    error = scene.dfsps.wait_for(pisp, "PUT", _error_path(method, path, resource_path), since=mark, exact=True)
    assert error.error_code == "3201", error
    assert "nosuchfsp" in error.error_description
    assert_from_hub(error, pisp)


@pytest.mark.parametrize("case", [0, 1, 3, 6])
def test_inactive_destination_gets_3201(scene: Scene, pisp: str, case: int) -> None:
    """A participant the operator deactivated takes part in nothing: 3201, and nothing reaches it
    even though its endpoints still answer."""
    receiver = tp_participant(scene, "inactive")
    scene.set_active(receiver, False)
    method, path, body, resource_path = refusable(pisp, receiver)[case]
    mark, receiver_mark = scene.dfsps.mark(pisp), scene.dfsps.mark(receiver)
    send(scene, method, path, pisp, receiver, body)
    error = scene.dfsps.wait_for(pisp, "PUT", _error_path(method, path, resource_path), since=mark, exact=True)
    assert error.error_code == "3201", error
    assert "not active" in error.error_description
    assert_from_hub(error, pisp)
    assert scene.dfsps.received(receiver)[receiver_mark:] == []


@pytest.mark.parametrize("case", [0, 2, 4, 5])
def test_destination_without_the_endpoint_gets_3201(scene: Scene, pisp: str, case: int) -> None:
    """A participant with FSPIOP endpoints only (no TP_CB_URL_*) cannot be reached by third-party
    messages: 3201 naming the missing endpoint."""
    receiver = scene.dfsp("fspiopOnly")
    method, path, body, resource_path = refusable(pisp, receiver)[case]
    mark = scene.dfsps.mark(pisp)
    send(scene, method, path, pisp, receiver, body)
    error = scene.dfsps.wait_for(pisp, "PUT", _error_path(method, path, resource_path), since=mark, exact=True)
    assert error.error_code == "3201", error
    assert "endpoint" in error.error_description
    assert scene.dfsps.received(receiver) == []


def test_error_callback_to_unknown_destination_is_dropped(scene: Scene, dfsp: str) -> None:
    """`PUT /consents/{ID}/error` to a participant that does not exist is accepted and dropped: an
    error about an error callback would only go round in circles."""
    path = f"/consents/{new_id()}"
    mark = scene.dfsps.mark(dfsp)
    send(scene, "PUT", path + "/error", dfsp, "nosuchfsp", error_body("6200"), status=200)
    send(scene, "DELETE", path, dfsp, "nosuchfsp", status=202)  # the writer keeps the order
    scene.dfsps.wait_for(dfsp, "PUT", path + "/error", since=mark, exact=True)
    assert [r.path for r in scene.dfsps.received(dfsp)[mark:]] == [path + "/error"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("case", [0, 1, 2, 3])
def test_request_that_cannot_be_delivered_gets_1001(scene: Scene, pisp: str, case: int) -> None:
    """A request whose destination does not answer (after the hub's retries) gives its sender
    `PUT .../error` 1001 from the Hub; `PATCH /consentRequests/{ID}` counts as a request (the
    DFSP answers it), so the PISP hears of it on `PUT /consentRequests/{ID}/error`."""
    receiver = tp_participant(scene, "dead", base_url=f"http://127.0.0.1:{_closed_port()}/dead")
    method, path, body, resource_path = refusable(pisp, receiver)[case]
    mark = scene.dfsps.mark(pisp)
    send(scene, method, path, pisp, receiver, body, status=202)
    error = scene.dfsps.wait_for(pisp, "PUT", _error_path(method, path, resource_path), since=mark, exact=True,
                                 timeout=15)
    assert error.error_code == "1001", error
    assert_from_hub(error, pisp)


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


BAD_BODIES: dict[str, tuple[str, str, str, Callable[[str], dict[str, Any]]]] = {
    # name: (method, path, named field, receiver -> body)
    "consent request without userId": (
        "POST", "/consentRequests", "userId", lambda d: _without(consent_request_body(), "userId")),
    "consent request with a bad scope action": (
        "POST", "/consentRequests", "scopes[0].actions[0]",
        lambda d: _with(consent_request_body(), "scopes.0.actions", ["ACCOUNTS_EVERYTHING"])),
    "consent request with an address ending in a period": (
        "POST", "/consentRequests", "scopes[1].address",
        lambda d: _with(consent_request_body(), "scopes.1.address", "dfspa.alice.")),
    "consent request with channel SMS": (
        "POST", "/consentRequests", "authChannels[0]", lambda d: _with(consent_request_body(), "authChannels", ["SMS"])),
    "WEB answer without authUri": (
        "PUT", f"/consentRequests/{new_id()}", "authUri", lambda d: _without(consent_request_answer(), "authUri")),
    "auth token that is not base64url": (
        "PATCH", f"/consentRequests/{new_id()}", "authToken", lambda d: {"authToken": "12 34"}),
    "consent without consentRequestId or credential": (
        "POST", "/consents", "consentRequestId", lambda d: _without(consent_body(), "consentRequestId")),
    "consent with status GRANTED": (
        "POST", "/consents", "status", lambda d: _with(consent_body(), "status", "GRANTED")),
    "credential with a standard-base64 public key": (
        "PUT", f"/consents/{new_id()}", "credential.genericPayload.publicKey",
        lambda d: {"scopes": scopes(), "credential": _with(generic_credential("PENDING"), "genericPayload.publicKey",
                                                             "a+b/c==")}),
    "revocation without revokedAt": (
        "PATCH", f"/consents/{new_id()}", "revokedAt", lambda d: {"status": "REVOKED"}),
    "accounts without a list": ("PUT", "/accounts/alice", "accounts", lambda d: {}),
    "account without a currency": (
        "PUT", "/accounts/alice", "accounts[0].currency",
        lambda d: {"accounts": [{"accountNickname": "savings", "address": ADDRESS}]}),
    "transaction request with payer type PHONE": (
        "POST", "/thirdpartyRequests/transactions", "payer.partyIdType",
        lambda d: _with(tp_transaction_body(d, d), "payer.partyIdType", "PHONE")),
    "transaction request with amount 1.50": (
        "POST", "/thirdpartyRequests/transactions", "amount.amount",
        lambda d: _with(tp_transaction_body(d, d), "amount.amount", "1.50")),
    "transaction outcome COMMITTED": (
        "PATCH", f"/thirdpartyRequests/transactions/{new_id()}", "transactionState",
        lambda d: {"transactionRequestState": "ACCEPTED", "transactionState": "COMMITTED"}),
    "authorization request without challenge": (
        "POST", "/thirdpartyRequests/authorizations", "challenge",
        lambda d: _without(authorization_body(d, d), "challenge")),
    "accepted authorization without signedPayload": (
        "PUT", f"/thirdpartyRequests/authorizations/{new_id()}", "signedPayload",
        lambda d: {"responseType": "ACCEPTED"}),
    "GENERIC verification without its payload": (
        "POST", "/thirdpartyRequests/verifications", "genericSignedPayload",
        lambda d: _without(verification_body(), "genericSignedPayload")),
    "verification answer REJECTED": (
        "PUT", f"/thirdpartyRequests/verifications/{new_id()}", "authenticationResponse",
        lambda d: {"authenticationResponse": "REJECTED"}),
    "services answer without providers": ("PUT", "/services/PISP", "providers", lambda d: {}),
    "error callback without errorCode": (
        "PUT", f"/consents/{new_id()}/error", "errorCode",
        lambda d: {"errorInformation": {"errorDescription": "no"}}),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_body_is_refused_with_3100_naming_the_field(scene: Scene, pisp: str, dfsp: str, case: str) -> None:
    """A body that breaks the Third-party API's schema is refused at once, 400/3100, with a
    description naming the field by its JSON path; nothing is forwarded."""
    method, path, field, make = BAD_BODIES[case]
    mark = scene.dfsps.mark(dfsp)
    r = scene.fspiop.send(method, path, pisp, dfsp, make(dfsp), **TP)
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3100", description
    assert field in description, description
    assert scene.dfsps.received(dfsp)[mark:] == []


# --------------------------------------------------------------------------- headers


def test_per_resource_media_type_is_accepted_and_the_hub_answers_in_thirdparty(scene: Scene, pisp: str) -> None:
    """`application/vnd.interoperability.consentRequests+json;version=1.0` (FSPIOP's naming) is
    accepted like `...thirdparty+json;version=1.0`; the hub's own messages use `thirdparty`."""
    mark = scene.dfsps.mark(pisp)
    body = consent_request_body()
    send(scene, "POST", "/consentRequests", pisp, "nosuchfsp", body, status=202,
         resource="consentRequests", version="1.0")
    error = scene.dfsps.error_callback(pisp, f"/consentRequests/{body['consentRequestId']}", since=mark)
    assert error.headers["content-type"] == TP_CONTENT_TYPE


@pytest.mark.parametrize(("header", "value", "status", "code"), [
    ("content-type", "application/vnd.interoperability.thirdparty+json;version=1.1", 406, "3001"),
    ("content-type", "application/json", 400, "3101"),
    ("accept", "application/vnd.interoperability.thirdparty+json;version=2", 406, "3001"),
    ("fspiop-destination", None, 400, "3102"),
    ("date", None, 400, "3102"),
])
def test_header_rules_apply(scene: Scene, pisp: str, dfsp: str, header: str, value: str | None,
                            status: int, code: str) -> None:
    """The FSPIOP header rules hold on the third-party resources, with the API's one version:
    1.0 (a 406 lists it as its only version)."""
    r = scene.fspiop.post("/consentRequests", pisp, dfsp, consent_request_body(), headers={header: value}, **TP)
    assert r.status_code == status, r.text
    assert sync_error(r)[0] == code
    if status == 406:
        assert r.json()["errorInformation"]["extensionList"]["extension"] == [{"key": "1", "value": "0"}]


def test_unregistered_source_is_refused(scene: Scene, dfsp: str) -> None:
    r = scene.fspiop.post("/consentRequests", "nobody", dfsp, consent_request_body(), **TP)
    assert r.status_code == 400, r.text
    assert sync_error(r)[0] == "3100"


# --------------------------------------------------------------------------- GET /services


def get_services(scene: Scene, requester: str, service_type: str) -> Received:
    mark = scene.dfsps.mark(requester)
    send(scene, "GET", f"/services/{service_type}", requester, None, status=202)
    answer = scene.dfsps.answer(requester, f"/services/{service_type}", since=mark)
    assert_from_hub(answer, requester)
    assert answer.path == f"/services/{service_type}", answer
    return answer


def test_services_are_answered_by_the_hub_from_registered_endpoints(scene: Scene, pisp: str, dfsp: str) -> None:
    """`GET /services/THIRD_PARTY_DFSP` lists the active participants that receive consent
    requests (TP_CB_URL_CONSENT_REQUEST_POST); `PISP` those that receive the answers but no
    requests; neither lists an inactive participant, one without third-party endpoints, or the Hub."""
    inactive = tp_participant(scene, "gone")
    scene.set_active(inactive, False)
    plain = scene.dfsp("plain")
    other_pisp = tp_participant(scene, "pisp2", "pisp")

    dfsps = get_services(scene, pisp, "THIRD_PARTY_DFSP").body["providers"]
    assert dfsp in dfsps and pisp not in dfsps and other_pisp not in dfsps
    assert inactive not in dfsps and plain not in dfsps and HUB not in dfsps
    assert dfsps == sorted(dfsps)

    pisps = get_services(scene, dfsp, "PISP").body["providers"]
    assert pisp in pisps and other_pisp in pisps
    assert dfsp not in pisps and inactive not in pisps and plain not in pisps


def test_auth_service_is_central_auth(scene: Scene, pisp: str) -> None:
    """`GET /services/AUTH_SERVICE` lists `centralAuth`, the hub-hosted auth-service, once it is a
    participant, and it is never listed as a DFSP or a PISP."""
    if scene.hub.admin.get("/participants/centralAuth").status_code != 200:
        scene.hub.onboard("centralAuth")
        scene.dfsps.register(scene.hub, "centralAuth")
        register_tp(scene, "centralAuth", thirdparty_for_base_url(scene.dfsps.base_url("centralAuth"), "auth-service"))
    assert get_services(scene, pisp, "AUTH_SERVICE").body == {"providers": ["centralAuth"]}
    assert "centralAuth" not in get_services(scene, pisp, "THIRD_PARTY_DFSP").body["providers"]
    assert "centralAuth" not in get_services(scene, pisp, "PISP").body["providers"]


def test_unknown_service_type_is_3100(scene: Scene, pisp: str) -> None:
    r = scene.fspiop.get("/services/BANKS", pisp, **TP)
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3100" and "THIRD_PARTY_DFSP" in description


# --------------------------------------------------------------------------- CONSENT and THIRD_PARTY_LINK in the ALS


@pytest.mark.parametrize("id_type", ["CONSENT", "THIRD_PARTY_LINK"])
def test_hub_serves_the_third_party_party_types(scene: Scene, id_type: str) -> None:
    """Even an --empty hub has an oracle for CONSENT and THIRD_PARTY_LINK: the built-in one."""
    r = scene.hub.als.get("/oracles", params={"type": id_type})
    assert r.status_code == 200, r.text
    (oracle,) = r.json()
    assert oracle["endpoint"]["value"] == scene.hub.urls["als_admin"] + "/oracle"
    assert oracle["isDefault"] is True


@pytest.mark.parametrize("id_type", ["CONSENT", "THIRD_PARTY_LINK"])
def test_register_find_and_remove_through_the_als(scene: Scene, id_type: str) -> None:
    """The auth-service registers a consent (a DFSP a link) with `POST /participants/{Type}/{ID}`
    and gets `PUT /participants/{Type}/{ID} {fspId}`; anyone's `GET` then names the owner; after
    the owner's `DELETE` the lookup is 3204."""
    owner, asker = scene.dfsp("owner"), scene.dfsp("asker")
    identifier = new_id() if id_type == "CONSENT" else f"dfspa.user.{secrets.token_hex(4)}"
    path = f"/participants/{id_type}/{identifier}"

    mark = scene.dfsps.mark(owner)
    r = scene.fspiop.post(path, owner, None, {"fspId": owner})
    assert r.status_code == 202, r.text
    assert scene.dfsps.answer(owner, path, since=mark).body == {"fspId": owner}

    mark = scene.dfsps.mark(asker)
    r = scene.fspiop.get(path, asker)
    assert r.status_code == 202, r.text
    answer = scene.dfsps.answer(asker, path, since=mark)
    assert answer.body == {"fspId": owner}, answer
    assert answer.source == HUB

    mark = scene.dfsps.mark(owner)
    r = scene.fspiop.send("DELETE", path, owner, None)
    assert r.status_code == 202, r.text
    assert scene.dfsps.answer(owner, path, since=mark).error_code is None
    mark = scene.dfsps.mark(asker)
    scene.fspiop.get(path, asker)
    assert scene.dfsps.answer(asker, path, since=mark).error_code == "3204"


# --------------------------------------------------------------------------- events


def test_account_linking_publishes_its_steps_without_secrets(scene: Scene, pisp: str, dfsp: str) -> None:
    """The steps of account linking are announced in order, and no event carries the auth token,
    the credential's key or signature."""
    request = consent_request_body()
    request_id, consent_id = request["consentRequestId"], new_id()
    token, credential = "918273645", generic_credential("PENDING")

    def act() -> None:
        send(scene, "POST", "/consentRequests", pisp, dfsp, request, status=202)
        send(scene, "PUT", f"/consentRequests/{request_id}", dfsp, pisp, consent_request_answer(), status=202)
        send(scene, "PATCH", f"/consentRequests/{request_id}", pisp, dfsp, {"authToken": token}, status=202)
        send(scene, "POST", "/consents", dfsp, pisp, {"consentId": consent_id, "consentRequestId": request_id,
                                                       "scopes": scopes(), "status": "ISSUED"}, status=202)
        send(scene, "PUT", f"/consents/{consent_id}", pisp, dfsp,
             {"status": "ISSUED", "scopes": scopes(), "credential": credential}, status=202)
        send(scene, "PATCH", f"/consents/{consent_id}", dfsp, pisp, {"credential": {"status": "VERIFIED"}}, status=200)
        send(scene, "PATCH", f"/consents/{consent_id}", dfsp, pisp, {"status": "REVOKED", "revokedAt": now_iso()},
             status=200)

    events = watch_events(scene.hub.urls["nats"], [
        f"ml.event.consentRequest.{request_id}.>", f"ml.event.consent.{consent_id}.>"], 7, act)
    assert [e["subject"] for e in events] == [
        f"ml.event.consentRequest.{request_id}.requested",
        f"ml.event.consentRequest.{request_id}.answered",
        f"ml.event.consentRequest.{request_id}.authTokenSent",
        f"ml.event.consent.{consent_id}.granted",
        f"ml.event.consent.{consent_id}.credentialSigned",
        f"ml.event.consent.{consent_id}.linked",
        f"ml.event.consent.{consent_id}.revoked",
    ]
    requested, answered, _, granted, signed, _, _ = events
    assert (requested["type"], requested["source"], requested["destination"]) == (
        "consentRequest.requested", pisp, dfsp)
    assert requested["scopes"][0]["address"] == ADDRESS and requested["userId"] == "alice@dfspa"
    assert answered["authChannel"] == "WEB"
    assert granted["consentRequestId"] == request_id
    assert (signed["credentialType"], signed["credentialStatus"]) == ("GENERIC", "PENDING")
    text = json.dumps(events)
    assert token not in text
    assert credential["genericPayload"]["publicKey"] not in text
    assert credential["genericPayload"]["signature"] not in text


def test_third_party_transfer_publishes_its_steps(scene: Scene, pisp: str, dfsp: str) -> None:
    body = tp_transaction_body(dfsp, dfsp)
    request_id = body["transactionRequestId"]
    authorization = authorization_body(dfsp, dfsp)
    authorization_id = authorization["authorizationRequestId"]

    def act() -> None:
        send(scene, "POST", "/thirdpartyRequests/transactions", pisp, dfsp, body, status=202)
        send(scene, "PUT", f"/thirdpartyRequests/transactions/{request_id}", dfsp, pisp,
             {"transactionRequestState": "RECEIVED"}, status=200)
        send(scene, "POST", "/thirdpartyRequests/authorizations", dfsp, pisp, authorization, status=202)
        send(scene, "PUT", f"/thirdpartyRequests/authorizations/{authorization_id}", pisp, dfsp,
             SIGNED_AUTHORIZATION, status=200)
        send(scene, "PATCH", f"/thirdpartyRequests/transactions/{request_id}", dfsp, pisp,
             {"transactionRequestState": "ACCEPTED", "transactionState": "COMPLETED",
              "completedTimestamp": now_iso()}, status=200)

    events = watch_events(scene.hub.urls["nats"], [
        f"ml.event.thirdpartyTransaction.{request_id}.>", f"ml.event.thirdpartyAuthorization.{authorization_id}.>"],
        5, act)
    assert [e["type"] for e in events] == [
        "thirdpartyTransaction.requested", "thirdpartyTransaction.answered", "thirdpartyAuthorization.requested",
        "thirdpartyAuthorization.answered", "thirdpartyTransaction.finished"]
    requested, _, _, authorized, finished = events
    assert (requested["amount"], requested["currency"], requested["payerIdType"]) == ("12.5", "USD", "THIRD_PARTY_LINK")
    assert (authorized["responseType"], authorized["signedPayloadType"]) == ("ACCEPTED", "GENERIC")
    assert finished["transactionState"] == "COMPLETED"
    text = json.dumps(events)
    assert "c2lnbmVk" not in text and authorization["challenge"] not in text


def test_for_base_url_keeps_the_fspiop_set(scene: Scene) -> None:
    """`for_base_url` gives the FSPIOP set unless asked for the third-party one as well."""
    assert not any(t.startswith("TP_CB_URL_") for t in for_base_url("http://x"))
    both = for_base_url("http://x", thirdparty=True)
    assert set(THIRDPARTY_PATHS) <= set(both)
    assert both["TP_CB_URL_CONSENT_REQUEST_PUT"] == "http://x/consentRequests/{{ID}}"
    assert "TP_CB_URL_CONSENT_REQUEST_POST" not in thirdparty_for_base_url("http://x", "pisp")
