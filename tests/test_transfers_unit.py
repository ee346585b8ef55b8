"""Unit tests of the transfer state machine, one layer down: the writer commands on a real ledger.

Why this layer: the conformance tests see a transfer the way a DFSP does, through HTTP and
callbacks, which cannot show what the switch wrote. Here each step runs as the writer command the
FSPIOP API would call (miniloop.services.transfers), on a real SQLite ledger in a tmp dir with no
HTTP and no notifier, so a test can read exactly what the step left behind: the transfer's state
and its append-only history, the positions and their change rows, and the messages owed to DFSPs
in the outbox (nothing delivers them here, so they stay there to be read).

Participants are onboarded through the same services the Admin API and the hub file use, in
Mojaloop's order (miniloop.seed). pytest-asyncio is not a dependency: each test drives its own
event loop with `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from miniloop import money
from miniloop.api.fspiop import body_hash
from miniloop.bus.events import MemoryBus
from miniloop.fspiop import models
from miniloop.fspiop.endpoints import for_base_url
from miniloop.fspiop.headers import imf_date, media_type
from miniloop.ledger import Ledger, utc_now
from miniloop.services.outbox import Inbound
from miniloop.services.participants import Participants
from miniloop.services.settlement_models import SettlementModels
from miniloop.services.transfers import Transfers

CURRENCY = "USD"
PAYER, PAYEE, OUTSIDER = "payerfsp", "payeefsp", "outsiderfsp"
HUB = "Hub"
DUE_TIMEOUT_S = 5.0  # an expiration 1.5 s ahead must be due well within this
POLL_S = 0.05


def base_url(name: str) -> str:
    return f"http://dfsp.test/{name}"


def units(amount: str) -> int:
    return money.to_units(money.parse_amount(amount))


# --------------------------------------------------------------------------- the messages


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def iso_in(seconds: float) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Deal:
    """One transfer a test sends: its prepare body, and the fulfilment the payee keeps."""

    amount: str = "10"
    payer: str = PAYER
    payee: str = PAYEE
    expires_in: float = 60.0
    transfer_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    secret: bytes = field(default_factory=lambda: os.urandom(32))
    ilp_packet: str = field(default_factory=lambda: b64url(os.urandom(48)))
    expiration: str = ""

    def __post_init__(self) -> None:
        self.expiration = self.expiration or iso_in(self.expires_in)

    @property
    def fulfilment(self) -> str:
        return b64url(self.secret)

    @property
    def condition(self) -> str:
        return b64url(hashlib.sha256(self.secret).digest())

    @property
    def path(self) -> str:
        return f"/transfers/{self.transfer_id}"

    def prepare_body(self, **changes: Any) -> dict[str, Any]:
        body = {
            "transferId": self.transfer_id, "payerFsp": self.payer, "payeeFsp": self.payee,
            "amount": {"amount": self.amount, "currency": CURRENCY}, "expiration": self.expiration,
            "ilpPacket": self.ilp_packet, "condition": self.condition,
        }
        body.update(changes)
        return body

    def fulfil_body(self, state: str = "COMMITTED", fulfilment: str | None = None) -> dict[str, Any]:
        return {"fulfilment": fulfilment or self.fulfilment, "completedTimestamp": iso_in(0), "transferState": state}


def inbound(method: str, path: str, source: str, destination: str | None, body: dict[str, Any] | None,
            version: str = "1.1") -> Inbound:
    """What miniloop.api.fspiop hands a service for an accepted request (headers already checked)."""
    raw = json.dumps(body).encode() if body is not None else b""
    headers = {
        "accept": "application/vnd.interoperability.transfers+json;version=1",
        "date": imf_date(),
        "fspiop-source": source,
        "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01",
    }
    if raw:
        headers["content-type"] = media_type("transfers", version)
    if destination is not None:
        headers["fspiop-destination"] = destination
    return Inbound(source, destination, version, path, headers, raw, body_hash(raw) if raw else "")


@dataclass(frozen=True)
class Owed:
    """One outbox row: a message the hub owes a DFSP."""

    participant: str
    method: str
    url: str
    headers: dict[str, str]  # names lowercased
    raw: bytes | None

    @property
    def body(self) -> Any:
        return json.loads(self.raw) if self.raw else None

    @property
    def source(self) -> str | None:
        return self.headers.get("fspiop-source")

    @property
    def error_code(self) -> str | None:
        body = self.body
        return body["errorInformation"]["errorCode"] if isinstance(body, dict) and "errorInformation" in body else None


# --------------------------------------------------------------------------- a ledger with DFSPs


class World:
    """A ledger in a tmp dir with the Hub's accounts, a settlement model and DFSPs onboarded."""

    def __init__(self, ledger: Ledger, bus: MemoryBus) -> None:
        self.ledger = ledger
        self.bus = bus
        self.transfers = Transfers(ledger)
        self.participants = Participants(ledger)

    @classmethod
    async def open(cls, tmp_path: Path, *, payer_ndc: str = "1000", payer_funds: str = "1000") -> World:
        bus = MemoryBus()
        ledger = await Ledger.open(tmp_path, publish=bus.publish_batch)
        world = cls(ledger, bus)
        try:
            await world._onboard(payer_ndc, payer_funds)
        except BaseException:
            await ledger.close()
            raise
        return world

    async def _onboard(self, payer_ndc: str, payer_funds: str) -> None:
        participants = self.participants
        for account_type in ("HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"):
            await participants.create_hub_account(HUB, {"currency": CURRENCY, "type": account_type})
        await SettlementModels(self.ledger).create({
            "name": "DEFERREDNET", "settlementGranularity": "NET", "settlementInterchange": "MULTILATERAL",
            "settlementDelay": "DEFERRED", "currency": CURRENCY, "requireLiquidityCheck": True,
            "ledgerAccountType": "POSITION", "settlementAccountType": "SETTLEMENT", "autoPositionReset": True,
        })
        for name, ndc, funds in ((PAYER, payer_ndc, payer_funds), (PAYEE, "1000", "1000"),
                                 (OUTSIDER, "1000", "1000")):
            await participants.create({"name": name, "currency": CURRENCY})
            await participants.initial_position_and_limits(name, {
                "currency": CURRENCY, "limit": {"type": "NET_DEBIT_CAP", "value": ndc}, "initialPosition": 0,
            })
            for endpoint_type, value in for_base_url(base_url(name)).items():
                await participants.add_endpoint(name, {"type": endpoint_type, "value": value})
            settlement = next(a for a in await participants.accounts(name)
                              if a["ledgerAccountType"] == "SETTLEMENT" and a["currency"] == CURRENCY)
            await participants.move_funds(name, settlement["id"], {
                "transferId": str(uuid.uuid4()), "externalReference": "test", "action": "recordFundsIn",
                "reason": "initial funds", "amount": {"amount": funds, "currency": CURRENCY},
            })

    async def close(self) -> None:
        await self.ledger.close()

    # ---------------------------------------------------------------- the steps, as the API calls them

    async def prepare(self, deal: Deal, *, source: str | None = None, destination: str | None = None,
                      body: dict[str, Any] | None = None, version: str = "1.1") -> list[Owed]:
        body = body if body is not None else deal.prepare_body()
        msg = inbound("POST", "/transfers", source or deal.payer, destination or deal.payee, body, version)
        return await self._step(self.transfers.prepare(msg, models.decode(models.TransfersPostRequest, msg.body)))

    async def fulfil(self, deal: Deal, body: dict[str, Any] | None = None, *, source: str | None = None,
                     destination: str | None = None, version: str = "1.1") -> list[Owed]:
        body = body if body is not None else deal.fulfil_body()
        msg = inbound("PUT", deal.path, source or deal.payee, destination or deal.payer, body, version)
        decoded = models.decode(models.TransfersIDPutResponse, msg.body)
        return await self._step(self.transfers.fulfil(msg, deal.transfer_id, decoded))

    async def reject(self, deal: Deal, code: str = "5100", description: str = "Generic Payee rejection - no") -> list[Owed]:
        body = {"errorInformation": {"errorCode": code, "errorDescription": description}}
        msg = inbound("PUT", deal.path + "/error", deal.payee, deal.payer, body)
        decoded = models.decode(models.ErrorInformationObject, msg.body)
        return await self._step(self.transfers.reject(msg, deal.transfer_id, decoded))

    async def get(self, transfer_id: str, source: str) -> list[Owed]:
        msg = inbound("GET", f"/transfers/{transfer_id}", source, None, None)
        return await self._step(self.transfers.get(msg, transfer_id))

    async def _step(self, command: Awaitable[None]) -> list[Owed]:
        """Run one command; return the messages it put in the outbox."""
        mark = await self._last_outbox_id()
        await command
        return await self.owed_since(mark)

    # ---------------------------------------------------------------- what the ledger holds

    async def _last_outbox_id(self) -> int:
        row = await self.ledger.fetch_one("SELECT coalesce(max(id), 0) AS id FROM outbox")
        assert row is not None
        return int(row["id"])

    async def owed_since(self, mark: int) -> list[Owed]:
        rows = await self.ledger.fetch_all("SELECT * FROM outbox WHERE id > ? ORDER BY id", (mark,))
        return [
            Owed(r["participant"], r["method"], r["url"],
                 {k.lower(): v for k, v in json.loads(r["headers"]).items()}, r["body"])
            for r in rows
        ]

    async def state(self, transfer_id: str) -> str:
        row = await self.ledger.fetch_one("SELECT state FROM transfer WHERE id = ?", (transfer_id,))
        assert row is not None, f"transfer {transfer_id} was not recorded"
        return str(row["state"])

    async def history(self, transfer_id: str) -> list[str]:
        rows = await self.ledger.fetch_all(
            "SELECT state FROM transfer_state_change WHERE transfer_id = ? ORDER BY id", (transfer_id,))
        return [r["state"] for r in rows]

    async def position(self, name: str) -> int:
        """The POSITION value of `name` in units (positive: it owes the scheme)."""
        row = await self.ledger.fetch_one(
            "SELECT p.value FROM position p JOIN account a ON a.id = p.account_id "
            "JOIN participant pa ON pa.id = a.participant_id "
            "WHERE pa.name = ? AND a.currency = ? AND a.ledger_account_type_id = 1",
            (name, CURRENCY),
        )
        assert row is not None
        return int(row["value"])

    async def position_changes(self, transfer_id: str) -> list[tuple[str, int, int]]:
        """(participant, change, value after) of every position change a transfer made, in order."""
        rows = await self.ledger.fetch_all(
            "SELECT pa.name, c.change, c.value FROM position_change c JOIN account a ON a.id = c.account_id "
            "JOIN participant pa ON pa.id = a.participant_id WHERE c.transfer_id = ? ORDER BY c.id",
            (transfer_id,),
        )
        return [(r["name"], r["change"], r["value"]) for r in rows]

    async def transfer_row(self, transfer_id: str) -> Any:
        return await self.ledger.fetch_one(
            "SELECT * FROM transfer t JOIN transfer_fspiop f ON f.transfer_id = t.id WHERE t.id = ?",
            (transfer_id,))

    def events(self, transfer_id: str) -> list[str]:
        return [body["state"] for _, body in self.bus.events if body.get("transferId") == transfer_id
                and body.get("type", "").startswith("transfer.")]


