"""Conformance, account lookup (CONFORMANCE.md behaviours 1, 2, 24, 25, 35, 36): registering a
party in the oracle and finding who owns it, seen from the DFSPs' side over real HTTP.

A payer DFSP cannot send money to a phone number until the hub tells it which DFSP serves that
number; these tests drive `POST /participants/{Type}/{ID}` and `GET /parties/{Type}/{ID}` through
a real `miniloop up --empty` and check the callbacks the DFSPs receive.
"""

from __future__ import annotations

from typing import Any

import pytest
from fspiop_dfsp import Received, Scene, assert_hub_originated, new_id, new_msisdn, sync_error


@pytest.fixture(scope="module", autouse=True)
def msisdn_oracle(scene: Scene) -> None:
    """The built-in oracle serves MSISDN (BUSINESS deliberately has no oracle)."""
    r = scene.hub.als.post("/oracles", json={
        "oracleIdType": "MSISDN",
        "endpoint": {"value": scene.hub.urls["als_admin"] + "/oracle", "endpointType": "URL"},
        "isDefault": True,
    })
    assert r.status_code == 201, r.text


def register_party(scene: Scene, owner: str, msisdn: str) -> Received:
    """The owner registers its customer via FSPIOP (behaviour 1) and gets the PUT callback."""
    path = f"/participants/MSISDN/{msisdn}"
    mark = scene.dfsps.mark(owner)
    r = scene.fspiop.post(path, owner, None, {"fspId": owner, "currency": "USD"})
    assert r.status_code == 202, r.text
    assert r.content == b""
    return scene.dfsps.answer(owner, path, since=mark)


def party_body(owner: str, msisdn: str) -> dict[str, Any]:
    return {"party": {
        "partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": msisdn, "fspId": owner},
        "name": "Alice Conformance",
        "personalInfo": {"complexName": {"firstName": "Alice", "lastName": "Conformance"}},
    }}



def test_c01_register_party_in_the_oracle(scene: Scene) -> None:
    """#1: `POST /participants/MSISDN/{id}` {fspId, currency} answers 202 and registers the party.

    A DFSP registers its customers so that other DFSPs can find them; it needs the 202 at once and
    the `PUT /participants/...` callback to know the registration took.
    """
    payee, msisdn = scene.dfsp("payee"), new_msisdn()
    callback = register_party(scene, payee, msisdn)

    assert callback.path == f"/participants/MSISDN/{msisdn}", callback
    assert callback.body == {"fspId": payee}
    assert_hub_originated(callback, payee)
    r = scene.hub.als.get(f"/oracle/participants/MSISDN/{msisdn}")
    assert r.status_code == 200, r.text
    assert {"fspId": payee} in r.json()["partyList"]


def test_c01_register_for_an_unknown_fsp_gets_3003(scene: Scene) -> None:
    """#1 (failure side, from the contract): registering a party for an fspId that is not a
    participant answers 202, then `PUT /participants/MSISDN/{id}/error` 3003 to the source.

    The oracle must not point lookups at a DFSP that cannot receive them.
    """
    owner, msisdn = scene.dfsp("owner"), new_msisdn()
    path = f"/participants/MSISDN/{msisdn}"
    mark = scene.dfsps.mark(owner)
    r = scene.fspiop.post(path, owner, None, {"fspId": "nosuchfsp", "currency": "USD"})
    assert r.status_code == 202, r.text
    error = scene.dfsps.error_callback(owner, path, since=mark)
    assert error.error_code == "3003", error
    assert_hub_originated(error, owner)


