"""The third-party (3PPI) scenarios over a real demo hub: linking, paying, unlinking, and the
refusals (bad signature 6201, wrong OTP 6203, unsupported scope 6101, revoked consent 6103).

One demo hub serves the module; each scenario links its own accounts and checks the position
changes it causes, so they can run in any order on it.
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

SCENARIOS = ["pisp-link", "pisp-pay", "pisp-unlink", "pisp-bad-signature", "pisp-wrong-otp", "pisp-unsupported-scope"]


@pytest.fixture(scope="module")
def demo(module_hubs: HubLauncher) -> Hub:
    return module_hubs.start()


def run(hub: Hub, scenario: str | Path) -> RunResult:
    return asyncio.run(run_scenario(load(str(scenario)), hub.urls, TerminalProgress(io.StringIO(), color=False)))


def failed(result: RunResult) -> list[str]:
    return [f"{s.number} {s.title}: {s.error or ''} {[c for c in s.checks if not c.ok]}" for s in result.steps if not s.ok]


@pytest.mark.parametrize("name", SCENARIOS)
def test_the_pisp_scenario_passes(demo: Hub, name: str) -> None:
    result = run(demo, name)
    assert result.ok, failed(result)
    assert check_ledger(demo.data_dir / DB_FILE, grace_s=3600).ok


def test_a_pisp_payment_is_verified_by_the_hubs_auth_service(demo: Hub) -> None:
    result = run(demo, "pisp-pay")
    assert result.ok, failed(result)
    link, pay = result.steps
    linking = [(m.method, m.path.split("/")[1]) for m in link.messages if m.path.startswith("/")]
    assert ("POST", "consentRequests") in linking and ("PUT", "consents") in linking
    paid = [m.path for m in pay.messages]
    assert any(p.startswith("/thirdpartyRequests/authorizations") for p in paid), paid
    # the auth-service registered the consent, so the ALS finds centralAuth for it
    consent = link.checks and next(m.path.split("/")[2] for m in link.messages
                                   if m.method == "PUT" and m.path.startswith("/consents/"))
    r = demo.als.get(f"/oracle/participants/CONSENT/{consent}")
    assert r.status_code == 200 and r.json()["partyList"][0]["fspId"] == "centralAuth", r.text


def test_a_pay_step_without_a_link_fails_clearly(demo: Hub, tmp_path: Path) -> None:
    path = tmp_path / "story.toml"
    path.write_text('description = "x"\n\n[[steps]]\nkind = "pisp"\naction = "pay"\nto = "MSISDN/1"\namount = "1"\n')
    result = run(demo, path)
    assert not result.ok and "needs a consent" in (result.steps[0].error or ""), result.steps[0]


def test_an_unknown_pisp_action_is_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "story.toml"
    path.write_text('description = "x"\n\n[[steps]]\nkind = "pisp"\naction = "borrow"\n')
    with pytest.raises(ScenarioError) as refused:
        load(str(path))
    assert "borrow" in str(refused.value) and "\n" not in str(refused.value)