def run(tmp_path: Path, scenario: Callable[[World], Awaitable[None]], **options: Any) -> None:
    """Drive one scenario on a fresh World in its own event loop."""

    async def main() -> None:
        world = await World.open(tmp_path, **options)
        try:
            await scenario(world)
        finally:
            await world.close()

    asyncio.run(main())


# --------------------------------------------------------------------------- assertions


def assert_hub_error(owed: Owed, to: str, transfer_id: str, code: str, version: str = "1.1") -> None:
    """An error callback the hub itself sends: PUT .../error, FSPIOP-Source Hub, the code."""
    assert owed.participant == to, owed
    assert owed.method == "PUT", owed
    assert owed.url == f"{base_url(to)}/transfers/{transfer_id}/error", owed
    assert owed.source == HUB, owed
    assert owed.headers["fspiop-destination"] == to, owed
    assert owed.headers["content-type"] == media_type("transfers", version), owed
    assert owed.error_code == code, owed.body


def assert_hub_put(owed: Owed, to: str, transfer_id: str, state: str, method: str = "PUT") -> dict[str, Any]:
    """A state message the hub itself sends (GET answer, duplicate answer, RESERVED notices)."""
    assert (owed.participant, owed.method) == (to, method), owed
    assert owed.url == f"{base_url(to)}/transfers/{transfer_id}", owed
    assert owed.source == HUB, owed
    assert owed.headers["fspiop-destination"] == to, owed
    body = owed.body
    assert body["transferState"] == state, body
    return body