def test_c01_bulk_registration_answers_per_party(scene: Scene) -> None:
    """#1 (bulk, from the contract): `POST /participants` {requestId, partyList} answers 202, then
    `PUT /participants/{requestId}` lists each party, with errorInformation for the one that failed.

    A DFSP migrating its customers registers thousands at once and must learn which ones failed.
    """
    owner, request_id = scene.dfsp("owner"), new_id()
    good, bad = new_msisdn(), new_msisdn()
    body = {"requestId": request_id, "currency": "USD", "partyList": [
        {"partyIdType": "MSISDN", "partyIdentifier": good, "fspId": owner},
        {"partyIdType": "MSISDN", "partyIdentifier": bad, "fspId": "nosuchfsp"},
    ]}
    mark = scene.dfsps.mark(owner)
    r = scene.fspiop.post("/participants", owner, None, body)
    assert r.status_code == 202, r.text
    answer = scene.dfsps.callback(owner, f"/participants/{request_id}", since=mark)
    assert_hub_originated(answer, owner)
    results = {item["partyId"]["partyIdentifier"]: item for item in answer.body["partyList"]}
    assert set(results) == {good, bad}
    assert "errorInformation" not in results[good]
    assert results[bad]["errorInformation"] == {
        "errorCode": "3003", "errorDescription": "Add Party information error - nosuchfsp is not a registered participant",
    }
    r = scene.hub.als.get(f"/oracle/participants/MSISDN/{good}")
    assert r.status_code == 200 and {"fspId": owner} in r.json()["partyList"], r.text


def test_c01_get_participants_names_the_owner(scene: Scene) -> None:
    """#1 (the read side, from the contract): `GET /participants/MSISDN/{id}` answers 202, then
    `PUT /participants/MSISDN/{id}` {fspId} from the hub; an unknown id gets 3204.

    A DFSP can ask who serves a number without a full party lookup.
    """
    owner, asker, msisdn = scene.dfsp("owner"), scene.dfsp("asker"), new_msisdn()
    register_party(scene, owner, msisdn)
    path = f"/participants/MSISDN/{msisdn}"
    mark = scene.dfsps.mark(asker)
    assert scene.fspiop.get(path, asker).status_code == 202
    answer = scene.dfsps.callback(asker, path, since=mark)
    assert answer.body["fspId"] == owner
    assert_hub_originated(answer, asker)

    unknown = f"/participants/MSISDN/{new_msisdn()}"
    mark = scene.dfsps.mark(asker)
    assert scene.fspiop.get(unknown, asker).status_code == 202
    error = scene.dfsps.error_callback(asker, unknown, since=mark)
    assert error.error_code == "3204", error


def test_c02_party_lookup_goes_to_the_owner_and_back(scene: Scene) -> None:
    """#2: `GET /parties/MSISDN/{id}` answers 202; the owner gets the GET with FSPIOP-Destination set
    to itself, and its `PUT /parties/...` reaches the payer unchanged (destination = the original
    source, Content-Type version 1.0 kept).

    The payer learns the payee's name and DFSP from this PUT; a version or body change on the way
    would break its parsing or the end-to-end signature.
    """
    payer, payee, msisdn = scene.dfsp("payer"), scene.dfsp("payee"), new_msisdn()
    register_party(scene, payee, msisdn)
    path = f"/parties/MSISDN/{msisdn}"

    payee_mark = scene.dfsps.mark(payee)
    r = scene.fspiop.get(path, payer, accept_version="1.0")
    assert r.status_code == 202, r.text
    forwarded = scene.dfsps.wait_for(payee, "GET", path, since=payee_mark, exact=True)
    assert forwarded.source == payer
    assert forwarded.destination == payee

    payer_mark = scene.dfsps.mark(payer)
    body = party_body(payee, msisdn)
    r = scene.fspiop.put(path, payee, payer, body, version="1.0")
    assert r.status_code == 200, r.text
    callback = scene.dfsps.callback(payer, path, since=payer_mark)
    assert callback.body["party"] == body["party"]
    assert callback.source == payee
    assert callback.destination == payer
    assert "version=1.0" in callback.headers["content-type"].replace(" ", "")


