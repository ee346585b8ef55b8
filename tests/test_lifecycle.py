"""The hub as a process: it stops cleanly, leaves no nats-server behind, keeps its data across
restarts, refuses a second hub on its data directory, and publishes events on NATS."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import httpx
import nats
from conftest import (
    Hub, HubLauncher, deferred_net_model, live_processes_mentioning, nats_children, pid_gone, unique_name,
    wait_until,
)


def test_sigkill_of_the_hub_leaves_no_nats_server(hubs: HubLauncher) -> None:
    hub = hubs.start(empty=True)
    assert hub.nats_pid is not None, "the hub has no nats-server child"
    nats_pid = hub.nats_pid
    assert not pid_gone(nats_pid)
    assert hub.kill() == -signal.SIGKILL
    wait_until(lambda: pid_gone(nats_pid), timeout=5, what=f"nats-server {nats_pid} to exit")
    assert live_processes_mentioning(str(hub.data_dir)) == []


def test_sigterm_stops_cleanly(hubs: HubLauncher) -> None:
    hub = hubs.start(empty=True)
    nats_pid = hub.nats_pid
    assert nats_pid is not None
    assert (hub.data_dir / "hub.json").is_file()
    assert hub.stop(signal.SIGTERM) == 0, hub.stderr
    assert "stopped" in hub.stdout
    assert not (hub.data_dir / "hub.json").exists()
    wait_until(lambda: pid_gone(nats_pid), timeout=5, what="nats-server to exit")
    assert live_processes_mentioning(str(hub.data_dir)) == []


def test_sigint_stops_cleanly(hubs: HubLauncher) -> None:
    hub = hubs.start(empty=True)
    nats_pid = hub.nats_pid
    assert hub.stop(signal.SIGINT) == 0, hub.stderr
    assert not (hub.data_dir / "hub.json").exists()
    assert nats_pid is not None
    wait_until(lambda: pid_gone(nats_pid), timeout=5, what="nats-server to exit")


def test_restart_keeps_the_data(hubs: HubLauncher, tmp_path: Path) -> None:
    data_dir = tmp_path / "kept"
    first = hubs.start(empty=True, data_dir=data_dir)
    first.setup_currency("USD")
    name = unique_name()
    r = first.admin.post("/participants", json={"name": name, "currency": "USD"})
    assert r.status_code == 201, r.text
    before = first.admin.get(f"/participants/{name}").json()
    assert first.stop() == 0, first.stderr
    assert "stopped" in first.stdout

    second = hubs.start(empty=True, data_dir=data_dir)
    r = second.admin.get(f"/participants/{name}")
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["name"] == name
    assert after["accounts"] == before["accounts"]
    assert after["created"] == before["created"]
    assert [m["name"] for m in second.admin.get("/settlementModels").json()] == ["DEFERREDNET"]
    hub_types = {a["ledgerAccountType"] for a in second.admin.get("/participants/Hub").json()["accounts"]}
    assert hub_types == {"HUB_RECONCILIATION", "HUB_MULTILATERAL_SETTLEMENT"}
    assert len(second.settlement.get("settlementWindows", params={"state": "OPEN"}).json()) == 1


def test_restarted_demo_hub_is_not_seeded_twice(hubs: HubLauncher, tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    first = hubs.start(data_dir=data_dir)
    assert first.seeded is True
    participants = first.admin.get("/participants").json()
    balances = {p["name"]: first.admin.get(f"/participants/{p['name']}/accounts").json() for p in participants}
    oracles = first.als.get("/oracles").json()
    assert first.stop() == 0, first.stderr

    second = hubs.start(data_dir=data_dir)
    assert second.seeded is False
    again = second.admin.get("/participants").json()
    assert [p["name"] for p in again] == [p["name"] for p in participants]
    for p in again:
        accounts = second.admin.get(f"/participants/{p['name']}/accounts").json()
        assert [(a["id"], a["ledgerAccountType"], a["value"]) for a in accounts] == [
            (a["id"], a["ledgerAccountType"], a["value"]) for a in balances[p["name"]]]
    assert len(second.als.get("/oracles").json()) == len(oracles)


def test_a_second_hub_on_the_same_data_dir_is_refused(hubs: HubLauncher, tmp_path: Path) -> None:
    data_dir = tmp_path / "shared"
    first = hubs.start(empty=True, data_dir=data_dir)
    runtime = json.loads((data_dir / "hub.json").read_text())
    second = hubs.prepare(empty=True, data_dir=data_dir)
    try:
        second.start(timeout=20)
    except AssertionError:
        pass
    else:
        raise AssertionError("a second hub started on the same data directory")
    assert second.process is not None and second.process.returncode == 2
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("miniloop: "), second.stderr
    assert "already running" in lines[0]
    # the first hub is untouched and still serving
    assert json.loads((data_dir / "hub.json").read_text()) == runtime
    assert first.running
    assert first.admin.get("/participants").status_code == 200


async def _collect_participant_event(hub: Hub, name: str, timeout: float) -> tuple[str, dict]:
    nc = await nats.connect(hub.urls["nats"], connect_timeout=5, max_reconnect_attempts=0)
    try:
        wanted = f"ml.event.participant.{name}.created"
        arrived: asyncio.Future[tuple[str, dict]] = asyncio.get_running_loop().create_future()

        async def on_message(msg: nats.aio.msg.Msg) -> None:
            if msg.subject == wanted and not arrived.done():
                arrived.set_result((msg.subject, json.loads(msg.data)))

        await nc.subscribe("ml.event.>", cb=on_message)
        await nc.flush(timeout=5)  # the subscription is known to the server before we act
        async with httpx.AsyncClient(base_url=hub.urls["admin"], timeout=10) as admin:
            r = await admin.post("/participants", json={"name": name, "currency": "USD"})
            assert r.status_code == 201, r.text
        return await asyncio.wait_for(arrived, timeout)
    finally:
        await nc.close()


def test_creating_a_participant_publishes_an_event(hubs: HubLauncher) -> None:
    hub = hubs.start(empty=True)
    hub.admin.post("/participants/Hub/accounts", json={"currency": "USD", "type": "HUB_RECONCILIATION"})
    hub.admin.post("/participants/Hub/accounts", json={"currency": "USD", "type": "HUB_MULTILATERAL_SETTLEMENT"})
    assert hub.admin.post("/settlementModels", json=deferred_net_model("USD")).status_code == 201
    name = unique_name()
    subject, body = asyncio.run(_collect_participant_event(hub, name, timeout=10))
    assert subject == f"ml.event.participant.{name}.created"
    assert body["name"] == name
    assert body["type"] == "participant.created"


def test_restart_after_a_crash_keeps_the_data(hubs: HubLauncher, tmp_path: Path) -> None:
    data_dir = tmp_path / "crashed"
    first = hubs.start(data_dir=data_dir)
    balances = {p["name"]: first.account_value(p["name"]) for p in first.admin.get("/participants").json()
                if p["name"] not in ("Hub", "centralAuth")}
    nats_pid = first.nats_pid
    assert first.kill() == -signal.SIGKILL
    assert nats_pid is not None
    wait_until(lambda: pid_gone(nats_pid), timeout=5, what="nats-server to exit")

    second = hubs.start(data_dir=data_dir)
    assert second.seeded is False
    assert {name: second.account_value(name) for name in balances} == balances


def test_a_crashed_nats_server_is_restarted(hubs: HubLauncher) -> None:
    hub = hubs.start()
    old = hub.nats_pid
    assert old is not None
    os.kill(old, signal.SIGKILL)
    new = wait_until(lambda: [p for p in nats_children(hub.pid) if p != old and not pid_gone(p)], timeout=10,
                     what="a new nats-server child")[0]
    hub.nats_pid = new  # so that teardown can check it, too
    assert hub.running
    assert hub.admin.get("/participants").status_code == 200
    # events flow again on the same URL once the hub has reconnected
    name = unique_name()
    _, body = asyncio.run(_collect_participant_event(hub, name, timeout=15))
    assert body["name"] == name
    assert hub.stop() == 0, hub.stderr
    wait_until(lambda: pid_gone(new), timeout=5, what="the new nats-server to exit")
