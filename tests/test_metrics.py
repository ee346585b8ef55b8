"""/metrics on every server: Prometheus text format 0.0.4, checked by a strict parser.

Over a real hub (subprocess, real HTTP): transfers counted by final state, request counts and
latency histograms by route pattern, positions and Net Debit Caps equal to what the Admin API
reports, callback counters. In process: the registry's rendering (escaping, cumulative buckets).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import pytest
from conftest import wait_until
from fspiop_dfsp import Scene, Transfer

from miniloop.metrics import CONTENT_TYPE, HubMetrics, Registry

TIMEOUT_S = 10.0
SERVERS = ("fspiop", "admin", "settlement", "als_admin", "sim")


# --------------------------------------------------------------------------- a strict parser

_HELP = re.compile(r"# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)\Z")
_TYPE = re.compile(r"# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)\Z")
_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?\Z")
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|\Z)')
_SUFFIXES = {"counter": ("",), "gauge": ("",), "untyped": ("",), "histogram": ("_bucket", "_sum", "_count"),
             "summary": ("", "_sum", "_count")}


@dataclass
class Family:
    name: str
    type: str
    help: str | None = None
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _labels(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    labels: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        m = _PAIR.match(text, pos)
        assert m, f"bad labels {text!r} at {pos}"
        name, raw = m.group(1), m.group(2)
        assert name not in labels, f"label {name} twice in {text!r}"
        labels[name] = re.sub(r"\\(.)", lambda e: {"n": "\n"}.get(e.group(1), e.group(1)), raw)
        pos = m.end()
    return labels


def _float(text: str) -> float:
    assert re.fullmatch(r"[+-]?(Inf|NaN|\d+(\.\d*)?([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)", text), text
    return float(text)


def parse(text: str) -> dict[str, Family]:
    """Prometheus text format 0.0.4, strictly: every sample belongs to a family whose TYPE came
    first, a family's lines are contiguous, no series twice, histograms complete and cumulative."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    families: dict[str, Family] = {}
    helps: dict[str, str] = {}
    current: Family | None = None
    closed: set[str] = set()
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for line in text[:-1].split("\n"):
        assert line.strip(), "no blank lines"
        if m := _HELP.match(line):
            assert m.group(1) not in helps, f"HELP twice for {m.group(1)}"
            helps[m.group(1)] = m.group(2)
            continue
        if m := _TYPE.match(line):
            name = m.group(1)
            assert name not in families, f"TYPE twice for {name}"
            if current is not None:
                closed.add(current.name)
            current = families[name] = Family(name, m.group(2), helps.get(name))
            continue
        assert not line.startswith("#"), f"unexpected comment {line!r}"
        m = _SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.group(1), _labels(m.group(2)), _float(m.group(3))
        assert current is not None, f"{name}: sample before any TYPE"
        assert any(name == current.name + s for s in _SUFFIXES[current.type]), (
            f"sample {name} does not belong to the family being written ({current.name}, {current.type})")
        assert current.name not in closed
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"series {key} twice"
        seen.add(key)
        if current.type == "counter" or name.endswith(("_count", "_bucket")):
            assert value >= 0, line
        current.samples.append((name, labels, value))
    for family in families.values():
        assert family.help is not None, f"{family.name} has no HELP"
        if family.type == "histogram":
            _check_histogram(family)
    return families


def _check_histogram(family: Family) -> None:
    groups: dict[tuple[tuple[str, str], ...], dict[str, list[tuple[dict[str, str], float]]]] = {}
    for name, labels, value in family.samples:
        rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        suffix = name[len(family.name):]
        if suffix == "_bucket":
            assert "le" in labels, f"{name} without le"
        else:
            assert "le" not in labels, f"{name} with le"
        groups.setdefault(rest, {}).setdefault(suffix, []).append((labels, value))
    for rest, parts in groups.items():
        buckets = parts.get("_bucket", [])
        assert buckets, f"{family.name}{rest}: no buckets"
        assert len(parts.get("_sum", [])) == 1 and len(parts.get("_count", [])) == 1, f"{family.name}{rest}"
        bounds = [_float(labels["le"]) for labels, _ in buckets]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), f"{family.name}{rest}: le order"
        assert bounds[-1] == math.inf, f"{family.name}{rest}: the last bucket is not +Inf"
        counts = [value for _, value in buckets]
        assert counts == sorted(counts), f"{family.name}{rest}: buckets not cumulative {counts}"
        assert counts[-1] == parts["_count"][0][1], f"{family.name}{rest}: +Inf bucket != _count"


