"""The simulators' live feed (mobile_sim.feed) on its own, then hooked to a simulator and a toy switch.

What the wallet page relies on: events numbered in order and stamped in UTC, a subscriber that
falls behind loses only its oldest events (and is told how many), a bounded number of
subscribers, a short history for a page that connects late; and, from a running simulator, every
FSPIOP message of a payment in both directions with one trace id, the texts, the balances and
the flow's states. Last, the machinery of the flows that pause for a person (mobile_sim.tasks).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
from sanic import Sanic
from test_mobile_sim_unit import ToySwitch, run_with_switch

from mobile_sim.feed import (
    QUEUE_MAX,
    RECENT_MAX,
    SUBSCRIPTIONS_MAX,
    Feed,
    FeedFull,
    trace_id,
)
from mobile_sim.tasks import FlowRecords, Pauses, Stopping

AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def wire(n: int = 0) -> dict[str, Any]:
    return {"kind": "wire", "n": n}


def drain(subscription: Any) -> list[dict[str, Any]]:
    async def all_of() -> list[dict[str, Any]]:
        out = []
        while len(subscription):
            out.append(await subscription.get())
        return out

    return asyncio.run(all_of())


def test_events_are_numbered_in_order_and_stamped_in_utc() -> None:
    feed = Feed()
    first = feed.publish(wire())
    second = feed.publish({"kind": "text", "dfsp": "x"})
    assert (first["seq"], second["seq"]) == (1, 2)
    assert AT.fullmatch(first["at"]) and first["at"] <= second["at"]
    with pytest.raises(ValueError):
        feed.publish({"kind": "gossip"})
    with pytest.raises(ValueError):
        feed.publish({"no": "kind"})


def test_a_subscriber_gets_what_is_published_after_it_subscribed() -> None:
    async def run() -> None:
        feed = Feed()
        feed.publish(wire(0))
        subscription = feed.subscribe()
        feed.publish(wire(1))
        feed.publish({"kind": "balance"})
        assert [(e["kind"], e.get("n")) for e in [await subscription.get(), await subscription.get()]] == [
            ("wire", 1), ("balance", None)]
        assert await subscription.get(timeout=0.01) is None  # nothing more: a keep-alive moment

        async def reader() -> list[int]:
            return [event["n"] async for event in subscription]

        task = asyncio.create_task(reader())
        feed.publish(wire(2))
        await asyncio.sleep(0)
        feed.publish(wire(3))
        await asyncio.sleep(0)
        subscription.close()  # ends the iteration
        assert await asyncio.wait_for(task, 1) == [2, 3]
        assert feed.subscriptions == 0

    asyncio.run(run())


def test_a_slow_subscriber_loses_its_oldest_events_and_is_told_how_many() -> None:
    feed = Feed()
    subscription = feed.subscribe()
    for n in range(QUEUE_MAX + 25):
        feed.publish(wire(n))
    assert len(subscription) == QUEUE_MAX and subscription.dropped == 25
    events = drain(subscription)
    assert [e["n"] for e in events] == list(range(25, QUEUE_MAX + 25))
    assert [e["seq"] for e in events] == list(range(26, QUEUE_MAX + 26))


def test_a_subscription_can_pick_kinds() -> None:
    feed = Feed()
    texts = feed.subscribe(kinds=["text"])
    feed.publish(wire())
    feed.publish({"kind": "text", "message": "hi"})
    assert [e["kind"] for e in drain(texts)] == ["text"]
    with pytest.raises(ValueError):
        feed.subscribe(kinds=["gossip"])


def test_subscriptions_are_limited_and_closing_frees_one() -> None:
    feed = Feed()
    subscriptions = [feed.subscribe() for _ in range(SUBSCRIPTIONS_MAX)]
    with pytest.raises(FeedFull, match="close one"):
        feed.subscribe()
    subscriptions[0].close()
    subscriptions[0].close()  # twice is fine
    feed.subscribe()
    feed.publish(wire())
    assert len(subscriptions[0]) == 0 and len(subscriptions[1]) == 1


def test_recent_keeps_the_last_wire_events() -> None:
    feed = Feed()
    for n in range(RECENT_MAX + 10):
        feed.publish(wire(n))
    feed.publish({"kind": "flow"})
    recent = feed.recent("wire", RECENT_MAX + 100)
    assert len(recent) == RECENT_MAX and recent[0]["n"] == 10 and recent[-1]["n"] == RECENT_MAX + 9
    assert [e["n"] for e in feed.recent("wire", 3)] == [RECENT_MAX + 7, RECENT_MAX + 8, RECENT_MAX + 9]
    assert [e["kind"] for e in feed.recent("flow", 5)] == ["flow"]


def test_trace_ids_are_read_from_traceparents() -> None:
    assert trace_id("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == "0af7651916cd43dd8448eb211c80319c"
    assert trace_id(None) is None and trace_id("garbage") is None


def test_a_simulator_publishes_a_whole_payment() -> None:
    """A /send through a toy switch that forwards every header: both DFSPs' messages, one trace."""

    async def test(switch: ToySwitch, session: aiohttp.ClientSession, url: str) -> None:
        sim = Sanic.get_app("miniloop_sim").ctx.sim
        subscription = sim.feed.subscribe()
        async with session.post(f"{url}/payerfsp/send", json={"from": "111", "to": {"id": "221"}, "amount": "10"}) as r:
            assert r.status == 200, await r.text()
            transfer_id = (await r.json())["transferId"]
        events: list[dict[str, Any]] = []
        while not any(e["kind"] == "wire" and e["dfsp"] == "payeefsp" and e["method"] == "PUT"
                      and e["path"].startswith("/transfers/") for e in events):  # the payee's answer may come last
            event = await subscription.get(timeout=5)
            assert event is not None, events
            events.append(event)
        while len(subscription):
            events.append(await subscription.get())
        subscription.close()
        wires = [(e["dfsp"], e["direction"], e["method"], e["path"].split("/")[1], e["status"])
                 for e in events if e["kind"] == "wire"]
        for step in ("parties", "quotes", "transfers"):
            asked, answered = ("GET", "PUT") if step == "parties" else ("POST", "PUT")
            assert ("payerfsp", "out", asked, step, 202) in wires
            assert ("payeefsp", "in", asked, step, 202) in wires
            assert ("payeefsp", "out", answered, step, 200) in wires
            assert ("payerfsp", "in", answered, step, 200) in wires
        assert len({e["traceId"] for e in events if e["kind"] == "wire"}) == 1
        assert all(e["errorCode"] is None for e in events if e["kind"] == "wire")
        flow = [(e["state"], e["step"]) for e in events if e["kind"] == "flow" and e["id"] == transfer_id]
        assert flow == [("IN_PROGRESS", "lookup"), ("COMMITTED", "transfer")]
        balances = [(e["customer"], e["balance"], e["reserved"]) for e in events if e["kind"] == "balance"]
        assert balances == [("111", "100", "10"), ("221", "20", "0"), ("111", "90", "0")]
        texts = [(e["dfsp"], e["message"]["kind"]) for e in events if e["kind"] == "text"]
        assert texts == [("payeefsp", "received"), ("payerfsp", "paid")]
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)

    run_with_switch(test)