def assert_forwarded(owed: Owed, to: str, method: str, url: str, sender: str, raw: bytes) -> None:
    """A DFSP's message relayed unchanged: the sender's FSPIOP-Source and the same body bytes."""
    assert (owed.participant, owed.method, owed.url) == (to, method, url), owed
    assert owed.source == sender, owed
    assert owed.raw == raw, owed


# --------------------------------------------------------------------------- prepare


def test_prepare_reserves_the_payers_position_and_forwards_to_the_payee(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal(amount="12.5")
        body = deal.prepare_body()
        owed = await w.prepare(deal, body=body)

        assert await w.state(deal.transfer_id) == "RESERVED"
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED"]
        assert await w.position(PAYER) == units("12.5")
        assert await w.position(PAYEE) == 0
        assert await w.position_changes(deal.transfer_id) == [(PAYER, units("12.5"), units("12.5"))]
        row = await w.transfer_row(deal.transfer_id)
        assert (row["payer_fsp"], row["payee_fsp"], row["amount"], row["ilp_condition"]) == (
            PAYER, PAYEE, units("12.5"), deal.condition)
        assert row["completed_date"] is None

        (forward,) = owed
        assert_forwarded(forward, PAYEE, "POST", f"{base_url(PAYEE)}/transfers", PAYER, json.dumps(body).encode())
        assert forward.headers["fspiop-destination"] == PAYEE
        assert w.events(deal.transfer_id) == ["RESERVED"]

    run(tmp_path, scenario)


@pytest.mark.parametrize(("funds", "ndc", "amount", "code"), [
    pytest.param("100", "500", "200", "4001", id="liquidity-below-ndc-4001"),
    pytest.param("500", "100", "200", "4200", id="ndc-below-liquidity-4200"),
    pytest.param("100", "100", "200", "4001", id="both-exceeded-liquidity-first"),
])
def test_prepare_refused_for_liquidity_before_net_debit_cap(
    tmp_path: Path, funds: str, ndc: str, amount: str, code: str
) -> None:
    async def scenario(w: World) -> None:
        deal = Deal(amount=amount)
        owed = await w.prepare(deal)

        assert await w.state(deal.transfer_id) == "ABORTED_REJECTED"
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "ABORTED_REJECTED"]
        assert await w.position(PAYER) == 0
        assert await w.position_changes(deal.transfer_id) == []
        (error,) = owed  # the payer only: the payee never hears of it
        assert_hub_error(error, PAYER, deal.transfer_id, code)
        assert (await w.transfer_row(deal.transfer_id))["completed_date"] is not None
        assert w.events(deal.transfer_id) == ["ABORTED_REJECTED"]

    run(tmp_path, scenario, payer_funds=funds, payer_ndc=ndc)


