"""Conformance, quotes (CONFORMANCE.md behaviours 3, 22, 23, 31, 34): `POST /quotes` from a payer
DFSP to a payee DFSP through a real hub, and the checks the hub makes on the way.

The quote is where the payer learns what the transfer will cost and gets the payee's condition;
these tests check what a DFSP sees: the sync status, and the callback (path, FSPIOP-Source and
-Destination, errorCode) it receives.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fspiop_dfsp import Scene, assert_hub_originated, new_id, quote_body, quote_response_body, sync_error


def test_c03_quote_is_forwarded_and_answered(scene: Scene) -> None:
    """#3: `POST /quotes` answers 202; the payee gets it unchanged, and its `PUT /quotes/{ID}`
    reaches the payer with transferAmount = the requested amount.

    The payer builds its transfer from this PUT (amount, ilpPacket, condition), so it must arrive
    intact and from the payee.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    body = quote_body(payer, payee, amount="25.5")
    quote_id = body["quoteId"]

    payee_mark = scene.dfsps.mark(payee)
    r = scene.fspiop.post("/quotes", payer, payee, body)
    assert r.status_code == 202, r.text
    assert r.content == b""
    forwarded = scene.dfsps.wait_for(payee, "POST", "/quotes", since=payee_mark, exact=True)
    assert forwarded.body == body
    assert (forwarded.source, forwarded.destination) == (payer, payee)

    payer_mark = scene.dfsps.mark(payer)
    answer = quote_response_body(amount="25.5")
    r = scene.fspiop.put(f"/quotes/{quote_id}", payee, payer, answer)
    assert r.status_code == 200, r.text
    callback = scene.dfsps.callback(payer, f"/quotes/{quote_id}", since=payer_mark)
    assert callback.body["transferAmount"] == body["amount"]
    assert callback.body["condition"] == answer["condition"]
    assert callback.body["ilpPacket"] == answer["ilpPacket"]
    assert (callback.source, callback.destination) == (payee, payer)


def test_c03_quote_error_and_get_quote_are_forwarded(scene: Scene) -> None:
    """#3 (the other quote messages): `GET /quotes/{ID}` from the payer reaches the payee, and the
    payee's `PUT /quotes/{ID}/error` reaches the payer, both with the caller's headers.

    The payer re-asks for a quote whose answer it lost; the payee refuses quotes it cannot serve.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    quote_id = new_id()
    path = f"/quotes/{quote_id}"
    mark = scene.dfsps.mark(payee)
    assert scene.fspiop.get(path, payer, payee).status_code == 202
    asked = scene.dfsps.wait_for(payee, "GET", path, since=mark, exact=True)
    assert (asked.source, asked.destination) == (payer, payee)

    body = {"errorInformation": {"errorCode": "5101", "errorDescription": "Payee rejected quote - test"}}
    mark = scene.dfsps.mark(payer)
    assert scene.fspiop.put(path + "/error", payee, payer, body).status_code == 200
    error = scene.dfsps.error_callback(payer, path, since=mark)
    assert error.body == body
    assert (error.source, error.destination) == (payee, payer)


@pytest.mark.parametrize("destination", ["unknown", "without endpoints"])
def test_c22_quote_to_an_unknown_fsp_gets_3201(scene: Scene, destination: str) -> None:
    """#22: `POST /quotes` to a destination FSP that does not exist (or, from the contract, that
    has registered no quotes endpoint) answers 202, then the payer gets `PUT /quotes/{ID}/error`
    3201 from the hub.

    Without it the payer would wait for a quote nobody can answer until its own timeout.
    """
    payer = scene.dfsp("payer")
    payee = "nosuchfsp" if destination == "unknown" else scene.dfsp("silent", endpoints=False)
    body = quote_body(payer, payee)
    mark = scene.dfsps.mark(payer)
    r = scene.fspiop.post("/quotes", payer, payee, body)
    assert r.status_code == 202, r.text
    error = scene.dfsps.error_callback(payer, f"/quotes/{body['quoteId']}", since=mark)
    assert error.error_code == "3201", error
    assert_hub_originated(error, payer)


def test_c23_modified_duplicate_quote_gets_3106(scene: Scene) -> None:
    """#23: the same quoteId again with a different body (before expiry) answers 202, then the
    payer gets `PUT /quotes/{ID}/error` 3106 "Modified request".

    A quote id names one request; reusing it for different terms is a payer bug the hub must
    refuse rather than quietly forward a second, different quote under the same id.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    body = quote_body(payer, payee, amount="10")
    r = scene.fspiop.post("/quotes", payer, payee, body)
    assert r.status_code == 202, r.text
    scene.dfsps.wait_for(payee, "POST", "/quotes", exact=True,
                         where=lambda req: (req.body or {}).get("quoteId") == body["quoteId"])

    changed = copy.deepcopy(body)
    changed["amount"]["amount"] = "11"
    mark = scene.dfsps.mark(payer)
    r = scene.fspiop.post("/quotes", payer, payee, changed)
    assert r.status_code == 202, r.text
    error = scene.dfsps.error_callback(payer, f"/quotes/{body['quoteId']}", since=mark)
    assert error.error_code == "3106", error
    assert_hub_originated(error, payer)


