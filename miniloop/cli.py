"""The `miniloop` command. `miniloop` alone is `miniloop up`.

Every problem the user can fix (a bad setting, a port in use, an unwritable data directory) is
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from miniloop import __version__, config
from miniloop.errors import MiniloopError

EXIT_USER_ERROR = 2


def port(text: str) -> int:
    """argparse type: a TCP port, 0 meaning "any free port"."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port number (0-65535)")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="miniloop",
        description="The whole Mojaloop payment switch in one process. Without a command: `miniloop up`.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    up = commands.add_parser("up", help="run a hub in the foreground until Ctrl-C",
                             description="Run a hub in the foreground until Ctrl-C or SIGTERM.")
    up.add_argument("--headless", action="store_true", default=None, help="no dashboard; print the URLs and log")
    up.add_argument("--data-dir", type=Path, help="where the ledger and the NATS store live "
                    f"(default: {config.user_data_dir()})")
    up.add_argument("--hub-file", type=Path, help="seed a fresh hub from this TOML file instead of the demo hub")
    up.add_argument("--empty", action="store_true", default=None,
                    help="seed nothing: only the Hub participant and the first settlement window")
    up.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--nats-url", help="use this NATS server instead of starting one")
    for name, default in (("fspiop", 3000), ("admin", 3001), ("settlement", 3007), ("als-admin", 4001),
                          ("sim", 3090)):
        up.add_argument(f"--{name}-port", type=port, metavar="PORT", help=f"default {default}; 0 picks a free port")
    up.add_argument("--config", type=Path, help="settings file (TOML); default: $MINILOOP_CONFIG or "
                    f"{config.user_config_file()} if it exists")
    up.add_argument("--log-level", choices=config.LOG_LEVELS)

    reset = commands.add_parser("reset", help="delete a hub's data (asks first)",
                                description="Delete the data directory of a hub: ledger, NATS store, everything.")
    reset.add_argument("--data-dir", type=Path, help=f"default: {config.user_data_dir()}")
    reset.add_argument("--yes", action="store_true", help="do not ask")
    reset.add_argument("--config", type=Path, help="settings file (TOML)")

    scenario = commands.add_parser(
        "scenario", help="run a payment scenario and narrate it",
        description="Run a scenario (scenarios/*.toml): simulated customers pay each other over the real "
                    "stack; every FSPIOP message is printed with its timing, and positions before and after. "
                    "Uses the hub running on the data directory, or starts a temporary demo hub.")
    scenario_commands = scenario.add_subparsers(dest="scenario_command", metavar="ACTION", required=True)
    scenario_run = scenario_commands.add_parser("run", help="run one scenario", description="Run one scenario.")
    scenario_run.add_argument("name", help="a scenario name (see `miniloop scenario list`) or a .toml file")
    scenario_run.add_argument("--data-dir", type=Path, help=f"the running hub's (default: {config.user_data_dir()})")
    scenario_run.add_argument("--verbose", action="store_true", help="print every message's body too")
    scenario_run.add_argument("--config", type=Path, help="settings file (TOML)")
    scenario_commands.add_parser("list", help="list the scenarios", description="List the bundled scenarios.")

    commands.add_parser("version", help="print the version", description="Print miniloop's version.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in (None, "up"):
            return _up(args)
        if args.command == "reset":
            return _reset(args)
        if args.command == "scenario":
            return _scenario(args)
        if args.command == "version":
            print(f"miniloop {__version__}")
            return 0
    except MiniloopError as exc:
        print(f"miniloop: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given on the command line (None = not given)."""
    ignored = ("command", "config", "yes", "scenario_command", "name", "verbose")
    return {k: v for k, v in vars(args).items() if k not in ignored and v is not None}


def _up(args: argparse.Namespace) -> int:
    if args.command is None:  # plain `miniloop`: parse again so `up`'s defaults exist
        args = build_parser().parse_args(["up"])
    settings = config.load(_flags(args), args.config)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from miniloop.app import Hub  # imported here: `miniloop version` stays instant

    hub = Hub(settings)
    return _run(_serve(hub))


async def _serve(hub: Any) -> int:
    from miniloop.app import TITLES

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await hub.start()
    try:
        if hub.settings.empty and not hub.seeded:
            what = "empty hub"
        elif hub.seeded:
            what = f"seeded now from {hub.settings.hub_file or 'the demo hub file'}"
        else:
            what = f"the hub in {hub.settings.data_dir}"
        print(f"miniloop {__version__} is up ({what})")
        for name, url in hub.urls.items():
            title = TITLES.get(name, "NATS (events on ml.event.>)")
            print(f"  {title:<28} {url}")
        print(f"  {'data directory':<28} {hub.settings.data_dir}")
        print("Press Ctrl-C to stop.", flush=True)
        failure = asyncio.ensure_future(hub.wait_for_failure())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([failure, stopping], return_when=asyncio.FIRST_COMPLETED)
        failed = failure.done()
        failure.cancel()
        stopping.cancel()
    finally:
        print("miniloop: stopping", flush=True)
        await hub.stop()
    if failed:
        print("miniloop: nats-server keeps failing; see nats-server.log in the data directory", file=sys.stderr)
        return 1
    print("miniloop: stopped", flush=True)
    return 0


def _run(coro: Any) -> int:
    """Run on uvloop where it exists (it is faster), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _scenario(args: argparse.Namespace) -> int:
    from scenarios import runner

    if args.scenario_command == "list":
        for name in runner.available():
            print(f"{name:<12} {runner.load(name).description}")
        return 0
    scenario = runner.load(args.name)
    settings = config.load(_flags(args), args.config)
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    return _run(_run_scenario(scenario, settings, args.verbose))


async def _run_scenario(scenario: Any, settings: config.Settings, verbose: bool) -> int:
    """Run on the hub of `settings.data_dir` if one is up; else on a temporary demo hub."""
    import dataclasses
    import tempfile

    from scenarios import runner

    narrator = runner.Narrator(sys.stdout, verbose)
    urls = runner.running_hub(settings.data_dir)
    if urls is not None:
        return 0 if await runner.run(scenario, urls, narrator) else 1
    from miniloop.app import Hub

    with tempfile.TemporaryDirectory(prefix="miniloop-scenario-") as tmp:
        narrator.line(f"(no hub is running on {settings.data_dir}: starting a temporary demo hub)")
        ports = {f"{name}_port": 0 for name in ("fspiop", "admin", "settlement", "als_admin", "sim")}
        hub = Hub(dataclasses.replace(settings, data_dir=Path(tmp), empty=False, hub_file=None, **ports))
        await hub.start()
        try:
            return 0 if await runner.run(scenario, hub.urls, narrator) else 1
        finally:
            await hub.stop()


def _reset(args: argparse.Namespace) -> int:
    settings = config.load(_flags(args), args.config)
    data_dir = settings.data_dir
    if not data_dir.exists():
        print(f"nothing to reset: {data_dir} does not exist")
        return 0
    if not data_dir.is_dir():
        raise MiniloopError(f"{data_dir} is not a directory; not deleting it")
    if not (data_dir / "miniloop.db").exists() and any(data_dir.iterdir()):
        raise MiniloopError(f"{data_dir} does not look like a miniloop data directory; not deleting it")
    from miniloop.app import LOCK_FILE

    lock_path = data_dir / LOCK_FILE
    if lock_path.exists():
        import fcntl

        with open(lock_path, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise MiniloopError(f"a miniloop is running on {data_dir}: stop it first") from None
    if not args.yes:
        if not sys.stdin.isatty():
            raise MiniloopError("reset deletes every transfer and participant; add --yes to confirm")
        answer = input(f"Delete everything in {data_dir}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    shutil.rmtree(data_dir)
    print(f"deleted {data_dir}")
    return 0
