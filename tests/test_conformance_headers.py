"""Conformance, FSPIOP headers and URIs (CONFORMANCE.md behaviours 26 to 30 and 33, and the
receiving side of 35): what the hub answers synchronously when a DFSP's request has a missing or
bad header, an unsupported version, a body that is not JSON, or no id in its path; and that the
callbacks it sends carry no header a DFSP would refuse.

A DFSP gets these answers instead of a callback, so each must be an immediate 4xx with the
errorCode (and a description naming the header) it can act on; a request the hub accepted
with a bad header would instead end in a callback that never comes.
"""

from __future__ import annotations

from typing import Any

import pytest
from fspiop_dfsp import Scene, Transfer, assert_no_bad_accept, error_body, new_msisdn, quote_body, sync_error


def valid_request(scene: Scene, kind: str) -> dict[str, Any]:
    """Keyword arguments for `scene.fspiop.send` of a valid request of `kind` between fresh DFSPs."""
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    if kind == "POST /quotes":
        return {"method": "POST", "path": "/quotes", "source": payer, "destination": payee,
                "body": quote_body(payer, payee)}
    if kind == "POST /transfers":
        return {"method": "POST", "path": "/transfers", "source": payer, "destination": payee,
                "body": Transfer(payer, payee).body}
    if kind == "GET /parties":
        return {"method": "GET", "path": f"/parties/MSISDN/{new_msisdn()}", "source": payer}
    if kind == "PUT /parties":
        msisdn = new_msisdn()
        return {"method": "PUT", "path": f"/parties/MSISDN/{msisdn}", "source": payee, "destination": payer,
                "body": {"party": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": msisdn,
                                                   "fspId": payee}}}}
    raise ValueError(kind)


def send(scene: Scene, request: dict[str, Any], **options: Any) -> Any:
    return scene.fspiop.send(request["method"], request["path"], request["source"],
                             request.get("destination"), request.get("body"), **options)


def test_c26_post_quotes_without_fspiop_destination_is_3102(scene: Scene) -> None:
    """#26: `POST /quotes` without FSPIOP-Destination is 400/3102 naming fspiop-destination.

    The hub routes a quote by its destination header; without it there is nobody to forward to.
    """
    r = send(scene, valid_request(scene, "POST /quotes"), drop=("fspiop-destination",))
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3102", description
    assert "fspiop-destination" in description.lower()


def test_c27_post_quotes_without_content_type_is_3102(scene: Scene) -> None:
    """#27: `POST /quotes` without Content-Type is 400 naming content-type.

    The contract chose 3102 (missing mandatory element) where CONFORMANCE.md, following
    Mojaloop's collection, lists 3101; the contract wins here.
    """
    r = send(scene, valid_request(scene, "POST /quotes"), drop=("content-type",))
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3102", description
    assert "content-type" in description.lower()


@pytest.mark.parametrize("kind", ["POST /quotes", "POST /transfers", "GET /parties"])
@pytest.mark.parametrize(("header", "named"), [
    ("accept", "accept is required"),
    ("date", "date"),
    ("fspiop-source", "fspiop-source"),
])
def test_c28_missing_mandatory_header_is_3102(scene: Scene, kind: str, header: str, named: str) -> None:
    """#28: a request without Accept, Date or FSPIOP-Source is 400/3102 and the description names
    the header, on `POST /quotes`, `POST /transfers` and `GET /parties` alike.

    The DFSP must learn which header it forgot; the hub cannot version, date or route the request.
    """
    r = send(scene, valid_request(scene, kind), drop=(header,))
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3102", description
    assert named in description.lower()


@pytest.mark.parametrize(("header", "value", "named"), [
    ("content-type", "application/json", "content-type"),
    ("content-type", "application/xml", "content-type"),
    ("accept", "application/json", "accept"),
    ("date", "yesterday at noon", "date"),
    ("date", "2024-01-02T03:04:05Z", "date"),  # ISO 8601 is not an IMF-fixdate
])
def test_c29_bad_header_value_is_3101(scene: Scene, header: str, value: str, named: str) -> None:
    """#29: an invalid Content-Type (`application/json`, xml), Accept or Date on `POST /quotes` is
    400/3101 "Malformed syntax", naming the header.

    FSPIOP media types carry the resource and version; a hub that took plain JSON could not tell
    which API version the DFSP speaks.
    """
    r = send(scene, valid_request(scene, "POST /quotes"), headers={header: value})
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3101", description
    assert named in description.lower()


