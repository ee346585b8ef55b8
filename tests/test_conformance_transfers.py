"""Conformance, transfers (CONFORMANCE.md behaviours 4 to 21, 32 and 37): prepare, fulfil,
reject, expiry, duplicates, liquidity and limits, inactive participants, seen from the DFSPs.

A transfer moves real money between two DFSPs. What each DFSP relies on is checked the way it
can check it: the sync status, the callbacks it receives (path, FSPIOP-Source/-Destination,
transferState or errorCode), the state a `GET /transfers/{ID}` reports back, and the positions
the hub operator sees in the Admin API (the payer's goes up by the amount at prepare, the payee's
down at commit, and the payer's comes back down when a transfer aborts or expires).
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from decimal import Decimal
from typing import Any

import pytest
from fspiop_dfsp import (
    Received,
    Scene,
    Secret,
    Transfer,
    assert_hub_originated,
    b64url,
    dumps,
    fulfil_body,
    new_id,
    quote_body,
    quote_response_body,
    sync_error,
    trace_id,
)

EXPIRY_WAIT_S = 12.0  # expiration = now + 2 s, the hub may be ~1 s late, callbacks take a moment
EXPIRY_LATE_S = 2.5  # the contract allows ~1 s; the rest is slack for a busy test machine


def assert_positions(scene: Scene, expected: dict[str, str], timeout: float = 5.0) -> None:
    """Poll the Admin API until every named DFSP's POSITION value is as expected (bounded)."""
    want = {name: Decimal(value) for name, value in expected.items()}
    deadline = time.monotonic() + timeout
    while True:
        seen = {name: scene.position(name) for name in want}
        if seen == want:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"positions are {seen}, expected {want}")
        time.sleep(0.05)


def end_to_end_headers(method: str, path: str) -> dict[str, str | None]:
    """Headers a signing, tracing DFSP adds; the hub must pass them on untouched (the signature
    is a well-formed dummy: the hub relays signatures, it does not check them)."""
    protected = b64url(json.dumps({"alg": "RS256", "FSPIOP-URI": path, "FSPIOP-HTTP-Method": method}).encode())
    return {
        "fspiop-signature": json.dumps({"signature": b64url(os.urandom(256)), "protectedHeader": protected}),
        "fspiop-uri": path,
        "fspiop-http-method": method,
        "traceparent": new_traceparent(),
        "tracestate": "miniloop=conformance",
    }


def new_traceparent() -> str:
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def assert_kept(received: Received, sent: dict[str, str | None]) -> None:
    for name, value in sent.items():
        assert received.headers.get(name) == value, f"{name}: sent {value!r}, forwarded {received.headers.get(name)!r}"


def new_pair(scene: Scene, **payer_options: Any) -> tuple[str, str]:
    return scene.dfsp("payer", **payer_options), scene.dfsp("payee")


# --------------------------------------------------------------------------- the happy path


