"""A test DFSP: the other side of the FSPIOP API, for conformance tests over real HTTP.

Why: a DFSP only ever sees a hub through two doors, the requests it sends to the FSPIOP port and
the callbacks the hub sends to the endpoints it registered. Testing the switch the way a DFSP
sees it means standing on that side: one small HTTP server that plays any number of DFSPs (each
under its own path prefix `/<name>/...`), records every callback it gets and answers at once
(200 for PUT/PATCH, 202 otherwise), plus a client that sends well-formed FSPIOP requests whose
headers a test can drop or spoil one at a time.

Everything here is bounded: `wait_for` polls with a deadline, the server runs in a daemon thread
and is shut down by `close()`, and every HTTP call has a timeout.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx
import nats

from miniloop.fspiop.endpoints import for_base_url

CALLBACK_TIMEOUT_S = 10.0
POLL_S = 0.02
HTTP_TIMEOUT_S = 10.0
HUB = "Hub"


# --------------------------------------------------------------------------- what the DFSP received


@dataclass(frozen=True)
class Received:
    """One request the hub sent to a test DFSP."""

    dfsp: str
    method: str
    path: str  # after the /<dfsp> prefix, without the query string, e.g. /transfers/<id>/error
    query: str
    headers: dict[str, str]  # names lowercased
    raw: bytes
    body: Any  # parsed JSON, or None when the body is empty or not JSON
    at: float  # time.monotonic() at arrival

    @property
    def source(self) -> str | None:
        return self.headers.get("fspiop-source")

    @property
    def destination(self) -> str | None:
        return self.headers.get("fspiop-destination")

    @property
    def error_code(self) -> str | None:
        """errorInformation.errorCode of an error callback (None for anything else)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("errorInformation"), dict):
            return self.body["errorInformation"].get("errorCode")
        return None

    @property
    def error_description(self) -> str:
        if self.error_code is None:
            return ""
        return str(self.body["errorInformation"].get("errorDescription", ""))

    def __str__(self) -> str:
        return f"{self.method} /{self.dfsp}{self.path} from {self.source} to {self.destination}: {self.raw[:300]!r}"


PathMatch = str | Callable[[str], bool]


def _path_matches(path: str, match: PathMatch, exact: bool) -> bool:
    if callable(match):
        return bool(match(path))
    return path == match if exact else path.startswith(match)


class _Handler(BaseHTTPRequestHandler):
    server: _RecordingServer
    protocol_version = "HTTP/1.0"  # one request per connection: simple and never stuck on keep-alive

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        _, _, rest = split.path.partition("/")  # "/<dfsp>/transfers/x" -> "<dfsp>/transfers/x"
        dfsp, _, sub = rest.partition("/")
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.server.record(Received(
            dfsp=dfsp, method=self.command, path="/" + sub, query=split.query,
            headers={k.lower(): v for k, v in self.headers.items()}, raw=raw, body=body, at=time.monotonic(),
        ))
        status = 200 if self.command in ("PUT", "PATCH") else 202
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # keep pytest output clean; the recording is the log


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[Received] = []

    def record(self, request: Received) -> None:
        with self.lock:
            self.requests.append(request)


