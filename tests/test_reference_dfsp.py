"""The reference DFSP (miniloop.scenario.reference_dfsp) over a real hub, well-behaved and broken.

Why: the conformance pack trusts the reference DFSP to be right, and uses its fault modes to show
what a hub does with a DFSP that breaks one rule. Both claims are only worth something if they
hold against a real `miniloop up`: here the reference DFSP is a participant whose callback base
URL is its own server, the payer is played by the test DFSP harness (tests/fspiop_dfsp.py), and
each test asserts what the payer (and the reference DFSP's own records) see.

One hub for the module; one reference DFSP per test, each with its own name and MSISDNs. The
DFSPs run on one asyncio loop in a background thread; every wait is a bounded poll.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import httpx
import pytest
from conftest import unique_name
from fspiop_dfsp import Received, Scene, Transfer, new_id, new_msisdn, quote_body

from miniloop.fspiop import ilp
from miniloop.fspiop.endpoints import for_base_url
from miniloop.scenario.reference_dfsp import FAULTS, ReferenceDfsp, Refused, Seen, Sent, serve

WAIT_S = 10.0
EXPIRY_WAIT_S = 8.0
T = TypeVar("T")


# --------------------------------------------------------------------------- running DFSPs


class Running:
    """A ReferenceDfsp on the background loop, seen from the test thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, dfsp: ReferenceDfsp, msisdns: list[str]) -> None:
        self.loop, self.dfsp, self.msisdns = loop, dfsp, msisdns

    @property
    def name(self) -> str:
        return self.dfsp.name

    def on_loop(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()
        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(WAIT_S)

    def received(self) -> list[Seen]:
        return self.on_loop(lambda: list(self.dfsp.received))

    def sent(self) -> list[Sent]:
        return self.on_loop(lambda: list(self.dfsp.sent))

    def wait(self, what: str, find: Callable[[], T | None], timeout: float = WAIT_S) -> T:
        deadline = time.monotonic() + timeout
        while (found := find()) is None:
            if time.monotonic() >= deadline:
                raise AssertionError(f"{self.name}: no {what} in {timeout} s; received {self.received()}, "
                                     f"sent {self.sent()}")
            time.sleep(0.02)
        return found

    def wait_sent(self, method: str, path: str, timeout: float = WAIT_S) -> Sent:
        return self.wait(f"{method} {path} sent", lambda: next(
            (s for s in self.sent() if s.method == method and s.path == path), None), timeout)

    def wait_received(self, method: str, path: str) -> Seen:
        return self.wait(f"{method} {path} received", lambda: next(
            (s for s in self.received() if s.method == method and s.path == path), None))


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="reference-dfsps", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture(scope="module")
def world(scene: Scene) -> Scene:
    """The module's hub with an MSISDN oracle (as in test_conformance_lookup)."""
    r = scene.hub.als.post("/oracles", json={
        "oracleIdType": "MSISDN", "isDefault": True,
        "endpoint": {"value": scene.hub.urls["als_admin"] + "/oracle", "endpointType": "URL"},
    })
    assert r.status_code == 201, r.text
    return scene


@pytest.fixture(scope="module")
def payer(world: Scene) -> str:
    return world.dfsp("payer")


@pytest.fixture(scope="module")
def reference(world: Scene, loop: asyncio.AbstractEventLoop) -> Iterator[Callable[..., Running]]:
    """reference(fault) -> a started, onboarded reference DFSP whose two MSISDNs are in the oracle."""
    started: list[Running] = []

    def start(fault: str = "none", extra_oracle_entries: int = 0) -> Running:
        msisdns = [new_msisdn(), new_msisdn()]
        dfsp = ReferenceDfsp(unique_name("ref"), world.hub.urls["fspiop"], fault=fault,
                             parties=[f"MSISDN/{m}" for m in msisdns])
        running = Running(loop, dfsp, msisdns)
        url = asyncio.run_coroutine_threadsafe(dfsp.start(), loop).result(WAIT_S)
        started.append(running)
        _RUNNING.append(running)
        world.hub.onboard(dfsp.name)
        for endpoint_type, value in for_base_url(url).items():
            r = world.hub.admin.post(f"/participants/{dfsp.name}/endpoints",
                                     json={"type": endpoint_type, "value": value})
            assert r.status_code == 201, r.text
        for msisdn in msisdns + [new_msisdn() for _ in range(extra_oracle_entries)]:
            register(world, running, msisdn)
        return running

    yield start
    for running in started:
        asyncio.run_coroutine_threadsafe(running.dfsp.stop(), loop).result(WAIT_S)


_RUNNING: list[Running] = []  # every reference DFSP of the module, for the story of a lost callback


def _with_story(wait: Callable[[], Received], world: Scene | None = None) -> Received:
    """`wait()`; if the answer never comes, say what each reference DFSP received and sent, and
    what the hub still owes (its outbox, its callback metrics, its log): a lost callback was once
    found this way (miniloop.notify, ids reused by SQLite)."""
    try:
        return wait()
    except AssertionError as exc:
        story = "; ".join(f"{r.name}: received {r.received()[-5:]}, sent {r.sent()[-5:]}" for r in _RUNNING[-3:])
        hub = ""
        if world is not None:
            db = sqlite3.connect(f"file:{world.hub.data_dir / 'miniloop.db'}?mode=ro", uri=True)
            pending = db.execute("SELECT participant, method, url, created_date FROM outbox ORDER BY id").fetchall()
            db.close()
            metrics = [line for line in httpx.get(world.hub.urls["fspiop"] + "/metrics").text.splitlines()
                       if line.startswith(("miniloop_callbacks", "miniloop_outbox"))]
            hub = (f"\n-- the hub's outbox ({len(pending)}): {pending[:10]}\n-- metrics: {metrics}"
                   f"\n-- the hub's log: {world.hub.stderr[-3000:]}")
        raise AssertionError(f"{exc}\n-- reference DFSPs: {story}{hub}") from None


def register(world: Scene, ref: Running, msisdn: str) -> None:
    """The DFSP registers its party via FSPIOP; the hub's PUT /participants callback gets a 200."""
    path = f"/participants/MSISDN/{msisdn}"
    r = world.fspiop.post(path, ref.name, None, {"fspId": ref.name, "currency": "USD"})
    assert r.status_code == 202, r.text
    assert ref.wait_received("PUT", path).status == 200


def unserved(ref: Running) -> str:
    """The MSISDN the DFSP registered in the oracle (extra_oracle_entries=1) but does not serve."""
    registered = [s.path.rsplit("/", 1)[-1] for s in ref.received() if s.path.startswith("/participants/MSISDN/")]
    (extra,) = [m for m in registered if m not in ref.msisdns]
    return extra


def errors_to(ref: Running, path: str) -> list[Seen]:
    """The error callbacks `PUT <path>/error` the DFSP has received."""
    return [r for r in ref.received() if r.method == "PUT" and r.path == path + "/error"]


# --------------------------------------------------------------------------- the payer's steps


def lookup(world: Scene, payer: str, msisdn: str) -> Received:
    path = f"/parties/MSISDN/{msisdn}"
    mark = world.dfsps.mark(payer)
    assert world.fspiop.get(path, payer).status_code == 202
    return _with_story(lambda: world.dfsps.answer(payer, path, since=mark), world)


def ask_quote(world: Scene, payer: str, ref: Running, amount: str = "10", **headers: Any) -> dict[str, Any]:
    body = quote_body(payer, ref.name, amount)
    body["payee"]["partyIdInfo"]["partyIdentifier"] = ref.msisdns[0]
    r = world.fspiop.post("/quotes", payer, ref.name, body, **headers)
    assert r.status_code == 202, r.text
    return body


def quote(world: Scene, payer: str, ref: Running, amount: str = "10",
          **headers: Any) -> tuple[dict[str, Any], Received]:
    mark = world.dfsps.mark(payer)
    body = ask_quote(world, payer, ref, amount, **headers)
    return body, _with_story(lambda: world.dfsps.answer(payer, f"/quotes/{body['quoteId']}", since=mark), world)


def transfer_for(payer: str, ref: Running, answer: dict[str, Any], expires_in: float = 30) -> Transfer:
    return Transfer(payer, ref.name, amount=answer["transferAmount"]["amount"], expires_in=expires_in,
                    ilp_packet=answer["ilpPacket"], condition=answer["condition"])


def send(world: Scene, transfer: Transfer) -> Received:
    """POST /transfers as the payer; the payer's answer, PUT /transfers/{ID} or .../error."""
    mark = world.dfsps.mark(transfer.payer)
    r = world.prepare(transfer)
    assert r.status_code == 202, r.text
    return _with_story(lambda: world.dfsps.answer(transfer.payer, transfer.path, since=mark, timeout=EXPIRY_WAIT_S), world)


# --------------------------------------------------------------------------- the well-behaved DFSP


def test_lookup_quote_and_transfer_commit(world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """Lookup, quote and transfer through the hub: the payer gets the party, a quote whose
    packet and condition are the SDK's, and a COMMITTED transfer with a fulfilment that fits."""
    ref = reference()
    party = lookup(world, payer, ref.msisdns[0])
    assert party.path == f"/parties/MSISDN/{ref.msisdns[0]}", party
    assert party.body["party"]["partyIdInfo"] == {
        "partyIdType": "MSISDN", "partyIdentifier": ref.msisdns[0], "fspId": ref.name}
    assert (party.source, party.destination) == (ref.name, payer)
    assert party.headers["content-type"] == "application/vnd.interoperability.parties+json;version=1.1"
    assert "date" in party.headers and "accept" not in party.headers
    assert (party.headers["fspiop-uri"], party.headers["fspiop-http-method"]) == (party.path, "PUT")

    request, answer = quote(world, payer, ref, amount="12.5")
    assert answer.path == f"/quotes/{request['quoteId']}", answer
    body = answer.body
    assert body["transferAmount"] == body["payeeReceiveAmount"] == {"amount": "12.5", "currency": "USD"}
    assert body["payeeFspFee"] == {"amount": "0", "currency": "USD"}
    expires = datetime.fromisoformat(body["expiration"].replace("Z", "+00:00"))
    assert 55 < (expires - datetime.now(UTC)).total_seconds() <= 60
    assert body["ilpPacket"] == ilp.packet_v1(
        ilp.transaction_object(request, body["transferAmount"], body["expiration"]), ref.name)
    assert body["condition"] == ilp.condition_for(ilp.fulfilment_for(ref.dfsp.secret, body["ilpPacket"]))

    transfer = transfer_for(payer, ref, body)
    done = send(world, transfer)
    assert done.path == transfer.path and done.body["transferState"] == "COMMITTED", done
    assert ilp.condition_for(done.body["fulfilment"]) == body["condition"]
    assert world.transfer_state(payer, transfer.id) == "COMMITTED"


def test_resent_and_asked_again_quotes_get_the_same_answer_in_the_requests_version(
        world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """A resent POST /quotes (same body) and GET /quotes/{ID} get the same PUT; a quote it never
    gave gets 3205; a v1.0 request gets a v1.0 answer."""
    ref = reference()
    request, first = quote(world, payer, ref, version="1.0")
    path = f"/quotes/{request['quoteId']}"
    assert first.headers["content-type"].endswith("quotes+json;version=1.0"), first.headers
    mark = world.dfsps.mark(payer)
    assert world.fspiop.post("/quotes", payer, ref.name, request, version="1.0").status_code == 202
    assert world.dfsps.answer(payer, path, since=mark).body == first.body
    mark = world.dfsps.mark(payer)
    assert world.fspiop.get(path, payer, ref.name).status_code == 202
    assert world.dfsps.answer(payer, path, since=mark).body == first.body
    unknown = f"/quotes/{new_id()}"
    assert world.fspiop.get(unknown, payer, ref.name).status_code == 202
    assert world.dfsps.error_callback(payer, unknown, since=mark).error_code == "3205"


def test_unknown_party_is_3204(world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """A number the oracle gives to the DFSP but the DFSP does not serve: PUT /parties/.../error 3204."""
    ref = reference(extra_oracle_entries=1)
    unknown = lookup(world, payer, unserved(ref))
    assert unknown.error_code == "3204", unknown


def test_payee_refusals_without_a_hub() -> None:
    """The payee's own checks: another currency 5106, a SubId 3204, a tampered transfer 5105, an
    expired transfer 3303, and RECEIVE quotes without fees."""
    dfsp = ReferenceDfsp("refunit", "http://127.0.0.1:9", parties=["MSISDN/123"])
    request = quote_body("payerfsp", "refunit", "7")
    request["payee"]["partyIdInfo"]["partyIdentifier"] = "123"
    euro = {**request, "amount": {"amount": "7", "currency": "EUR"}}
    sub = {**request, "payee": {"partyIdInfo": {**request["payee"]["partyIdInfo"], "partySubIdOrType": "X"}}}
    for body, code in ((euro, "5106"), (sub, "3204")):
        with pytest.raises(Refused) as refused:
            dfsp.quote_answer(body)
        assert refused.value.code == code
    receive = dfsp.quote_answer({**request, "amountType": "RECEIVE"})
    assert receive["transferAmount"] == {"amount": "7", "currency": "USD"}
    with_fees = dfsp.quote_answer({**request, "fees": {"amount": "0.5", "currency": "USD"}})
    assert with_fees["transferAmount"] == with_fees["payeeReceiveAmount"] == {"amount": "6.5", "currency": "USD"}

    answer = dfsp.quote_answer(request)
    good = Transfer("payerfsp", "refunit", amount="7", ilp_packet=answer["ilpPacket"], condition=answer["condition"])
    assert dfsp.check_transfer(good.body)[0] == ilp.fulfilment_for(dfsp.secret, answer["ilpPacket"])
    for change, code in (({"amount": {"amount": "8", "currency": "USD"}}, "5105"),
                         ({"expiration": "2020-01-01T00:00:00.000Z"}, "3303")):
        with pytest.raises(Refused) as refused:
            dfsp.check_transfer({**good.body, **change})
        assert refused.value.code == code
    with pytest.raises(ValueError):
        ReferenceDfsp("refunit", "http://127.0.0.1:9", fault="nosuchfault")


def test_serve_prints_its_url_and_stops_when_cancelled(capsys: pytest.CaptureFixture[str]) -> None:
    """`serve` (what `miniloop dfsp` runs) says where it listens, answers there, stops on cancel."""

    async def scenario() -> str:
        task = asyncio.create_task(serve("refserve", "http://127.0.0.1:9", fault="silent"))
        deadline = time.monotonic() + WAIT_S
        while "listening" not in (printed := capsys.readouterr().out) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert "listening" in printed, printed
        url = printed.split(" on ", 1)[1].split()[0]
        async with aiohttp.ClientSession() as session, session.get(url + "/parties/MSISDN/27730000001") as r:
            assert r.status == 202
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return printed

    printed = asyncio.run(scenario())
    assert re.fullmatch(r"reference DFSP refserve listening on http://127\.0\.0\.1:\d+ \(fault: silent\)\n", printed)


# --------------------------------------------------------------------------- faults


def test_every_fault_is_described() -> None:
    assert set(FAULTS) == {"none", "wrong-condition", "missing-header", "late-fulfil", "silent",
                           "wrong-error-code", "bad-quote", "sync-status"}
    assert all(text and "\n" not in text for text in FAULTS.values())


def test_wrong_condition_ends_in_3100_invalid_fulfilment(
        world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """The hub checks sha256(fulfilment) == condition: the payer gets 3100, the transfer aborts."""
    ref = reference("wrong-condition")
    _, answer = quote(world, payer, ref)
    transfer = transfer_for(payer, ref, answer.body)
    error = send(world, transfer)
    assert error.error_code == "3100" and "fulfil" in error.error_description, error
    sent = ref.wait_sent("PUT", transfer.path)
    assert ilp.condition_for(sent.body["fulfilment"]) != answer.body["condition"]
    assert ref.wait_received("PUT", transfer.path + "/error").code == "3100"  # the payee is told too
    world.wait_state(payer, transfer.id, "ABORTED")


def test_missing_date_is_refused_and_never_reaches_the_payer(
        world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """The hub answers the Date-less callback 400 / 3102; the payer hears nothing."""
    ref = reference("missing-header")
    path = f"/parties/MSISDN/{ref.msisdns[0]}"
    mark = world.dfsps.mark(payer)
    assert world.fspiop.get(path, payer).status_code == 202
    sent = ref.wait_sent("PUT", path)
    assert sent.status == 400 and '"3102"' in sent.answer, sent
    assert world.dfsps.find(payer, "PUT", path, since=mark) is None


def test_late_fulfil_gets_3303(world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """The fulfilment comes after the expiration (within 2 s): the payer gets 3303 from the hub."""
    ref = reference("late-fulfil")
    _, answer = quote(world, payer, ref)
    transfer = transfer_for(payer, ref, answer.body, expires_in=2)
    error = send(world, transfer)
    assert error.error_code == "3303" and error.source == "Hub", error
    sent = ref.wait_sent("PUT", transfer.path, timeout=EXPIRY_WAIT_S)
    expires = datetime.fromisoformat(transfer.expiration.replace("Z", "+00:00")).timestamp()
    assert expires < sent.at <= expires + 2, (sent.at, expires)
    assert sent.status == 200, sent  # taken, then refused by callback
    # the late fulfilment is answered 3303 (after the expiry notice, if the sweep came first)
    late = ref.wait("an answer to the late fulfilment", lambda: next(
        (r for r in errors_to(ref, transfer.path) if r.at >= sent.at), None))
    assert {r.code for r in errors_to(ref, transfer.path)} == {"3303"}, late
    assert world.transfer_state(payer, transfer.id) == "ABORTED"


def test_silent_dfsp_leaves_the_payer_to_the_hubs_expiry(
        world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """202 and nothing more: no party for the lookup; the transfer expires with 3303 from the hub."""
    ref = reference("silent")
    path = f"/parties/MSISDN/{ref.msisdns[0]}"
    mark = world.dfsps.mark(payer)
    assert world.fspiop.get(path, payer).status_code == 202
    assert ref.wait_received("GET", path).status == 202
    transfer = Transfer(payer, ref.name, expires_in=2)
    error = send(world, transfer)
    assert error.error_code == "3303" and error.source == "Hub", error
    assert ref.wait_received("POST", "/transfers").status == 202
    assert ref.wait_received("PUT", transfer.path + "/error").code == "3303"  # the payee is told too
    assert world.dfsps.find(payer, "PUT", path, since=mark) is None
    assert ref.sent() == []


def test_wrong_error_code_reaches_the_payer_as_2001(
        world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """The hub relays the payee's error as it is: the payer gets 2001 for an unknown party."""
    ref = reference("wrong-error-code", extra_oracle_entries=1)
    error = lookup(world, payer, unserved(ref))
    assert error.error_code == "2001" and error.source == ref.name, error


def test_bad_quote_is_refused_by_the_hub(world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """A PUT /quotes without expiration fails the hub's schema check: 400 to the DFSP, nothing to the payer."""
    ref = reference("bad-quote")
    mark = world.dfsps.mark(payer)
    request = ask_quote(world, payer, ref)
    path = f"/quotes/{request['quoteId']}"
    sent = ref.wait_sent("PUT", path)
    assert "expiration" not in sent.body and sent.body["transferAmount"]["amount"] == "11"
    assert sent.status == 400 and '"3100"' in sent.answer and "expiration is required" in sent.answer, sent
    assert world.dfsps.find(payer, "PUT", lambda p: p.startswith(path), since=mark) is None


def test_sync_status_200_is_accepted_by_the_hub(
        world: Scene, payer: str, reference: Callable[..., Running]) -> None:
    """The DFSP answers POST /quotes with 200, not 202; the hub takes any 2xx and the quote goes on."""
    ref = reference("sync-status")
    request, answer = quote(world, payer, ref)
    assert answer.path == f"/quotes/{request['quoteId']}", answer
    assert ref.wait_received("POST", "/quotes").status == 200