def test_c04_quote_then_transfer_commits(scene: Scene) -> None:
    """#4: after a quote, `POST /transfers` with transferId = the quote's transactionId and the
    payee's ilpPacket and condition answers 202; the payee gets it unchanged, fulfils, and the
    payer gets `PUT /transfers/{ID}` COMMITTED with the fulfilment. Both forwarded messages keep
    the sender's body bytes and end-to-end headers (signature, FSPIOP-URI/-HTTP-Method, trace).

    This is the whole point of the switch: the payer's money is reserved at prepare and moves to
    the payee at commit, and both DFSPs see the same final state.
    """
    payer, payee = new_pair(scene)
    quote = quote_body(payer, payee, amount="10")
    secret = Secret()
    r = scene.fspiop.post("/quotes", payer, payee, quote)
    assert r.status_code == 202, r.text
    scene.dfsps.wait_for(payee, "POST", "/quotes", exact=True,
                         where=lambda req: (req.body or {}).get("quoteId") == quote["quoteId"])
    mark = scene.dfsps.mark(payer)
    r = scene.fspiop.put(f"/quotes/{quote['quoteId']}", payee, payer, quote_response_body("10", secret=secret))
    assert r.status_code == 200, r.text
    quoted = scene.dfsps.callback(payer, f"/quotes/{quote['quoteId']}", since=mark).body

    transfer = Transfer(payer, payee, amount=quoted["transferAmount"]["amount"], transfer_id=quote["transactionId"],
                        secret=secret, ilp_packet=quoted["ilpPacket"], condition=quoted["condition"])
    prepare_headers = end_to_end_headers("POST", "/transfers")
    forwarded = scene.reserve(transfer, headers=prepare_headers)
    assert forwarded.raw == dumps(transfer.body)  # the bytes, as the payer signed them
    assert (forwarded.source, forwarded.destination) == (payer, payee)
    assert_kept(forwarded, prepare_headers)
    assert_positions(scene, {payer: "10", payee: "0"})

    mark = scene.dfsps.mark(payer)
    fulfil_headers = end_to_end_headers("PUT", transfer.path)
    fulfil = transfer.fulfil_body()
    r = scene.fulfil(transfer, fulfil, headers=fulfil_headers)
    assert r.status_code == 200, r.text
    assert r.content == b""
    done = scene.dfsps.callback(payer, transfer.path, since=mark)
    assert done.body["transferState"] == "COMMITTED"
    assert done.body["fulfilment"] == secret.fulfilment
    assert done.raw == dumps(fulfil)
    assert (done.source, done.destination) == (payee, payer)
    assert_kept(done, fulfil_headers)
    assert_positions(scene, {payer: "10", payee: "-10"})


def test_c05_get_transfer_by_payer_and_payee(scene: Scene) -> None:
    """#5: `GET /transfers/{ID}` by the payer and by the payee answers 202, then the hub's own
    `PUT /transfers/{ID}` with transferState COMMITTED to the one who asked.

    A DFSP that lost a callback (or restarted) recovers the outcome of a transfer this way.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.commit(transfer)
    for requester in (payer, payee):
        answer = scene.get_transfer(requester, transfer.id)
        assert answer.body["transferState"] == "COMMITTED", answer
        assert_hub_originated(answer, requester)


def test_c06_get_transfer_by_an_outsider_gets_3000(scene: Scene) -> None:
    """#6: `GET /transfers/{ID}` from a DFSP that is neither payer nor payee answers 202, then
    `PUT /transfers/{ID}/error` 3000 to it.

    Transfer details are private to the two parties; a third DFSP must not learn them.
    """
    payer, payee = new_pair(scene)
    outsider = scene.dfsp("outsider")
    transfer = Transfer(payer, payee)
    scene.commit(transfer)
    error = scene.get_transfer(outsider, transfer.id, error=True)
    assert error.error_code == "3000", error
    assert_hub_originated(error, outsider)


def test_c07_get_unknown_transfer_gets_3208(scene: Scene) -> None:
    """#7: `GET /transfers/{random}` answers 202, then error 3208 "Transfer ID not found".

    A DFSP asking about a transfer the hub never saw must be told so, or it waits forever.
    """
    payer = scene.dfsp("payer")
    error = scene.get_transfer(payer, new_id(), error=True)
    assert error.error_code == "3208", error
    assert "transfer id not found" in error.error_description.lower()
    assert_hub_originated(error, payer)


# --------------------------------------------------------------------------- duplicates


def test_c08_identical_prepare_after_commit_returns_the_state(scene: Scene) -> None:
    """#8: the same `POST /transfers` again after commit answers 202, and the payer gets
    `PUT /transfers/{ID}` COMMITTED; no second transfer is made.

    A payer that timed out resends its prepare; it must get the outcome, not pay twice.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.commit(transfer)
    assert_positions(scene, {payer: "10", payee: "-10"})

    mark = scene.dfsps.mark(payer)
    r = scene.prepare(transfer)
    assert r.status_code == 202, r.text
    again = scene.dfsps.callback(payer, transfer.path, since=mark)
    assert again.body["transferState"] == "COMMITTED", again
    assert again.destination == payer
    assert_positions(scene, {payer: "10", payee: "-10"})
    posts = [q for q in scene.dfsps.received(payee)
             if q.method == "POST" and (q.body or {}).get("transferId") == transfer.id]
    assert len(posts) == 1, posts