def test_prepare_up_to_exactly_the_liquidity_and_cap_is_accepted(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        first = Deal(amount="500")
        await w.prepare(first)
        assert await w.state(first.transfer_id) == "RESERVED"
        # the reserved amount counts: one more unit is beyond the liquidity cover (checked first)
        second = Deal(amount="0.0001")
        (error,) = await w.prepare(second)
        assert_hub_error(error, PAYER, second.transfer_id, "4001")
        assert await w.position(PAYER) == units("500")

    run(tmp_path, scenario, payer_funds="500", payer_ndc="500")


@pytest.mark.parametrize("problem", ["source-not-payer", "payer-is-payee", "expired"])
def test_an_invalid_prepare_is_recorded_invalid_with_3100(tmp_path: Path, problem: str) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        if problem == "source-not-payer":
            owed = await w.prepare(deal, source=OUTSIDER)
            to = OUTSIDER
        elif problem == "payer-is-payee":
            deal.payee = PAYER
            owed = await w.prepare(deal, destination=PAYER)
            to = PAYER
        else:
            deal.expiration = iso_in(-1)
            owed = await w.prepare(deal)
            to = PAYER
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "INVALID"]
        assert await w.position(PAYER) == 0
        assert await w.position_changes(deal.transfer_id) == []
        (error,) = owed
        assert_hub_error(error, to, deal.transfer_id, "3100")

    run(tmp_path, scenario)