class TestDfsps:
    """One HTTP server that plays every test DFSP of a module, each under `/<name>`."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self._server = _RecordingServer()
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="test-dfsps", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> TestDfsps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- onboarding

    def base_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def register(self, hub: Any, name: str) -> None:
        """Post every FSPIOP callback endpoint of `name` (pointing at this server) via the Admin API."""
        for endpoint_type, value in for_base_url(self.base_url(name)).items():
            r = hub.admin.post(f"/participants/{name}/endpoints", json={"type": endpoint_type, "value": value})
            assert r.status_code == 201, r.text

    # ---------------------------------------------------------------- what arrived

    def received(self, name: str) -> list[Received]:
        with self._server.lock:
            return [r for r in self._server.requests if r.dfsp == name]

    def mark(self, name: str) -> int:
        """How many requests `name` has received so far: pass as `since=` to wait for newer ones."""
        return len(self.received(name))

    def find(self, name: str, method: str, path: PathMatch, *, since: int = 0, exact: bool = False,
             where: Callable[[Received], bool] | None = None) -> Received | None:
        for request in self.received(name)[since:]:
            if request.method != method or not _path_matches(request.path, path, exact):
                continue
            if where is None or where(request):
                return request
        return None

    def wait_for(self, name: str, method: str, path: PathMatch, timeout: float = CALLBACK_TIMEOUT_S, *,
                 since: int = 0, exact: bool = False, where: Callable[[Received], bool] | None = None) -> Received:
        """The first request to `name` with `method` whose path starts with `path` (or equals it with
        exact=True, or satisfies it when it is a function), received at index `since` or later.
        Polls until `timeout`, then fails listing what did arrive."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.find(name, method, path, since=since, exact=exact, where=where)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                got = "\n  ".join(str(r) for r in self.received(name)[since:]) or "(nothing)"
                raise AssertionError(f"{name} got no {method} {path} in {timeout} s; it got:\n  {got}")
            time.sleep(POLL_S)

    def callback(self, name: str, path: str, *, since: int = 0, timeout: float = CALLBACK_TIMEOUT_S) -> Received:
        """The success callback `PUT <path>` (exactly that path, not .../error)."""
        return self.wait_for(name, "PUT", path, timeout, since=since, exact=True)

    def error_callback(self, name: str, path: str, *, since: int = 0,
                       timeout: float = CALLBACK_TIMEOUT_S) -> Received:
        """The error callback `PUT <path>/error`."""
        return self.wait_for(name, "PUT", path + "/error", timeout, since=since, exact=True)

    def answer(self, name: str, path: str, *, since: int = 0, timeout: float = CALLBACK_TIMEOUT_S) -> Received:
        """Whichever comes first: `PUT <path>` or `PUT <path>/error`."""
        return self.wait_for(name, "PUT", lambda p: p in (path, path + "/error"), timeout, since=since)


_MEDIA_TYPE = r"application/vnd\.interoperability\.{res}\+json"
_IMF_FIXDATE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                          r"\d{4} \d\d:\d\d:\d\d GMT$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


def trace_id(request: Received) -> str | None:
    """The trace id of the W3C traceparent a callback carries (None without one)."""
    match = _TRACEPARENT.match(request.headers.get("traceparent", ""))
    return match.group(1) if match else None


def assert_no_bad_accept(request: Received) -> None:
    """A callback needs no Accept; if it has one, it must be one the hub itself would accept,
    since a DFSP that checks headers the same way answers 400/3101 to anything else."""
    accept = request.headers.get("accept")
    media = _MEDIA_TYPE.format(res=request.path.lstrip("/").split("/", 1)[0])
    assert accept is None or re.fullmatch(media + r"(;version=\d+(\.\d+)?)?", accept.replace(" ", "")), (
        f"Accept {accept!r} on {request}")


def assert_hub_originated(request: Received, to: str, version: str | None = None) -> None:
    """A message the hub itself sent (an error, a GET answer, a PATCH, an ALS callback) carries the
    headers a DFSP needs to check and route it: FSPIOP-Source Hub, FSPIOP-Destination the receiver,
    an IMF-fixdate Date, an FSPIOP Content-Type for the resource (with `version` when given),
    FSPIOP-URI and FSPIOP-HTTP-Method of the callback itself, and a traceparent. (Accept is
    checked apart, by `assert_no_bad_accept`.)"""
    h = request.headers
    resource = request.path.lstrip("/").split("/", 1)[0]
    assert h.get("fspiop-source") == HUB, request
    assert h.get("fspiop-destination") == to, request
    assert _IMF_FIXDATE.match(h.get("date", "")), f"bad Date {h.get('date')!r} on {request}"
    media = _MEDIA_TYPE.format(res=resource)
    content_type = h.get("content-type", "").replace(" ", "")
    assert re.fullmatch(media + r";version=\d+\.\d+", content_type), f"bad Content-Type {content_type!r}"
    if version is not None:
        assert content_type.endswith(f";version={version}"), f"Content-Type {content_type!r}, not version {version}"
    assert h.get("fspiop-uri") == request.path, f"FSPIOP-URI {h.get('fspiop-uri')!r} on {request}"
    assert h.get("fspiop-http-method") == request.method, f"FSPIOP-HTTP-Method {h.get('fspiop-http-method')!r}"
    assert trace_id(request) is not None, f"no traceparent on {request}"


# --------------------------------------------------------------------------- sending to the hub


def imf_date(when: float | None = None) -> str:
    """An RFC 7231 IMF-fixdate, e.g. `Tue, 15 Nov 1994 08:12:31 GMT`."""
    return formatdate(when, usegmt=True)