def value(families: dict[str, Family], sample: str, **labels: str) -> float | None:
    """The value of the one sample named `sample` whose labels include `labels` (None if absent)."""
    family = families.get(sample) or families.get(re.sub(r"_(bucket|sum|count)\Z", "", sample))
    if family is None:
        return None
    found = [v for name, lab, v in family.samples
             if name == sample and all(lab.get(k) == want for k, want in labels.items())]
    assert len(found) <= 1, f"{sample}{labels} matches {len(found)} series"
    return found[0] if found else None


def total(families: dict[str, Family], sample: str, **labels: str) -> float:
    """The sum over every series of `sample` whose labels include `labels`."""
    family = families.get(sample) or families[re.sub(r"_(bucket|sum|count)\Z", "", sample)]
    return sum(v for name, lab, v in family.samples
               if name == sample and all(lab.get(k) == want for k, want in labels.items()))


def root_url(scene_or_hub: object, server: str) -> str:
    hub = getattr(scene_or_hub, "hub", scene_or_hub)
    url = hub.urls[server]  # type: ignore[attr-defined]
    return url.removesuffix("/v2")  # the settlement API's base; /health and /metrics are at the root


def scrape(scene: Scene, server: str = "fspiop") -> dict[str, Family]:
    r = httpx.get(root_url(scene, server) + "/metrics", timeout=TIMEOUT_S)  # no FSPIOP headers
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == CONTENT_TYPE
    return parse(r.text)


# --------------------------------------------------------------------------- over a real hub


def test_transfers_requests_positions_and_callbacks(scene: Scene) -> None:
    payer, payee = scene.dfsp("mpayer"), scene.dfsp("mpayee")
    before = scrape(scene)
    states = ("COMMITTED", "ABORTED_REJECTED", "ABORTED_ERROR")
    count_before = {s: value(before, "miniloop_transfers_total", state=s) or 0 for s in states}
    posts_before = total(before, "miniloop_http_requests_total", server="fspiop", method="POST", route="/transfers")

    committed = scene.commit(Transfer(payer, payee, amount="10"))
    assert committed.body["transferState"] == "COMMITTED"

    refused = Transfer(payer, payee, amount="20000")  # above the payer's 10000 of liquidity: 4001
    mark = scene.dfsps.mark(payer)
    assert scene.prepare(refused).status_code == 202
    assert scene.dfsps.error_callback(payer, refused.path, since=mark).error_code == "4001"

    rejected = Transfer(payer, payee, amount="5")  # the payee says no: ABORTED_ERROR
    scene.reserve(rejected)
    mark = scene.dfsps.mark(payer)
    assert scene.reject(rejected).status_code == 200
    scene.dfsps.error_callback(payer, rejected.path, since=mark)

    def counted() -> dict[str, Family] | None:
        now = scrape(scene)
        done = all((value(now, "miniloop_transfers_total", state=s) or 0) - count_before[s] >= 1 for s in states)
        return now if done else None

    m = wait_until(counted, TIMEOUT_S, what="the three transfers in miniloop_transfers_total")
    for state in states:
        assert value(m, "miniloop_transfers_total", state=state) == count_before[state] + 1, state
    for state in ("EXPIRED_PREPARED", "EXPIRED_RESERVED", "INVALID"):  # every final state is there from the start
        assert value(m, "miniloop_transfers_total", state=state) is not None, state
    assert value(m, "miniloop_transfers_total", state="RESERVED") is None  # not a final state

    # three POST /transfers, all 202, labelled with the route, never the path
    posts = total(m, "miniloop_http_requests_total", server="fspiop", method="POST", route="/transfers")
    assert posts - posts_before == 3
    assert value(m, "miniloop_http_requests_total", server="fspiop", method="POST", route="/transfers",
                 status="202") == posts
    assert value(m, "miniloop_http_request_duration_seconds_count", server="fspiop", method="POST",
                 route="/transfers") == posts
    assert (value(m, "miniloop_http_request_duration_seconds_sum", server="fspiop", method="POST",
                  route="/transfers") or 0) > 0
    puts = value(m, "miniloop_http_requests_total", server="fspiop", method="PUT",
                 route="/transfers/<transfer_id>", status="200")
    assert puts is not None and puts >= 1
    routes = {lab["route"] for _, lab, _ in m["miniloop_http_requests_total"].samples}
    assert not any(committed.path.split("/")[-1] in route for route in routes), routes

    # positions and limits as the Admin API reports them
    for name in (payer, payee):
        r = scene.hub.admin.get(f"/participants/{name}/positions", params={"currency": "USD"})
        assert r.status_code == 200, r.text
        assert Decimal(str(value(m, "miniloop_position", participant=name, currency="USD"))) == \
            Decimal(str(r.json()["value"])), name
        r = scene.hub.admin.get(f"/participants/{name}/limits", params={"currency": "USD"})
        assert r.status_code == 200, r.text
        (limit,) = r.json()
        assert value(m, "miniloop_net_debit_cap", participant=name, currency="USD") == limit["limit"]["value"]
    assert value(m, "miniloop_position", participant=payer, currency="USD") == 10
    assert value(m, "miniloop_position", participant=payee, currency="USD") == -10

    # the hub's own counters, read at scrape time
    assert (value(m, "miniloop_callbacks_sent_total") or 0) > 0
    assert value(m, "miniloop_callbacks_failed_total") is not None
    assert value(m, "miniloop_outbox_pending") is not None
    assert (value(m, "miniloop_events_published_total") or 0) + (value(m, "miniloop_events_dropped_total") or 0) > 0
    assert (value(m, "miniloop_ledger_batch_size_count") or 0) > 0
    assert (value(m, "miniloop_ledger_batch_size_sum") or 0) >= value(m, "miniloop_ledger_batch_size_count")
    assert (value(m, "process_resident_memory_bytes") or 0) > 1_000_000
    assert (value(m, "process_cpu_seconds_total") or 0) > 0
    assert 1.6e9 < (value(m, "miniloop_start_time_seconds") or 0) <= time.time()


