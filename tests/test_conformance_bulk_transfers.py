"""Conformance, bulk transfers: POST /bulkTransfers, the payee's PUT and /error, GET, duplicates
and expiry, seen from the DFSPs over real HTTP (docs/bulk-transfers.md).

A bulk carries many transfers from one payer FSP to one payee FSP. What each side relies on is
checked the way it can check it: the one POST /bulkTransfers the payee gets (only the transfers
the hub accepted), the PUT /bulkTransfers/{ID} both sides get at the end (a fulfilment or an
errorInformation per transfer), GET /bulkTransfers/{ID}, and the positions the hub operator sees
(the payer's up by each accepted transfer at prepare, the payee's down by each committed one).
Individual transfers are ordinary transfers in the ledger, so after each test's hub work the
ledger check (miniloop.ledger.check) must find nothing wrong.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fspiop_dfsp import (
    HUB,
    Received,
    Scene,
    Transfer,
    assert_hub_originated,
    b64url,
    dumps,
    error_body,
    in_seconds,
    new_id,
    now_iso,
    watch_events,
)

from miniloop.ledger.check import check_ledger
from miniloop.ledger.store import DB_FILE

EXPIRY_WAIT_S = 12.0  # expiration = now + 2 s, the sweeper runs every 0.2 s, callbacks take a moment
BIG_BULK_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------- helpers


@dataclass
class Bulk:
    """A bulk a test is about to send: its POST body, and the fulfilments the payee keeps."""

    payer: str
    payee: str
    transfers: list[Transfer]
    expires_in: float = 60.0
    bulk_id: str = field(default_factory=new_id)
    bulk_quote_id: str = field(default_factory=new_id)
    expiration: str = ""

    def __post_init__(self) -> None:
        if not self.expiration:
            self.expiration = in_seconds(self.expires_in)

    @property
    def path(self) -> str:
        return f"/bulkTransfers/{self.bulk_id}"

    @property
    def body(self) -> dict[str, Any]:
        return {
            "bulkTransferId": self.bulk_id,
            "bulkQuoteId": self.bulk_quote_id,
            "payerFsp": self.payer,
            "payeeFsp": self.payee,
            "individualTransfers": [individual(t) for t in self.transfers],
            "expiration": self.expiration,
        }

    def answer(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        """The payee's PUT /bulkTransfers/{ID}."""
        return {"bulkTransferState": "COMPLETED", "completedTimestamp": now_iso(), "individualTransferResults": results}

    def fulfilled(self, *transfers: Transfer) -> list[dict[str, Any]]:
        return [{"transferId": t.id, "fulfilment": t.secret.fulfilment} for t in transfers or self.transfers]


def individual(t: Transfer) -> dict[str, Any]:
    return {"transferId": t.id, "transferAmount": {"amount": t.amount, "currency": t.currency},
            "ilpPacket": t.ilp_packet, "condition": t.condition or t.secret.condition}


def new_bulk(scene: Scene, amounts: tuple[str, ...] = ("10", "10", "10"), *, payer_ndc: int = 10000,
             **options: Any) -> Bulk:
    payer, payee = scene.dfsp("payer", ndc=payer_ndc), scene.dfsp("payee")
    return Bulk(payer, payee, [Transfer(payer, payee, amount=a) for a in amounts], **options)


def post(scene: Scene, bulk: Bulk, body: dict[str, Any] | None = None, **kw: Any) -> None:
    r = scene.fspiop.post("/bulkTransfers", kw.pop("source", bulk.payer), bulk.payee, body or bulk.body, **kw)
    assert r.status_code == 202, r.text


def accept(scene: Scene, bulk: Bulk, timeout: float = 10.0) -> Received:
    """POST the bulk and wait for the payee's POST /bulkTransfers (the accepted transfers are reserved)."""
    mark = scene.dfsps.mark(bulk.payee)
    post(scene, bulk)
    return scene.dfsps.wait_for(bulk.payee, "POST", "/bulkTransfers", timeout, since=mark, exact=True,
                                where=lambda req: (req.body or {}).get("bulkTransferId") == bulk.bulk_id)


