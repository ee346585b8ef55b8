"""Running a scenario: payments made by simulated DFSPs' customers over the real stack, narrated.

A scenario file (TOML, in this folder or anywhere) lists steps; each step has a simulated DFSP's
customer send money through the simulator's /send API (mobile_sim.send), which does what a real
DFSP does: GET /parties, POST /quotes, POST /transfers, each answered by a callback through the
hub. The runner prints every FSPIOP message with the time it happened, and the DFSPs' positions
before and after, so a learner sees the whole journey and its effect on the ledger.

The hub is the one running on the data directory (its hub.json), or, when none runs there, a
temporary demo hub started in this process and stopped at the end.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import aiohttp
import msgspec

from miniloop.errors import ConfigError
from scenarios import FOLDER

HTTP_TIMEOUT_S = 60.0


class Step(msgspec.Struct, forbid_unknown_fields=True, rename={"from_": "from"}):
    dfsp: str
    from_: str
    to: dict[str, str]
    amount: str
    currency: str
    amount_type: str = "SEND"
    note: str | None = None
    expect: str = "COMMITTED"


class Scenario(msgspec.Struct, forbid_unknown_fields=True):
    description: str
    steps: list[Step]


def available() -> list[str]:
    return sorted(p.stem for p in FOLDER.glob("*.toml"))


def load(name: str) -> Scenario:
    """A scenario by name (a file in this folder) or by path; ConfigError says what is wrong."""
    path = Path(name)
    if not path.suffix:
        path = FOLDER / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"no scenario {name!r}: choose one of {', '.join(available())} or give a .toml file")
    try:
        return msgspec.convert(tomllib.loads(path.read_text()), Scenario)
    except (tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"scenario file {path}: {exc}") from None


def running_hub(data_dir: Path) -> dict[str, str] | None:
    """The URLs of the hub running on `data_dir`, if one is."""
    try:
        info = json.loads((data_dir / "hub.json").read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info["urls"]


@dataclass
class Narrator:
    out: TextIO
    verbose: bool = False

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def message(self, m: dict[str, Any], dfsp: str) -> None:
        outgoing = m["direction"] == "out"
        sender = dfsp if outgoing else m.get("source") or "?"
        receiver = "hub" if outgoing else dfsp
        via = "" if outgoing or sender == "Hub" else f"   (from {sender}, through the hub)"
        if not outgoing:
            sender = "hub"
        status = f"  -> {m['status']}" if m.get("status") is not None else ""
        self.line(f"  {m['elapsedMs']:8.1f} ms  {sender:>12} -> {receiver:<12} {m['method']:<5} {m['path']}{status}{via}")
        summary = _summary(m.get("body"))
        if summary:
            self.line(f"  {'':11}  {summary}")
        if self.verbose and m.get("body") is not None:
            for text in json.dumps(m["body"], indent=2).splitlines():
                self.line(f"  {'':11}    {text}")


def _summary(body: Any) -> str:
    """The fields of a message a learner looks at first."""
    if not isinstance(body, dict):
        return ""
    if "errorInformation" in body:
        info = body["errorInformation"]
        return f"error {info.get('errorCode')}: {info.get('errorDescription')}"
    if "party" in body:
        party = body["party"]
        return f"party {party.get('name') or ''} at {party.get('partyIdInfo', {}).get('fspId')}"
    parts = []
    for key in ("transferAmount", "payeeFspFee", "payeeReceiveAmount", "amount"):
        if isinstance(body.get(key), dict):
            parts.append(f"{key} {body[key].get('amount')} {body[key].get('currency')}")
    for key in ("transferState", "expiration"):
        if key in body:
            parts.append(f"{key} {body[key]}")
    return ", ".join(parts)


async def run(scenario: Scenario, urls: dict[str, str], narrator: Narrator) -> bool:
    """Run every step; True if each ended as expected."""
    narrator.line(f"Scenario: {scenario.description}")
    ok = True
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)) as http:
        for number, step in enumerate(scenario.steps, 1):
            ok = await _run_step(http, urls, number, step, narrator) and ok
    narrator.line("Scenario passed." if ok else "Scenario FAILED.")
    return ok


async def _run_step(http: aiohttp.ClientSession, urls: dict[str, str], number: int, step: Step,
                    narrator: Narrator) -> bool:
    to = " ".join(v for v in (step.to.get("idType"), step.to.get("id"), step.to.get("subId")) if v)
    narrator.line()
    narrator.line(f"Step {number}: {step.dfsp} customer {step.from_} sends {step.amount} {step.currency} to {to}")
    dfsps = [d["name"] for d in await _get(http, f"{urls['sim']}/dfsps")]
    if step.dfsp not in dfsps:
        narrator.line(f"  {step.dfsp} is not a simulated DFSP of this hub (those are: {', '.join(dfsps)})")
        return False
    before = {name: await _position(http, urls, name, step.currency) for name in dfsps}
    order: dict[str, Any] = {"from": step.from_, "to": step.to, "amount": step.amount, "currency": step.currency,
                             "amountType": step.amount_type}
    if step.note:
        order["note"] = step.note
    async with http.post(f"{urls['sim']}/{step.dfsp}/send", json=order) as response:
        result = json.loads(await response.text(), parse_float=Decimal)
    if "messages" not in result:  # refused before anything was sent
        info = result.get("errorInformation", {})
        narrator.line(f"  refused: {info.get('errorCode')} {info.get('errorDescription')}")
        return False
    for message in result["messages"]:
        narrator.message(message, step.dfsp)
    after = {name: await _position(http, urls, name, step.currency) for name in dfsps}
    state = result.get("state")
    error = result.get("error")
    narrator.line(f"  result: {state}" + (f" ({error.get('errorCode')}: {error.get('errorDescription')})" if error else ""))
    balances = result.get("balances") or {}
    if balances:
        narrator.line(f"  payer's wallet balance: {balances.get('before')} -> {balances.get('after')} {step.currency}")
    narrator.line("  positions (what each DFSP owes the scheme):")
    for name in dfsps:
        change = after[name] - before[name]
        shown = f"{_plain(before[name])} -> {_plain(after[name])} {step.currency}"
        narrator.line(f"    {name:<14} {shown:<28}" + (f" ({_plain(change):+})" if change else ""))
    if state != step.expect:
        narrator.line(f"  expected {step.expect}, got {state}")
        return False
    return True


def _plain(value: Decimal) -> Decimal:
    """50.50 -> 50.5, 10.00 -> 10: amounts as FSPIOP writes them."""
    return value.normalize() if value != value.to_integral() else value.quantize(Decimal(1))


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        if response.status != 200:
            raise ConfigError(f"{url} answered {response.status}")
        return json.loads(await response.text(), parse_float=Decimal)  # money is never a float


async def _position(http: aiohttp.ClientSession, urls: dict[str, str], name: str, currency: str) -> Decimal:
    found = await _get(http, f"{urls['admin']}/participants/{name}/positions?currency={currency}")
    value = found.get("value", 0) if isinstance(found, dict) else 0
    return Decimal(value)
