"""Security (docs/reliability.md "Security"): who may send what, which ports listen where, size
limits, and no secrets in logs or events.

Real hubs over real HTTP. FSPIOP-Source: a message must come from a registered, active
participant, and from the party it belongs to (the payer of a prepare, the payee of a fulfil and
of a quote's answer); the Hub is never a source from outside. Operators' ports: on a --host other
than loopback the Admin, Settlement and ALS admin APIs stay on 127.0.0.1 unless --admin-token
(then every request needs it) or --insecure. Sizes: 5 MiB of FSPIOP body, 1 MiB on the operators'
ports, 16 KiB of headers. Secrets: an OTP typed on a phone, or sent as a PISP link's authToken,
reaches neither the hub's log nor its NATS events, not even when the hub refuses the message.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from conftest import Hub, HubLauncher, wait_until
from fspiop_dfsp import (
    Scene,
    Transfer,
    assert_hub_originated,
    b64url,
    dumps,
    error_body,
    quote_body,
    quote_response_body,
    sync_error,
)

TOKEN = "s3cret-" + uuid.uuid4().hex
TIMEOUT = 40


def new_pair(scene: Scene) -> tuple[str, str]:
    return scene.dfsp("payer"), scene.dfsp("payee")


# --------------------------------------------------------------------------- a. FSPIOP-Source


@pytest.mark.parametrize("source", ["nobodyhere", "Hub", "inactive"])
def test_a_source_that_is_not_an_active_dfsp_is_refused_at_once(scene: Scene, source: str) -> None:
    """Unknown, the Hub itself, or inactive: 400 with 3100 and the FSPIOP error body, before the
    body is even read; nothing is forwarded and nothing is reserved."""
    payer, payee = new_pair(scene)
    if source == "inactive":
        scene.set_active(payer, False)
        source = payer
    transfer = Transfer(source, payee)
    mark = scene.dfsps.mark(payee)
    r = scene.fspiop.post("/transfers", source, payee, transfer.body)
    assert r.status_code == 400, r.text
    code, description = sync_error(r)
    assert code == "3100" and source in description, description
    time.sleep(0.3)
    assert scene.dfsps.received(payee)[mark:] == []
    assert float(scene.position(payee)) == 0
    if source == payer:
        scene.set_active(payer, True)
        assert float(scene.position(payer)) == 0


def test_a_prepare_must_come_from_its_payer(scene: Scene) -> None:
    """A DFSP that sends a prepare naming another payer gets 3100; nothing is reserved there."""
    payer, payee = new_pair(scene)
    outsider = scene.dfsp("outsider")
    transfer = Transfer(payer, payee)
    mark = scene.dfsps.mark(outsider)
    r = scene.fspiop.post("/transfers", outsider, payee, transfer.body)
    assert r.status_code == 202, r.text
    error = scene.dfsps.error_callback(outsider, transfer.path, since=mark)
    assert error.error_code == "3100" and "Payer" in error.body["errorInformation"]["errorDescription"], error
    assert_hub_originated(error, outsider)
    assert float(scene.position(payer)) == 0


def test_a_fulfil_must_come_from_the_payee(scene: Scene) -> None:
    """Another DFSP cannot commit (or reject) a transfer: it gets 3100, the transfer stays
    reserved, and the real payee's fulfil commits it."""
    payer, payee = new_pair(scene)
    outsider = scene.dfsp("outsider")
    transfer = Transfer(payer, payee)
    scene.reserve(transfer)
    mark = scene.dfsps.mark(outsider)
    r = scene.fulfil(transfer, source=outsider)
    assert r.status_code == 200, r.text
    error = scene.dfsps.error_callback(outsider, transfer.path, since=mark)
    assert error.error_code == "3100", error
    r = scene.fspiop.put(transfer.path + "/error", outsider, payer, error_body())
    assert r.status_code == 200, r.text
    assert scene.transfer_state(payer, transfer.id) == "RESERVED"
    payer_mark = scene.dfsps.mark(payer)
    assert scene.fulfil(transfer).status_code == 200
    assert scene.dfsps.callback(payer, transfer.path, since=payer_mark).body["transferState"] == "COMMITTED"