def answer(scene: Scene, bulk: Bulk, results: list[dict[str, Any]], *, body: dict[str, Any] | None = None,
           timeout: float = 10.0) -> tuple[Received, Received]:
    """The payee's PUT /bulkTransfers/{ID}; returns the hub's final PUT to the payer and to the payee."""
    payer_mark, payee_mark = scene.dfsps.mark(bulk.payer), scene.dfsps.mark(bulk.payee)
    r = scene.fspiop.put(bulk.path, bulk.payee, bulk.payer, body or bulk.answer(results))
    assert r.status_code == 200, r.text
    return (scene.dfsps.callback(bulk.payer, bulk.path, since=payer_mark, timeout=timeout),
            scene.dfsps.callback(bulk.payee, bulk.path, since=payee_mark, timeout=timeout))


def get_bulk(scene: Scene, requester: str, bulk_id: str, *, error: bool = False) -> Received:
    """GET /bulkTransfers/{ID} as `requester`, then the hub's answer (`PUT` or `PUT .../error`)."""
    path = f"/bulkTransfers/{bulk_id}"
    mark = scene.dfsps.mark(requester)
    r = scene.fspiop.get(path, requester)
    assert r.status_code == 202, r.text
    return scene.dfsps.wait_for(requester, "PUT", path + ("/error" if error else ""), since=mark, exact=True,
                                where=lambda req: req.source == HUB)


def results_of(received: Received) -> dict[str, dict[str, Any]]:
    """transferId -> its individualTransferResult."""
    return {r["transferId"]: r for r in received.body.get("individualTransferResults", [])}


def error_codes(received: Received) -> dict[str, str | None]:
    """transferId -> errorCode (None for a fulfilled one)."""
    return {i: (r.get("errorInformation") or {}).get("errorCode") for i, r in results_of(received).items()}


def assert_positions(scene: Scene, expected: dict[str, str], timeout: float = 5.0) -> None:
    want = {name: Decimal(value) for name, value in expected.items()}
    deadline = time.monotonic() + timeout
    while True:
        seen = {name: scene.position(name) for name in want}
        if seen == want:
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"positions are {seen}, expected {want}")
        time.sleep(0.05)


def ledger_ok(scene: Scene) -> None:
    report = check_ledger(scene.hub.data_dir / DB_FILE, grace_s=3600)
    assert report.ok, report.problems


def transfer_messages(scene: Scene, *dfsps: str, since: dict[str, int] | None = None) -> list[Received]:
    """Everything under /transfers the DFSPs got: a bulk's transfers must never cause any."""
    return [r for d in dfsps for r in scene.dfsps.received(d)[(since or {}).get(d, 0):] if r.path.startswith("/transfers")]


# --------------------------------------------------------------------------- the happy path


def test_a_bulk_of_three_commits_and_both_sides_get_the_fulfilments(scene: Scene) -> None:
    """All three transfers are reserved at once (the payer's position up by 30), the payee gets the
    payer's POST /bulkTransfers unchanged, answers with three fulfilments, and the payer AND the
    payee get PUT /bulkTransfers/{ID} COMPLETED with them; GET answers the same to both, and each
    transfer is an ordinary COMMITTED transfer. No individual /transfers message is ever sent.
    Announced on NATS as bulkTransfer.ACCEPTED, then bulkTransfer.COMPLETED."""
    bulk = new_bulk(scene)
    marks = {bulk.payer: scene.dfsps.mark(bulk.payer), bulk.payee: scene.dfsps.mark(bulk.payee)}
    finals: list[tuple[Received, Received]] = []

    def act() -> None:
        forwarded = accept(scene, bulk)
        assert forwarded.raw == dumps(bulk.body)  # every transfer accepted: the payer's bytes, as signed
        assert (forwarded.source, forwarded.destination) == (bulk.payer, bulk.payee)
        assert_positions(scene, {bulk.payer: "30", bulk.payee: "0"})
        finals.append(answer(scene, bulk, bulk.fulfilled()))

    events = watch_events(scene.hub.urls["nats"], f"ml.event.bulkTransfer.{bulk.bulk_id}.>", 2, act)
    assert [e["subject"].rsplit(".", 1)[1] for e in events] == ["ACCEPTED", "COMPLETED"]
    assert events[0]["processingStates"] == {"ACCEPTED": 3} and events[0]["bulkTransferState"] == "ACCEPTED"
    assert events[1]["processingStates"] == {"COMPLETED": 3} and events[1]["payeeFsp"] == bulk.payee

    (to_payer, to_payee), = finals
    for final, dfsp in ((to_payer, bulk.payer), (to_payee, bulk.payee)):
        assert final.body["bulkTransferState"] == "COMPLETED", final
        assert "completedTimestamp" in final.body
        assert results_of(final) == {t.id: {"transferId": t.id, "fulfilment": t.secret.fulfilment}
                                     for t in bulk.transfers}
        assert [r["transferId"] for r in final.body["individualTransferResults"]] == [t.id for t in bulk.transfers]
        assert_hub_originated(final, dfsp, version="1.1")
    assert_positions(scene, {bulk.payer: "30", bulk.payee: "-30"})

    for requester in (bulk.payer, bulk.payee):
        got = get_bulk(scene, requester, bulk.bulk_id)
        assert got.body["bulkTransferState"] == "COMPLETED"
        assert error_codes(got) == {t.id: None for t in bulk.transfers}
    assert transfer_messages(scene, bulk.payer, bulk.payee, since=marks) == []
    for t in bulk.transfers:
        assert scene.transfer_state(bulk.payer, t.id) == "COMMITTED"
    ledger_ok(scene)


