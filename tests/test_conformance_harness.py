"""The test DFSP harness itself (tests/fspiop_dfsp.py), without a hub.

Why: every conformance test trusts the harness to record callbacks faithfully and to build
well-formed FSPIOP requests; if it were wrong, a conformance failure would point at the switch
for a mistake of ours. These checks are fast and need no `miniloop up`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx
import pytest
from fspiop_dfsp import FspiopClient, Secret, TestDfsps, Transfer, in_seconds, now_iso, quote_body


@pytest.fixture
def dfsps() -> Iterator[TestDfsps]:
    with TestDfsps() as server:
        yield server


def test_records_requests_per_dfsp_and_answers_like_a_dfsp(dfsps: TestDfsps) -> None:
    with httpx.Client(base_url=dfsps.url, timeout=5) as client:
        r = client.put("/alpha/transfers/abc", content=b'{"transferState":"COMMITTED"}',
                       headers={"FSPIOP-Source": "Hub", "FSPIOP-Destination": "alpha"})
        assert r.status_code == 200
        r = client.post("/beta/quotes?x=1", content=b"not json")
        assert r.status_code == 202
        r = client.patch("/alpha/transfers/abc", content=b"{}")
        assert r.status_code == 200

    got = dfsps.wait_for("alpha", "PUT", "/transfers/abc", exact=True, timeout=2)
    assert got.body == {"transferState": "COMMITTED"}
    assert (got.source, got.destination) == ("Hub", "alpha")
    assert got.headers["fspiop-source"] == "Hub"
    beta = dfsps.received("beta")
    assert [(q.method, q.path, q.query, q.body, q.raw) for q in beta] == [("POST", "/quotes", "x=1", None, b"not json")]
    assert dfsps.mark("alpha") == 2
    assert dfsps.wait_for("alpha", "PATCH", "/transfers", since=1, timeout=2).method == "PATCH"


def test_wait_for_is_bounded_and_lists_what_came(dfsps: TestDfsps) -> None:
    with httpx.Client(base_url=dfsps.url, timeout=5) as client:
        client.put("/alpha/quotes/1", content=b"{}")
    with pytest.raises(AssertionError, match="PUT /alpha/quotes/1"):
        dfsps.wait_for("alpha", "PUT", "/transfers", timeout=0.2)


def test_client_headers_follow_fspiop() -> None:
    client = FspiopClient("http://127.0.0.1:9")
    try:
        h = client.headers_for("POST", "/transfers", "payer", "payee")
        assert h["accept"] == "application/vnd.interoperability.transfers+json;version=1"
        assert h["content-type"] == "application/vnd.interoperability.transfers+json;version=1.1"
        assert parsedate_to_datetime(h["date"]).tzinfo is not None
        assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", h["date"])
        assert (h["fspiop-source"], h["fspiop-destination"]) == ("payer", "payee")

        h = client.headers_for("GET", "/parties/MSISDN/1", "payer")
        assert "content-type" not in h and "fspiop-destination" not in h
        assert h["accept"] == "application/vnd.interoperability.parties+json;version=1"

        h = client.headers_for("PUT", "/quotes/1", "payee", "payer", version="1.0",
                               drop=("date",), headers={"FSPIOP-Source": None, "x-extra": "1"})
        assert "accept" not in h and "date" not in h and "fspiop-source" not in h
        assert h["content-type"].endswith("version=1.0") and h["x-extra"] == "1"
    finally:
        client.close()


def test_bodies_are_well_formed() -> None:
    secret = Secret()
    decoded = base64.urlsafe_b64decode(secret.fulfilment + "=")
    assert len(decoded) == 32
    assert secret.condition == base64.urlsafe_b64encode(hashlib.sha256(decoded).digest()).rstrip(b"=").decode()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", secret.condition)

    transfer = Transfer("payer", "payee")
    assert transfer.body["condition"] == transfer.secret.condition
    assert re.fullmatch(r"[A-Za-z0-9_-]+", transfer.body["ilpPacket"])
    for stamp in (now_iso(), in_seconds(2), transfer.body["expiration"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
    assert transfer.fulfil_body()["fulfilment"] == secret.__class__(transfer.secret.fulfilment_bytes).fulfilment

    quote = quote_body("payer", "payee")
    assert quote["payer"]["partyIdInfo"]["fspId"] == "payer"
    assert quote["amount"] == {"amount": "10", "currency": "USD"}
