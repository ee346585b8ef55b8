"""Account lookup through an external oracle: one registered with the ALS admin API and called with
the ALS Oracle API over HTTP, as Mojaloop's account-lookup-service calls its oracles.

The oracle here is a small HTTP server of the test's own that records what it is asked and answers
from a dict; the hub must ask it (GET /participants/{Type}/{ID}, POST to register) and route the
FSPIOP messages by its answers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fspiop_dfsp import Scene, new_msisdn


class Oracle(ThreadingHTTPServer):
    """party id -> fspId; records (method, path, body) of every call."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OracleHandler)
        self.parties: dict[str, str] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self.failing = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _OracleHandler(BaseHTTPRequestHandler):
    server: Oracle

    def _answer(self, status: int, body: Any = None) -> None:
        raw = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        path = self.path.split("?")[0]
        self.server.calls.append((self.command, self.path, body))
        if self.server.failing:
            return self._answer(500, {"error": "down"})
        party = path.rsplit("/", 1)[-1]
        if self.command == "GET":
            owner = self.server.parties.get(party)
            return self._answer(200, {"partyList": [{"fspId": owner}]}) if owner else self._answer(404, {})
        if self.command == "POST":
            self.server.parties[party] = body["fspId"]
            return self._answer(201)
        return self._answer(405)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def oracle(scene: Scene) -> Iterator[Oracle]:
    server = Oracle()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    r = scene.hub.als.post("/oracles", json={
        "oracleIdType": "MSISDN", "endpoint": {"value": server.url, "endpointType": "URL"}, "isDefault": True,
    })
    assert r.status_code == 201, r.text
    yield server
    server.shutdown()
    server.server_close()


def test_registration_and_lookup_go_through_the_external_oracle(scene: Scene, oracle: Oracle) -> None:
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    msisdn = new_msisdn()
    path = f"/participants/MSISDN/{msisdn}"
    mark = scene.dfsps.mark(payee)
    assert scene.fspiop.post(path, payee, None, {"fspId": payee, "currency": "USD"}).status_code == 202
    answer = scene.dfsps.answer(payee, path, since=mark)
    assert answer.body == {"fspId": payee}
    assert ("POST", path, {"fspId": payee, "currency": "USD"}) in oracle.calls
    assert oracle.parties[msisdn] == payee

    mark = scene.dfsps.mark(payee)
    assert scene.fspiop.get(f"/parties/MSISDN/{msisdn}", payer).status_code == 202
    forwarded = scene.dfsps.wait_for(payee, "GET", f"/parties/MSISDN/{msisdn}", since=mark, exact=True)
    assert forwarded.source == payer and forwarded.destination == payee
    assert any(c[0] == "GET" and c[1].startswith(path) for c in oracle.calls)


def test_a_party_the_oracle_does_not_know_is_3200(scene: Scene, oracle: Oracle) -> None:
    payer = scene.dfsp("payer")
    msisdn = new_msisdn()
    mark = scene.dfsps.mark(payer)
    assert scene.fspiop.get(f"/parties/MSISDN/{msisdn}", payer).status_code == 202
    error = scene.dfsps.error_callback(payer, f"/parties/MSISDN/{msisdn}", since=mark)
    assert error.error_code == "3200"


def test_an_oracle_that_fails_gives_an_error_callback(scene: Scene, oracle: Oracle) -> None:
    payer = scene.dfsp("payer")
    msisdn = new_msisdn()
    oracle.failing = True
    try:
        mark = scene.dfsps.mark(payer)
        assert scene.fspiop.get(f"/parties/MSISDN/{msisdn}", payer).status_code == 202
        error = scene.dfsps.error_callback(payer, f"/parties/MSISDN/{msisdn}", since=mark)
        assert error.error_code == "2003"
    finally:
        oracle.failing = False