def test_c08_identical_prepare_after_abort_returns_aborted(scene: Scene) -> None:
    """#8 (aborted side, from the contract): the same `POST /transfers` again after the payee
    rejected it answers 202, and the payer gets `PUT /transfers/{ID}` ABORTED; nothing is reserved.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    mark = scene.dfsps.mark(payer)
    assert scene.reject(transfer).status_code == 200
    scene.dfsps.error_callback(payer, transfer.path, since=mark)
    assert_positions(scene, {payer: "0"})

    mark = scene.dfsps.mark(payer)
    assert scene.prepare(transfer).status_code == 202
    again = scene.dfsps.callback(payer, transfer.path, since=mark)
    assert again.body["transferState"] == "ABORTED", again
    assert_positions(scene, {payer: "0", payee: "0"})


def test_prepare_reusing_the_id_of_a_funds_in_gets_3106(scene: Scene) -> None:
    """A transfer id the hub already used for an operator's funds-in is not a DFSP's to reuse:
    3106 to the payer, and nothing reserved (not a 500 from the ledger's unique key)."""
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    r = scene.hub.funds(payer, scene.account_id(payer, "SETTLEMENT"), "recordFundsIn", 1, transfer_id=transfer.id)
    assert r.status_code == 202, r.text
    mark = scene.dfsps.mark(payer)
    assert scene.prepare(transfer).status_code == 202
    error = scene.dfsps.error_callback(payer, transfer.path, since=mark)
    assert error.error_code == "3106", error
    assert_positions(scene, {payer: "0", payee: "0"})


def test_c08_modified_prepare_gets_3106(scene: Scene) -> None:
    """#8 (modified side, from the contract): a `POST /transfers` reusing a transferId with a
    different body answers 202, then error 3106 to the payer; the first transfer is untouched.

    Reusing an id for another payment is a payer bug; it must neither pay twice nor change the first.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.commit(transfer)
    changed = Transfer(payer, payee, amount="11", transfer_id=transfer.id)
    mark = scene.dfsps.mark(payer)
    assert scene.prepare(changed).status_code == 202
    error = scene.dfsps.error_callback(payer, transfer.path, since=mark)
    assert error.error_code == "3106", error
    assert_hub_originated(error, payer)
    assert scene.transfer_state(payer, transfer.id) == "COMMITTED"
    assert_positions(scene, {payer: "10", payee: "-10"})


def test_c09_identical_fulfil_twice_tells_the_payee_committed(scene: Scene) -> None:
    """#9: the same `PUT /transfers/{ID}` twice answers 200 both times; after the second the payee
    gets `PUT /transfers/{ID}` COMMITTED, and the money moved once.

    A payee that did not see its PUT acknowledged resends it and needs the outcome back.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    body = transfer.fulfil_body()
    mark = scene.dfsps.mark(payer)
    assert scene.fulfil(transfer, body).status_code == 200
    scene.dfsps.callback(payer, transfer.path, since=mark)

    mark = scene.dfsps.mark(payee)
    r = scene.fulfil(transfer, body)
    assert r.status_code == 200, r.text
    state = scene.dfsps.callback(payee, transfer.path, since=mark)
    assert state.body["transferState"] == "COMMITTED", state
    assert state.destination == payee
    assert_positions(scene, {payer: "10", payee: "-10"})


def test_c10_modified_fulfil_gets_3106(scene: Scene) -> None:
    """#10: a second `PUT /transfers/{ID}` with a changed body answers 200, then the payee gets
    `PUT /transfers/{ID}/error` 3106 "Modified request"; the transfer stays COMMITTED.

    The first fulfil is final; a different second one is a payee bug that must not change it.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.commit(transfer)

    changed = transfer.fulfil_body(completed="2020-01-01T00:00:00.000Z")
    mark = scene.dfsps.mark(payee)
    r = scene.fulfil(transfer, changed)
    assert r.status_code == 200, r.text
    error = scene.dfsps.error_callback(payee, transfer.path, since=mark)
    assert error.error_code == "3106", error
    assert "modified request" in error.error_description.lower()
    assert error.destination == payee
    assert scene.transfer_state(payer, transfer.id) == "COMMITTED"
    assert_positions(scene, {payer: "10", payee: "-10"})


@pytest.mark.parametrize("second", ["identical", "modified"])
def test_c11_reject_and_duplicate_reject_abort_once(scene: Scene, second: str) -> None:
    """#11: the payee's `PUT /transfers/{ID}/error` answers 200 and reaches the payer; a second
    one (identical or changed) also answers 200; the transfer is ABORTED and the payer's position
    comes back once.

    A payee rejects a transfer it cannot credit; the payer's reserved money must be released,
    exactly once however often the payee repeats itself.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    mark = scene.dfsps.mark(payer)
    r = scene.reject(transfer)
    assert r.status_code == 200, r.text
    forwarded = scene.dfsps.error_callback(payer, transfer.path, since=mark)
    assert forwarded.error_code == "5100", forwarded
    assert (forwarded.source, forwarded.destination) == (payee, payer)

    again = {"errorInformation": {"errorCode": "5101", "errorDescription": "Payee rejected quote - again"}}
    r = scene.reject(transfer, None if second == "identical" else again)
    assert r.status_code == 200, r.text
    scene.wait_state(payer, transfer.id, "ABORTED")
    assert_positions(scene, {payer: "0", payee: "0"})


# --------------------------------------------------------------------------- bad fulfils


def test_c12_invalid_fulfilment_aborts_with_3100(scene: Scene) -> None:
    """#12: `PUT /transfers/{ID}` COMMITTED with a fulfilment that does not hash to the condition
    answers 200; payer and payee get error 3100 "invalid fulfilment"; the transfer is ABORTED and
    the positions are restored.

    The condition is the payer's guarantee: money moves only against the payee's secret.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    payer_mark, payee_mark = scene.dfsps.mark(payer), scene.dfsps.mark(payee)
    trace = new_traceparent()
    r = scene.fulfil(transfer, transfer.fulfil_body(fulfilment=Secret().fulfilment), headers={"traceparent": trace})
    assert r.status_code == 200, r.text
    for dfsp, mark in ((payer, payer_mark), (payee, payee_mark)):
        error = scene.dfsps.error_callback(dfsp, transfer.path, since=mark)
        assert error.error_code == "3100", error
        assert "invalid fulfilment" in error.error_description.lower()
        assert_hub_originated(error, dfsp, version="1.1")
        assert error.headers["traceparent"].split("-")[1] == trace.split("-")[1], "the error keeps the fulfil's trace"
    scene.wait_state(payer, transfer.id, "ABORTED")
    assert_positions(scene, {payer: "0", payee: "0"})


def test_c13_missing_fulfilment_aborts_with_3100(scene: Scene) -> None:
    """#13: `PUT /transfers/{ID}` COMMITTED without `fulfilment` answers 200 (it is optional in the
    schema), then error 3100 to the payer; the transfer is ABORTED.

    A commit without the secret proves nothing; the payer must not be debited.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    mark = scene.dfsps.mark(payer)
    r = scene.fulfil(transfer, fulfil_body(None, "COMMITTED"))
    assert r.status_code == 200, r.text
    error = scene.dfsps.error_callback(payer, transfer.path, since=mark)
    assert error.error_code == "3100", error
    assert re.search("validation|fulfil|required", error.error_description, re.IGNORECASE), error
    scene.wait_state(payer, transfer.id, "ABORTED")
    assert_positions(scene, {payer: "0", payee: "0"})