@pytest.mark.parametrize("route", ["answer", "error"])
def test_a_quote_is_answered_by_its_payee_only(scene: Scene, route: str) -> None:
    """PUT /quotes/{ID} (or .../error) about a quote the hub routed, from someone other than its
    payee: 3100 to the sender, nothing reaches the payer; the payee's own answer does."""
    payer, payee = new_pair(scene)
    outsider = scene.dfsp("outsider")
    body = quote_body(payer, payee)
    quote_id = body["quoteId"]
    payee_mark = scene.dfsps.mark(payee)
    assert scene.fspiop.post("/quotes", payer, payee, body).status_code == 202
    scene.dfsps.wait_for(payee, "POST", "/quotes", since=payee_mark, exact=True)
    path = f"/quotes/{quote_id}" + ("/error" if route == "error" else "")
    answer = quote_response_body() if route == "answer" else error_body()
    payer_mark, outsider_mark = scene.dfsps.mark(payer), scene.dfsps.mark(outsider)
    r = scene.fspiop.put(path, outsider, payer, answer)
    assert r.status_code == 200, r.text
    error = scene.dfsps.error_callback(outsider, f"/quotes/{quote_id}", since=outsider_mark)
    assert error.error_code == "3100" and "Payee" in error.body["errorInformation"]["errorDescription"], error
    assert_hub_originated(error, outsider)
    r = scene.fspiop.put(path, payee, payer, answer)
    assert r.status_code == 200, r.text
    got = scene.dfsps.wait_for(payer, "PUT", path, since=payer_mark, exact=True)
    assert got.source == payee  # the outsider's never arrived: the first PUT the payer got is the payee's
    assert [m.source for m in scene.dfsps.received(payer)[payer_mark:] if m.path.startswith("/quotes/")] == [payee]


# --------------------------------------------------------------------------- b. the operators' ports


