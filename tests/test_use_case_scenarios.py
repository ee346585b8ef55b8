"""The use-case scenarios (issue 7) over a real demo hub: each bundled scenario passes, and the
wire shows the FSPIOP messages its use case is about.

One demo hub serves the module; the scenarios check the position changes they cause themselves,
so they can run in any order on it. Malformed steps of the new kinds are refused at load.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from conftest import Hub, HubLauncher

from miniloop.ledger.check import check_ledger
from miniloop.ledger.store import DB_FILE
from miniloop.scenario.engine import run_scenario
from miniloop.scenario.loading import ScenarioError, load
from miniloop.scenario.report.terminal import TerminalProgress
from miniloop.scenario.results import RunResult

USE_CASES = ["merchant-pay", "merchant-request-to-pay-otp", "merchant-qr", "cash-in", "cash-out", "atm-cash-out",
             "refund", "payee-rejects", "wrong-otp", "request-expired", "customer-declines"]


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


def run(hub: Hub, scenario: str | Path) -> tuple[RunResult, str]:
    out = io.StringIO()
    result = asyncio.run(run_scenario(load(str(scenario)), hub.urls, TerminalProgress(out, color=False)))
    return result, out.getvalue()


def failed(result: RunResult) -> list[str]:
    return [f"{s.number} {s.title}: {s.error or ''} {[c for c in s.checks if not c.ok]}" for s in result.steps if not s.ok]


def wire(result: RunResult) -> list[str]:
    return [f"{m.method} {m.path.split('?')[0].rsplit('/', 1)[0] if m.path.count('/') > 1 else m.path}"
            for s in result.steps for m in s.messages]


@pytest.mark.parametrize("name", USE_CASES)
def test_the_use_case_scenario_passes(demo: Hub, name: str) -> None:
    result, _ = run(demo, name)
    assert result.ok, failed(result)
    assert check_ledger(demo.data_dir / DB_FILE, grace_s=3600).ok


def test_a_request_to_pay_goes_through_transaction_request_quote_authorization_transfer(demo: Hub) -> None:
    result, _ = run(demo, "merchant-request-to-pay-otp")
    assert result.ok, failed(result)
    seen = wire(result)
    order = ["POST /transactionRequests", "POST /quotes", "GET /authorizations", "POST /transfers"]
    assert [m for m in seen if m in order] == order, seen


def test_a_wrong_otp_is_asked_for_three_times_then_rejected(demo: Hub) -> None:
    result, _ = run(demo, "wrong-otp")
    assert result.ok, failed(result)
    asked = [m.path for s in result.steps for m in s.messages if m.method == "GET" and "/authorizations/" in m.path]
    assert [p.split("retriesLeft=")[1].split("&")[0] for p in asked] == ["3", "2", "1"], asked
    assert not any(m.method == "POST" and m.path == "/transfers" for s in result.steps for m in s.messages)


def test_the_qr_code_is_shown_and_paid(demo: Hub) -> None:
    result, shown = run(demo, "merchant-qr")
    assert result.ok, failed(result)
    assert "shows a QR code: mlqr:1?fsp=merchantbank" in shown and "█" in shown


def test_a_refund_names_the_purchase_it_refunds(demo: Hub) -> None:
    result, _ = run(demo, "refund")
    assert result.ok, failed(result)
    purchase, refund = result.steps
    paid = [m.body for m in purchase.messages if m.method == "POST" and m.path == "/quotes"]
    quotes = [m.body for m in refund.messages if m.method == "POST" and m.path == "/quotes"]
    assert quotes and quotes[0]["transactionType"]["scenario"] == "REFUND", quotes
    assert quotes[0]["transactionType"]["refundInfo"]["originalTransactionId"] == paid[0]["transactionId"]


def test_the_bulk_payroll_pays_a_thousand_people_in_two_bulks(demo: Hub) -> None:
    result, shown = run(demo, "bulk-payroll")
    assert result.ok, failed(result)
    bulks = [m for s in result.steps for m in s.messages if m.method == "POST" and m.path == "/bulkTransfers"]
    assert len(bulks) == 2, wire(result)
    assert "1000 of 1000 paid" in shown
    assert check_ledger(demo.data_dir / DB_FILE, grace_s=3600).ok


# ------------------------------------------------------------------------------ refused at load

HEADER = 'description = "x"\n\n[dfsps.merchantbank]\nplayed_by = "simulator"\n\n[[steps]]\n'


@pytest.mark.parametrize("step, what", [
    ('kind = "send"\ndfsp = "merchantbank"\nfrom = "1"\nto = "MSISDN/2"\namount = "3"\nuse_case = "refund"\n',
     "refund_of"),
    ('kind = "send"\ndfsp = "merchantbank"\nfrom = "1"\nto = "MSISDN/2"\namount = "3"\nuse_case = "gift"\n',
     "use_case"),
    ('kind = "bulk_pay"\ndfsp = "merchantbank"\nfrom = "1"\n', "employees or payments"),
    ('kind = "bulk_pay"\ndfsp = "merchantbank"\nfrom = "1"\nemployees = { merchantbank = 0 }\n', "1 to 5000"),
    ('kind = "request_to_pay"\ndfsp = "merchantbank"\nfrom = "1"\npayer = "MSISDN/2"\namount = "1.23456"\n',
     "amount"),
    ('kind = "pay_qr"\nmerchant_dfsp = "merchantbank"\nmerchant = "1"\ndfsp = "merchantbank"\nfrom = "2"\n'
     'otp = "1"\n', "otp"),
])
def test_a_malformed_use_case_step_is_refused_at_load(tmp_path: Path, step: str, what: str) -> None:
    path = tmp_path / "story.toml"
    path.write_text(HEADER + step)
    with pytest.raises(ScenarioError) as refused:
        load(str(path))
    assert what in str(refused.value), str(refused.value)
    assert str(refused.value).count("\n") == 0


def test_a_scenario_can_expect_the_simulator_to_refuse_an_order(demo: Hub, tmp_path: Path) -> None:
    """A refund of a payment that never happened is refused by the shop's DFSP itself (3207);
    a scenario says so with expect.state = "REFUSED", and nothing moves."""
    path = tmp_path / "story.toml"
    path.write_text(HEADER + '''kind = "send"
dfsp = "merchantbank"
from = "27730000001"
to = "MSISDN/27710000001"
amount = "5"
use_case = "refund"
refund_of = "4f0c2a47-6b1e-4d83-9b6e-2c1a6c1a0f00"
expect.state = "REFUSED"
expect.error_code = "3207"
expect.positions = { merchantbank = "0" }
''')
    result, _ = run(demo, path)
    assert result.ok, failed(result)