@pytest.mark.parametrize("server", SERVERS)
def test_every_server_answers_metrics(scene: Scene, server: str) -> None:
    """GET /metrics answers 200 in the 0.0.4 text format on every port, with no FSPIOP headers;
    each server's own requests carry its `server` label (the scrape itself is counted once answered)."""
    scrape(scene, server)
    m = scrape(scene, server)
    assert (value(m, "miniloop_http_requests_total", server=server, method="GET", route="/metrics",
                  status="200") or 0) >= 1
    for name in ("miniloop_transfers_total", "miniloop_http_request_duration_seconds", "miniloop_position",
                 "miniloop_callbacks_sent_total", "process_cpu_seconds_total"):
        assert name in m, name


def test_paths_no_route_matches_are_one_series(scene: Scene) -> None:
    """404s and 405s are counted under route="unmatched", whatever the path, so a scan of random
    paths cannot blow up the number of series."""
    url = root_url(scene, "fspiop")
    m = scrape(scene)
    before = total(m, "miniloop_http_requests_total", route="unmatched", status="404")
    before_405 = total(m, "miniloop_http_requests_total", route="unmatched", status="405")
    for path in ("/nope/1", "/nope/2", "/transfers/x/y/z"):
        assert httpx.get(url + path, timeout=TIMEOUT_S).status_code == 404
    assert httpx.delete(url + "/transfers", timeout=TIMEOUT_S).status_code == 405
    m = scrape(scene)
    assert total(m, "miniloop_http_requests_total", server="fspiop", route="unmatched", status="404") - before == 3
    assert total(m, "miniloop_http_requests_total", server="fspiop", route="unmatched", status="405") - before_405 == 1
    assert value(m, "miniloop_http_request_duration_seconds_count", server="fspiop", method="GET",
                 route="unmatched") == total(m, "miniloop_http_requests_total", server="fspiop", method="GET",
                                             route="unmatched")
    routes = {lab["route"] for _, lab, _ in m["miniloop_http_requests_total"].samples}
    assert not any("nope" in route for route in routes), routes


def test_a_refused_request_is_counted_with_its_status(scene: Scene) -> None:
    """A request its handler refuses (here: no FSPIOP headers, 400) is counted under its route and
    the status it got."""
    url = root_url(scene, "fspiop")
    m = scrape(scene)
    before = total(m, "miniloop_http_requests_total", server="fspiop", method="POST", route="/quotes",
                   status="400")
    r = httpx.post(url + "/quotes", content=b"{}", timeout=TIMEOUT_S)
    assert r.status_code == 400, r.text
    m = scrape(scene)
    assert total(m, "miniloop_http_requests_total", server="fspiop", method="POST", route="/quotes",
                 status="400") == before + 1