def listening_address(port: int) -> str:
    """The IPv4 address a local listening TCP port is bound to (Linux /proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        address, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            return socket.inet_ntoa(bytes.fromhex(address)[::-1])
    raise AssertionError(f"nothing listens on port {port}")


def port_of(url: str) -> int:
    return httpx.URL(url).port or 80


needs_proc = pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads /proc/net/tcp (Linux)")


@needs_proc
def test_on_all_addresses_the_operators_ports_stay_on_loopback(hubs: HubLauncher) -> None:
    hub = hubs.start("--host", "0.0.0.0", empty=True)
    for name in ("fspiop", "sim", "wallet"):
        assert listening_address(port_of(hub.urls[name])) == "0.0.0.0", name
    for name in ("admin", "settlement", "als_admin"):
        assert hub.urls[name].startswith("http://127.0.0.1:"), hub.urls
        assert listening_address(port_of(hub.urls[name])) == "127.0.0.1", name
    assert httpx.get(hub.urls["admin"] + "/participants", timeout=10).status_code == 200  # no token from here
    notice = [line for line in hub.stdout.splitlines() if "Admin, Settlement and ALS admin" in line]
    assert notice == ["The Admin, Settlement and ALS admin APIs listen on 127.0.0.1 only "
                      "(give --admin-token TOKEN to reach them from the network)"], hub.stdout


@needs_proc
def test_with_a_token_they_follow_host_and_ask_for_it(hubs: HubLauncher) -> None:
    hub = hubs.start("--host", "0.0.0.0", "--admin-token", TOKEN)
    for name in ("admin", "settlement", "als_admin"):
        assert listening_address(port_of(hub.urls[name])) == "0.0.0.0", name
    good = {"Authorization": f"Bearer {TOKEN}"}
    for url in (hub.urls["admin"] + "/participants", hub.urls["settlement"] + "/settlementWindows?state=OPEN",
                hub.urls["als_admin"] + "/oracles", hub.urls["admin"] + "/metrics"):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = httpx.get(url, headers=headers, timeout=10)
            assert r.status_code == 401, (url, headers, r.text)
            assert r.json()["errorInformation"]["errorCode"] == "3000"
            assert TOKEN not in r.text
        assert httpx.get(url, headers=good, timeout=10).status_code == 200, url
    r = httpx.post(hub.urls["admin"] + "/participants", json={"name": "intruder", "currency": "USD"}, timeout=10)
    assert r.status_code == 401
    names = [p["name"] for p in httpx.get(hub.urls["admin"] + "/participants", headers=good, timeout=10).json()]
    assert "intruder" not in names
    for url in (hub.urls["admin"] + "/health", hub.urls["settlement"] + "/health", hub.urls["als_admin"] + "/health"):
        assert httpx.get(url, timeout=10).status_code == 200, url
    # the wallet page reads the Admin and Settlement APIs with the token (the hub gives it)
    view = httpx.get(hub.urls["wallet"] + "/api/hub", timeout=10)
    assert view.status_code == 200 and view.json()["participants"] and view.json()["window"], view.text
    assert "listen on 0.0.0.0 and need Authorization: Bearer <the admin token>" in hub.stdout
    assert TOKEN not in hub.stdout + hub.stderr
    assert TOKEN not in httpx.get(hub.urls["wallet"] + "/api/config", timeout=10).text


@needs_proc
def test_insecure_opens_them_with_a_warning(hubs: HubLauncher) -> None:
    hub = hubs.start("--host", "0.0.0.0", "--insecure", empty=True)
    assert listening_address(port_of(hub.urls["admin"])) == "0.0.0.0"
    assert httpx.get(hub.urls["admin"] + "/participants", timeout=10).status_code == 200
    assert [line for line in hub.stdout.splitlines() if line.startswith("warning: --insecure")], hub.stdout


def test_on_loopback_a_token_changes_nothing(hubs: HubLauncher) -> None:
    hub = hubs.start("--admin-token", TOKEN, empty=True, env={})
    assert httpx.get(hub.urls["admin"] + "/participants", timeout=10).status_code == 200
    assert "Admin, Settlement and ALS admin" not in hub.stdout


def test_the_token_comes_from_the_environment_and_the_settings_file(hubs: HubLauncher, tmp_path: Path) -> None:
    hub = hubs.start("--host", "0.0.0.0", empty=True, env={"MINILOOP_ADMIN_TOKEN": TOKEN})
    assert httpx.get(hub.urls["admin"] + "/participants", timeout=10).status_code == 401
    settings = tmp_path / "settings.toml"
    settings.write_text(f'admin_token = "{TOKEN}"\nhost = "0.0.0.0"\n')
    hub = hubs.start("--config", str(settings), empty=True)
    assert httpx.get(hub.urls["admin"] + "/participants", timeout=10).status_code == 401
    r = httpx.get(hub.urls["admin"] + "/participants", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200


# --------------------------------------------------------------------------- c. sizes


def test_bodies_and_headers_have_limits(scene: Scene) -> None:
    """Too big: 413 (body) or 400 (headers) with 3104 and the FSPIOP error body; nothing changes.
    A bulk of 1,000 transfers with realistic ILP packets (about 1 MB) is well inside the limit."""
    payer, payee = new_pair(scene)
    transfer = Transfer(payer, payee)
    padded = {**transfer.body, "extensionList": {"extension": [{"key": "pad", "value": "x" * (6 * 1024 * 1024)}]}}
    r = scene.fspiop.post("/transfers", payer, payee, padded)
    assert r.status_code == 413, r.text
    assert sync_error(r) == ("3104", "Too large payload - the body is larger than 5 MiB")
    r = scene.fspiop.post("/transfers", payer, payee, transfer.body, headers={"x-padding": "y" * 20000})
    assert r.status_code == 400, r.text
    assert sync_error(r) == ("3104", "Too large payload - the headers are larger than 16 KiB")
    r = httpx.post(scene.hub.urls["admin"] + "/participants", content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                   headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 413 and sync_error(r) == ("3104", "Too large payload - the body is larger than 1 MiB")
    assert float(scene.position(payer)) == 0
    # the largest bulk the API allows: 1,000 transfers of ~1 KB each (ILP packets of 800 characters)
    individual = [{"transferId": str(uuid.uuid4()), "transferAmount": {"amount": "1", "currency": "USD"},
                   "ilpPacket": b64url(bytes(600)), "condition": b64url(bytes(32))} for _ in range(1000)]
    bulk = {"bulkTransferId": str(uuid.uuid4()), "bulkQuoteId": str(uuid.uuid4()), "payerFsp": payer,
            "payeeFsp": payee, "expiration": transfer.expiration, "individualTransfers": individual}
    size = len(dumps(bulk))
    assert 900_000 < size < 2 * 1024 * 1024, size
    r = scene.fspiop.post("/bulkTransfers", "nobodyhere", payee, bulk)  # read whole, then refused for its source
    assert r.status_code == 400 and sync_error(r)[0] == "3100", r.text


# --------------------------------------------------------------------------- e. no secrets in logs


def all_events(nats_url: str, act: Any, until: Any = None, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every event published while `act()` runs in a thread, as its subject and raw JSON text; with
    `until`, also those that come after, until `until(seen)` is true (events are published after the
    answer, so the last ones may arrive later) or `timeout` seconds have passed."""

    async def watch() -> list[dict[str, Any]]:
        nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
        seen: list[dict[str, Any]] = []

        async def on_message(msg: Any) -> None:
            seen.append({"subject": msg.subject, "raw": msg.data.decode("utf-8", "replace")})

        try:
            await nc.subscribe("ml.event.>", cb=on_message)
            await nc.flush(timeout=5)
            await asyncio.get_running_loop().run_in_executor(None, act)
            await nc.flush(timeout=5)
            deadline = time.monotonic() + timeout
            while until is not None and not until(seen) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return seen
        finally:
            await nc.close()

    return asyncio.run(watch())


