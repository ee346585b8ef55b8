"""The P2P payment on the seeded demo hub, as a learner runs it: `miniloop scenario run p2p`, and the
simulated wallets' /send API it builds on. Real hub, real simulators, real HTTP on loopback."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Hub, HubLauncher
from sim_api import position


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()



def send(hub: Hub, dfsp: str, order: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{hub.urls['sim']}/{dfsp}/send", json=order, timeout=40)


def test_scenario_p2p_narrates_the_payment_and_moves_positions(demo: Hub, run_cli: Any) -> None:
    """The scenario prints each FSPIOP message of lookup, quote and transfer and the positions."""
    green, blue = position(demo, "greenwallet"), position(demo, "bluewallet")
    result = run_cli("scenario", "run", "p2p", "--data-dir", str(demo.data_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line in ("greenwallet -> hub  GET /parties/MSISDN/27720000001  -> 202",
                 "hub -> greenwallet  PUT /parties/MSISDN/27720000001", "POST /quotes  -> 202", "PUT /quotes/",
                 "POST /transfers  -> 202", "PUT /transfers/", "transferState COMMITTED", "PASS", "Scenario passed."):
        assert line in out, out
    assert position(demo, "greenwallet") == green + 10
    assert position(demo, "bluewallet") == blue - 10


def test_scenario_without_a_running_hub_starts_a_temporary_one(run_cli: Any, tmp_path: Path) -> None:
    result = run_cli("scenario", "run", "p2p", "--data-dir", str(tmp_path / "none"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "temporary demo hub" in result.stdout
    assert "transferState COMMITTED" in result.stdout and "Scenario passed." in result.stdout
    assert not (tmp_path / "none").exists()


def test_scenario_that_fails_exits_non_zero(demo: Hub, run_cli: Any, tmp_path: Path) -> None:
    """An unknown payee: the lookup fails with 3200, the scenario says so and exits 1."""
    scenario = tmp_path / "lost.toml"
    scenario.write_text(
        'description = "to nobody"\n[[steps]]\nkind = "send"\ndfsp = "greenwallet"\nfrom = "27710000001"\n'
        'to = "MSISDN/27799999999"\namount = "1"\n'
    )
    result = run_cli("scenario", "run", str(scenario), "--data-dir", str(demo.data_dir))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "3200" in result.stdout and "Scenario FAILED." in result.stdout


def test_bad_scenario_name_is_one_line(run_cli: Any) -> None:
    result = run_cli("scenario", "run", "nope")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("miniloop: ") and "nope" in result.stderr and "p2p" in result.stderr


def test_send_to_a_merchant_pays_its_fee_rule(demo: Hub) -> None:
    """merchantbank charges a 1 % payee fee in the demo hub: a SEND of 100 leaves 99 for the shop,
    the whole 100 moves between the DFSPs' positions, and the payer's wallet is debited 100."""
    green, merchant = position(demo, "greenwallet"), position(demo, "merchantbank")
    r = send(demo, "greenwallet", {"from": "27710000002", "to": {"idType": "MSISDN", "id": "27730000001"},
                                  "amount": "100", "currency": "USD"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "COMMITTED"
    assert body["quote"]["payeeFspFee"]["amount"] == "1"
    assert body["quote"]["payeeReceiveAmount"]["amount"] == "99"
    assert Decimal(body["balances"]["before"]) - Decimal(body["balances"]["after"]) == 100
    assert position(demo, "greenwallet") == green + 100
    assert position(demo, "merchantbank") == merchant - 100


def test_send_to_a_business_id(demo: Hub) -> None:
    r = send(demo, "bluewallet", {"from": "27720000001", "to": {"idType": "BUSINESS", "id": "CITYTAXI"},
                                 "amount": "12.5", "currency": "USD"})
    assert r.status_code == 200, r.text
    assert r.json()["payee"]["name"] == "City Taxi Co"