# --------------------------------------------------------------------------- duplicates


def test_duplicate_prepare_in_progress_gets_nothing(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        body = deal.prepare_body()
        await w.prepare(deal, body=body)
        assert await w.prepare(deal, body=body) == []  # its callback is still to come
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED"]
        assert await w.position(PAYER) == units(deal.amount)
        assert len(await w.position_changes(deal.transfer_id)) == 1

    run(tmp_path, scenario)


def test_duplicate_prepare_after_commit_gets_the_committed_state(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        body = deal.prepare_body()
        await w.prepare(deal, body=body)
        await w.fulfil(deal)
        (answer,) = await w.prepare(deal, body=body)
        state = assert_hub_put(answer, PAYER, deal.transfer_id, "COMMITTED")
        assert state["fulfilment"] == deal.fulfilment
        assert "completedTimestamp" in state
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED", "RECEIVED_FULFIL", "COMMITTED"]
        assert await w.position(PAYER) == units(deal.amount)

    run(tmp_path, scenario)


def test_duplicate_prepare_after_abort_gets_the_aborted_state(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        body = deal.prepare_body()
        await w.prepare(deal, body=body)
        await w.reject(deal)
        (answer,) = await w.prepare(deal, body=body)
        assert_hub_put(answer, PAYER, deal.transfer_id, "ABORTED")

    run(tmp_path, scenario)


def test_modified_prepare_with_a_known_id_gets_3106(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal(amount="10")
        await w.prepare(deal)
        (error,) = await w.prepare(deal, body=deal.prepare_body(amount={"amount": "11", "currency": CURRENCY}))
        assert_hub_error(error, PAYER, deal.transfer_id, "3106")
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED"]
        assert await w.position(PAYER) == units("10")
        row = await w.transfer_row(deal.transfer_id)
        assert row["amount"] == units("10")

    run(tmp_path, scenario)


def test_duplicate_fulfil_gets_the_state_and_a_modified_one_3106(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        await w.prepare(deal)
        body = deal.fulfil_body()
        await w.fulfil(deal, body)
        (answer,) = await w.fulfil(deal, body)
        assert_hub_put(answer, PAYEE, deal.transfer_id, "COMMITTED")
        changed = dict(body, completedTimestamp=iso_in(1))
        (error,) = await w.fulfil(deal, changed)
        assert_hub_error(error, PAYEE, deal.transfer_id, "3106")
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED", "RECEIVED_FULFIL", "COMMITTED"]
        assert await w.position(PAYEE) == -units(deal.amount)

    run(tmp_path, scenario)


# --------------------------------------------------------------------------- fulfil


def test_fulfil_commits_moves_the_payees_position_and_forwards_to_the_payer(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal(amount="7.25")
        await w.prepare(deal)
        body = deal.fulfil_body()
        owed = await w.fulfil(deal, body)

        assert await w.state(deal.transfer_id) == "COMMITTED"
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED", "RECEIVED_FULFIL", "COMMITTED"]
        assert await w.position(PAYER) == units("7.25")
        assert await w.position(PAYEE) == -units("7.25")
        assert await w.position_changes(deal.transfer_id) == [
            (PAYER, units("7.25"), units("7.25")), (PAYEE, -units("7.25"), -units("7.25"))]
        row = await w.transfer_row(deal.transfer_id)
        assert row["fulfilment"] == deal.fulfilment
        assert row["completed_date"] is not None
        assert row["settlement_window_id"] is not None

        (forward,) = owed
        assert_forwarded(forward, PAYER, "PUT", f"{base_url(PAYER)}/transfers/{deal.transfer_id}", PAYEE,
                         json.dumps(body).encode())
        assert w.events(deal.transfer_id) == ["RESERVED", "COMMITTED"]

    run(tmp_path, scenario)


def test_invalid_fulfilment_aborts_tells_both_sides_3100_and_restores_the_position(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal(amount="10")
        await w.prepare(deal)
        owed = await w.fulfil(deal, deal.fulfil_body(fulfilment=b64url(os.urandom(32))))

        assert await w.state(deal.transfer_id) == "ABORTED_ERROR"
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED", "RECEIVED_ERROR", "ABORTED_ERROR"]
        assert await w.position(PAYER) == 0
        assert await w.position(PAYEE) == 0
        assert await w.position_changes(deal.transfer_id) == [(PAYER, units("10"), units("10")),
                                                             (PAYER, -units("10"), 0)]
        assert sorted(o.participant for o in owed) == sorted([PAYER, PAYEE])
        for message in owed:
            assert_hub_error(message, message.participant, deal.transfer_id, "3100")
        assert w.events(deal.transfer_id) == ["RESERVED", "ABORTED_ERROR"]

    run(tmp_path, scenario)


def test_fulfil_with_state_reserved_in_v1_1_gets_a_patch_to_the_payee_and_a_put_to_the_payer(
    tmp_path: Path,
) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        await w.prepare(deal)
        owed = await w.fulfil(deal, deal.fulfil_body("RESERVED"), version="1.1")

        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED", "RECEIVED_FULFIL", "COMMITTED"]
        assert await w.position(PAYEE) == -units(deal.amount)
        by_method = {o.method: o for o in owed}
        assert sorted(by_method) == ["PATCH", "PUT"], owed
        put = assert_hub_put(by_method["PUT"], PAYER, deal.transfer_id, "COMMITTED")
        assert put["fulfilment"] == deal.fulfilment
        patch = assert_hub_put(by_method["PATCH"], PAYEE, deal.transfer_id, "COMMITTED", method="PATCH")
        assert "completedTimestamp" in patch
        for message in owed:
            assert message.headers["content-type"] == media_type("transfers", "1.1")

    run(tmp_path, scenario)


def test_fulfil_with_state_reserved_in_v1_0_is_ignored(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        await w.prepare(deal, version="1.0")
        assert await w.fulfil(deal, deal.fulfil_body("RESERVED"), version="1.0") == []
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED"]
        assert await w.position(PAYER) == units(deal.amount)
        assert await w.position(PAYEE) == 0
        assert (await w.transfer_row(deal.transfer_id))["fulfil_hash"] is None

    run(tmp_path, scenario)


def test_fulfil_from_someone_other_than_the_payee_changes_nothing(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        await w.prepare(deal)
        (error,) = await w.fulfil(deal, source=OUTSIDER)
        assert_hub_error(error, OUTSIDER, deal.transfer_id, "3100")
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED"]
        # the real payee can still commit it
        await w.fulfil(deal)
        assert await w.state(deal.transfer_id) == "COMMITTED"

    run(tmp_path, scenario)


# --------------------------------------------------------------------------- reject


def test_reject_aborts_restores_the_position_and_forwards_the_error_to_the_payer(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal(amount="3")
        await w.prepare(deal)
        owed = await w.reject(deal, "5100", "Generic Payee rejection - no thanks")

        assert await w.state(deal.transfer_id) == "ABORTED_ERROR"
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED", "RECEIVED_ERROR", "ABORTED_ERROR"]
        assert await w.position(PAYER) == 0
        assert await w.position(PAYEE) == 0
        assert await w.position_changes(deal.transfer_id) == [(PAYER, units("3"), units("3")), (PAYER, -units("3"), 0)]
        (forward,) = owed
        assert (forward.participant, forward.method) == (PAYER, "PUT")
        assert forward.url == f"{base_url(PAYER)}/transfers/{deal.transfer_id}/error"
        assert forward.source == PAYEE
        assert forward.error_code == "5100"
        row = await w.transfer_row(deal.transfer_id)
        assert (row["error_code"], row["completed_date"] is not None) == ("5100", True)
        # too late to fulfil now
        (error,) = await w.fulfil(deal)
        assert_hub_error(error, PAYEE, deal.transfer_id, "3100")
        assert await w.position(PAYEE) == 0

    run(tmp_path, scenario)


# --------------------------------------------------------------------------- get


def test_get_answers_the_payer_and_the_payee_from_the_ledger(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        await w.prepare(deal)
        (answer,) = await w.get(deal.transfer_id, PAYER)
        body = assert_hub_put(answer, PAYER, deal.transfer_id, "RESERVED")
        assert "fulfilment" not in body and "completedTimestamp" not in body

        await w.fulfil(deal)
        (answer,) = await w.get(deal.transfer_id, PAYEE)
        body = assert_hub_put(answer, PAYEE, deal.transfer_id, "COMMITTED")
        assert body["fulfilment"] == deal.fulfilment
        assert "completedTimestamp" in body
        # a GET changes nothing
        assert await w.history(deal.transfer_id) == ["RECEIVED_PREPARE", "RESERVED", "RECEIVED_FULFIL", "COMMITTED"]

    run(tmp_path, scenario)


def test_get_by_an_outsider_gets_3000_and_an_unknown_id_3208(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal()
        await w.prepare(deal)
        (error,) = await w.get(deal.transfer_id, OUTSIDER)
        assert_hub_error(error, OUTSIDER, deal.transfer_id, "3000")
        unknown = str(uuid.uuid4())
        (error,) = await w.get(unknown, PAYER)
        assert_hub_error(error, PAYER, unknown, "3208")

    run(tmp_path, scenario)


# --------------------------------------------------------------------------- expiry


def test_a_reserved_transfer_expires_with_3303_to_both_and_the_position_restored(tmp_path: Path) -> None:
    async def scenario(w: World) -> None:
        deal = Deal(amount="4", expires_in=1.5)
        await w.prepare(deal)
        assert await w.transfers.expire_due() == 0  # not due yet

        deadline = time.monotonic() + DUE_TIMEOUT_S
        while not await w.transfers.any_due(utc_now()):
            assert time.monotonic() < deadline, "the transfer never became due"
            await asyncio.sleep(POLL_S)
        mark = await w._last_outbox_id()
        assert await w.transfers.expire_due() == 1
        owed = await w.owed_since(mark)

        assert await w.state(deal.transfer_id) == "EXPIRED_RESERVED"
        assert await w.history(deal.transfer_id) == [
            "RECEIVED_PREPARE", "RESERVED", "RESERVED_TIMEOUT", "EXPIRED_RESERVED"]
        assert await w.position(PAYER) == 0
        assert await w.position_changes(deal.transfer_id) == [(PAYER, units("4"), units("4")), (PAYER, -units("4"), 0)]
        assert sorted(o.participant for o in owed) == sorted([PAYER, PAYEE])
        for message in owed:
            assert_hub_error(message, message.participant, deal.transfer_id, "3303")
        assert await w.transfers.expire_due() == 0  # once only

        # a fulfil that comes after the expiry is told so and changes nothing
        (error,) = await w.fulfil(deal)
        assert_hub_error(error, PAYEE, deal.transfer_id, "3303")
        assert await w.position(PAYEE) == 0

    run(tmp_path, scenario)