def test_get_by_an_outsider_gets_3000_and_an_unknown_id_3210(scene: Scene) -> None:
    """A bulk's details are private to its payer and payee (3000), and only its payee may answer it
    (3100); an id the hub never saw gets 3210 "Bulk transfer ID not found", as central-ledger
    answers. While the bulk waits for the payee, GET shows the results known so far: the transfer
    refused at prepare (4001: more than the payer's liquidity), not the reserved one."""
    bulk = new_bulk(scene, ("5", "20000"))
    reserved, too_big = bulk.transfers
    accept(scene, bulk)
    outsider = scene.dfsp("outsider")
    error = get_bulk(scene, outsider, bulk.bulk_id, error=True)
    assert error.error_code == "3000", error
    assert_hub_originated(error, outsider)
    mark = scene.dfsps.mark(outsider)
    r = scene.fspiop.put(bulk.path, outsider, bulk.payer, bulk.answer(bulk.fulfilled(reserved)))
    assert r.status_code == 200, r.text
    assert scene.dfsps.error_callback(outsider, bulk.path, since=mark).error_code == "3100"
    error = get_bulk(scene, bulk.payer, new_id(), error=True)
    assert error.error_code == "3210", error
    assert "bulk transfer id not found" in error.error_description.lower()

    got = get_bulk(scene, bulk.payee, bulk.bulk_id)
    assert got.body["bulkTransferState"] == "ACCEPTED" and "completedTimestamp" not in got.body
    assert error_codes(got) == {too_big.id: "4001"}
    assert_positions(scene, {bulk.payer: "5", bulk.payee: "0"})
    to_payer, _ = answer(scene, bulk, bulk.fulfilled(reserved))
    assert error_codes(to_payer) == {reserved.id: None, too_big.id: "4001"}
    ledger_ok(scene)


# --------------------------------------------------------------------------- one transfer fails alone


def test_one_transfer_over_the_net_debit_cap_fails_alone_with_4200(scene: Scene) -> None:
    """NDC 25: 10 is reserved, 30 would pass the cap (4200), the next 10 still fits. The payee gets
    only the two accepted transfers (a new body, without the payer's signature); at the end both
    sides get two fulfilments and the 4200."""
    bulk = new_bulk(scene, ("10", "30", "10"), payer_ndc=25)
    first, over, last = bulk.transfers
    signed = {"fspiop-signature": json.dumps({"signature": b64url(os.urandom(64)), "protectedHeader": "e30"})}
    mark = scene.dfsps.mark(bulk.payee)
    post(scene, bulk, headers=signed)
    forwarded = scene.dfsps.wait_for(bulk.payee, "POST", "/bulkTransfers", since=mark, exact=True)
    assert [t["transferId"] for t in forwarded.body["individualTransfers"]] == [first.id, last.id]
    assert forwarded.body["individualTransfers"][0] == individual(first)
    assert {k: forwarded.body[k] for k in ("bulkTransferId", "bulkQuoteId", "payerFsp", "payeeFsp", "expiration")} == {
        k: bulk.body[k] for k in ("bulkTransferId", "bulkQuoteId", "payerFsp", "payeeFsp", "expiration")}
    assert "fspiop-signature" not in forwarded.headers  # the body is not the one the payer signed
    assert forwarded.source == bulk.payer
    assert_positions(scene, {bulk.payer: "20", bulk.payee: "0"})

    to_payer, to_payee = answer(scene, bulk, bulk.fulfilled(first, last))
    for final in (to_payer, to_payee):
        assert final.body["bulkTransferState"] == "COMPLETED"
        assert error_codes(final) == {first.id: None, over.id: "4200", last.id: None}
    assert_positions(scene, {bulk.payer: "20", bulk.payee: "-20"})
    assert scene.transfer_state(bulk.payer, over.id) == "ABORTED"
    ledger_ok(scene)


