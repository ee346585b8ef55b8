"""The `miniloop` command line: help, version, settings and their precedence, user errors
(exit status 2, one line on stderr), and `reset`."""

from __future__ import annotations

import os
import pty
import re
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import miniloop
import pytest
from conftest import Hub, HubLauncher, live_processes_mentioning

Run = Callable[..., subprocess.CompletedProcess[str]]


def up_args(data_dir: Path, *extra: str, admin_port: str = "0") -> list[str]:
    return ["up", "--data-dir", str(data_dir), "--fspiop-port", "0", "--admin-port", admin_port,
            "--settlement-port", "0", "--als-admin-port", "0", "--sim-port", "0", "--wallet-port", "0", *extra]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """A user error: exit status 2 and exactly one line on stderr, starting "miniloop: "."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("miniloop: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


def assert_nothing_left(data_dir: Path) -> None:
    assert not (data_dir / "hub.json").exists()
    assert live_processes_mentioning(str(data_dir)) == []


# ------------------------------------------------------------------------------- help and version


@pytest.mark.parametrize("args", [["--help"], ["up", "--help"], ["reset", "--help"], ["version", "--help"]],
                         ids=["miniloop", "up", "reset", "version"])
def test_help(run_cli: Run, args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: miniloop")
    if args[0] == "up":
        for flag in ("--data-dir", "--empty", "--hub-file", "--admin-port", "--fspiop-port", "--config"):
            assert flag in result.stdout
    if args[0] == "reset":
        assert "--yes" in result.stdout


def test_version(run_cli: Run) -> None:
    result = run_cli("version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"miniloop {miniloop.__version__}"
    assert re.fullmatch(r"miniloop \d+\.\d+\.\d+\S*", result.stdout.strip())


def test_unknown_command(run_cli: Run) -> None:
    result = run_cli("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


# ------------------------------------------------------------------------------- user errors


def test_port_in_use(run_cli: Run, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(*up_args(data_dir, "--empty", admin_port=str(port)))
    line = one_error_line(result)
    assert str(port) in line
    assert "--admin-port" in line
    assert_nothing_left(data_dir)


def test_unwritable_data_dir(run_cli: Run, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a regular file, not a directory")
    data_dir = tmp_path / "file" / "data"
    line = one_error_line(run_cli(*up_args(data_dir, "--empty")))
    assert "data directory" in line
    assert str(data_dir) in line


@pytest.mark.parametrize(("content", "hint"), [
    pytest.param('currencies = ["USD"\n[[dfsps]]\nname = "x"\n', "TOML", id="bad-toml"),
    pytest.param('currencies = ["USD"]\ncolour = "blue"\n', "colour", id="unknown-field"),
    pytest.param('currencies = ["USD"]\n[[dfsps]]\nname = "bank"\nlimit = 5\n', "limit", id="unknown-dfsp-field"),
    pytest.param('currencies = ["USD"]\n[[dfsps]]\nname = "eurobank"\ncurrency = "EUR"\n', "EUR",
                 id="currency-not-in-currencies"),
    pytest.param('currencies = []\n', "currencies", id="no-currency"),
])
def test_malformed_hub_file(run_cli: Run, tmp_path: Path, content: str, hint: str) -> None:
    check_hub_file_refused(run_cli, tmp_path, content, hint)


def check_hub_file_refused(run_cli: Run, tmp_path: Path, content: str, hint: str) -> None:
    """One line naming the file and the problem, exit 2, nothing written."""
    hub_file = tmp_path / "my-hub.toml"
    hub_file.write_text(content)
    data_dir = tmp_path / "data"
    line = one_error_line(run_cli(*up_args(data_dir, "--hub-file", str(hub_file))))
    assert str(hub_file) in line
    assert hint in line
    assert_nothing_left(data_dir)


# Values the Admin API would refuse must be found before anything is seeded (exit 2, one line
# naming the file).
@pytest.mark.parametrize(("content", "hint"), [
    pytest.param('currencies = ["ABC"]\n', "ABC", id="unknown-currency-code"),
    pytest.param('currencies = ["USD"]\n[[dfsps]]\nname = "bad name"\n', "name", id="invalid-dfsp-name"),
    pytest.param('currencies = ["USD"]\n[[dfsps]]\nname = "bank"\nnet_debit_cap = "lots"\n', "net_debit_cap",
                 id="ndc-not-a-number"),
    pytest.param('currencies = ["USD"]\n[[dfsps]]\nname = "bank"\nfunds_in = "-5"\n', "funds_in",
                 id="negative-funds"),
    pytest.param('currencies = ["USD"]\n[[dfsps]]\nname = "bank"\n'
                 'customers = [{ id = "123", name = "Ann", id_type = "PHONE" }]\n', "id_type",
                 id="unknown-party-id-type"),
])
def test_hub_file_with_values_the_admin_api_refuses(run_cli: Run, tmp_path: Path, content: str, hint: str) -> None:
    check_hub_file_refused(run_cli, tmp_path, content, hint)


# `funds_in = "0"` (a DFSP without funds) crashed the seeding with a traceback before 6d89735.
# Either outcome below is acceptable; a traceback is not.
def test_hub_file_with_a_dfsp_without_funds(hubs: HubLauncher, tmp_path: Path) -> None:
    hub_file = tmp_path / "my-hub.toml"
    hub_file.write_text('currencies = ["USD"]\n[[dfsps]]\nname = "pauper"\nfunds_in = "0"\n')
    hub = hubs.prepare("--hub-file", str(hub_file))
    try:
        hub.start()
    except AssertionError:
        assert hub.process is not None and hub.process.returncode == 2, hub.stderr
        lines = hub.stderr.strip().splitlines()
        assert len(lines) == 1 and str(hub_file) in lines[0], hub.stderr
        return
    assert hub.seeded is True
    assert hub.account_value("pauper") == 0


# Seeding is not one transaction and not resumable: before 6d89735 a start that failed half-way
# left the DFSPs seeded so far in the ledger, and the next start ("not fresh") never seeded the
# rest. Now bad values are refused before anything is written; this keeps it that way.
def test_a_failed_seed_does_not_leave_a_half_seeded_hub(hubs: HubLauncher, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    good = '[[dfsps]]\nname = "firstbank"\n'
    hub_file = tmp_path / "my-hub.toml"
    hub_file.write_text('currencies = ["USD"]\n' + good + '[[dfsps]]\nname = "secondbank"\nnet_debit_cap = "lots"\n')
    broken = hubs.prepare("--hub-file", str(hub_file), data_dir=data_dir)
    try:
        broken.start()
    except AssertionError:
        pass
    else:
        raise AssertionError("a hub file with net_debit_cap = \"lots\" was accepted")
    assert broken.process is not None and broken.process.returncode != 0
    assert live_processes_mentioning(str(data_dir)) == []

    hub_file.write_text('currencies = ["USD"]\n' + good + '[[dfsps]]\nname = "secondbank"\nnet_debit_cap = "5000"\n')
    hub = hubs.start("--hub-file", str(hub_file), data_dir=data_dir)
    for name in ("firstbank", "secondbank"):
        r = hub.admin.get(f"/participants/{name}/limits")
        assert r.status_code == 200, r.text
        assert r.json() and r.json()[0]["limit"]["value"] > 0, (name, r.json())
        assert hub.account_value(name) < 0, name


# A hub file that seeding would refuse is refused before anything is written, so the next start
# does not find a half-seeded ledger.
@pytest.mark.parametrize("content", [
    pytest.param('currencies = ["USD"]\n[[settlement_models]]\ncurrency = "EUR"\n[[dfsps]]\nname = "bank"\n',
                 id="model-currency-not-in-currencies"),
    pytest.param('currencies = ["USD"]\n[[dfsps]]\nname = "okbank"\n[[dfsps]]\nname = "Hub"\n',
                 id="dfsp-named-hub"),
])
def test_hub_file_refused_before_anything_is_written(hubs: HubLauncher, run_cli: Run, tmp_path: Path,
                                                     content: str) -> None:
    hub_file = tmp_path / "my-hub.toml"
    hub_file.write_text(content)
    data_dir = tmp_path / "data"
    line = one_error_line(run_cli(*up_args(data_dir, "--hub-file", str(hub_file))))
    assert str(hub_file) in line
    assert_nothing_left(data_dir)
    if data_dir.exists():  # whatever was created, the ledger must still be fresh
        hub = hubs.start(empty=True, data_dir=data_dir)
        assert [(p["name"], p["accounts"]) for p in hub.admin.get("/participants").json()] == [("Hub", []), ("centralAuth", [])]


def test_failed_seed_then_reset_then_a_corrected_file(hubs: HubLauncher, run_cli: Run, tmp_path: Path) -> None:
    """The way out the error message gives: fix the file, `miniloop reset`, start again."""
    hub_file = tmp_path / "my-hub.toml"
    hub_file.write_text('currencies = ["USD"]\n[[dfsps]]\nname = "okbank"\n[[dfsps]]\nname = "Hub"\n')
    data_dir = tmp_path / "data"
    line = one_error_line(run_cli(*up_args(data_dir, "--hub-file", str(hub_file))))
    assert str(hub_file) in line
    hub_file.write_text('currencies = ["USD"]\n[[dfsps]]\nname = "okbank"\n[[dfsps]]\nname = "otherbank"\n')
    if data_dir.exists():
        assert run_cli("reset", "--yes", "--data-dir", str(data_dir)).returncode == 0
    hub = hubs.start("--hub-file", str(hub_file), data_dir=data_dir)
    assert hub.seeded is True
    assert [p["name"] for p in hub.admin.get("/participants").json()] == ["Hub", "okbank", "otherbank", "centralAuth"]


def test_missing_hub_file(run_cli: Run, tmp_path: Path) -> None:
    hub_file = tmp_path / "nowhere.toml"
    line = one_error_line(run_cli(*up_args(tmp_path / "data", "--hub-file", str(hub_file))))
    assert str(hub_file) in line


def test_bad_environment_variable(run_cli: Run, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = run_cli("up", "--data-dir", str(data_dir), "--empty", env={"MINILOOP_ADMIN_PORT": "abc"})
    line = one_error_line(result)
    assert "MINILOOP_ADMIN_PORT" in line
    assert_nothing_left(data_dir)


def test_bad_boolean_environment_variable(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli(*up_args(tmp_path / "data"), env={"MINILOOP_EMPTY": "maybe"})
    assert "MINILOOP_EMPTY" in one_error_line(result)


@pytest.mark.parametrize("port", ["70000", "-1", "abc"])
def test_port_flag_out_of_range(run_cli: Run, tmp_path: Path, port: str) -> None:
    """A bad flag is argparse's usage error (exit 2, naming the flag), never a traceback."""
    data_dir = tmp_path / "data"
    result = run_cli(*up_args(data_dir, "--empty", admin_port=port))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "--admin-port" in result.stderr.strip().splitlines()[-1]
    assert_nothing_left(data_dir)


