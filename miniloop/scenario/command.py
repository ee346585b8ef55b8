"""`miniloop scenario list|run` and `miniloop dfsp`: the command line of the scenario engine.

Why apart from miniloop.cli: the CLI module only parses; what a command does with a hub (find
the running one, or start a temporary demo hub in this process) and with the outputs (terminal,
JUnit, HTML, JSON) lives here, next to the engine it drives.
"""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

from miniloop import config, tls
from miniloop.errors import ConfigError
from miniloop.scenario import loading
from miniloop.scenario.engine import SetupError, run_scenario
from miniloop.scenario.report.html import write_html
from miniloop.scenario.report.junit import write_junit
from miniloop.scenario.report.terminal import TerminalProgress


def list_scenarios() -> int:
    for name, description in loading.available():
        print(f"{name:<28} {description}")
    return 0


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    """`NAME=VALUE` options as a dict; ConfigError names the one that is not written so."""
    found: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ConfigError(f"{flag} {item!r}: write it NAME=VALUE")
        found[name] = value
    return found


def running_hub(data_dir: Path) -> dict[str, str] | None:
    """The URLs of the hub running on `data_dir`, if one is."""
    info = running_hub_info(data_dir)
    return None if info is None else info["urls"]


def running_hub_info(data_dir: Path) -> dict[str, Any] | None:
    """The hub.json of the hub running on `data_dir` (pid, urls, tls ...), if one is."""
    try:
        info = json.loads((data_dir / "hub.json").read_text())
        os.kill(int(info["pid"]), 0)
        if not isinstance(info["urls"], dict):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info


def _hub_tls(args: Any, hub_tls: dict[str, Any] | None) -> ssl.SSLContext | None:
    """The SSL context for the hub's FSPIOP port: --tls-cert/--tls-key/--tls-ca, else what the
    hub's hub.json says (a local hub with TLS: its own certificate, as the simulated DFSPs)."""
    return tls.tool_context(args.tls_cert, args.tls_key, args.tls_ca, hub_tls)


async def run(args: Any, settings: config.Settings) -> int:
    """Run on the hub of `settings.data_dir` if one is up; else on a temporary demo hub."""
    externals = pairs(args.dfsp, "--dfsp")
    for name, url in externals.items():
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--dfsp {name}={url}: the URL must start with http:// or https://")
    loaded = loading.load(args.name, pairs(args.var, "--var"))
    progress = TerminalProgress(sys.stdout, verbose=args.verbose)
    _hub_tls(args, None)  # bad --tls-* files: one line, before anything starts
    info = running_hub_info(settings.data_dir)
    if info is not None:
        return await _run_on(loaded, info["urls"], progress, externals, args, settings.admin_token,
                             _hub_tls(args, info.get("tls")))
    from miniloop.app import Hub

    with tempfile.TemporaryDirectory(prefix="miniloop-scenario-") as tmp:
        print(f"(no hub is running on {settings.data_dir}: starting a temporary demo hub)", flush=True)
        ports = {f"{name}_port": 0 for name in ("fspiop", "admin", "settlement", "als_admin", "sim", "wallet")}
        hub = Hub(dataclasses.replace(settings, data_dir=Path(tmp), empty=False, hub_file=None, **ports))
        await hub.start()
        try:
            return await _run_on(loaded, hub.urls, progress, externals, args, settings.admin_token,
                                 _hub_tls(args, tls.runtime_info(hub.settings)))
        finally:
            await hub.stop()


async def _run_on(loaded: loading.Loaded, urls: dict[str, str], progress: TerminalProgress,
                  externals: dict[str, str], args: Any, admin_token: str | None = None,
                  hub_ssl: ssl.SSLContext | None = None) -> int:
    try:
        result = await run_scenario(loaded, urls, progress, externals, admin_token, hub_ssl)
    except SetupError as exc:
        raise ConfigError(f"scenario {loaded.name}: {exc}") from None
    if args.junit:
        write_junit(result, Path(args.junit))
        print(f"JUnit XML: {args.junit}")
    if args.html:
        write_html(result, Path(args.html))
        print(f"HTML report: {args.html}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2, default=str))
        print(f"JSON: {args.json}")
    return 0 if result.ok else 1


async def reference_dfsp(args: Any, settings: config.Settings) -> int:
    """`miniloop dfsp`: the reference DFSP, until Ctrl-C."""
    from miniloop.scenario.reference_dfsp import FAULTS, serve

    if args.fault not in FAULTS:
        raise ConfigError(f"--fault {args.fault}: choose one of {', '.join(FAULTS)}")
    hub_url = args.hub
    hub_tls = None
    _hub_tls(args, None)  # bad --tls-* files: one line, before anything starts
    if hub_url is None:
        info = running_hub_info(settings.data_dir)
        if info is None:
            raise ConfigError(f"no hub is running on {settings.data_dir}: start one, or give --hub URL")
        hub_url, hub_tls = info["urls"]["fspiop"], info.get("tls")
    extra: dict[str, Any] = {"parties": args.party} if args.party else {}
    await serve(args.name, hub_url, currency=args.currency, fault=args.fault, host=args.host, port=args.port,
                ssl_context=_hub_tls(args, hub_tls), **extra)
    return 0
