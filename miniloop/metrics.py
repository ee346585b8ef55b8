"""Prometheus metrics: a small registry, rendered in the text exposition format 0.0.4.

Why hand-rolled rather than prometheus_client:

- small: counters, gauges and histograms with labels, plus the text format, fit in this file;
  miniloop needs nothing else (no push gateway, no multiprocess mode, no OpenMetrics);
- no dependency: one less package to install, pin and audit for a teaching hub;
- one registry per Hub, not a process-wide global, so a test process may run several hubs;
- a cheap hot path: a labelled series is looked up once and kept (`labels()` returns its cell),
  so what a request or a batch pays is an attribute increment, or a `bisect` and two additions
  for a histogram; no lock (everything that records runs on the event loop), no label dicts;
- values that already exist elsewhere (the writer's, the notifier's and the event bus's
  counters, positions and limits in the ledger) are read by *collectors* when /metrics is
  scraped, so the code paths that keep them pay nothing at all.

docs/metrics.md lists every metric the hub exposes.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import re
import resource
import sys
import time
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# HTTP latency: 0.5 ms ... 5 s
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# commands per ledger transaction: 1 ... BATCH_MAX (256)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")

Number = int | float
LabelValues = tuple[str, ...]
# what a metric's `fn` returns at scrape time: one value (no labels) or a value per label values
Reading = Number | None | Mapping[LabelValues, Number]
Collector = Callable[[], Awaitable[None] | None]


def format_value(value: Number) -> str:
    """A sample value as the text format writes it (Go's ParseFloat reads all of these)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(names: Sequence[str], values: Sequence[str]) -> str:
    if not names:
        return ""
    return "{" + ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values)) + "}"


class Value:
    """One series of a counter or gauge: `cell.value += 1` is all recording costs."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: Number = 0

    def inc(self, amount: Number = 1) -> None:
        self.value += amount

    def set(self, value: Number) -> None:
        self.value = value


class HistogramCell:
    """One series of a histogram: a count per bucket (not cumulative until rendered) and a sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum: Number = 0

    def observe(self, value: Number) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: a value equal to a bound is in it
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)


class Metric:
    """A metric family: a name, a help text, label names, and one cell per label values."""

    type: ClassVar[str]

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), *,
                 fn: Callable[[], Reading] | None = None) -> None:
        if not _NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labels:
            if not _LABEL.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r}")
        if len(set(labels)) != len(labels):
            raise ValueError(f"repeated label name in {labels!r}")
        self.name = name
        self.help = help
        self.label_names = tuple(labels)
        self.fn = fn  # read at scrape time instead of the cells, for values kept elsewhere
        self._cells: dict[LabelValues, Any] = {}

    def _new_cell(self) -> Any:
        return Value()

    def labels(self, *values: Any) -> Any:
        """The cell of these label values (created at 0 the first time); keep it to record cheaply."""
        key = tuple(str(v) for v in values)
        cell = self._cells.get(key)
        if cell is None:
            if len(key) != len(self.label_names):
                raise ValueError(f"{self.name} has labels {self.label_names}, got {key!r}")
            cell = self._cells[key] = self._new_cell()
        return cell

    def clear(self) -> None:
        self._cells.clear()

    def _readings(self) -> Iterable[tuple[LabelValues, Any]]:
        if self.fn is None:
            return list(self._cells.items())
        reading = self.fn()
        if reading is None:
            return []
        if isinstance(reading, Mapping):
            return [(tuple(str(v) for v in k), _fixed(v)) for k, v in reading.items()]
        return [((), _fixed(reading))]

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {escape_help(self.help)}")
        out.append(f"# TYPE {self.name} {self.type}")
        for key, cell in sorted(self._readings(), key=lambda item: item[0]):
            out.append(f"{self.name}{_label_text(self.label_names, key)} {format_value(cell.value)}")


def _fixed(number: Number) -> Value:
    cell = Value()
    cell.value = number
    return cell