def test_port_environment_variable_out_of_range(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("up", "--data-dir", str(tmp_path / "data"), "--empty", env={"MINILOOP_ADMIN_PORT": "70000"})
    assert "MINILOOP_ADMIN_PORT" in one_error_line(result)


# log_level from the environment or a settings file was not checked before 6d89735 (a traceback).
def test_bad_log_level_environment_variable(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli(*up_args(tmp_path / "data", "--empty"), env={"MINILOOP_LOG_LEVEL": "loud"})
    assert "MINILOOP_LOG_LEVEL" in one_error_line(result)


def test_settings_file_with_an_unknown_key(run_cli: Run, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("admin_prot = 3001\n")
    line = one_error_line(run_cli(*up_args(tmp_path / "data", "--empty", "--config", str(settings))))
    assert "admin_prot" in line
    assert str(settings) in line


def test_settings_file_from_the_environment_with_a_bad_value(run_cli: Run, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('admin_port = "lots"\n')
    result = run_cli("up", "--data-dir", str(tmp_path / "data"), "--empty", env={"MINILOOP_CONFIG": str(settings)})
    line = one_error_line(result)
    assert str(settings) in line and "admin_port" in line


def test_user_settings_file_is_read(run_cli: Run, cli_env: dict[str, str], tmp_path: Path) -> None:
    """The per-user config.toml ($XDG_CONFIG_HOME/miniloop/config.toml) is used when it exists."""
    user_file = Path(cli_env["XDG_CONFIG_HOME"]) / "miniloop" / "config.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("no_such_setting = 1\n")
    line = one_error_line(run_cli(*up_args(tmp_path / "data", "--empty")))
    assert "no_such_setting" in line


def test_missing_settings_file(run_cli: Run, tmp_path: Path) -> None:
    settings = tmp_path / "absent.toml"
    line = one_error_line(run_cli(*up_args(tmp_path / "data", "--config", str(settings))))
    assert str(settings) in line


# ------------------------------------------------------------------------------- precedence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_environment_beats_settings_file(hubs: HubLauncher, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("empty = true\n")
    hub = hubs.start("--config", str(settings), env={"MINILOOP_EMPTY": "false"})
    assert hub.seeded is True
    assert len(hub.admin.get("/participants").json()) > 1


def test_settings_file_applies_without_flag_or_environment(hubs: HubLauncher, tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("empty = true\n")
    hub = hubs.start(env={"MINILOOP_CONFIG": str(settings)})
    assert hub.seeded is False
    assert [p["name"] for p in hub.admin.get("/participants").json()] == ["Hub", "centralAuth"]


def test_flag_beats_environment(hubs: HubLauncher) -> None:
    hub = hubs.start(empty=True, env={"MINILOOP_EMPTY": "false"})
    assert hub.seeded is False
    assert [p["name"] for p in hub.admin.get("/participants").json()] == ["Hub", "centralAuth"]


def test_port_flag_beats_environment_and_settings_file(hubs: HubLauncher, tmp_path: Path) -> None:
    port_in_file, port_in_env = free_port(), free_port()
    settings = tmp_path / "settings.toml"
    settings.write_text(f"fspiop_port = {port_in_file}\nadmin_port = {port_in_file}\n")
    hub = hubs.start("--config", str(settings), empty=True, env={"MINILOOP_FSPIOP_PORT": str(port_in_env)})
    fspiop_port = int(hub.urls["fspiop"].rsplit(":", 1)[1])
    assert fspiop_port not in (port_in_file, port_in_env)
    admin_port = int(hub.urls["admin"].rsplit(":", 1)[1])
    assert admin_port != port_in_file


# ------------------------------------------------------------------------------- reset


@pytest.fixture(scope="module")
def stopped_hub_template(module_hubs: HubLauncher) -> Path:
    """The data directory of a hub that ran and was stopped (copied by each test that deletes it)."""
    hub = module_hubs.start(empty=True)
    assert hub.stop() == 0
    assert (hub.data_dir / "miniloop.db").is_file()
    assert not (hub.data_dir / "hub.json").exists()
    return hub.data_dir


@pytest.fixture
def stopped_hub_dir(stopped_hub_template: Path, tmp_path: Path) -> Path:
    data_dir = tmp_path / "hubdata"
    shutil.copytree(stopped_hub_template, data_dir)
    return data_dir


def test_reset_yes_deletes_a_stopped_hub(run_cli: Run, stopped_hub_dir: Path) -> None:
    data_dir = stopped_hub_dir
    result = run_cli("reset", "--yes", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    assert not data_dir.exists()


def test_reset_without_yes_and_no_tty_deletes_nothing(run_cli: Run, stopped_hub_dir: Path) -> None:
    data_dir = stopped_hub_dir
    files = sorted(p.name for p in data_dir.iterdir())
    line = one_error_line(run_cli("reset", "--data-dir", str(data_dir)))
    assert "--yes" in line
    assert sorted(p.name for p in data_dir.iterdir()) == files


def test_reset_while_the_hub_runs_is_refused(hubs: HubLauncher, run_cli: Run, tmp_path: Path) -> None:
    data_dir = tmp_path / "running"
    hub = hubs.start(empty=True, data_dir=data_dir)
    one_error_line(run_cli("reset", "--yes", "--data-dir", str(data_dir)))
    assert (data_dir / "miniloop.db").is_file()
    assert (data_dir / "hub.json").is_file()
    assert hub.running
    assert hub.admin.get("/participants").status_code == 200


def test_reset_refuses_a_directory_that_is_not_a_hub(run_cli: Run, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    one_error_line(run_cli("reset", "--yes", "--data-dir", str(precious)))
    assert (precious / "thesis.txt").read_text() == "do not delete"


# `reset` on a path that is a file: one line, exit status 2, the file left alone.
def test_reset_of_a_path_that_is_a_file(run_cli: Run, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    one_error_line(run_cli("reset", "--yes", "--data-dir", str(path)))
    assert path.read_text() == "keep me"


@pytest.mark.parametrize(("answer", "deleted"), [("n", False), ("", False), ("y", True)])
def test_reset_asks_on_a_terminal(run_cli: Run, stopped_hub_dir: Path, answer: str, deleted: bool) -> None:
    data_dir = stopped_hub_dir
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode() + b"\n")
        result = run_cli("reset", "--data-dir", str(data_dir), stdin=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert "Delete everything" in result.stdout
    assert data_dir.exists() is not deleted
    assert result.returncode == (0 if deleted else 1), result.stderr


def test_reset_of_a_missing_directory(run_cli: Run, tmp_path: Path) -> None:
    result = run_cli("reset", "--yes", "--data-dir", str(tmp_path / "never-created"))
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "never-created").exists()


# ------------------------------------------------------------------------------- running a hub


def test_plain_miniloop_is_miniloop_up_configured_by_the_environment(tmp_path: Path, cli_env: dict[str, str]) -> None:
    data_dir = tmp_path / "envdata"
    admin_port = free_port()
    env = {**cli_env, "MINILOOP_DATA_DIR": str(data_dir), "MINILOOP_EMPTY": "true",
           "MINILOOP_FSPIOP_PORT": "0", "MINILOOP_ADMIN_PORT": str(admin_port), "MINILOOP_SETTLEMENT_PORT": "0",
           "MINILOOP_ALS_ADMIN_PORT": "0", "MINILOOP_SIM_PORT": "0"}
    hub = Hub(data_dir, [], env, tmp_path / "logs", command=())
    try:
        hub.start()
        assert hub.urls["admin"] == f"http://127.0.0.1:{admin_port}"
        assert hub.seeded is False
        assert [p["name"] for p in hub.admin.get("/participants").json()] == ["Hub", "centralAuth"]
        assert hub.stop() == 0
    finally:
        hub.cleanup()


def test_custom_hub_file_is_seeded(hubs: HubLauncher, tmp_path: Path) -> None:
    hub_file = tmp_path / "two-currencies.toml"
    hub_file.write_text("""
currencies = ["USD", "EUR"]

[[dfsps]]
name = "dollarbank"
net_debit_cap = "1500"
funds_in = "2500.25"
callback_url = "http://dollarbank.example:4040/fspiop"
customers = [{ id = "alice@example.com", name = "Alice", id_type = "EMAIL" }]

[[dfsps]]
name = "eurobank"
currency = "EUR"
net_debit_cap = "700"
funds_in = "900"
""")
    hub = hubs.start("--hub-file", str(hub_file))
    assert hub.seeded is True
    assert [p["name"] for p in hub.admin.get("/participants").json()] == ["Hub", "dollarbank", "eurobank", "centralAuth"]
    hub_accounts = {(a["ledgerAccountType"], a["currency"]) for a in hub.admin.get("/participants/Hub").json()["accounts"]}
    assert {("HUB_RECONCILIATION", "USD"), ("HUB_RECONCILIATION", "EUR"),
            ("HUB_MULTILATERAL_SETTLEMENT", "USD"), ("HUB_MULTILATERAL_SETTLEMENT", "EUR")} <= hub_accounts
    assert sorted(m["currency"] for m in hub.admin.get("/settlementModels").json()) == ["EUR", "USD"]

    assert hub.account_value("dollarbank", currency="USD") == -2500.25
    assert hub.account_value("eurobank", currency="EUR") == -900
    assert hub.admin.get("/participants/limits").json() == [
        {"name": "dollarbank", "currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": 1500, "alarmPercentage": 10}},
        {"name": "eurobank", "currency": "EUR", "limit": {"type": "NET_DEBIT_CAP", "value": 700, "alarmPercentage": 10}},
    ]
    r = hub.admin.get("/participants/dollarbank/endpoints", params={"type": "FSPIOP_CALLBACK_URL_TRANSFER_PUT"})
    assert r.json()["value"] == "http://dollarbank.example:4040/fspiop/transfers/{{transferId}}"
    # CONSENT and THIRD_PARTY_LINK are the hub's own (docs/thirdparty.md); the file asked for EMAIL
    assert [o["oracleIdType"] for o in hub.als.get("/oracles").json()
            if o["oracleIdType"] not in ("CONSENT", "THIRD_PARTY_LINK")] == ["EMAIL"]