def test_a_duplicate_individual_transfer_id_fails_alone_with_3106(scene: Scene) -> None:
    """An individual transferId that already exists (an earlier transfer, or the same bulk twice)
    gets 3106 "Individual transfer prepare duplicate"; the existing transfer is untouched and its
    fulfilment is not shown to anyone."""
    bulk = new_bulk(scene, ("10", "10"))
    earlier = Transfer(bulk.payer, bulk.payee, amount="7")
    scene.commit(earlier)
    first, second = bulk.transfers
    taken = Transfer(bulk.payer, bulk.payee, amount="3", transfer_id=earlier.id)
    repeated = Transfer(bulk.payer, bulk.payee, amount="4", transfer_id=first.id)
    bulk.transfers = [first, taken, second, repeated]
    forwarded = accept(scene, bulk)
    assert [t["transferId"] for t in forwarded.body["individualTransfers"]] == [first.id, second.id]
    assert_positions(scene, {bulk.payer: "27", bulk.payee: "-7"})

    to_payer, _ = answer(scene, bulk, bulk.fulfilled(first, second))
    results = to_payer.body["individualTransferResults"]
    assert [r["transferId"] for r in results] == [first.id, earlier.id, second.id, first.id]
    assert [(r.get("errorInformation") or {}).get("errorCode") for r in results] == [None, "3106", None, "3106"]
    assert results[1]["errorInformation"]["errorDescription"] == \
        "Modified request - Individual transfer prepare duplicate"
    assert "fulfilment" not in results[1]
    assert_positions(scene, {bulk.payer: "27", bulk.payee: "-27"})
    assert scene.transfer_state(bulk.payer, earlier.id) == "COMMITTED"
    ledger_ok(scene)


def test_no_transfer_accepted_rejects_the_bulk_and_the_payer_gets_every_error(scene: Scene) -> None:
    """When every transfer fails at prepare there is nothing to send the payee: the bulk is
    REJECTED and the payer gets PUT /bulkTransfers/{ID} with each transfer's error."""
    bulk = new_bulk(scene, ("10", "20"), payer_ndc=5)
    payee_mark, payer_mark = scene.dfsps.mark(bulk.payee), scene.dfsps.mark(bulk.payer)
    post(scene, bulk)
    final = scene.dfsps.callback(bulk.payer, bulk.path, since=payer_mark)
    assert final.body["bulkTransferState"] == "REJECTED"
    assert error_codes(final) == {t.id: "4200" for t in bulk.transfers}
    assert_hub_originated(final, bulk.payer)
    assert scene.dfsps.received(bulk.payee)[payee_mark:] == []
    assert_positions(scene, {bulk.payer: "0", bulk.payee: "0"})
    ledger_ok(scene)


# --------------------------------------------------------------------------- the payee's answer


def test_the_payee_fulfils_two_and_rejects_one(scene: Scene) -> None:
    """Only the two fulfilled transfers move money; the rejected one's reservation is given back
    and its errorInformation (the payee's own) reaches the payer as sent."""
    bulk = new_bulk(scene)
    one, refused, three = bulk.transfers
    accept(scene, bulk)
    assert_positions(scene, {bulk.payer: "30", bulk.payee: "0"})
    refusal = error_body("5100", "Generic Payee rejection - account closed")
    results = [*bulk.fulfilled(one), {"transferId": refused.id, **refusal}, *bulk.fulfilled(three)]
    to_payer, to_payee = answer(scene, bulk, results)
    for final in (to_payer, to_payee):
        assert error_codes(final) == {one.id: None, refused.id: "5100", three.id: None}
        assert results_of(final)[refused.id]["errorInformation"] == refusal["errorInformation"]
    assert_positions(scene, {bulk.payer: "20", bulk.payee: "-20"})
    assert scene.transfer_state(bulk.payee, refused.id) == "ABORTED"
    ledger_ok(scene)