def test_c14_invalid_completed_timestamp_is_400_and_the_transfer_ends_aborted(scene: Scene) -> None:
    """#14: `PUT /transfers/{ID}` with a malformed completedTimestamp is refused with 400; the
    transfer is never committed and ends ABORTED when it expires.

    A malformed fulfil is not a fulfil; the payer's money is released by the timeout.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee, expires_in=2)
    scene.reserve(transfer)
    r = scene.fulfil(transfer, transfer.fulfil_body(completed="yesterday"))
    assert r.status_code == 400, r.text
    assert sync_error(r)[0] == "3100"
    scene.wait_state(payer, transfer.id, "ABORTED", timeout=EXPIRY_WAIT_S)
    assert_positions(scene, {payer: "0", payee: "0"})


def test_c15_expired_transfer_notifies_payer_and_payee(scene: Scene) -> None:
    """#15: a prepared transfer the payee never answers expires: both payer and payee get
    `PUT /transfers/{ID}/error` 3303 from the hub, and the payer's position is restored.

    The payee may already have reserved funds for its customer; it must learn the transfer is
    dead as surely as the payer does.
    """
    payer, payee = new_pair(scene)
    expires_at = time.monotonic() + 2
    transfer = Transfer(payer, payee, expires_in=2)
    payer_mark, payee_mark = scene.dfsps.mark(payer), scene.dfsps.mark(payee)
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    scene.reserve(transfer, headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert_positions(scene, {payer: "10"})
    for dfsp, mark in ((payer, payer_mark), (payee, payee_mark)):
        error = scene.dfsps.error_callback(dfsp, transfer.path, since=mark, timeout=EXPIRY_WAIT_S)
        assert error.error_code == "3303", error
        assert_hub_originated(error, dfsp, version="1.1")
        assert trace_id(error) == trace, "the expiry error belongs to the prepare's trace"
        assert error.at - expires_at <= EXPIRY_LATE_S, f"3303 came {error.at - expires_at:.1f} s after expiration"
    assert scene.transfer_state(payer, transfer.id) == "ABORTED"
    assert_positions(scene, {payer: "0", payee: "0"})


def test_c16_fulfil_reserved_with_v1_0_is_ignored_until_expiry(scene: Scene) -> None:
    """#16: `PUT /transfers/{ID}` transferState RESERVED with Content-Type version 1.0 answers 200
    but commits nothing (PATCH does not exist in 1.0): GET at once says RESERVED, and after expiry
    ABORTED.

    A v1.0 payee cannot receive the commit notification, so the hub must not commit on its behalf.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee, expires_in=2)
    scene.reserve(transfer)
    r = scene.fulfil(transfer, transfer.fulfil_body("RESERVED"), version="1.0")
    assert r.status_code == 200, r.text
    assert scene.transfer_state(payer, transfer.id) == "RESERVED"
    scene.wait_state(payer, transfer.id, "ABORTED", timeout=EXPIRY_WAIT_S)
    assert_positions(scene, {payer: "0", payee: "0"})


