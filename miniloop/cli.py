"""The `miniloop` command. `miniloop` alone is `miniloop up`.

Every problem the user can fix (a bad setting, a port in use, an unwritable data directory) is
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
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


def _tool_tls_flags(parser: argparse.ArgumentParser, remote_only: bool = False) -> None:
    """--tls-cert/--tls-key/--tls-ca of a tool that calls the hub's FSPIOP port (miniloop.tls.tool_context)."""
    when = "with --url https://...: " if remote_only else ""
    local_cert = "" if remote_only else " (default for a hub running on --data-dir: the hub's own)"
    local_ca = "the system's" if remote_only else "for a hub running on --data-dir, trust its certificate; else the system's"
    parser.add_argument("--tls-cert", type=Path, metavar="FILE",
                        help=f"{when}the client certificate (PEM) to present to a hub started with --tls-client-ca"
                             f"{local_cert}")
    parser.add_argument("--tls-key", type=Path, metavar="FILE", help="the private key of --tls-cert (PEM)")
    parser.add_argument("--tls-ca", type=Path, metavar="FILE",
                        help=f"{when}the CA (PEM) that the hub's certificate is verified with, host name included "
                             f"(default: {local_ca})")


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
                          ("sim", 3090), ("wallet", 3080)):
        up.add_argument(f"--{name}-port", type=port, metavar="PORT", help=f"default {default}; 0 picks a free port")
    up.add_argument("--config", type=Path, help="settings file (TOML); default: $MINILOOP_CONFIG or "
                    f"{config.user_config_file()} if it exists")
    up.add_argument("--log-level", choices=config.LOG_LEVELS)
    up.add_argument("--admin-token", metavar="TOKEN",
                    help="with a --host other than loopback: the Admin, Settlement and ALS admin APIs listen "
                         "there too and ask for Authorization: Bearer TOKEN (without it they stay on 127.0.0.1)")
    up.add_argument("--insecure", action="store_true", default=None,
                    help="with a --host other than loopback: open the Admin, Settlement and ALS admin APIs "
                         "there with no token (a closed lab network only)")
    up.add_argument("--verify-signatures", action="store_true", default=None,
                    help="check the FSPIOP-Signature of every request from a participant that registered a JWS key "
                         "(PUT /participants/NAME/jwsKey on the Admin API); 3105 if it is missing or wrong")
    up.add_argument("--sign-messages", action="store_true", default=None,
                    help="sign the messages the hub originates (errors, PATCH, expiries) with its own key, "
                         "hub-jws-key.pem in the data directory (public key: GET /hub/jwsKey on the Admin API)")
    up.add_argument("--tls-cert", type=Path, metavar="FILE",
                    help="with --tls-key: the FSPIOP port serves HTTPS with this certificate (PEM); the hub also "
                         "presents it as its client certificate to https callback endpoints")
    up.add_argument("--tls-key", type=Path, metavar="FILE", help="the private key of --tls-cert (PEM)")
    up.add_argument("--tls-client-ca", type=Path, metavar="FILE",
                    help="mutual TLS: the FSPIOP port requires a client certificate signed by this CA (PEM)")
    up.add_argument("--tls-callback-ca", type=Path, metavar="FILE",
                    help="the CA that DFSPs' https callback servers are verified with (default: the system's)")
    up.add_argument("--tls-any-source", action="store_true", default=None,
                    help="with --tls-client-ca: a client certificate may send as any FSPIOP-Source (by default "
                         "only as the participant its CN or a DNS subjectAltName names)")

    reset = commands.add_parser("reset", help="delete a hub's data (asks first)",
                                description="Delete the data directory of a hub: ledger, NATS store, everything.")
    reset.add_argument("--data-dir", type=Path, help=f"default: {config.user_data_dir()}")
    reset.add_argument("--yes", action="store_true", help="do not ask")
    reset.add_argument("--config", type=Path, help="settings file (TOML)")

    scenario = commands.add_parser(
        "scenario", help="run a payment scenario, or test your DFSP against the specification",
        description="Run a scenario (scenarios/*.toml or any file): payments, admin changes and checks over the "
                    "real hub, every FSPIOP message shown. With --dfsp NAME=URL your own DFSP plays a role and "
                    "each deviation from the FSPIOP specification is reported. Uses the hub running on the data "
                    "directory, or starts a temporary demo hub.")
    scenario_commands = scenario.add_subparsers(dest="scenario_command", metavar="ACTION", required=True)
    scenario_run = scenario_commands.add_parser("run", help="run one scenario", description="Run one scenario.")
    scenario_run.add_argument("name", help="a scenario name (see `miniloop scenario list`) or a .toml file")
    scenario_run.add_argument("--dfsp", action="append", metavar="NAME=URL",
                              help="your DFSP, named NAME on the hub, whose FSPIOP callbacks are at URL (repeatable)")
    scenario_run.add_argument("--var", action="append", metavar="NAME=VALUE", help="set a variable of the scenario")
    scenario_run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    scenario_run.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    scenario_run.add_argument("--json", metavar="FILE", help="write the whole run as JSON")
    scenario_run.add_argument("--data-dir", type=Path, help=f"the running hub's (default: {config.user_data_dir()})")
    scenario_run.add_argument("--verbose", action="store_true", help="print every message's body too")
    scenario_run.add_argument("--config", type=Path, help="settings file (TOML)")
    _tool_tls_flags(scenario_run)
    scenario_run.add_argument("--admin-token", metavar="TOKEN",
                              help="the hub's admin token, when it was started with --admin-token "
                                   "(default: $MINILOOP_ADMIN_TOKEN or the settings file's admin_token)")
    scenario_commands.add_parser("list", help="list the scenarios", description="List the bundled scenarios.")

    dfsp = commands.add_parser(
        "dfsp", help="run the reference DFSP (an example payee that follows the specification)",
        description="Run miniloop's reference DFSP: a payee that answers lookups, quotes and transfers as the FSPIOP "
                    "specification asks, or misbehaves on purpose with --fault. Use it to try "
                    "`miniloop scenario run conformance --dfsp NAME=URL` before testing your own DFSP.")
    dfsp.add_argument("--name", default="exampledfsp", help="its participant name on the hub (default: exampledfsp)")
    dfsp.add_argument("--hub", metavar="URL", help="the hub's FSPIOP URL (default: the hub running on --data-dir)")
    dfsp.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    dfsp.add_argument("--port", type=int, default=4040, help="port to listen on (default: 4040; 0 picks a free one)")
    dfsp.add_argument("--fault", default="none", help="misbehave: none, wrong-condition, missing-header, late-fulfil, "
                      "silent, wrong-error-code, bad-quote, sync-status")
    dfsp.add_argument("--party", action="append", metavar="TYPE/ID", help="a party it serves (repeatable)")
    dfsp.add_argument("--currency", default="USD")
    dfsp.add_argument("--data-dir", type=Path, help=f"the running hub's (default: {config.user_data_dir()})")
    dfsp.add_argument("--config", type=Path, help="settings file (TOML)")
    _tool_tls_flags(dfsp)

    bench = commands.add_parser(
        "bench", help="measure transfers per second and latency",
        description="Start a fresh hub (or use --url), onboard simulated DFSPs running in their own processes, "
                    "drive payments through the FSPIOP API and print throughput, latency percentiles, errors, "
                    "CPU and memory. See docs/performance.md.")
    bench.add_argument("--duration", type=_positive_float, default=60.0, metavar="S", help="seconds of load (default 60)")
    load = bench.add_mutually_exclusive_group()
    load.add_argument("--concurrency", type=_positive_int, metavar="C", help="payments in flight (default 64)")
    load.add_argument("--rate", type=_positive_float, metavar="R", help="payments started per second (open loop)")
    bench.add_argument("--flow", choices=("transfer", "full"), default="transfer",
                       help="transfer: prepare and fulfil; full: lookup, quote and transfer (default transfer)")
    bench.add_argument("--dfsps", type=_positive_int, default=2, metavar="N", help="simulated DFSPs, 2 or more (default 2)")
    bench.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    bench.add_argument("--baseline", action="store_true",
                       help="first measure a trivial forwarder with the same HTTP pattern (no ledger, no NATS)")
    bench.add_argument("--url", help="a running hub's FSPIOP API instead of a fresh hub (its Admin API on port 3001 "
                                     "and ALS admin API on 4001 of the same host, unless given)")
    bench.add_argument("--admin-url", help="the running hub's Admin API (with --url)")
    bench.add_argument("--als-url", help="the running hub's ALS admin API (with --url)")
    _tool_tls_flags(bench, remote_only=True)
    bench.add_argument("--admin-token", metavar="TOKEN",
                       help="with --url: the hub's admin token, when it was started with --admin-token "
                            "(default: $MINILOOP_ADMIN_TOKEN or the settings file's admin_token)")
    bench.add_argument("--chaos", action="store_true",
                       help="kill the hub with SIGKILL under load, restart it, check nothing was lost "
                            "(docs/reliability.md)")
    bench.add_argument("--kills", type=_positive_int, default=5, metavar="N", help="with --chaos: kills (default 5)")
    bench.add_argument("--seed", type=int, metavar="N", help="with --chaos: the seed of the kills' moments")

    ledger = commands.add_parser("ledger", help="inspect a hub's ledger",
                                 description="Inspect the ledger (the SQLite file) of a hub.")
    ledger_commands = ledger.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    ledger_check = ledger_commands.add_parser(
        "check", help="check the ledger's consistency (read-only; the hub may be running)",
        description="Check that money is conserved, positions match their history, no transfer is stuck past "
                    "its expiry, committed transfers have a settlement window, and every transfer moved exactly "
                    "the positions its state says. Read-only: the hub may be running. Exit status 0: consistent; "
                    "1: problems found (one line each); 2: no usable ledger.")
    ledger_check.add_argument("--data-dir", type=Path, help=f"the hub's (default: {config.user_data_dir()})")
    ledger_check.add_argument("--config", type=Path, help="settings file (TOML)")
    ledger_check.add_argument("--grace", type=float, default=10.0, metavar="S",
                              help="a transfer still open S seconds past its expiry is stuck (default 10)")

    settlement = commands.add_parser("settlement", help="settlement windows: who owes what",
                                     description="Inspect the settlement of a hub's transfers.")
    settlement_commands = settlement.add_subparsers(dest="settlement_command", metavar="ACTION", required=True)
    settlement_report = settlement_commands.add_parser(
        "report", help="net positions per participant of a settlement window (read-only; the hub may be running)",
        description="Print what each participant sent, received and nets (owes or is owed) in a settlement "
                    "window, totals per currency, and the net obligations between pairs of participants. "
                    "Default window: the most recently closed one, else the open one. Read-only: the hub may "
                    "be running. Exit status 0, or 2 with one line on stderr (no ledger, no such window, "
                    "CSV not writable).")
    settlement_report.add_argument("--window", type=_positive_int, metavar="N", help="the settlement window's id")
    settlement_report.add_argument("--csv", type=Path, metavar="FILE",
                                   help="also write the per-participant rows to FILE as CSV")
    settlement_report.add_argument("--data-dir", type=Path, help=f"the hub's (default: {config.user_data_dir()})")
    settlement_report.add_argument("--config", type=Path, help="settings file (TOML)")

    tui = commands.add_parser(
        "tui", help="the dashboard of a running hub (here or on another machine)",
        description="Show the Textual dashboard of a running hub: positions, transfers as they happen, "
                    "participants, settlement, scenarios, faults and the workshop's join QR code. "
                    "Quitting it leaves the hub running. See docs/dashboard.md.")
    tui.add_argument("--url", help="the hub's wallet port, e.g. http://pi.local:3080 (default: the hub running on "
                                   "--data-dir)")
    tui.add_argument("--data-dir", type=Path, help=f"the running hub's (default: {config.user_data_dir()})")
    tui.add_argument("--config", type=Path, help="settings file (TOML)")
    tui.add_argument("--admin-token", metavar="TOKEN",
                     help="the hub's admin token, when it was started with --admin-token (a remote dashboard)")

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
        if args.command == "dfsp":
            return _dfsp(args)
        if args.command == "ledger":
            return _ledger_check(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "settlement":
            from miniloop.settlement_report_command import report

            return report(args)
        if args.command == "tui":
            return _tui(args)
        if args.command == "version":
            print(f"miniloop {__version__}")
            return 0
    except MiniloopError as exc:
        print(f"miniloop: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} must be 1 or more")
    return number


def _positive_float(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return number


def _bench(args: argparse.Namespace) -> int:
    from miniloop.bench.run import Options, bench

    if args.dfsps < 2:
        raise MiniloopError("bench: --dfsps must be 2 or more (each DFSP pays the others)")
    if (args.admin_url or args.als_url) and not args.url:
        raise MiniloopError("bench: --admin-url and --als-url go with --url")
    if (args.tls_cert or args.tls_key or args.tls_ca or args.admin_token) and not args.url:
        raise MiniloopError("bench: --tls-cert, --tls-key, --tls-ca and --admin-token go with --url "
                            "(the hub bench starts itself needs none)")
    # --admin-token, else MINILOOP_ADMIN_TOKEN or the settings file's, as `miniloop tui`
    admin_token = config.load({"admin_token": args.admin_token}).admin_token if args.url else None
    return bench(Options(
        duration=args.duration, concurrency=args.concurrency or (0 if args.rate else 16 if args.chaos else 64),
        rate=args.rate or 0.0, flow=args.flow, dfsps=args.dfsps, json_path=args.json, url=args.url,
        admin_url=args.admin_url, als_url=args.als_url, baseline=args.baseline,
        chaos=args.chaos, kills=args.kills, seed=args.seed,
        tls_cert=args.tls_cert, tls_key=args.tls_key, tls_ca=args.tls_ca, admin_token=admin_token,
    ))


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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    dashboard = _dashboard_wanted(hub)
    # with the dashboard, the hub's log goes to DATA/miniloop.log from its first line to its last
    with _logging_for(hub, dashboard):
        await hub.start()
        try:
            if hub.settings.empty and not hub.seeded:
                what = "empty hub"
            elif hub.seeded:
                what = f"seeded now from {hub.settings.hub_file or 'the demo hub file'}"
            else:
                what = f"the hub in {hub.settings.data_dir}"
            if dashboard:
                failed = await _dashboard_until_quit(hub, stop)
            else:
                failed = await _print_and_wait(hub, what, stop)
        finally:
            print("miniloop: stopping", flush=True)
            await hub.stop()
    if failed:
        print("miniloop: nats-server keeps failing; see nats-server.log in the data directory", file=sys.stderr)
        return 1
    print("miniloop: stopped", flush=True)
    return 0


async def _print_and_wait(hub: Any, what: str, stop: asyncio.Event) -> bool:
    """Headless: print where everything is, then wait for Ctrl-C or SIGTERM (False) or a failure (True)."""
    from miniloop.app import TITLES

    print(f"miniloop {__version__} is up ({what})")
    for name, url in hub.urls.items():
        title = TITLES.get(name, "NATS (events on ml.event.>)")
        print(f"  {title:<28} {url}")
    print(f"  {'data directory':<28} {hub.settings.data_dir}")
    if hub.operator_notice:
        print(hub.operator_notice)
    if hub.join_url is not None and not hub.settings.empty:
        _print_join(hub.join_url)
    print("Press Ctrl-C to stop.", flush=True)
    failure = asyncio.ensure_future(hub.wait_for_failure())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([failure, stopping], return_when=asyncio.FIRST_COMPLETED)
    failed = failure.done()
    failure.cancel()
    stopping.cancel()
    return failed


def _dashboard_wanted(hub: Any) -> bool:
    """`miniloop up` shows the dashboard unless --headless, or without a terminal (pipes, CI, Docker)."""
    from tui.run import can_show

    return not hub.settings.headless and can_show()


def _logging_for(hub: Any, dashboard: bool) -> Any:
    """With the dashboard, log records go to DATA/miniloop.log (they would scribble over it)."""
    from contextlib import nullcontext

    if not dashboard:
        return nullcontext()
    from tui.run import quiet_logging

    data_dir = hub.settings.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return nullcontext()  # hub.start says what is wrong with the data directory, in one line
    return quiet_logging(data_dir / "miniloop.log")


async def _dashboard_until_quit(hub: Any, stop: asyncio.Event) -> bool:
    """The dashboard in the foreground until it quits, Ctrl-C or SIGTERM arrive, or the hub fails
    (True then); the caller stops the hub (and sends the log to a file, _logging_for)."""
    from tui.run import run_dashboard

    failure = asyncio.ensure_future(hub.wait_for_failure())
    failure.add_done_callback(lambda _: stop.set())
    if hub.operator_notice:
        logging.getLogger("miniloop").warning("%s", hub.operator_notice)
    try:
        await run_dashboard(hub.urls["wallet"], owns_hub=True, stop=stop, admin_token=hub.settings.admin_token)
    finally:
        failed = failure.done() and not failure.cancelled()
        failure.cancel()
    return failed


def _tui(args: argparse.Namespace) -> int:
    from tui.client import HubUnreachable
    from tui.run import can_show, run_dashboard

    url = args.url
    settings = config.load(_flags(args), args.config)  # --admin-token, MINILOOP_ADMIN_TOKEN or the file's
    if url is None:
        from miniloop.scenario.command import running_hub

        urls = running_hub(settings.data_dir)
        if urls is None or "wallet" not in urls:
            raise MiniloopError(f"no hub is running on {settings.data_dir}: start one with `miniloop up`, "
                                "or give --url http://HOST:3080")
        url = urls["wallet"]
    elif not url.startswith(("http://", "https://")):
        raise MiniloopError(f"--url {url}: give the hub's wallet port as http://HOST:PORT (3080 by default)")
    try:
        _run(_reachable(url))  # first: "nothing answers there" is the more useful thing to hear
        if not can_show():
            raise MiniloopError("the dashboard needs a terminal (stdin and stdout must be a TTY)")
        _run(run_dashboard(url, owns_hub=False, admin_token=settings.admin_token))
    except HubUnreachable as exc:
        raise MiniloopError(str(exc)) from None
    return 0


async def _reachable(wallet_url: str) -> None:
    """Raises tui.client.HubUnreachable unless a miniloop wallet port answers at `wallet_url`."""
    from tui.client import HubClient

    client = await HubClient.attach(wallet_url)
    await client.close()


def _print_join(join_url: str) -> None:
    """The workshop's join address and its QR code: phones on the LAN scan it to get a wallet."""
    from mobile_sim.qr import ascii_art

    print(f"Workshop: phones on this network scan this code, or open {join_url}")
    print(ascii_art(join_url))


def _run(coro: Any) -> int:
    """Run on uvloop where it exists (it is faster), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _scenario(args: argparse.Namespace) -> int:
    from miniloop.scenario import command

    if args.scenario_command == "list":
        return command.list_scenarios()
    flags = {"data_dir": args.data_dir, "admin_token": args.admin_token}
    settings = config.load({k: v for k, v in flags.items() if v is not None}, args.config)
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    return _run(command.run(args, settings))


def _dfsp(args: argparse.Namespace) -> int:
    from miniloop.scenario import command

    settings = config.load({"data_dir": args.data_dir} if args.data_dir else {}, args.config)
    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(command.reference_dfsp(args, settings))
    except KeyboardInterrupt:
        return 0


def _ledger_check(args: argparse.Namespace) -> int:
    """`miniloop ledger check`: each problem on a line, then a verdict; exit 0 when consistent, 1 if not."""
    from miniloop.ledger.check import check_ledger
    from miniloop.ledger.store import DB_FILE

    if not args.grace >= 0 or args.grace == float("inf"):
        raise MiniloopError(f"--grace must be a number of seconds, 0 or more, not {args.grace}")
    data_dir = config.load({"data_dir": args.data_dir}, args.config).data_dir
    if not (data_dir / DB_FILE).is_file():
        raise MiniloopError(f"no ledger in {data_dir} ({DB_FILE} is not there): give the hub's --data-dir")
    report = check_ledger(data_dir / DB_FILE, grace_s=args.grace)
    if report.ok:
        print(f"ledger check: OK — {report.summary}")
        return 0
    for line in report.problems:
        print(line)
    print(f"ledger check: {report.found:,} problem{'' if report.found == 1 else 's'} — {report.summary}")
    return 1


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