@pytest.mark.parametrize(("kind", "header"), [
    ("GET /parties", "accept"),
    ("PUT /parties", "content-type"),
    ("POST /quotes", "accept"),
    ("POST /quotes", "content-type"),
    ("POST /transfers", "accept"),
    ("POST /transfers", "content-type"),
])
def test_c30_unsupported_version_is_406_3001(scene: Scene, kind: str, header: str) -> None:
    """#30: an Accept or Content-Type asking for a version the hub does not speak is 406/3001
    "Unacceptable version requested"; for Accept, the extension list says which versions exist.

    A DFSP negotiates down from this answer; a 400 would look like a bug on its side instead.
    (`/transactionRequests` from the catalogue: tests/test_conformance_requests.py.)
    """
    request = valid_request(scene, kind)
    resource = request["path"].split("/")[1]
    if header == "accept":
        options: dict[str, Any] = {"accept_version": "7"}
    else:
        options = {"headers": {"content-type": f"application/vnd.interoperability.{resource}+json;version=7.0"}}
    r = send(scene, request, **options)
    assert r.status_code == 406, r.text
    code, description = sync_error(r)
    assert code == "3001", description
    assert description.startswith("Unacceptable version requested")
    if header == "accept":
        extensions = r.json()["errorInformation"]["extensionList"]["extension"]
        assert {"key": "1", "value": "0"} in extensions
        assert {"key": "1", "value": "1"} in extensions


@pytest.mark.parametrize("accept", [
    "application/vnd.interoperability.quotes+json",
    "application/vnd.interoperability.quotes+json;version=7, application/vnd.interoperability.quotes+json;version=1.1",
    "application/vnd.interoperability.quotes+json;version=1.0",
])
def test_c30_accept_naming_a_supported_version_is_accepted(scene: Scene, accept: str) -> None:
    """#30 (the positive side): a bare media type (any version), a list with one supported
    version among others, or `version=1.0` is accepted (202).

    A DFSP that can speak several versions lists them; the hub must pick one, not refuse.
    """
    r = send(scene, valid_request(scene, "POST /quotes"), headers={"accept": accept})
    assert r.status_code == 202, r.text


@pytest.mark.parametrize("kind", ["POST /quotes", "POST /transfers"])
def test_c29_body_that_is_not_json_is_3101(scene: Scene, kind: str) -> None:
    """#29 (the body): a request whose body is not JSON is 400/3101 "Malformed syntax".

    The DFSP learns at once that it sent garbage, rather than waiting for a callback.
    """
    request = valid_request(scene, kind)
    r = scene.fspiop.send(request["method"], request["path"], request["source"], request["destination"],
                          content=b'{"quoteId": "unterminated')
    assert r.status_code == 400, r.text
    assert sync_error(r)[0] == "3101"


@pytest.mark.parametrize("path", ["/transfers/", "/quotes/"])
def test_c33_put_without_id_is_404_3002(scene: Scene, path: str) -> None:
    """#33: `PUT /transfers/` and `PUT /quotes/` (no id in the path) are 404/3002 "Unknown URI".

    A callback without an id cannot be matched to any request; it must not be taken as valid.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    r = scene.fspiop.put(path, payee, payer, {"transferState": "COMMITTED"}, resource=path.strip("/"))
    assert r.status_code == 404, r.text
    code, description = sync_error(r)
    assert code == "3002", description
    assert "unknown uri" in description.lower()


def test_c35_callbacks_carry_no_accept_a_dfsp_would_refuse(scene: Scene) -> None:
    """#35, from the receiving side: callbacks (forwarded or the hub's own) need no Accept, and any
    Accept they carry must be a valid FSPIOP one for their resource.

    A DFSP that checks headers as the hub does (Accept, when present, must be
    `application/vnd.interoperability.<resource>+json...`) would answer 400/3101 to a callback
    with `Accept: */*`, and the payer would never learn that its transfer committed.
    """
    payer, payee = scene.dfsp("payer"), scene.dfsp("payee")
    committed = Transfer(payer, payee)
    forwarded_put = scene.commit(committed)  # the payee's PUT, forwarded to the payer
    hub_answer = scene.get_transfer(payee, committed.id)  # the hub's own PUT

    rejected = Transfer(payer, payee)
    scene.reserve(rejected)
    mark = scene.dfsps.mark(payer)
    assert scene.reject(rejected, error_body()).status_code == 200
    forwarded_error = scene.dfsps.error_callback(payer, rejected.path, since=mark)

    for callback in (forwarded_put, hub_answer, forwarded_error):
        assert_no_bad_accept(callback)