def test_c16_fulfil_reserved_with_v1_1_commits_and_patches_the_payee(scene: Scene) -> None:
    """#16 (the v1.1 side, from the contract): RESERVED with version 1.1 commits; the payer gets
    `PUT /transfers/{ID}` COMMITTED and the payee `PATCH /transfers/{ID}` {completedTimestamp,
    transferState COMMITTED} without the fulfilment.

    A payee that asks for the notification releases the funds to its customer only on the PATCH.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    payer_mark, payee_mark = scene.dfsps.mark(payer), scene.dfsps.mark(payee)
    r = scene.fulfil(transfer, transfer.fulfil_body("RESERVED"))
    assert r.status_code == 200, r.text
    done = scene.dfsps.callback(payer, transfer.path, since=payer_mark)
    assert done.body["transferState"] == "COMMITTED", done
    patch = scene.dfsps.wait_for(payee, "PATCH", transfer.path, since=payee_mark, exact=True)
    assert patch.body["transferState"] == "COMMITTED"
    assert "completedTimestamp" in patch.body
    assert "fulfilment" not in patch.body
    assert_hub_originated(patch, payee)
    assert_positions(scene, {payer: "10", payee: "-10"})


def test_c17_aborted_in_a_fulfil_is_ignored_then_error_aborts(scene: Scene) -> None:
    """#17: `PUT /transfers/{ID}` with transferState ABORTED answers 200 but changes nothing (the
    payee is told with a 3100 error to use /error); a following `PUT .../error` aborts it.

    Rejection has one route in FSPIOP; the hub must not guess from a malformed fulfil.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    mark = scene.dfsps.mark(payee)
    r = scene.fulfil(transfer, fulfil_body(None, "ABORTED"))
    assert r.status_code == 200, r.text
    hint = scene.dfsps.error_callback(payee, transfer.path, since=mark)
    assert hint.error_code == "3100", hint
    assert scene.transfer_state(payer, transfer.id) == "RESERVED"
    assert_positions(scene, {payer: "10", payee: "0"})

    mark = scene.dfsps.mark(payer)
    assert scene.reject(transfer).status_code == 200
    scene.dfsps.error_callback(payer, transfer.path, since=mark)
    scene.wait_state(payer, transfer.id, "ABORTED")
    assert_positions(scene, {payer: "0", payee: "0"})