def sim_post(hub: Hub, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{hub.urls['sim']}{path}", json=body, timeout=TIMEOUT)


def sim_get(hub: Hub, path: str) -> Any:
    r = httpx.get(f"{hub.urls['sim']}{path}", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


def test_no_otp_or_auth_token_in_the_log_or_the_events(hubs: HubLauncher) -> None:
    """A request to pay confirmed with an OTP, a PISP link confirmed with an OTP (its authToken),
    and a refused PUT /authorizations carrying an OTP: none of the values shows in the hub's
    debug log or in any event. The hub runs on 0.0.0.0 with an admin token, so the hub's own
    deliveries to the auth-service (on the ALS admin port) take part too."""
    hub = hubs.start("--host", "0.0.0.0", "--admin-token", TOKEN, "--log-level", "debug")
    secrets: list[str] = []

    def act() -> None:
        r = sim_post(hub, "/merchantbank/requestToPay", {"from": "27730000001", "payer": "MSISDN/27720000001",
                                                         "amount": "3", "useCase": "merchant-request"})
        assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text
        request_id = r.json()["transactionRequestId"]
        texts = sim_get(hub, "/bluewallet/customers/27720000001/messages")["messages"]
        secrets.append(next(t["otp"] for t in texts if t["kind"] == "otp" and t["transactionRequestId"] == request_id))
        r = sim_post(hub, "/budgetapp/link", {"dfsp": "greenwallet", "userId": "27710000001", "channel": "OTP"})
        assert r.status_code == 200 and r.json()["state"] == "LINKED", r.text
        consent_request = r.json()["consentRequestId"]
        texts = sim_get(hub, "/greenwallet/customers/27710000001/messages")["messages"]
        (text,) = [t for t in texts if t["kind"] == "otp" and t.get("consentRequestId") == consent_request]
        secrets.append(next(v for v in re.findall(r"\b\d{4,8}\b", text["text"])))
        patch = [m for m in r.json()["messages"] if m["method"] == "PATCH" and m["path"].startswith("/consentRequests")]
        assert patch and patch[0]["body"]["authToken"] == secrets[-1], patch
        # refused (no Date header): the refusal event shows the body, but not the OTP in it
        refused_otp = "739154"
        secrets.append(refused_otp)
        r = httpx.put(f"{hub.urls['fspiop']}/authorizations/{uuid.uuid4()}", timeout=10, headers={
            "content-type": "application/vnd.interoperability.authorizations+json;version=1.1",
            "fspiop-source": "bluewallet", "fspiop-destination": "merchantbank"},
            content=json.dumps({"authenticationInfo": {"authentication": "OTP", "authenticationValue": refused_otp},
                                "responseType": "ENTERED"}))
        assert r.status_code == 400, r.text

    events = all_events(hub.urls["nats"], act, until=lambda seen: any(
        e["subject"].endswith(".refused") and "/authorizations/" in e["raw"] for e in seen))
    assert len(secrets) == 3 and all(secrets), secrets
    refusals = [e for e in events if e["subject"].endswith(".refused") and "/authorizations/" in e["raw"]]
    assert refusals, events
    shown = json.loads(json.loads(refusals[0]["raw"])["body"])
    assert shown["authenticationInfo"] == {"authentication": "OTP", "authenticationValue": "***"}, shown
    wait_until(lambda: hub.stderr, 5, what="the debug log")
    log = hub.stdout + hub.stderr
    assert "DEBUG" in log  # the log did record requests at debug level
    for secret in secrets:
        assert not re.search(rf"\b{secret}\b", log), f"the OTP {secret} is in the log"
        leaked = [e["subject"] for e in events if re.search(rf"\b{secret}\b", e["raw"])]
        assert not leaked, f"the OTP {secret} is in the events {leaked}"
    assert TOKEN not in log


def test_the_dashboard_and_scenarios_send_the_token(hubs: HubLauncher, run_cli: Any) -> None:
    """A remote dashboard (`miniloop tui --admin-token`) and `miniloop scenario run` with the
    hub's token in MINILOOP_ADMIN_TOKEN reach the Admin API; without the token they are refused."""
    from tui.client import HubClient

    hub = hubs.start("--host", "0.0.0.0", "--admin-token", TOKEN)

    async def participants(token: str | None) -> int:
        client = await HubClient.attach(hub.urls["wallet"], admin_token=token)
        try:
            return (await client.admin("GET", "/participants")).status
        finally:
            await client.close()

    assert asyncio.run(participants(TOKEN)) == 200
    assert asyncio.run(participants(None)) == 401
    result = run_cli("scenario", "run", "p2p", "--data-dir", str(hub.data_dir), env={"MINILOOP_ADMIN_TOKEN": TOKEN})
    assert result.returncode == 0, result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr
    result = run_cli("scenario", "run", "p2p", "--data-dir", str(hub.data_dir))
    assert result.returncode != 0 and "401" in result.stdout + result.stderr, result.stdout + result.stderr