def test_a_wrong_fulfilment_aborts_that_one_with_3100_and_an_unmentioned_one_aborts_too(scene: Scene) -> None:
    """A fulfilment that does not hash to the condition aborts its transfer (3100); a transfer the
    payee does not mention is aborted (3100); the third commits."""
    bulk = new_bulk(scene)
    good, wrong, forgotten = bulk.transfers
    accept(scene, bulk)
    results = [*bulk.fulfilled(good), {"transferId": wrong.id, "fulfilment": b64url(os.urandom(32))}]
    to_payer, to_payee = answer(scene, bulk, results)
    for final in (to_payer, to_payee):
        assert error_codes(final) == {good.id: None, wrong.id: "3100", forgotten.id: "3100"}
        assert "invalid fulfilment" in results_of(final)[wrong.id]["errorInformation"]["errorDescription"]
    assert_positions(scene, {bulk.payer: "10", bulk.payee: "-10"})
    ledger_ok(scene)


def test_the_payees_bulk_error_rejects_the_whole_bulk(scene: Scene) -> None:
    """PUT /bulkTransfers/{ID}/error from the payee aborts every reserved transfer: positions are
    restored, the payer gets the error as the payee sent it, GET answers REJECTED with it per
    transfer, and a later fulfil is refused."""
    bulk = new_bulk(scene)
    accept(scene, bulk)
    assert_positions(scene, {bulk.payer: "30"})
    mark = scene.dfsps.mark(bulk.payer)
    refusal = error_body("5100", "Generic Payee rejection - payroll refused")
    r = scene.fspiop.put(bulk.path + "/error", bulk.payee, bulk.payer, refusal)
    assert r.status_code == 200, r.text
    error = scene.dfsps.error_callback(bulk.payer, bulk.path, since=mark)
    assert error.body == refusal and error.source == bulk.payee
    assert_positions(scene, {bulk.payer: "0", bulk.payee: "0"})
    got = get_bulk(scene, bulk.payer, bulk.bulk_id)
    assert got.body["bulkTransferState"] == "REJECTED" and "completedTimestamp" in got.body
    assert error_codes(got) == {t.id: "5100" for t in bulk.transfers}

    mark = scene.dfsps.mark(bulk.payee)
    r = scene.fspiop.put(bulk.path, bulk.payee, bulk.payer, bulk.answer(bulk.fulfilled()))
    assert r.status_code == 200, r.text
    late = scene.dfsps.error_callback(bulk.payee, bulk.path, since=mark)
    assert late.error_code == "3100", late
    assert_positions(scene, {bulk.payer: "0", bulk.payee: "0"})
    ledger_ok(scene)


def test_a_resent_answer_gets_the_outcome_and_a_modified_one_3106(scene: Scene) -> None:
    """The payee's identical PUT again: it gets the final PUT once more, nothing moves twice; a
    different PUT for the same bulk: 3106."""
    bulk = new_bulk(scene, ("10", "10"))
    accept(scene, bulk)
    body = bulk.answer(bulk.fulfilled())
    answer(scene, bulk, [], body=body)
    mark = scene.dfsps.mark(bulk.payee)
    r = scene.fspiop.put(bulk.path, bulk.payee, bulk.payer, body)
    assert r.status_code == 200, r.text
    again = scene.dfsps.callback(bulk.payee, bulk.path, since=mark)
    assert again.body["bulkTransferState"] == "COMPLETED" and len(again.body["individualTransferResults"]) == 2
    r = scene.fspiop.put(bulk.path, bulk.payee, bulk.payer, bulk.answer(bulk.fulfilled(bulk.transfers[0])))
    assert r.status_code == 200, r.text
    assert scene.dfsps.error_callback(bulk.payee, bulk.path, since=mark).error_code == "3106"
    assert_positions(scene, {bulk.payer: "20", bulk.payee: "-20"})
    ledger_ok(scene)