def test_c02_lookup_keeps_its_currency_filter(scene: Scene) -> None:
    """`GET /parties/...?currency=USD` reaches the owner with its query: the owner may serve the
    party in several currencies and answers for the one asked."""
    payer, payee, msisdn = scene.dfsp("payer"), scene.dfsp("payee"), new_msisdn()
    register_party(scene, payee, msisdn)
    path = f"/parties/MSISDN/{msisdn}"
    mark = scene.dfsps.mark(payee)
    assert scene.fspiop.get(path + "?currency=USD", payer).status_code == 202
    forwarded = scene.dfsps.wait_for(payee, "GET", path, since=mark, exact=True)
    assert forwarded.query == "currency=USD"
    assert forwarded.destination == payee


def test_c02_answer_to_an_unknown_fsp_comes_back_as_3201(scene: Scene) -> None:
    """A PUT /parties addressed to an FSP that does not exist cannot be delivered: its sender hears
    so (3201) rather than waiting for nothing."""
    owner, msisdn = scene.dfsp("owner"), new_msisdn()
    path = f"/parties/MSISDN/{msisdn}"
    mark = scene.dfsps.mark(owner)
    assert scene.fspiop.put(path, owner, "nosuchfsp", party_body(owner, msisdn)).status_code == 200
    error = scene.dfsps.error_callback(owner, path, since=mark)
    assert error.error_code == "3201"
    assert_hub_originated(error, owner)


def test_c02_party_error_from_the_owner_is_forwarded(scene: Scene) -> None:
    """#2 (error side): the owner's `PUT /parties/MSISDN/{id}/error` reaches the payer unchanged.

    The owner may know the number but refuse to disclose it (closed account); the payer must hear.
    """
    payer, payee, msisdn = scene.dfsp("payer"), scene.dfsp("payee"), new_msisdn()
    path = f"/parties/MSISDN/{msisdn}"
    mark = scene.dfsps.mark(payer)
    body = {"errorInformation": {"errorCode": "3204", "errorDescription": "Party not found - closed"}}
    r = scene.fspiop.put(path + "/error", payee, payer, body)
    assert r.status_code == 200, r.text
    error = scene.dfsps.error_callback(payer, path, since=mark)
    assert error.body == body
    assert (error.source, error.destination) == (payee, payer)


@pytest.mark.parametrize("id_type", ["MSISDN", "BUSINESS"])
def test_c24_unprovisioned_party_gets_3200(scene: Scene, id_type: str) -> None:
    """#24: `GET /parties/{Type}/{unknown}` answers 202, then `PUT .../error` 3200 from the hub.

    Without the error callback the payer would wait for a PUT that never comes; 3200 tells it the
    number is not registered (BUSINESS: no oracle serves that type at all).
    """
    payer, party_id = scene.dfsp("payer"), new_msisdn()
    path = f"/parties/{id_type}/{party_id}"
    mark = scene.dfsps.mark(payer)
    r = scene.fspiop.get(path, payer)
    assert r.status_code == 202, r.text
    error = scene.dfsps.error_callback(payer, path, since=mark)
    assert error.error_code == "3200", error
    assert_hub_originated(error, payer)


def test_c25_unregistered_sub_id_gets_3200(scene: Scene) -> None:
    """#25: `GET /parties/MSISDN/{id}/31` for a party registered without that sub-id gives
    `PUT /parties/MSISDN/{id}/31/error` 3200.

    A sub-id names a different account of the same person; the hub must not answer with the
    main-id owner, or the payer would pay the wrong account.
    """
    payer, payee, msisdn = scene.dfsp("payer"), scene.dfsp("payee"), new_msisdn()
    register_party(scene, payee, msisdn)
    path = f"/parties/MSISDN/{msisdn}/31"
    mark = scene.dfsps.mark(payer)
    r = scene.fspiop.get(path, payer)
    assert r.status_code == 202, r.text
    error = scene.dfsps.error_callback(payer, path, since=mark)
    assert error.error_code == "3200", error
    assert_hub_originated(error, payer)