# --------------------------------------------------------------------------- liquidity and limits


def test_c18_transfer_above_liquidity_gets_4001(scene: Scene) -> None:
    """#18: a transfer above the payer's liquidity (funds in) answers 202, then the payer gets
    error 4001; nothing is reserved and the payee never hears of it.

    The hub guarantees settlement: a payer cannot spend money it has not deposited.
    """
    payer, payee = new_pair(scene, funds=100)
    transfer = Transfer(payer, payee, amount="500")
    mark = scene.dfsps.mark(payer)
    r = scene.prepare(transfer)
    assert r.status_code == 202, r.text
    error = scene.dfsps.error_callback(payer, transfer.path, since=mark)
    assert error.error_code == "4001", error
    assert_hub_originated(error, payer)
    assert_positions(scene, {payer: "0", payee: "0"})
    assert scene.dfsps.find(payee, "POST", "/transfers") is None


def test_c19_transfer_above_the_net_debit_cap_gets_4200(scene: Scene) -> None:
    """#19: after `PUT /participants/{payer}/limits` lowers the NET_DEBIT_CAP, a transfer above it
    answers 202, then error 4200; with the cap reset, the same amount goes through.

    The NDC is the operator's brake on a DFSP's exposure; it must bite, and let go when raised.
    """
    payer, payee = new_pair(scene)
    scene.set_ndc(payer, 5)
    blocked = Transfer(payer, payee, amount="10")
    mark = scene.dfsps.mark(payer)
    assert scene.prepare(blocked).status_code == 202
    error = scene.dfsps.error_callback(payer, blocked.path, since=mark)
    assert error.error_code == "4200", error
    assert_hub_originated(error, payer)
    assert_positions(scene, {payer: "0"})

    scene.set_ndc(payer, 10000)
    done = scene.commit(Transfer(payer, payee, amount="10"))
    assert done.body["transferState"] == "COMMITTED"
    assert_positions(scene, {payer: "10", payee: "-10"})


# --------------------------------------------------------------------------- inactive participants