def test_a_transfer_of_a_bulk_cannot_be_fulfilled_on_its_own(scene: Scene) -> None:
    """PUT /transfers/{ID} for a transfer of a bulk gets 3100 and changes nothing: the bulk answers
    for its transfers."""
    bulk = new_bulk(scene, ("10",))
    accept(scene, bulk)
    (t,) = bulk.transfers
    mark = scene.dfsps.mark(bulk.payee)
    r = scene.fulfil(t)
    assert r.status_code == 200, r.text
    error = scene.dfsps.error_callback(bulk.payee, t.path, since=mark)
    assert error.error_code == "3100" and bulk.bulk_id in error.error_description
    assert scene.transfer_state(bulk.payer, t.id) == "RESERVED"
    answer(scene, bulk, bulk.fulfilled())
    assert_positions(scene, {bulk.payer: "10", bulk.payee: "-10"})
    ledger_ok(scene)


# --------------------------------------------------------------------------- duplicates and refusals


def test_a_resent_bulk_prepares_nothing_twice_and_a_modified_one_gets_3106(scene: Scene) -> None:
    """The same POST again while in progress: nothing (no second reservation, no second POST to the
    payee); once COMPLETED: the payer gets the outcome as PUT /bulkTransfers/{ID}; the same id with
    another body: 3106 on PUT /bulkTransfers/{ID}/error to the payer, the bulk untouched."""
    bulk = new_bulk(scene, ("10", "10"))
    accept(scene, bulk)
    payee_mark, payer_mark = scene.dfsps.mark(bulk.payee), scene.dfsps.mark(bulk.payer)
    post(scene, bulk)
    modified = {**bulk.body, "individualTransfers": bulk.body["individualTransfers"][:1]}
    post(scene, bulk, modified)
    error = scene.dfsps.error_callback(bulk.payer, bulk.path, since=payer_mark)
    assert error.error_code == "3106", error
    assert_positions(scene, {bulk.payer: "20", bulk.payee: "0"})
    assert [r for r in scene.dfsps.received(bulk.payee)[payee_mark:] if r.method == "POST"] == []
    assert [r for r in scene.dfsps.received(bulk.payer)[payer_mark:] if r.path == bulk.path] == []

    answer(scene, bulk, bulk.fulfilled())
    mark = scene.dfsps.mark(bulk.payer)
    post(scene, bulk)
    again = scene.dfsps.callback(bulk.payer, bulk.path, since=mark)
    assert again.body["bulkTransferState"] == "COMPLETED"
    assert error_codes(again) == {t.id: None for t in bulk.transfers}
    assert_positions(scene, {bulk.payer: "20", bulk.payee: "-20"})
    ledger_ok(scene)


def test_a_bulk_that_breaks_a_bulk_rule_is_refused_whole(scene: Scene) -> None:
    """FSPIOP-Source not the payer FSP, or an expiration already past: 3100 to the sender on
    PUT /bulkTransfers/{ID}/error, nothing reserved, nothing sent to the payee."""
    bulk = new_bulk(scene, ("10",))
    stranger = scene.dfsp("stranger")
    mark = scene.dfsps.mark(stranger)
    post(scene, bulk, source=stranger)
    error = scene.dfsps.error_callback(stranger, bulk.path, since=mark)
    assert error.error_code == "3100" and "Source" in error.error_description

    past = Bulk(bulk.payer, bulk.payee, [Transfer(bulk.payer, bulk.payee)], expiration=in_seconds(-5))
    payee_mark, mark = scene.dfsps.mark(bulk.payee), scene.dfsps.mark(bulk.payer)
    post(scene, past)
    error = scene.dfsps.error_callback(bulk.payer, past.path, since=mark)
    assert error.error_code == "3100" and "past" in error.error_description
    assert scene.dfsps.received(bulk.payee)[payee_mark:] == []
    assert_positions(scene, {bulk.payer: "0", bulk.payee: "0"})
    ledger_ok(scene)


# --------------------------------------------------------------------------- expiry


