"""The wallet port's HTTP API (mobile_sim.web) on a real demo hub: the page and its files, the
configuration, the forwarded driving API, the QR codes a till made, the hub pane's numbers, joining
a workshop, and the live events (server-sent events from the simulators' feed and NATS).

One demo hub for the module; each test uses customers no other test of the module pays, or
measures before and after. The join URL, the --empty hub and stopping with open streams take
hubs of their own.
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Hub, HubLauncher, error_code, wait_until
from miniloop import lan

D = Decimal
TIMEOUT = 40
STATIC_DIR = Path(__file__).resolve().parent.parent / "mobile_sim" / "web" / "static"
PAGES = ("/", "/phone/greenwallet/27710000001", "/till/merchantbank/27730000001", "/hub", "/pisp", "/join")
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml",
                 ".png": "image/png"}
# what a served file may name without loading it: XML namespaces
HARMLESS_URLS = re.compile(r"https?://www\.w3\.org/[\w/.#-]*")
EXTERNAL = re.compile(r"https?://|//cdn|//fonts\.|//unpkg|//ajax\.")


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


@pytest.fixture(scope="module")
def wallet(demo: Hub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo.urls["wallet"], timeout=TIMEOUT) as client:
        yield client


def customers(wallet: httpx.Client, dfsp: str) -> dict[str, dict[str, Any]]:
    r = wallet.get(f"/api/sim/{dfsp}/customers")
    assert r.status_code == 200, r.text
    return {c["id"]: c for c in r.json()}


def balance(wallet: httpx.Client, dfsp: str, customer: str) -> Decimal:
    return D(customers(wallet, dfsp)[customer]["balance"])


def admin_amount(value: Any) -> Decimal:
    return D(str(value))


# --------------------------------------------------------------------------- the page and its files


def test_every_page_path_serves_the_single_page_app(wallet: httpx.Client) -> None:
    index = wallet.get("/static/index.html")
    assert index.status_code == 200, index.text
    for path in PAGES:
        r = wallet.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["content-type"].startswith("text/html"), path
        assert r.headers["cache-control"] == "no-cache", path
        assert r.content == index.content, path
    assert "<html" in index.text.lower()


def test_static_files_have_their_content_types_and_load_nothing_from_the_internet(wallet: httpx.Client) -> None:
    files = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file() and p.suffix in CONTENT_TYPES)
    assert any(p.suffix == ".js" for p in files) and any(p.name == "index.html" for p in files), files
    for path in files:
        name = path.relative_to(STATIC_DIR).as_posix()
        r = wallet.get(f"/static/{name}")
        assert r.status_code == 200, (name, r.text)
        assert r.headers["content-type"].split(";")[0] == CONTENT_TYPES[path.suffix], name
        assert r.headers["cache-control"] == "no-cache"
        assert r.content == path.read_bytes(), name
        if path.suffix in (".html", ".js", ".css", ".svg"):
            text = HARMLESS_URLS.sub("", r.text)
            found = [m.group(0) + text[m.end():m.end() + 40] for m in EXTERNAL.finditer(text)]
            assert not found, f"{name} names something on the internet: {found}"


@pytest.mark.parametrize("path", [
    "/static/nothing-here.js", "/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/..%2f__init__.py",
    "/static/.hidden", "/static/%2e%2e/%2e%2e/pyproject.toml", "/static/", "/phone/greenwallet", "/nowhere",
])
def test_static_refuses_what_is_not_one_of_its_files(wallet: httpx.Client, path: str) -> None:
    r = wallet.get(path)
    assert r.status_code == 404, (path, r.text)
    assert error_code(r) == "3002"


# --------------------------------------------------------------------------- /api/config, /api/hub


def test_config_lists_the_simulated_dfsps_their_customers_and_the_urls(demo: Hub, wallet: httpx.Client) -> None:
    r = wallet.get("/api/config")
    assert r.status_code == 200, r.text
    config = r.json()
    by_name = {d["name"]: d for d in config["dfsps"]}
    assert set(by_name) == {"greenwallet", "bluewallet", "merchantbank"}
    assert config["pisps"] == ["budgetapp"]
    assert config["joinUrl"] is None  # loopback: phones could not reach it
    assert config["urls"] == {name: demo.urls[name] for name in ("fspiop", "admin", "settlement", "als_admin", "sim",
                                                                  "wallet", "nats")}
    merchant = by_name["merchantbank"]
    assert (merchant["currency"], merchant["quoteFeePercent"], merchant["quoteFeeFixed"]) == ("USD", "1", "0")
    assert by_name["greenwallet"]["quoteFeePercent"] == "0"
    amara = next(c for c in by_name["greenwallet"]["customers"] if c["id"] == "27710000001")
    assert {k: amara[k] for k in ("idType", "name", "reserved")} == {"idType": "MSISDN", "name": "Amara Okafor",
                                                                      "reserved": "0"}
    for dfsp in by_name.values():  # the same balances as the sim's own GET /customers
        assert {c["id"]: c["balance"] for c in dfsp["customers"]}.keys() == customers(wallet, dfsp["name"]).keys()


def test_hub_pane_numbers_are_the_admin_api_s(demo: Hub, wallet: httpx.Client) -> None:
    r = wallet.get("/api/hub")
    assert r.status_code == 200, r.text
    view = r.json()
    rows = {p["name"]: p for p in view["participants"]}
    assert {"greenwallet", "bluewallet", "merchantbank"} <= set(rows)
    assert "Hub" not in rows and "centralAuth" not in rows
    for name in ("greenwallet", "bluewallet", "merchantbank"):
        row = rows[name]
        assert row["currency"] == "USD" and row["active"] is True
        for field in ("position", "ndc", "settlementBalance"):
            assert isinstance(row[field], str), row  # amounts as FSPIOP text
        position = demo.admin.get(f"/participants/{name}/positions", params={"currency": "USD"}).json()
        (limit,) = [x for x in demo.admin.get(f"/participants/{name}/limits").json()
                    if x["limit"]["type"] == "NET_DEBIT_CAP" and x["currency"] == "USD"]
        assert D(row["position"]) == admin_amount(position["value"])
        assert D(row["ndc"]) == admin_amount(limit["limit"]["value"])
        assert D(row["settlementBalance"]) == admin_amount(demo.account_value(name, "SETTLEMENT"))
    window = view["window"]
    (open_window,) = demo.settlement.get("settlementWindows", params={"state": "OPEN"}).json()
    assert window == {"id": open_window["settlementWindowId"], "state": "OPEN",
                      "createdDate": open_window["createdDate"]}


# --------------------------------------------------------------------------- the driving API, forwarded


def test_a_send_through_the_wallet_port_moves_balances_and_positions(demo: Hub, wallet: httpx.Client) -> None:
    payer_before, payee_before = balance(wallet, "greenwallet", "27710000002"), balance(wallet, "bluewallet", "27720000003")
    hub_before = {p["name"]: D(p["position"]) for p in wallet.get("/api/hub").json()["participants"]}
    r = wallet.post("/api/sim/greenwallet/send", json={"from": "27710000002", "to": {"id": "27720000003"},
                                                       "amount": "7.5"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["state"] == "COMMITTED"
    assert balance(wallet, "greenwallet", "27710000002") == payer_before - D("7.5")
    assert balance(wallet, "bluewallet", "27720000003") == payee_before + D("7.5")
    hub_after = {p["name"]: D(p["position"]) for p in wallet.get("/api/hub").json()["participants"]}
    assert hub_after["greenwallet"] == hub_before["greenwallet"] + D("7.5")
    assert hub_after["bluewallet"] == hub_before["bluewallet"] - D("7.5")


def test_the_sim_s_refusals_come_back_as_they_are(wallet: httpx.Client) -> None:
    r = wallet.post("/api/sim/nobank/send", json={"from": "1", "to": {"id": "2"}, "amount": "1"})
    assert r.status_code == 404 and error_code(r) == "3002"
    r = wallet.post("/api/sim/greenwallet/send", json={"from": "27710000003", "to": {"id": "27720000001"},
                                                       "amount": 1.5})
    assert r.status_code == 400 and error_code(r) == "3100"
    r = wallet.post("/api/sim/greenwallet/send", json={"from": "27710000003", "to": {"id": "27720000001"},
                                                       "amount": "1000000"})
    assert r.status_code == 400 and error_code(r) == "4000"
    # the query string goes along: ?idType picks the customer
    r = wallet.get("/api/sim/greenwallet/customers/GREENKIOSK/settings", params={"idType": "BUSINESS"})
    assert r.status_code == 200 and r.json()["idType"] == "BUSINESS", r.text
    r = wallet.put("/api/sim/greenwallet/customers/27710000003/settings", json={"requestToPay": "sometimes"})
    assert r.status_code == 400 and error_code(r) == "3100"
    # FSPIOP routes need FSPIOP headers, which the wallet port never sends: the sim refuses them
    r = wallet.get("/api/sim/greenwallet/parties/MSISDN/27710000001")
    assert r.status_code == 400 and error_code(r) == "3102"


def test_qr_codes_made_through_the_wallet_port_are_listed_newest_first(wallet: httpx.Client) -> None:
    made = []
    for amount in ("3", "4.25"):
        r = wallet.post("/api/sim/merchantbank/qr", json={"from": "27730000002", "amount": amount,
                                                         "reference": f"T-{uuid.uuid4().hex[:6]}"})
        assert r.status_code == 200, r.text
        made.append(r.json())
    r = wallet.post("/api/sim/merchantbank/qr", json={"from": "nobody"})  # refused: not kept
    assert r.status_code == 400
    r = wallet.get("/api/qrs")
    assert r.status_code == 200
    qrs = r.json()["qrs"]
    assert [q["payload"] for q in qrs[:2]] == [made[1]["payload"], made[0]["payload"]]
    newest = qrs[0]
    assert newest["dfsp"] == "merchantbank" and newest["customer"] == "27730000002"
    assert newest["qr"]["amount"] == "4.25" and newest["svg"].startswith("<svg")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", newest["createdAt"])
    # a phone pays the code it picked
    r = wallet.post("/api/sim/bluewallet/payQr", json={"from": "27720000002", "payload": newest["payload"]})
    assert r.status_code == 200 and r.json()["state"] == "COMMITTED", r.text
    assert r.json()["quote"]["payeeFspFee"]["amount"] == "0.04"


# --------------------------------------------------------------------------- joining a workshop


def test_join_gives_new_wallet_customers_round_robin_who_can_be_paid(wallet: httpx.Client) -> None:
    joined = []
    for name in ("Ada Lovelace", None):
        r = wallet.post("/api/join", json={"name": name} if name else {})
        assert r.status_code == 201, r.text
        joined.append(r.json())
    first, second = joined
    assert {first["dfsp"], second["dfsp"]} == {"greenwallet", "bluewallet"}  # round robin over the wallets
    assert first["id"] != second["id"] and first["idType"] == second["idType"] == "MSISDN"
    assert first["name"] == "Ada Lovelace" and second["name"]
    assert first["settings"]["requestToPay"] == "ask"
    for customer in joined:
        assert customer["id"] in customers(wallet, customer["dfsp"])
    # someone at the other wallet pays the first joiner: the lookup finds them through the oracle
    payer = ("bluewallet", "27720000002") if first["dfsp"] == "greenwallet" else ("greenwallet", "27710000003")
    before = D(first["balance"])
    r = wallet.post(f"/api/sim/{payer[0]}/send", json={"from": payer[1], "to": {"id": first["id"]}, "amount": "2"})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["state"] == "COMMITTED" and result["payee"]["name"] == "Ada Lovelace"
    assert balance(wallet, first["dfsp"], first["id"]) == before + 2


def test_join_refuses_what_it_does_not_take(wallet: httpx.Client) -> None:
    r = wallet.post("/api/join", json={"name": "X", "balance": "1000000"})
    assert r.status_code == 400 and error_code(r) == "3100"
    r = wallet.post("/api/join", json={"name": 5})
    assert r.status_code == 400 and error_code(r) == "3100"
    r = wallet.post("/api/join", content=b"not json")
    assert r.status_code == 400 and error_code(r) == "3101"


def test_no_join_qr_on_loopback(wallet: httpx.Client) -> None:
    r = wallet.get("/api/join-qr")
    assert r.status_code == 404 and error_code(r) == "3002"
    assert "--host 0.0.0.0" in r.json()["errorInformation"]["errorDescription"]


def test_a_hub_on_every_interface_offers_its_lan_join_url(hubs: HubLauncher) -> None:
    hub = hubs.start("--host", "0.0.0.0")
    address = lan.lan_address()
    with httpx.Client(base_url=hub.urls["wallet"], timeout=TIMEOUT) as wallet:
        config = wallet.get("/api/config").json()
        r = wallet.get("/api/join-qr")
        if address is None:  # a machine with loopback only: nothing to offer
            assert config["joinUrl"] is None and r.status_code == 404
            return
        port = hub.urls["wallet"].rsplit(":", 1)[1]
        assert config["joinUrl"] == f"http://{address}:{port}/join"
        assert r.status_code == 200, r.text
        assert r.json()["url"] == config["joinUrl"] and r.json()["svg"].startswith("<svg")
        # and the page answers on that address, as a phone would open it
        r = httpx.get(config["joinUrl"], timeout=TIMEOUT)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")


# --------------------------------------------------------------------------- live events


class Events:
    """An open GET /api/events stream, read event by event (with a bounded wait)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.iter_lines()
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def next(self) -> tuple[str, Any]:
        kind, data = None, []
        for line in self.lines:
            if line == "":
                if kind is not None or data:
                    event = (kind or "message", json.loads("\n".join(data)))
                    self.seen.append(event)
                    return event
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                kind = value
            elif field == "data":
                data.append(value)
        raise AssertionError("the event stream ended")

    def until(self, predicate: Any, timeout: float = 20.0) -> list[tuple[str, Any]]:
        """Read until predicate(seen) holds; every event read."""
        deadline = time.monotonic() + timeout
        while not predicate(self.seen):
            assert time.monotonic() < deadline, f"timed out; saw {[k for k, _ in self.seen]}"
            self.next()
        return self.seen