def test_c23_identical_duplicate_quote_is_forwarded_again(scene: Scene) -> None:
    """#23 (the other half, from the contract): the same quoteId with the same body is a resend,
    and the hub forwards it to the payee again.

    A payer that lost the callback resends its request; the payee must get a chance to answer.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    body = quote_body(payer, payee)

    def is_this_quote(req: Any) -> bool:
        return (req.body or {}).get("quoteId") == body["quoteId"]

    for _ in range(2):
        mark = scene.dfsps.mark(payee)
        r = scene.fspiop.post("/quotes", payer, payee, body)
        assert r.status_code == 202, r.text
        scene.dfsps.wait_for(payee, "POST", "/quotes", since=mark, exact=True, where=is_this_quote)


def _without(body: dict[str, Any], dotted: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, leaf = dotted.split(".")
    node = body
    for key in parents:
        node = node[key]
    del node[leaf]
    return body


@pytest.mark.parametrize("field", [
    "quoteId", "transactionId", "amountType", "amount", "amount.currency",
    "transactionType.scenario", "transactionType.initiator", "transactionType.initiatorType",
])
def test_c31_quote_without_a_mandatory_field_is_3100(scene: Scene, field: str) -> None:
    """#31: `POST /quotes` missing a mandatory field is refused at once with 400/3100 naming it.

    The payer learns synchronously which field it forgot, instead of a quote that never comes.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    r = scene.fspiop.post("/quotes", payer, payee, _without(quote_body(payer, payee), field))
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3100", description
    assert field.rsplit(".", 1)[-1].lower() in description.lower()


def test_c31_quote_without_payer_is_3101(scene: Scene) -> None:
    """#31: `POST /quotes` without `payer` is 400/3101 (Mojaloop's exception to the 3100 rule)."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    r = scene.fspiop.post("/quotes", payer, payee, _without(quote_body(payer, payee), "payer"))
    assert r.status_code == 400, r.text
    assert sync_error(r)[0] == "3101"


@pytest.mark.parametrize(("header", "named"), [
    ("accept", "accept is required"),
    ("fspiop-source", "fspiop-source"),
    ("date", "date"),
])
def test_c34_get_quote_without_a_mandatory_header_is_3102(scene: Scene, header: str, named: str) -> None:
    """#34: `GET /quotes/{ID}` without Accept, FSPIOP-Source or Date is 400/3102 naming the header.

    GET /quotes is forwarded to the payee; a request the payee could not route back or date must
    be stopped at the hub.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    r = scene.fspiop.get(f"/quotes/{new_id()}", payer, payee, drop=(header,))
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3102", description
    assert named in description.lower()


def test_c34_put_quote_without_condition_is_400(scene: Scene) -> None:
    """#34: the payee's `PUT /quotes/{ID}` without `condition` is 400 naming "condition".

    The condition is what locks the later transfer; a quote answer without it is useless to the payer.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    answer = quote_response_body()
    del answer["condition"]
    r = scene.fspiop.put(f"/quotes/{new_id()}", payee, payer, answer)
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3100", description
    assert "condition" in description.lower()