def quote_error(scene: Scene, payer: str, payee: str) -> Received:
    body = quote_body(payer, payee)
    mark = scene.dfsps.mark(payer)
    assert scene.fspiop.post("/quotes", payer, payee, body).status_code == 202
    return scene.dfsps.error_callback(payer, f"/quotes/{body['quoteId']}", since=mark)


def transfer_error(scene: Scene, payer: str, payee: str) -> Received:
    transfer = Transfer(payer, payee)
    mark = scene.dfsps.mark(payer)
    assert scene.prepare(transfer).status_code == 202
    return scene.dfsps.error_callback(payer, transfer.path, since=mark)


def test_c20_inactive_payee_refuses_quotes_and_transfers(scene: Scene) -> None:
    """#20: with the payee deactivated (`PUT /participants/{payee}` isActive false), a quote gets
    3201 "Destination FSP Error" and a transfer 3100; reactivated, a transfer commits.

    An operator suspends a DFSP to stop money flowing to it at once, and resumes it later.
    """
    payer, payee = new_pair(scene)
    scene.set_active(payee, False)
    error = quote_error(scene, payer, payee)
    assert error.error_code == "3201", error
    error = transfer_error(scene, payer, payee)
    assert error.error_code == "3100", error
    assert_positions(scene, {payer: "0"})

    scene.set_active(payee, True)
    assert scene.commit(Transfer(payer, payee)).body["transferState"] == "COMMITTED"


@pytest.mark.parametrize(("side", "quote_code"), [("payee", "3201"), ("payer", "3100")])
def test_c21_inactive_position_account_refuses_quotes_and_transfers(scene: Scene, side: str,
                                                                    quote_code: str) -> None:
    """#21: with a POSITION account deactivated (`PUT /participants/{n}/accounts/{id}`), a quote
    gets 3201 (payee side) or 3100 (payer side) and a transfer 3100; reactivated, a transfer commits.

    A DFSP may be suspended in one currency only; that currency must stop, the participant stays.
    """
    payer, payee = new_pair(scene)
    name = payee if side == "payee" else payer
    position_id = scene.account_id(name, "POSITION")
    scene.set_account_active(name, position_id, False)
    error = quote_error(scene, payer, payee)
    assert error.error_code == quote_code, error
    error = transfer_error(scene, payer, payee)
    assert error.error_code == "3100", error
    assert_positions(scene, {payer: "0", payee: "0"})

    scene.set_account_active(name, position_id, True)
    assert scene.commit(Transfer(payer, payee)).body["transferState"] == "COMMITTED"


# --------------------------------------------------------------------------- body validation