def open_events(client: httpx.Client) -> Any:
    return client.stream("GET", "/api/events", timeout=httpx.Timeout(TIMEOUT, read=30.0))


def test_events_stream_a_payment_s_wire_messages_in_order_and_the_hub_s_events(wallet: httpx.Client) -> None:
    with open_events(wallet) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = Events(response)
        kind, hello = events.next()
        assert kind == "hello" and isinstance(hello["wire"], list) and hello["now"].endswith("Z")
        events.seen.clear()
        with ThreadPoolExecutor(1) as pool:
            paid = pool.submit(wallet.post, "/api/sim/greenwallet/send",
                               json={"from": "27710000003", "to": {"id": "27720000002"}, "amount": "3"})
            r = paid.result(TIMEOUT)
        assert r.status_code == 200, r.text
        transfer_id = r.json()["transferId"]
        committed = f"ml.event.transfer.{transfer_id}.COMMITTED"
        seen = events.until(lambda seen: any(k == "hub" and d["subject"] == committed for k, d in seen)
                            and any(k == "wire" and d["path"] == f"/transfers/{transfer_id}"
                                    and d["dfsp"] == "greenwallet" for k, d in seen))
    payer_wire = [d for k, d in seen if k == "wire" and d["dfsp"] == "greenwallet"]
    steps = [(d["direction"], d["method"], re.sub(r"/[^/]+$", "/{ID}", d["path"]) if d["method"] == "PUT"
              else d["path"]) for d in payer_wire]
    assert steps[:6] == [
        ("out", "GET", "/parties/MSISDN/27720000002"), ("in", "PUT", "/parties/MSISDN/{ID}"),
        ("out", "POST", "/quotes"), ("in", "PUT", "/quotes/{ID}"),
        ("out", "POST", "/transfers"), ("in", "PUT", "/transfers/{ID}"),
    ], steps
    assert [d["seq"] for d in payer_wire] == sorted(d["seq"] for d in payer_wire)
    first = payer_wire[0]
    assert first["source"] == "greenwallet" and first["status"] == 202
    (hub_event,) = [d for k, d in seen if k == "hub" and d["subject"] == committed]
    assert hub_event["type"] == "transfer.COMMITTED" and hub_event["payerFsp"] == "greenwallet"
    assert any(k == "balance" and d["customer"] == "27710000003" for k, d in seen)