class Counter(Metric):
    """Only goes up (or is read at scrape time from a counter kept elsewhere, with `fn`)."""

    type = "counter"

    def inc(self, *label_values: Any, amount: Number = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.labels(*label_values).value += amount


class Gauge(Metric):
    """A value that goes up and down."""

    type = "gauge"

    def set(self, value: Number, *label_values: Any) -> None:
        self.labels(*label_values).value = value

    def replace(self, values: Mapping[LabelValues, Number]) -> None:
        """Exactly these series from now on (for gauges a collector refills at each scrape)."""
        self._cells = {tuple(str(v) for v in key): _fixed(value) for key, value in values.items()}


class Histogram(Metric):
    """Counts of observations in cumulative `le` buckets, with their `_sum` and `_count`."""

    type = "histogram"

    def __init__(self, name: str, help: str, labels: Sequence[str] = (), *,
                 buckets: Sequence[Number] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help, labels)
        if "le" in self.label_names:
            raise ValueError("a histogram cannot have a label named le")
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError("histogram buckets must be increasing")
        self.bounds = bounds
        self._le = [format_value(b) for b in bounds] + ["+Inf"]

    def _new_cell(self) -> HistogramCell:
        return HistogramCell(self.bounds)

    def observe(self, value: Number, *label_values: Any) -> None:
        self.labels(*label_values).observe(value)

    def render(self, out: list[str]) -> None:
        out.append(f"# HELP {self.name} {escape_help(self.help)}")
        out.append(f"# TYPE {self.name} histogram")
        names = self.label_names
        for key, cell in sorted(self._cells.items(), key=lambda item: item[0]):
            counts, total = list(cell.counts), cell.sum  # one consistent copy
            running = 0
            for le, n in zip(self._le, counts):
                running += n
                out.append(f"{self.name}_bucket{_label_text((*names, 'le'), (*key, le))} {running}")
            labels = _label_text(names, key)
            out.append(f"{self.name}_sum{labels} {format_value(total)}")
            out.append(f"{self.name}_count{labels} {running}")


class Registry:
    """The metrics of one hub, and the collectors that refresh some of them at scrape time."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}
        self._collectors: list[Collector] = []

    def register(self, metric: Metric) -> Any:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labels: Sequence[str] = (), *,
                fn: Callable[[], Reading] | None = None) -> Counter:
        return self.register(Counter(name, help, labels, fn=fn))

    def gauge(self, name: str, help: str, labels: Sequence[str] = (), *,
              fn: Callable[[], Reading] | None = None) -> Gauge:
        return self.register(Gauge(name, help, labels, fn=fn))

    def histogram(self, name: str, help: str, labels: Sequence[str] = (), *,
                  buckets: Sequence[Number] = LATENCY_BUCKETS) -> Histogram:
        return self.register(Histogram(name, help, labels, buckets=buckets))

    def add_collector(self, collector: Collector) -> None:
        """Run `collector()` (sync or async) before each rendering, to refresh metrics from elsewhere."""
        self._collectors.append(collector)

    def get(self, name: str) -> Metric:
        return self._metrics[name]

    async def scrape(self) -> str:
        """Run the collectors, then render. A collector that fails leaves its metrics as they were."""
        for collector in self._collectors:
            try:
                result = collector()
                if inspect.isawaitable(result):
                    await result
            except Exception:  # the ledger is closing, or a bug: the rest of /metrics still answers
                log.warning("metrics collector %r failed", collector, exc_info=True)
        return self.render()

    def render(self) -> str:
        out: list[str] = []
        for metric in self._metrics.values():
            try:
                metric.render(out)
            except Exception:
                log.warning("rendering metric %s failed", metric.name, exc_info=True)
        out.append("")
        return "\n".join(out)


# --------------------------------------------------------------------------- the process


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_SIZE = resource.getpagesize()


def process_cpu_seconds() -> float:
    """User + system CPU time of this process (every thread)."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()  # the name may hold spaces
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime (fields 14, 15)
        except (OSError, ValueError, IndexError):
            pass
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_resident_bytes() -> int:
    """Resident memory now (Linux); elsewhere the peak, which is what `resource` knows."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/self/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE_SIZE
        except (OSError, ValueError, IndexError):
            pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


# --------------------------------------------------------------------------- the hub's metrics


FINAL_TRANSFER_STATES = ("COMMITTED", "ABORTED_REJECTED", "ABORTED_ERROR", "EXPIRED_PREPARED",
                         "EXPIRED_RESERVED", "INVALID")
_POSITIONS_SQL = (
    "SELECT p.name, a.currency, pos.value, l.value AS ndc FROM account a "
    "JOIN participant p ON p.id = a.participant_id JOIN position pos ON pos.account_id = a.id "
    "LEFT JOIN participant_limit l ON l.account_id = a.id AND l.limit_type = 'NET_DEBIT_CAP' "
    "WHERE a.ledger_account_type_id = 1"  # POSITION accounts
)
_UNITS_PER_MAJOR = 10_000  # miniloop.money.UNITS_PER_MAJOR; ledger amounts are integer units


class HubMetrics:
    """Every metric of one hub, in one registry.

    Recorded as things happen (cheaply): HTTP requests (miniloop.api.common.serve_metrics),
    transfers reaching a final state (`count_events`, from `Hub._publish`), ledger batch sizes
    (`on_batch`, the writer's hook). Read at scrape time (`watch`): positions and limits from
    the ledger, the notifier's and the event bus's counters, the process's CPU and memory.
    """

    def __init__(self) -> None:
        self.registry = r = Registry()
        self.http_requests = r.counter(
            "miniloop_http_requests_total", "HTTP requests answered, by server, method, route pattern and status.",
            ("server", "method", "route", "status"))
        self.http_duration = r.histogram(
            "miniloop_http_request_duration_seconds",
            "Time from the end of the request's headers to the end of its answer, in seconds.",
            ("server", "method", "route"), buckets=LATENCY_BUCKETS)
        self.transfers = r.counter(
            "miniloop_transfers_total", "Transfers that reached a final state, by that state.", ("state",))
        self._final = {f"transfer.{state}": self.transfers.labels(state) for state in FINAL_TRANSFER_STATES}
        self.batch_size = r.histogram(
            "miniloop_ledger_batch_size", "Commands applied in one ledger transaction (group commit).",
            buckets=BATCH_BUCKETS)
        self.on_batch: Callable[[int], None] = self.batch_size.labels().observe
        self.start_time = time.time()
        r.gauge("miniloop_start_time_seconds", "When the hub started, in seconds since the Unix epoch.",
                fn=lambda: self.start_time)
        r.gauge("process_resident_memory_bytes", "Resident memory size of the hub process, in bytes.",
                fn=process_resident_bytes)
        r.counter("process_cpu_seconds_total", "User and system CPU time of the hub process, in seconds.",
                  fn=process_cpu_seconds)
        self.position = r.gauge(
            "miniloop_position", "Position of each participant's POSITION account (read from the ledger).",
            ("participant", "currency"))
        self.net_debit_cap = r.gauge(
            "miniloop_net_debit_cap", "Net Debit Cap of each participant and currency (read from the ledger).",
            ("participant", "currency"))

    def count_events(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """A committed batch of ledger events: count the transfers that reached a final state."""
        final = self._final
        for _, event in events:
            cell = final.get(event.get("type"))
            if cell is not None:
                cell.value += 1

    def watch(self, hub: Any) -> None:
        """Read the hub's own counters and its ledger at scrape time (`hub` is a miniloop.app.Hub;
        its parts are looked up at each scrape, so a part that is stopped just goes missing)."""
        r = self.registry

        def part(attribute: str, name: str) -> Callable[[], Number | None]:
            def read() -> Number | None:
                obj = getattr(hub, attribute, None)
                return None if obj is None else getattr(obj, name)
            return read

        r.counter("miniloop_callbacks_sent_total", "Callbacks the hub delivered to DFSPs (answered 2xx).",
                  fn=part("notifier", "sent"))
        r.counter("miniloop_callbacks_failed_total", "Callbacks the hub gave up delivering after its retries.",
                  fn=part("notifier", "failed"))
        r.gauge("miniloop_outbox_pending", "Callbacks committed but not yet delivered (queued or in flight).",
                fn=part("notifier", "pending"))
        r.counter("miniloop_events_published_total", "Events published on NATS.", fn=part("bus", "published"))
        r.counter("miniloop_events_dropped_total", "Events dropped (NATS unreachable, or the queue full).",
                  fn=part("bus", "dropped"))

        async def positions() -> None:
            ledger = getattr(hub, "ledger", None)
            if ledger is None:
                return
            rows = await ledger.fetch_all(_POSITIONS_SQL)
            self.position.replace({(row[0], row[1]): _major(row[2]) for row in rows})
            self.net_debit_cap.replace({(row[0], row[1]): _major(row[3]) for row in rows if row[3] is not None})

        r.add_collector(positions)

    async def scrape(self) -> str:
        return await self.registry.scrape()


def _major(units: int) -> Number:
    """Ledger units -> currency units: an int when whole (exact), else a float."""
    whole, rest = divmod(units, _UNITS_PER_MAJOR)
    return whole if not rest else units / _UNITS_PER_MAJOR