# --------------------------------------------------------------------------- the pauses of interactive flows


def test_a_paused_flow_answers_each_caller_at_its_next_pause_or_end() -> None:
    async def run() -> None:
        pauses = Pauses()

        async def flow() -> None:
            party = await pauses.ask("acceptParty", 200, "paused at the party", 5)
            assert party is True
            await pauses.ask("acceptQuote", 200, "paused at the quote", 5)
            pauses.end(200, "committed")

        task = asyncio.create_task(flow())
        assert await pauses.next() == (200, "paused at the party")
        assert not pauses.answer("acceptQuote", True)  # not what it waits for
        assert pauses.answer("acceptParty", True)
        assert not pauses.answer("acceptParty", True)  # answered once only
        hung_up = asyncio.create_task(pauses.next())
        await asyncio.sleep(0)
        hung_up.cancel()  # a caller that goes away does not stop the flow
        assert await pauses.next() == (200, "paused at the quote")
        assert pauses.answer("acceptQuote", True)
        assert await pauses.next() == (200, "committed")
        await task

    asyncio.run(run())


def test_a_pause_nobody_answers_times_out_and_a_stopping_simulator_ends_it() -> None:
    async def run() -> None:
        pauses = Pauses()
        with pytest.raises(TimeoutError):
            await pauses.ask("otp", 200, "waiting", 0.01)
        with pytest.raises(TimeoutError):
            await pauses.ask("otp", 200, "never shown", 0)  # no time left: no pause at all
        waiting = asyncio.create_task(pauses.ask("otp", 200, "waiting", 5))
        await asyncio.sleep(0)
        pauses.stop()
        with pytest.raises(Stopping):
            await waiting

    asyncio.run(run())


def test_finished_flows_are_kept_per_dfsp_up_to_a_limit() -> None:
    records = FlowRecords(kept=3)
    for n in range(5):
        records.started("green", str(n), object())
        records.ended("green", str(n), 200, {"n": n})
    records.started("blue", "x", "running")
    assert records.finished("green", "0") is None and records.finished("green", "4") == (200, {"n": 4})
    assert records.running_flow("blue", "x") == "running" and records.running_flow("green", "4") is None
    records.ended("blue", "x")  # ended without an answer (cancelled): forgotten
    assert records.running == {} and records.finished("blue", "x") is None