def resource_of(path: str) -> str:
    """The FSPIOP resource of a path: `/transfers/x/error` -> `transfers`."""
    return path.lstrip("/").split("/", 1)[0].split("?", 1)[0]


class FspiopClient:
    """Sends FSPIOP requests to a hub's FSPIOP port with correct headers, any of which a test may
    drop (`drop=("date",)`) or override (`headers={"accept": "text/plain"}`, a value of None drops)."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=HTTP_TIMEOUT_S)
        del self._http.headers["accept"]  # httpx's default `*/*`: a dropped Accept must really be missing

    def close(self) -> None:
        self._http.close()

    def headers_for(self, method: str, path: str, source: str | None, destination: str | None = None, *,
                    version: str = "1.1", accept_version: str | None = "1", resource: str | None = None,
                    drop: tuple[str, ...] = (), headers: dict[str, str | None] | None = None) -> dict[str, str]:
        res = resource or resource_of(path)
        built: dict[str, str | None] = {}
        if method in ("GET", "POST", "DELETE"):
            accept = f"application/vnd.interoperability.{res}+json"
            built["accept"] = accept + (f";version={accept_version}" if accept_version else "")
        if method in ("POST", "PUT", "PATCH"):
            built["content-type"] = f"application/vnd.interoperability.{res}+json;version={version}"
        built["date"] = imf_date()
        if source is not None:
            built["fspiop-source"] = source
        if destination is not None:
            built["fspiop-destination"] = destination
        for name in drop:
            built.pop(name.lower(), None)
        for name, value in (headers or {}).items():
            built[name.lower()] = value
        return {k: v for k, v in built.items() if v is not None}

    def send(self, method: str, path: str, source: str | None, destination: str | None = None,
             body: Any = None, *, content: bytes | None = None, **header_options: Any) -> httpx.Response:
        """One request; `body` is sent as compact JSON (the same dict gives the same bytes),
        `content` as raw bytes."""
        if content is None and body is not None:
            content = dumps(body)
        headers = self.headers_for(method, path, source, destination, **header_options)
        return self._http.request(method, path, headers=headers, content=content)

    def get(self, path: str, source: str | None, destination: str | None = None, **kw: Any) -> httpx.Response:
        return self.send("GET", path, source, destination, **kw)

    def post(self, path: str, source: str | None, destination: str | None, body: Any, **kw: Any) -> httpx.Response:
        return self.send("POST", path, source, destination, body, **kw)

    def put(self, path: str, source: str | None, destination: str | None, body: Any, **kw: Any) -> httpx.Response:
        return self.send("PUT", path, source, destination, body, **kw)


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def sync_error(response: httpx.Response) -> tuple[str, str]:
    """(errorCode, errorDescription) of a synchronous 4xx answer."""
    body = response.json()
    info = body["errorInformation"]
    return info["errorCode"], info["errorDescription"]


# --------------------------------------------------------------------------- bodies


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def iso_ms(when: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and Z, as FSPIOP DateTime wants: 2024-01-02T03:04:05.678Z."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso_ms(datetime.now(UTC))


def in_seconds(seconds: float) -> str:
    return iso_ms(datetime.now(UTC) + timedelta(seconds=seconds))


def new_id() -> str:
    return str(uuid.uuid4())


def new_msisdn() -> str:
    return "2547" + "".join(str(b % 10) for b in os.urandom(8))


def party(fsp: str, msisdn: str | None = None, id_type: str = "MSISDN") -> dict[str, Any]:
    return {"partyIdInfo": {"partyIdType": id_type, "partyIdentifier": msisdn or new_msisdn(), "fspId": fsp}}


def quote_body(payer: str, payee: str, amount: str = "10", currency: str = "USD", *,
               quote_id: str | None = None, transaction_id: str | None = None) -> dict[str, Any]:
    return {
        "quoteId": quote_id or new_id(),
        "transactionId": transaction_id or new_id(),
        "payee": party(payee),
        "payer": party(payer),
        "amountType": "SEND",
        "amount": {"amount": amount, "currency": currency},
        "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
        "note": "conformance test",
    }


@dataclass
class Secret:
    """A payee's fulfilment and the condition it hashes to (condition = b64url(sha256(fulfilment)))."""

    fulfilment_bytes: bytes = field(default_factory=lambda: os.urandom(32))

    @property
    def fulfilment(self) -> str:
        return b64url(self.fulfilment_bytes)

    @property
    def condition(self) -> str:
        return b64url(hashlib.sha256(self.fulfilment_bytes).digest())


