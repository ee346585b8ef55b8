"""Wiring one hub: settings -> data directory -> ports -> NATS -> ledger -> services -> HTTP servers.

`Hub.start` does it in an order that leaves nothing half-started: the data directory is locked
and every port is bound before any child process starts, so a port in use or a second hub on the
same directory is refused before anything needs undoing; if a later step fails, what was started
is stopped again. `Hub.stop` undoes it in reverse: stop taking requests, finish the ledger's
queued writes, publish the last events, stop nats-server.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import json
import logging
import os
import socket
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanic import Sanic

from miniloop import hubfile, lan, seed, tls
from miniloop.api.admin import admin_app
from miniloop.api.als_admin import als_admin_app
from miniloop.api.common import compile_out_unused_signals, new_health, require_token, serve_metrics
from miniloop.api.fspiop import Services as FspiopServices, fspiop_app
from miniloop.api.openapi import serve_openapi
from miniloop.api.settlement import settlement_app
from miniloop.bus.events import EventBus
from miniloop.bus.nats_server import NatsServer
from miniloop.config import Settings
from miniloop.errors import StartupError
from miniloop.fspiop import signature
from miniloop.fspiop.errors import FspiopError
from miniloop.ledger import Ledger, utc_now
from miniloop.ledger.writer import LedgerUnavailable
from miniloop.metrics import HubMetrics
from miniloop.notify import Notifier
from miniloop.services.als import AccountLookup
from miniloop.services import outbox
from miniloop.services.auth_service import AuthService, hub_is_fresh
from miniloop.services.bulk_transfers import BulkTransfers
from miniloop.services.directory import Directory
from miniloop.services.oracles import Oracles
from miniloop.services.participants import Participants
from miniloop.services.quotes import Quotes
from miniloop.services.requests import Requests
from miniloop.services.thirdparty import THIRDPARTY_PARTY_TYPES, Thirdparty
from miniloop.services.transfers import Transfers
from mobile_sim import sim_app
from mobile_sim.dfsp import simulated
from mobile_sim.openapi import apis as openapi_apis
from mobile_sim.web import wallet_app
from miniloop.services.settlement_windows import SettlementWindows
from miniloop.services.settlements import Settlements
from miniloop.services.settlement_models import SettlementModels

log = logging.getLogger(__name__)

EXPIRY_SWEEP_S = 0.2  # a transfer outlives its expiration by at most about this (plus a batch)
RUNTIME_FILE = "hub.json"  # written when ready: pid and URLs, for tools and tests
LOCK_FILE = "miniloop.lock"
PORT_FLAGS = {"fspiop": "--fspiop-port", "admin": "--admin-port", "settlement": "--settlement-port",
              "als_admin": "--als-admin-port", "sim": "--sim-port",
              "wallet": "--wallet-port"}
TITLES = {"fspiop": "FSPIOP API", "admin": "Admin API (central-ledger)", "settlement": "Settlement API v2",
          "als_admin": "ALS admin API (oracles)", "sim": "Simulated DFSPs",
          "wallet": "Wallet simulator (browser)"}
# the operators' APIs: loopback only on a non-loopback --host, unless --admin-token or --insecure
OPERATOR_PORTS = ("admin", "settlement", "als_admin")
OPERATOR_BODY_MAX_BYTES = 1024 * 1024  # their requests are small; the FSPIOP ports take up to 5 MiB


@dataclass
class Hub:
    settings: Settings
    urls: dict[str, str] = field(default_factory=dict)
    nats: NatsServer | None = None
    bus: EventBus | None = None
    ledger: Ledger | None = None
    notifier: Notifier | None = None
    directory: Directory | None = None
    metrics: HubMetrics | None = None  # /metrics on every server (docs/metrics.md)
    _sweeper: asyncio.Task[None] | None = None
    _lock: Any = None
    _sockets: dict[str, socket.socket] = field(default_factory=dict)
    _servers: list[Any] = field(default_factory=list)
    seeded: bool = False
    join_url: str | None = None  # what phones on the LAN open to join a workshop (docs/workshop.md)
    operator_notice: str | None = None  # one line `up` prints about the operators' ports, if any
    _wrote_runtime_file: bool = False

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        self.metrics = HubMetrics()
        self.metrics.watch(self)
        hub = None if settings.empty else hubfile.load(settings.hub_file)  # a bad file fails first
        # bad TLS files fail before anything starts; so does a client CA the simulated DFSPs cannot pass
        tls_contexts = tls.contexts(settings, simulated_dfsps=bool(simulated(hub)))
        hosts, self.operator_notice = bind_hosts(settings)
        self._sockets = {name: _bind(hosts[name], port, name) for name, port in settings.ports().items()}
        data_dir = self._prepare_data_dir(settings.data_dir)
        self.urls = {
            name: f"{'https' if name == 'fspiop' and tls_contexts.server else 'http'}://{_shown_host(hosts[name])}:{sock.getsockname()[1]}" + ("/v2" if name == "settlement" else "")
            for name, sock in self._sockets.items()
        }
        nats_url = settings.nats_url
        if nats_url is None:
            self.nats = NatsServer(data_dir / "nats")
            nats_url = await self.nats.start()
        self.urls["nats"] = nats_url
        self.bus = await EventBus.connect(nats_url)
        self.ledger = await Ledger.open(data_dir, publish=self._publish)
        self.ledger.writer.on_batch = self.metrics.on_batch
        self.directory = Directory(self.ledger)
        self.notifier = Notifier(self.ledger, self.bus.publish_batch, ssl_context=tls_contexts.callbacks)

        builtin_oracle = f"{self.urls['als_admin']}/oracle"
        participants = Participants(self.ledger, self.urls["admin"])
        services = seed.Services(participants, SettlementModels(self.ledger), Oracles(self.ledger))
        await services.oracles.move_builtin(builtin_oracle)
        # the Third-party API's party types are hub services: the built-in oracle serves them
        # unless an operator registered another (docs/thirdparty.md), on an --empty hub too
        await services.oracles.ensure_builtin(THIRDPARTY_PARTY_TYPES, builtin_oracle)
        # fresh: nothing beyond the Hub, and centralAuth, which the hub creates itself just below
        if hub is not None and await hub_is_fresh(participants):
            try:
                await seed.seed(hub, services, sim_base_url=self.urls["sim"],
                                oracle_url=builtin_oracle)
            except FspiopError as exc:
                raise StartupError(
                    f"seeding from {settings.hub_file or 'the demo hub file'} failed: {exc.description}; "
                    "fix the file, then `miniloop reset` and start again"
                ) from None
            self.seeded = True

        if hub is not None:
            await seed.refresh_endpoints(hub, participants, sim_base_url=self.urls["sim"])
        # the hub-hosted auth-service, participant centralAuth, served on the ALS admin port
        auth_service = AuthService(self.ledger, builtin_oracle, self.notifier.session)
        await auth_service.ensure_participant(f"{self.urls['als_admin']}/authService")

        # JWS (docs/reliability.md, "Security"): the hub's own key only with --sign-messages
        hub_jws_key = None
        outbox.hub_signing_key = None
        if settings.sign_messages:
            try:
                key = signature.hub_key(data_dir)
            except (OSError, ValueError, TypeError) as exc:
                raise StartupError(f"--sign-messages: the hub's key {data_dir / signature.HUB_KEY_FILE} "
                                   f"cannot be used ({exc}): fix or delete it") from None
            outbox.hub_signing_key = key
            hub_jws_key = signature.pem_of(key.public_key())

        transfers = Transfers(self.ledger)
        fspiop = FspiopServices(
            self.directory, AccountLookup(self.ledger, services.oracles, builtin_oracle, self.notifier.session),
            Quotes(self.ledger), transfers, requests=Requests(self.ledger),
            bulk_transfers=BulkTransfers(self.ledger), thirdparty=Thirdparty(self.ledger),
            verify_signatures=settings.verify_signatures, source_binding=tls_contexts.binding,
        )
        health = new_health(self._health_checks)
        join_host = lan.join_host(settings.host)
        if join_host is not None:
            self.join_url = f"http://{join_host}:{self._sockets['wallet'].getsockname()[1]}/join"
        sim = sim_app(hub, self.urls["fspiop"], health, ssl_context=tls_contexts.simulator)
        apps: dict[str, Sanic] = {
            "fspiop": fspiop_app(health, fspiop, self._publish),
            "admin": admin_app(participants, services.models, health, hub_jws_key),
            "settlement": settlement_app(SettlementWindows(self.ledger), Settlements(self.ledger), health),
            "als_admin": als_admin_app(services.oracles, health, auth_service),
            "sim": sim,
            "wallet": wallet_app(getattr(sim.ctx, "sim", None), self.urls, health, self.join_url,
                                 admin_token=settings.admin_token or None),
        }
        for name in OPERATOR_PORTS:
            apps[name].config.REQUEST_MAX_SIZE = OPERATOR_BODY_MAX_BYTES
            if settings.admin_token and not is_loopback(settings.host):  # loopback: nothing changes
                # /authService is participant centralAuth's FSPIOP endpoint: the hub delivers to it
                require_token(apps[name], settings.admin_token,
                              open_prefixes=("/authService",) if name == "als_admin" else ())
        descriptions = openapi_apis(apps)  # the hub's APIs', the sim and wallet ports' (mobile_sim.openapi)
        for name, app in apps.items():
            serve_openapi(app, name, descriptions)  # GET /openapi.json on every port that has one
            serve_metrics(app, name, self.metrics)
        compile_out_unused_signals(apps.values())
        for name, app in apps.items():
            server = await app.create_server(sock=self._sockets[name], return_asyncio_server=True,
                                             ssl=tls_contexts.server if name == "fspiop" else None)
            assert server is not None
            await server.startup()
            await server.before_start()
            await server.start_serving()
            await server.after_start()
            self._servers.append(server)
        await self.notifier.start()
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_expired(transfers), name="expiry")
        self._write_runtime_file(data_dir)

    def _publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Every committed batch of events: to the participant cache, the metrics, then NATS."""
        if self.metrics is not None:
            self.metrics.count_events(events)
        if self.directory is not None:
            self.directory.on_events(events)
        if self.bus is not None:
            self.bus.publish_batch(events)

    async def _sweep_expired(self, transfers: Transfers) -> None:
        """The one expiry sweeper: a cheap read every EXPIRY_SWEEP_S, a write only when due."""
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_S)
            try:
                for _ in range(100):  # at most 100 batches, then the next tick
                    if not await transfers.any_due(utc_now()) or not await transfers.expire_due():
                        break
            except LedgerUnavailable:  # disk full or read-only: the writer logs it; due ones wait
                pass
            except Exception:  # the ledger is closing, or a bug: log it, keep sweeping
                log.exception("expiring transfers failed")

    def _prepare_data_dir(self, data_dir: Path) -> Path:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            probe = data_dir / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise StartupError(
                f"data directory {data_dir} is not writable ({exc.strerror}): choose another with --data-dir"
            ) from None
        self._lock = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the hub's lifetime
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise StartupError(
                f"another miniloop is already running on {data_dir}: stop it, or use another --data-dir"
            ) from None
        return data_dir

    def _write_runtime_file(self, data_dir: Path) -> None:
        info = {"pid": os.getpid(), "urls": self.urls, "seeded": self.seeded, "joinUrl": self.join_url,
                "tls": tls.runtime_info(self.settings)}  # the hub's certificate files, for the local tools
        tmp = data_dir / (RUNTIME_FILE + ".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(data_dir / RUNTIME_FILE)
        self._wrote_runtime_file = True

    def _health_checks(self) -> list[dict[str, str]]:
        """What /health reports: the ledger writer running, the NATS connection up."""
        writer_ok = self.ledger is not None and self.ledger.writer.healthy  # DOWN: cannot write (disk full)
        broker_ok = self.bus is not None and self.bus.client.is_connected
        return [
            {"name": "datastore", "status": "OK" if writer_ok else "DOWN"},
            {"name": "broker", "status": "OK" if broker_ok else "DOWN"},
        ]

    async def stop(self) -> None:
        """Stop in reverse order; safe to call on a hub that started only partly."""
        if self._wrote_runtime_file:  # never another hub's file
            with suppress(FileNotFoundError):
                (self.settings.data_dir / RUNTIME_FILE).unlink()
        for server in reversed(self._servers):
            with suppress(Exception):
                await server.before_stop()
                await server.close()
                await server.after_stop()
        self._servers.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self.notifier is not None:
            await self.notifier.stop()
            self.notifier = None
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        if self.ledger is not None:
            await self.ledger.close()
            self.ledger = None
        if self.bus is not None:
            await self.bus.close()
            self.bus = None
        if self.nats is not None:
            await self.nats.stop()
            self.nats = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    async def wait_for_failure(self) -> None:
        """Returns only if a supervised part gives up (nats-server keeps crashing)."""
        if self.nats is None:
            await asyncio.Event().wait()
        else:
            await self.nats.on_give_up.wait()


def is_loopback(host: str) -> bool:
    """127.0.0.1, ::1, localhost: only this machine can connect."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_hosts(settings: Settings) -> tuple[dict[str, str], str | None]:
    """Where each port listens, and the line `up` prints about the operators' ports (or None).

    The FSPIOP, simulator and wallet ports follow --host. The Admin, Settlement and ALS admin
    APIs change participants, limits and money: on a non-loopback --host they stay on loopback,
    unless --admin-token (then every request needs it) or --insecure (then nothing is asked).
    """
    host = settings.host
    hosts = {name: host for name in settings.ports()}
    titles = "the Admin, Settlement and ALS admin APIs"
    if is_loopback(host):
        return hosts, None
    if settings.admin_token:
        return hosts, f"{titles[0].upper()}{titles[1:]} listen on {host or 'every address'} and need " \
                      "Authorization: Bearer <the admin token>"
    if settings.insecure:
        return hosts, f"warning: --insecure: {titles} listen on {host or 'every address'} with no token: " \
                      "anyone on the network can change participants, limits and settlements"
    loopback = "::1" if ":" in host else "127.0.0.1"
    for name in OPERATOR_PORTS:
        hosts[name] = loopback
    return hosts, f"{titles[0].upper()}{titles[1:]} listen on {loopback} only " \
                  "(give --admin-token TOKEN to reach them from the network)"


def _shown_host(host: str) -> str:
    """The host part of a URL that reaches `host` from this machine."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)


def _bind(host: str, port: int, name: str) -> socket.socket:
    """Reserve a port before anything starts; a port in use is one clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(
                f"port {port} ({TITLES[name]}) is already in use on {host}: stop what uses it, "
                f"or choose another with {PORT_FLAGS[name]}"
            ) from None
        raise StartupError(f"cannot listen on {host}:{port} for the {TITLES[name]}: {exc.strerror}") from None
    sock.set_inheritable(False)
    return sock