def test_c35_accept_required_on_get_parties_not_on_put(scene: Scene) -> None:
    """#35: `GET /parties` without Accept is 400/3102 "Accept is required"; `PUT /parties` (a
    callback) without Accept is accepted.

    FSPIOP callbacks carry no Accept; a hub that demanded one would drop every lookup answer.
    """
    payer, payee, msisdn = scene.dfsp("payer"), scene.dfsp("payee"), new_msisdn()
    path = f"/parties/MSISDN/{msisdn}"

    r = scene.fspiop.get(path, payer, drop=("accept",))
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3102"
    assert "accept is required" in description.lower()

    mark = scene.dfsps.mark(payer)
    r = scene.fspiop.put(path, payee, payer, party_body(payee, msisdn), drop=("accept",))
    assert r.status_code == 200, r.text
    assert scene.dfsps.callback(payer, path, since=mark).source == payee


@pytest.mark.parametrize(("source", "expected_code"), [
    ("unknownfsp42", "3100"),  # well-formed but not a participant
    ("{curly}", "3101"),  # not a valid FspId at all
    ("", "3102"),  # empty: as good as missing
    ("inactive", "3100"),  # a registered DFSP the operator deactivated (from the contract)
])
def test_c36_bad_fspiop_source_on_get_parties(scene: Scene, source: str, expected_code: str) -> None:
    """#36: `GET /parties` with an unregistered, a malformed, an empty or an inactive FSPIOP-Source
    is 400 (3100 / 3101 / 3102 / 3100), and a valid source is not refused.

    The hub routes the answer back to FSPIOP-Source; accepting a bad one would send callbacks
    nowhere (or to the wrong DFSP).
    """
    path = f"/parties/MSISDN/{new_msisdn()}"
    if source == "inactive":
        source = scene.dfsp("inactive")
        scene.set_active(source, False)
    r = scene.fspiop.get(path, source)
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == expected_code, description
    assert "fspiop-source" in description.lower()

    payer = scene.dfsp("payer")
    r = scene.fspiop.get(path, payer)
    assert r.status_code == 202, r.text


def test_c01_bulk_registration_error_callback_is_forwarded(scene: Scene) -> None:
    """`PUT /participants/{requestId}/error` from one FSP reaches the FSP it names."""
    sender, receiver, request_id = scene.dfsp("sender"), scene.dfsp("receiver"), new_id()
    path = f"/participants/{request_id}/error"
    mark = scene.dfsps.mark(receiver)
    body = {"errorInformation": {"errorCode": "3003", "errorDescription": "Add Party information error"}}
    assert scene.fspiop.put(path, sender, receiver, body).status_code == 200
    forwarded = scene.dfsps.wait_for(receiver, "PUT", path, since=mark, exact=True)
    assert forwarded.body == body and forwarded.source == sender


def test_registration_without_a_currency_uses_the_types_currency_oracle(scene: Scene) -> None:
    """A registration or lookup that names no currency may use an oracle registered for one
    currency, as Mojaloop's ALS picks any oracle of the type (the default first).

    Found by `miniloop bench --flow full`, whose DFSPs register their MSISDNs without a currency
    on a hub whose oracle was onboarded for USD.
    """
    r = scene.hub.als.post("/oracles", json={
        "oracleIdType": "EMAIL", "currency": "USD",
        "endpoint": {"value": scene.hub.urls["als_admin"] + "/oracle", "endpointType": "URL"},
    })
    assert r.status_code == 201, r.text
    owner, email = scene.dfsp("owner"), f"{new_id()[:8]}@example.com"
    path = f"/participants/EMAIL/{email}"
    mark = scene.dfsps.mark(owner)
    r = scene.fspiop.post(path, owner, None, {"fspId": owner})
    assert r.status_code == 202, r.text
    callback = scene.dfsps.answer(owner, path, since=mark)
    assert callback.body == {"fspId": owner}, callback
    r = scene.hub.als.get(f"/oracle/participants/EMAIL/{email}")
    assert r.status_code == 200 and {"fspId": owner} in r.json()["partyList"], r.text