def quote_response_body(amount: str = "10", currency: str = "USD", secret: Secret | None = None,
                        ilp_packet: str | None = None) -> dict[str, Any]:
    """The payee's `PUT /quotes/{ID}`."""
    secret = secret or Secret()
    return {
        "transferAmount": {"amount": amount, "currency": currency},
        "expiration": in_seconds(60),
        "ilpPacket": ilp_packet or b64url(os.urandom(48)),
        "condition": secret.condition,
    }


@dataclass
class Transfer:
    """A transfer a test is about to send: its POST body, and the fulfilment the payee keeps."""

    payer: str
    payee: str
    amount: str = "10"
    currency: str = "USD"
    expires_in: float = 60.0
    transfer_id: str = field(default_factory=new_id)
    secret: Secret = field(default_factory=Secret)
    ilp_packet: str = field(default_factory=lambda: b64url(os.urandom(48)))
    condition: str | None = None  # None: the secret's condition
    expiration: str = ""

    def __post_init__(self) -> None:
        if not self.expiration:
            self.expiration = in_seconds(self.expires_in)

    @property
    def id(self) -> str:
        return self.transfer_id

    @property
    def path(self) -> str:
        return f"/transfers/{self.transfer_id}"

    @property
    def body(self) -> dict[str, Any]:
        return {
            "transferId": self.transfer_id,
            "payerFsp": self.payer,
            "payeeFsp": self.payee,
            "amount": {"amount": self.amount, "currency": self.currency},
            "expiration": self.expiration,
            "ilpPacket": self.ilp_packet,
            "condition": self.condition or self.secret.condition,
        }

    def fulfil_body(self, state: str = "COMMITTED", *, fulfilment: str | None = None,
                    completed: str | None = None) -> dict[str, Any]:
        return fulfil_body(fulfilment or self.secret.fulfilment, state, completed)