def _changed(body: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """`body` with the field at `dotted` removed (value None) or replaced."""
    body = copy.deepcopy(body)
    *parents, leaf = dotted.split(".")
    node = body
    for key in parents:
        node = node[key]
    if value is None:
        del node[leaf]
    else:
        node[leaf] = value
    return body


@pytest.mark.parametrize(("field", "value"), [
    ("transferId", None), ("payerFsp", None), ("payeeFsp", None), ("amount", None), ("amount.currency", None),
    ("expiration", None), ("ilpPacket", None), ("condition", None),
    ("amount.currency", "usd"), ("amount.amount", "10.12345"), ("amount.amount", "-5"), ("amount.amount", "ten"),
    ("transferId", "not-a-uuid"), ("expiration", "tomorrow"),
])
def test_c32_transfer_with_a_missing_or_malformed_field_is_3100(scene: Scene, field: str, value: Any) -> None:
    """#32: `POST /transfers` missing a mandatory field, or with a malformed currency, amount,
    transferId or expiration, is refused at once with 400/3100 naming the field.

    The payer learns synchronously what is wrong instead of waiting for a transfer never made.
    """
    payer, payee = new_pair(scene)
    body = _changed(Transfer(payer, payee).body, field, value)
    r = scene.fspiop.post("/transfers", payer, payee, body)
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3100", description
    leaf = field.rsplit(".", 1)[-1]
    assert leaf.lower() in description.lower()
    assert_positions(scene, {payer: "0"})


@pytest.mark.parametrize("case", ["payer is payee", "expiration in the past"])
def test_c32_prepare_failing_validation_gets_a_3100_callback(scene: Scene, case: str) -> None:
    """#32 (the checks after the 202, from the contract): a schema-valid prepare whose payer is its
    own payee, or whose expiration has passed, answers 202, then error 3100 to the payer; nothing
    is reserved.
    """
    payer, payee = new_pair(scene)
    if case == "payer is payee":
        transfer = Transfer(payer, payer)
    else:
        transfer = Transfer(payer, payee, expiration="2020-01-01T00:00:00.000Z")
    mark = scene.dfsps.mark(payer)
    assert scene.prepare(transfer).status_code == 202
    error = scene.dfsps.error_callback(payer, transfer.path, since=mark)
    assert error.error_code == "3100", error
    assert_hub_originated(error, payer)
    assert_positions(scene, {payer: "0"})


# --------------------------------------------------------------------------- fulfil routing


@pytest.mark.parametrize("state", ["COMMITTED", "RESERVED"])
def test_c37_fulfil_to_a_wrong_destination_aborts(scene: Scene, state: str) -> None:
    """#37: a fulfil whose FSPIOP-Destination is not the payer (here: an FSP that does not exist)
    answers 200; the payer gets error 3100, the transfer is ABORTED and positions restored; a payee
    that asked for a notification (RESERVED) gets `PATCH /transfers/{ID}` ABORTED.

    The payer must hear the outcome of its own transfer; a fulfil addressed elsewhere cannot
    commit it behind the payer's back.
    """
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    payer_mark, payee_mark = scene.dfsps.mark(payer), scene.dfsps.mark(payee)
    r = scene.fulfil(transfer, transfer.fulfil_body(state), destination="nosuchfsp")
    assert r.status_code == 200, r.text
    error = scene.dfsps.error_callback(payer, transfer.path, since=payer_mark)
    assert error.error_code == "3100", error
    assert_hub_originated(error, payer)
    scene.wait_state(payer, transfer.id, "ABORTED")
    assert_positions(scene, {payer: "0", payee: "0"})
    if state == "RESERVED":
        patch = scene.dfsps.wait_for(payee, "PATCH", transfer.path, since=payee_mark, exact=True)
        assert patch.body["transferState"] == "ABORTED", patch
        assert_hub_originated(patch, payee)


def test_c37_fulfil_from_a_third_dfsp_leaves_the_transfer_alone(scene: Scene) -> None:
    """#37 (the source side): a fulfil whose FSPIOP-Source is not the payee answers 200, then error
    3100 "FSPIOP-Source header should match Payee" goes to that source; the transfer stays RESERVED
    and the real payee can still commit it.

    Only the payee holds the fulfilment; a third DFSP must be able neither to commit nor to abort
    someone else's transfer. (The contract says such a fulfil aborts the transfer and the payer
    gets the error; that would let any DFSP cancel any transfer whose id it learns, so this test
    asserts what the switch does, Mojaloop's behaviour, and the report asks the lead to decide.)
    """
    payer, payee = new_pair(scene)
    outsider = scene.dfsp("outsider")
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    mark = scene.dfsps.mark(outsider)
    r = scene.fulfil(transfer, source=outsider)
    assert r.status_code == 200, r.text
    error = scene.dfsps.error_callback(outsider, transfer.path, since=mark)
    assert error.error_code == "3100", error
    assert_hub_originated(error, outsider)
    assert scene.transfer_state(payer, transfer.id) == "RESERVED"
    assert_positions(scene, {payer: "10", payee: "0"})

    mark = scene.dfsps.mark(payer)
    assert scene.fulfil(transfer).status_code == 200
    assert scene.dfsps.callback(payer, transfer.path, since=mark).body["transferState"] == "COMMITTED"
