"""Fuzzing the sim port (the simulated DFSPs' FSPIOP endpoints and driving API) and the wallet port
of a demo hub with schemathesis, driven by their own descriptions (GET /openapi.json,
mobile_sim.openapi), with tests/test_fuzz.py's machinery and promises:

- never a 5xx, but a 502 or 504 where the description says a driving call's flow answers so
  (failed downstream, deadline passed), with a body saying what happened;
- every 4xx the FSPIOP error body with a code that fits the status (a 404 also one of the "ID not
  found" codes; the DFSP's login page for people may refuse with a page);
- afterwards no traceback in the hub's log (a message worked on in the background failed), and
  `miniloop ledger check` finds the books consistent.

What the cases are made of, so that they reach the flows and stay short:

- positive cases often name real customers: `from` one of the DFSP's, `to` and `payer` one of
  another DFSP's, so payments, requests to pay, QR codes and bulk payments really run;
- a flow's `timeoutSeconds` is at most SHORT_S, a /customers/generate's `count` at most
  GENERATE_MOST, so no case waits long (the code bounds them anyway: 300 s, 600 s, 5,000);
- a fault set with PUT /{dfsp}/faults is taken back at once (a DFSP left down or silent would make
  every later case about it wait or fail), and /api/events (a stream that never ends) is not fuzzed.

Longer: `MINILOOP_FUZZ_EXAMPLES=100 MINILOOP_FUZZ_REPORT=report.txt pytest tests/test_fuzz_sim.py`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from typing import Any

import httpx
import pytest

from mobile_sim.fspiop_client import SwitchClient
from tests.test_fuzz import STATUS_CODES, TIMEOUT_S, fuzz, ledger_check

pytest.importorskip("schemathesis")
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

SHORT_S = 3  # the longest deadline a fuzzed flow gets
GENERATE_MOST = 20  # the most customers a fuzzed /customers/generate makes
# the driving API's 404s also name what was not found: a party (3204), a transaction request
# (3206), a transaction (3207), a transfer (3208)
CODES = {**STATUS_CODES, 404: {"3002", "3204", "3206", "3207", "3208"}}
SIM_PARTS = 2  # the sim port has ~100 operations: in parts, so that xdist can share them out


@pytest.fixture(scope="module")
def hub(module_hubs: Any) -> Any:
    return module_hubs.start()


class Cases:
    """What the sim's cases are changed with: the demo hub's customers, and the faults to take back."""

    def __init__(self, hub: Any) -> None:
        self.sim = hub.urls["sim"]
        dfsps = [d["name"] for d in httpx.get(f"{self.sim}/dfsps", timeout=TIMEOUT_S).json()]
        self.customers = {d: [c["id"] for c in httpx.get(f"{self.sim}/{d}/customers", timeout=TIMEOUT_S).json()]
                          for d in dfsps}

    def adjust(self, case: Any, data: Any, mode: Any) -> None:
        body = case.body
        if mode != GenerationMode.POSITIVE or not isinstance(body, dict):
            return
        dfsp = (case.path_parameters or {}).get("dfsp")
        others = [c for d, ids in self.customers.items() if d != dfsp for c in ids]
        if "from" in body and dfsp in self.customers and data.draw(st.integers(0, 3)):
            body["from"] = data.draw(st.sampled_from(self.customers[dfsp]))
        if isinstance(body.get("to"), dict) and others and data.draw(st.booleans()):
            body["to"] = {"idType": "MSISDN", "id": data.draw(st.sampled_from(others))}
        if "payer" in body and others and data.draw(st.booleans()):
            body["payer"] = "MSISDN/" + data.draw(st.sampled_from(others))
        if isinstance(body.get("timeoutSeconds"), (int, float)) and body["timeoutSeconds"] > SHORT_S:
            body["timeoutSeconds"] = data.draw(st.integers(1, SHORT_S))
        elif "timeoutSeconds" not in body and case.path.endswith(("/send", "/payQr", "/requestToPay", "/bulkPay",
                                                                   "/generate", "/link", "/pay", "/unlink")):
            body["timeoutSeconds"] = SHORT_S
        if case.path.endswith("/generate") and isinstance(body.get("count"), int):
            body["count"] = min(body["count"], GENERATE_MOST)

    def after(self, case: Any) -> None:
        if case.method.upper() == "PUT" and case.path.endswith("/faults"):
            dfsp = (case.path_parameters or {}).get("dfsp")
            if dfsp in self.customers:
                httpx.put(f"{self.sim}/{dfsp}/faults", json={"mode": "normal"}, timeout=TIMEOUT_S)


def _run(hub: Any, name: str, part: int, parts: int, least: int, **how: Any) -> None:
    started = time.monotonic()
    outcomes: Counter[str] = Counter()
    tried, problems = fuzz(hub, name, part, parts, outcomes, **how)
    total = sum(tried.values())
    summary = (f"{name} {part + 1}/{parts}: {total} requests over {len(tried)} operations "
               f"in {time.monotonic() - started:.1f} s, {len(problems)} problems")
    report = os.environ.get("MINILOOP_FUZZ_REPORT")
    if report:
        with open(report, "a") as out:
            out.write(summary + "\n  answers: " + ", ".join(f"{k}: {v}" for k, v in outcomes.most_common()) + "\n"
                      + "".join(f"  {p}\n" for p in problems))
    assert not problems, "\n\n".join(problems)
    assert len(tried) >= least // parts, summary
    assert "Traceback" not in hub.stderr, hub.stderr[-3000:]  # nothing failed in the background either
    checked = ledger_check(hub)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("part", range(SIM_PARTS))
def test_fuzz_sim(hub: Any, part: int) -> None:
    cases = Cases(hub)
    _run(hub, "sim", part, SIM_PARTS, 95, skip=("/metrics",), adjust=cases.adjust, after=cases.after,
         codes=CODES)


def test_fuzz_wallet(hub: Any) -> None:
    _run(hub, "wallet", 0, 1, 15, skip=("/metrics", "/api/events"), codes=CODES)


# --------------------------------------------------------------------------- what fuzzing found


def _code(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["errorInformation"]["errorCode"]


def test_ids_an_http_request_cannot_carry_are_refused(hub: Any) -> None:
    """Found by fuzzing: a payer "\\b" (a control character) passed the id check, and aiohttp
    refused to send GET /parties/MSISDN/\\b: 500. Ids must now be printable (400 3100)."""
    sim = hub.urls["sim"]
    refused = [
        httpx.post(f"{sim}/bluewallet/requestToPay", timeout=TIMEOUT_S,
                   json={"amount": 1, "from": "27720000001", "payer": "\b", "timeoutSeconds": 3}),
        httpx.post(f"{sim}/greenwallet/send", timeout=TIMEOUT_S,
                   json={"from": "27710000001", "to": {"id": "2772\x080001"}, "amount": "1", "timeoutSeconds": 3}),
        httpx.post(f"{sim}/greenwallet/bulkPay", timeout=TIMEOUT_S,
                   json={"from": "27710000001", "payments": [{"to": "MSISDN/\u2028", "amount": "1"}]}),
    ]
    assert [_code(answer) for answer in refused] == [(400, "3100")] * 3, [a.text for a in refused]
    # and a path the simulator's client cannot send is a failed request (1000), never an exception
    client = SwitchClient(hub.urls["fspiop"])

    async def lookup() -> Any:
        await client.open()
        try:
            return await client.send("GET", "/parties/MSISDN/\b", None, source="greenwallet", destination=None)
        finally:
            await client.close()

    answer = asyncio.run(lookup())
    assert answer.status == 0 and answer.error is not None and answer.error["errorInformation"]["errorCode"] == "1000"