def test_a_new_stream_s_hello_has_the_recent_wire_messages(wallet: httpx.Client) -> None:
    r = wallet.post("/api/sim/bluewallet/send", json={"from": "27720000003", "to": {"id": "27710000003"},
                                                      "amount": "1"})
    assert r.status_code == 200, r.text
    transfer_id = r.json()["transferId"]
    with open_events(wallet) as response:
        kind, hello = Events(response).next()
    assert kind == "hello"
    assert any(m["path"] == f"/transfers/{transfer_id}" for m in hello["wire"]), hello["wire"][-6:]
    assert len(hello["wire"]) <= 200


def test_streams_end_when_the_hub_stops_and_it_stops_at_once(hubs: HubLauncher) -> None:
    hub = hubs.start()
    with httpx.Client(base_url=hub.urls["wallet"], timeout=TIMEOUT) as wallet, open_events(wallet) as response:
        events = Events(response)
        assert events.next()[0] == "hello"
        started = time.monotonic()
        assert hub.stop() == 0
        assert time.monotonic() - started < 5
        with pytest.raises((AssertionError, httpx.HTTPError)):
            events.next()  # the stream ended


def test_at_most_a_hundred_pages_watch_at_once(demo: Hub, wallet: httpx.Client) -> None:
    host, port = demo.urls["wallet"].removeprefix("http://").rsplit(":", 1)
    streams: list[socket.socket] = []
    try:
        for _ in range(100):
            sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
            streams.append(sock)
            sock.sendall(f"GET /api/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head = sock.recv(4096).decode(errors="replace")
            assert head.startswith("HTTP/1.1 200"), head
        r = wallet.get("/api/events")
        assert r.status_code == 503 and error_code(r) == "2003", r.text
    finally:
        for sock in streams:
            sock.close()

    def open_again() -> bool:
        with open_events(wallet) as response:
            return response.status_code == 200

    wait_until(open_again, 10, what="a stream once the others closed")


# --------------------------------------------------------------------------- an --empty hub


def test_an_empty_hub_s_page_has_nothing_simulated(hubs: HubLauncher) -> None:
    hub = hubs.start(empty=True)
    with httpx.Client(base_url=hub.urls["wallet"], timeout=TIMEOUT) as wallet:
        r = wallet.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        config = wallet.get("/api/config").json()
        assert config["dfsps"] == [] and config["pisps"] == []
        r = wallet.get("/api/hub")
        assert r.status_code == 200 and r.json()["participants"] == [], r.text
        r = wallet.post("/api/join", json={})
        assert r.status_code == 404 and error_code(r) == "3002"
        assert wallet.get("/api/qrs").json() == {"qrs": []}
        with open_events(wallet) as response:
            kind, hello = Events(response).next()
        assert kind == "hello" and hello["wire"] == []