# --------------------------------------------------------------------------- in process


def test_registry_renders_the_text_format() -> None:
    r = Registry()
    c = r.counter("demo_things_total", "Things.\nSecond line with a \\ backslash.", ("kind",))
    c.inc("a")
    c.inc('we"ird\\\nvalue', amount=2)
    g = r.gauge("demo_level", "A level.")
    g.set(1.5)
    h = r.histogram("demo_seconds", "Durations.", ("op",), buckets=(0.1, 1, 10))
    cell = h.labels("x")
    for v in (0.05, 0.1, 0.5, 20):
        cell.observe(v)
    r.counter("demo_read_total", "Read at scrape time.", fn=lambda: 7)
    r.gauge("demo_missing", "Nothing to read.", fn=lambda: None)
    text = r.render()
    assert text == (
        "# HELP demo_things_total Things.\\nSecond line with a \\\\ backslash.\n"
        "# TYPE demo_things_total counter\n"
        'demo_things_total{kind="a"} 1\n'
        'demo_things_total{kind="we\\"ird\\\\\\nvalue"} 2\n'
        "# HELP demo_level A level.\n"
        "# TYPE demo_level gauge\n"
        "demo_level 1.5\n"
        "# HELP demo_seconds Durations.\n"
        "# TYPE demo_seconds histogram\n"
        'demo_seconds_bucket{op="x",le="0.1"} 2\n'
        'demo_seconds_bucket{op="x",le="1.0"} 3\n'
        'demo_seconds_bucket{op="x",le="10.0"} 3\n'
        'demo_seconds_bucket{op="x",le="+Inf"} 4\n'
        'demo_seconds_sum{op="x"} 20.65\n'
        'demo_seconds_count{op="x"} 4\n'
        "# HELP demo_read_total Read at scrape time.\n"
        "# TYPE demo_read_total counter\n"
        "demo_read_total 7\n"
        "# HELP demo_missing Nothing to read.\n"
        "# TYPE demo_missing gauge\n"
    )
    families = parse(text)
    assert value(families, "demo_things_total", kind='we"ird\\\nvalue') == 2


def test_registry_refuses_what_prometheus_would_not_read() -> None:
    r = Registry()
    r.counter("ok_total", "ok")
    with pytest.raises(ValueError):
        r.counter("ok_total", "twice")
    with pytest.raises(ValueError):
        r.gauge("bad-name", "x")
    with pytest.raises(ValueError):
        r.gauge("x", "x", ("__reserved",))
    with pytest.raises(ValueError):
        r.histogram("h", "x", ("le",))
    with pytest.raises(ValueError):
        r.histogram("h2", "x", buckets=(1, 1, 2))
    with pytest.raises(ValueError):
        r.counter("c_total", "x", ("a",)).labels("1", "2")
    with pytest.raises(ValueError):
        r.get("ok_total").inc(amount=-1)  # type: ignore[attr-defined]


def test_each_hub_has_its_own_registry_and_a_failing_collector_spoils_nothing() -> None:
    one, two = HubMetrics(), HubMetrics()
    one.count_events([("ml.event.transfer.t1.COMMITTED", {"type": "transfer.COMMITTED", "state": "COMMITTED"}),
                      ("ml.event.transfer.t2.RESERVED", {"type": "transfer.RESERVED", "state": "RESERVED"}),
                      ("ml.event.transfer.t3.ABORTED_REJECTED", {"type": "transfer.fundsOutRejected"}),
                      ("ml.event.participant.p.created", {"type": "participant.created"})])
    one.on_batch(3)

    class Broken:
        @property
        def ledger(self) -> object:
            raise RuntimeError("the ledger is closing")

    two.watch(Broken())
    m1, m2 = parse(asyncio.run(one.scrape())), parse(asyncio.run(two.scrape()))
    assert value(m1, "miniloop_transfers_total", state="COMMITTED") == 1
    assert total(m1, "miniloop_transfers_total") == 1  # neither RESERVED nor a refused funds-out
    assert value(m1, "miniloop_ledger_batch_size_bucket", le="4.0") == 1
    assert value(m1, "miniloop_ledger_batch_size_bucket", le="2.0") == 0
    assert value(m2, "miniloop_transfers_total", state="COMMITTED") == 0
    assert "miniloop_callbacks_sent_total" in m2 and value(m2, "miniloop_callbacks_sent_total") is None