def fulfil_body(fulfilment: str | None, state: str = "COMMITTED", completed: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if fulfilment is not None:
        body["fulfilment"] = fulfilment
    body["completedTimestamp"] = completed or now_iso()
    body["transferState"] = state
    return body


def error_body(code: str = "5100", description: str = "Generic Payee rejection - test") -> dict[str, Any]:
    return {"errorInformation": {"errorCode": code, "errorDescription": description}}


# --------------------------------------------------------------------------- a scene: a hub and DFSPs


class Scene:
    """A running hub, the test DFSP server and an FSPIOP client, with the steps most tests share."""

    def __init__(self, hub: Any, dfsps: TestDfsps) -> None:
        self.hub = hub
        self.dfsps = dfsps
        self.fspiop = FspiopClient(hub.urls["fspiop"])

    def close(self) -> None:
        self.fspiop.close()

    # ---------------------------------------------------------------- participants

    def dfsp(self, prefix: str = "dfsp", *, ndc: int = 10000, funds: int | None = 10000,
             currency: str = "USD", endpoints: bool = True) -> str:
        """A fresh, funded, active DFSP whose callbacks come to this module's test server."""
        name = f"{prefix}{uuid.uuid4().hex[:10]}"
        self.hub.onboard(name, currency=currency, ndc=ndc, funds=funds)
        if endpoints:
            self.dfsps.register(self.hub, name)
        return name

    def position(self, name: str, currency: str = "USD") -> Decimal:
        """The POSITION value, as the Admin API shows it (positive = owes the scheme)."""
        r = self.hub.admin.get(f"/participants/{name}/positions")
        assert r.status_code == 200, r.text
        (value,) = [p["value"] for p in r.json() if p["currency"] == currency]
        return Decimal(str(value))

    def account_id(self, name: str, account_type: str = "POSITION", currency: str = "USD") -> int:
        return self.hub.account_ids(name, currency)[account_type]

    def set_active(self, name: str, active: bool) -> None:
        r = self.hub.admin.put(f"/participants/{name}", json={"isActive": active})
        assert r.status_code == 200, r.text

    def set_account_active(self, name: str, account_id: int, active: bool) -> None:
        r = self.hub.admin.put(f"/participants/{name}/accounts/{account_id}", json={"isActive": active})
        assert r.status_code == 200, r.text

    def set_ndc(self, name: str, value: int | str, currency: str = "USD") -> None:
        r = self.hub.admin.put(f"/participants/{name}/limits", json={
            "currency": currency, "limit": {"type": "NET_DEBIT_CAP", "value": value, "alarmPercentage": 10},
        })
        assert r.status_code == 200, r.text

    # ---------------------------------------------------------------- transfers

    def prepare(self, transfer: Transfer, **kw: Any) -> httpx.Response:
        return self.fspiop.post("/transfers", transfer.payer, transfer.payee, transfer.body, **kw)

    def reserve(self, transfer: Transfer, **kw: Any) -> Received:
        """Prepare and wait until the payee got the forwarded POST /transfers (the amount is reserved)."""
        mark = self.dfsps.mark(transfer.payee)
        r = self.prepare(transfer, **kw)
        assert r.status_code == 202, r.text
        return self.dfsps.wait_for(transfer.payee, "POST", "/transfers", since=mark, exact=True,
                                   where=lambda req: (req.body or {}).get("transferId") == transfer.id)

    def fulfil(self, transfer: Transfer, body: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
        """The payee's PUT /transfers/{ID} (by default: COMMITTED with the right fulfilment)."""
        return self.fspiop.put(transfer.path, kw.pop("source", transfer.payee),
                               kw.pop("destination", transfer.payer), body or transfer.fulfil_body(), **kw)

    def reject(self, transfer: Transfer, body: dict[str, Any] | None = None) -> httpx.Response:
        """The payee's PUT /transfers/{ID}/error."""
        return self.fspiop.put(transfer.path + "/error", transfer.payee, transfer.payer, body or error_body())

    def commit(self, transfer: Transfer) -> Received:
        """Reserve, fulfil, and return the payer's PUT /transfers/{ID} callback."""
        self.reserve(transfer)
        mark = self.dfsps.mark(transfer.payer)
        r = self.fulfil(transfer)
        assert r.status_code == 200, r.text
        return self.dfsps.callback(transfer.payer, transfer.path, since=mark)

    def get_transfer(self, requester: str, transfer_id: str, *, error: bool = False,
                     timeout: float = CALLBACK_TIMEOUT_S) -> Received:
        """GET /transfers/{ID} as `requester` (202), then the hub's answer to it: the `PUT
        /transfers/{ID}` it originates (FSPIOP-Source Hub), or with error=True `PUT .../error`."""
        path = f"/transfers/{transfer_id}"
        mark = self.dfsps.mark(requester)
        r = self.fspiop.get(path, requester)
        assert r.status_code == 202, r.text
        return self.dfsps.wait_for(requester, "PUT", path + ("/error" if error else ""), timeout, since=mark,
                                   exact=True, where=lambda req: req.source == HUB)

    def transfer_state(self, requester: str, transfer_id: str) -> str:
        return self.get_transfer(requester, transfer_id).body["transferState"]

    def wait_state(self, requester: str, transfer_id: str, state: str, timeout: float = CALLBACK_TIMEOUT_S) -> None:
        """Ask GET /transfers/{ID} until it answers `state` (bounded)."""
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            seen = self.transfer_state(requester, transfer_id)
            if seen == state:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"transfer {transfer_id} is {seen}, not {state}, after {timeout} s")
            time.sleep(0.1)


# --------------------------------------------------------------------------- events on NATS

EVENT_TIMEOUT_S = 10.0


def watch_events(nats_url: str, subjects: str | list[str], wanted: int, act: Callable[[], None]) -> list[dict[str, Any]]:
    """The first `wanted` events on `subjects` (NATS subjects, wildcards allowed) published while
    `act()` runs in a thread; each is its JSON body plus "subject". Bounded by EVENT_TIMEOUT_S."""

    async def watch() -> list[dict[str, Any]]:
        nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
        try:
            seen: list[dict[str, Any]] = []
            done = asyncio.Event()

            async def on_message(msg: Any) -> None:
                seen.append({"subject": msg.subject, **json.loads(msg.data)})
                if len(seen) >= wanted:
                    done.set()

            for subject in [subjects] if isinstance(subjects, str) else subjects:
                await nc.subscribe(subject, cb=on_message)
            await nc.flush(timeout=5)
            await asyncio.get_running_loop().run_in_executor(None, act)
            await asyncio.wait_for(done.wait(), EVENT_TIMEOUT_S)
            return seen
        finally:
            await nc.close()

    return asyncio.run(watch())