def test_a_silent_payee_lets_the_bulk_expire_and_both_sides_get_3303(scene: Scene) -> None:
    """The payee never answers: at expiration the sweeper aborts every transfer (positions
    restored) without individual callbacks, the bulk is COMPLETED, and payer and payee get
    PUT /bulkTransfers/{ID} with 3303 for each transfer. A late answer gets 3303."""
    bulk = new_bulk(scene, expires_in=2)
    marks = {bulk.payer: scene.dfsps.mark(bulk.payer), bulk.payee: scene.dfsps.mark(bulk.payee)}
    accept(scene, bulk)
    assert_positions(scene, {bulk.payer: "30"})
    for dfsp in (bulk.payer, bulk.payee):
        final = scene.dfsps.callback(dfsp, bulk.path, since=marks[dfsp], timeout=EXPIRY_WAIT_S)
        assert final.body["bulkTransferState"] == "COMPLETED", final
        assert error_codes(final) == {t.id: "3303" for t in bulk.transfers}
        assert_hub_originated(final, dfsp)
    assert_positions(scene, {bulk.payer: "0", bulk.payee: "0"})
    assert transfer_messages(scene, bulk.payer, bulk.payee, since=marks) == []
    for t in bulk.transfers:
        assert scene.transfer_state(bulk.payer, t.id) == "ABORTED"

    mark = scene.dfsps.mark(bulk.payee)
    r = scene.fspiop.put(bulk.path, bulk.payee, bulk.payer, bulk.answer(bulk.fulfilled()))
    assert r.status_code == 200, r.text
    assert scene.dfsps.error_callback(bulk.payee, bulk.path, since=mark).error_code == "3303"
    assert_positions(scene, {bulk.payer: "0", bulk.payee: "0"})
    ledger_ok(scene)


# --------------------------------------------------------------------------- size


def test_a_bulk_of_1000_commits(scene: Scene) -> None:
    """The API's largest bulk: 1,000 transfers reserved in one step, fulfilled in one, with every
    position right and the ledger consistent."""
    bulk = new_bulk(scene, ("1.5",) * 1000)
    started = time.monotonic()
    forwarded = accept(scene, bulk, timeout=BIG_BULK_TIMEOUT_S)
    assert len(forwarded.body["individualTransfers"]) == 1000
    assert_positions(scene, {bulk.payer: "1500", bulk.payee: "0"})
    to_payer, to_payee = answer(scene, bulk, bulk.fulfilled(), timeout=BIG_BULK_TIMEOUT_S)
    for final in (to_payer, to_payee):
        assert final.body["bulkTransferState"] == "COMPLETED"
        assert len(final.body["individualTransferResults"]) == 1000
        assert set(error_codes(final).values()) == {None}
    assert_positions(scene, {bulk.payer: "1500", bulk.payee: "-1500"})
    print(f"a bulk of 1,000: prepared and committed in {time.monotonic() - started:.2f} s")
    ledger_ok(scene)


def test_a_bulk_larger_than_one_sweep_expires_in_steps_and_completes_once(scene: Scene) -> None:
    """600 transfers expire in two sweeper commands (500 at most each): the bulk is EXPIRING
    (PROCESSING to DFSPs) in between and COMPLETED once, with one final PUT to each side."""
    bulk = new_bulk(scene, ("1",) * 600, expires_in=2)
    marks = {bulk.payer: scene.dfsps.mark(bulk.payer), bulk.payee: scene.dfsps.mark(bulk.payee)}

    def act() -> None:
        accept(scene, bulk)
        for dfsp in (bulk.payer, bulk.payee):
            final = scene.dfsps.callback(dfsp, bulk.path, since=marks[dfsp], timeout=EXPIRY_WAIT_S)
            assert final.body["bulkTransferState"] == "COMPLETED"
            assert list(error_codes(final).values()) == ["3303"] * 600

    events = watch_events(scene.hub.urls["nats"], f"ml.event.bulkTransfer.{bulk.bulk_id}.>", 3, act)
    assert [(e["state"], e["bulkTransferState"]) for e in events] == [
        ("ACCEPTED", "ACCEPTED"), ("EXPIRING", "PROCESSING"), ("COMPLETED", "COMPLETED")]
    between = events[1]["processingStates"]
    assert set(between) == {"EXPIRED", "ACCEPTED"} and between["EXPIRED"] <= 500 and sum(between.values()) == 600
    time.sleep(0.5)  # a sweep or two more: still one final PUT each
    for dfsp in (bulk.payer, bulk.payee):
        assert len([r for r in scene.dfsps.received(dfsp)[marks[dfsp]:] if r.path == bulk.path]) == 1
    assert_positions(scene, {bulk.payer: "0", bulk.payee: "0"})
    ledger_ok(scene)
