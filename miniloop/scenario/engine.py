"""Running a scenario: set the DFSPs up, run the steps in order, audit each DFSP under test.

Why it works this way: a scenario is a story told against a real hub over real HTTP, and the same
story serves a trainer (simulated DFSPs, narrated) and a fintech (its own DFSP in one role, every
message checked against the specification). So a run

1. resolves the roles of the file: DFSPs the engine plays itself (a recorder answers their
   callbacks), simulated DFSPs of the demo hub, the reference DFSP started in this process, or an
   external DFSP (`--dfsp NAME=URL`), which the hub reaches through the engine's recording proxy;
2. onboards the DFSPs it plays or tests (participant, NDC, funds, endpoints, parties) on the hub,
   reusing what is already there, so a run can be repeated on the same hub;
3. runs each step (miniloop.scenario.steps), one at a time, each wait bounded;
4. audits every message to or from a DFSP under test against miniloop.scenario.rules.

Nothing here prints: a `progress` object (miniloop.scenario.report.terminal) is told what happens.
"""

from __future__ import annotations

import ssl
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from miniloop.fspiop.endpoints import for_base_url
from miniloop.scenario import format as fmt
from miniloop.scenario import rules, steps
from miniloop.scenario.loading import Loaded, ScenarioError
from miniloop.scenario.results import HUB, Check, Message, Participant, RunResult, StepResult
from miniloop.scenario.values import Context, resolve
from miniloop.scenario.wire import Wire

UNDER_TEST = ("external", "reference")
LATE_ANSWER_GRACE_S = 3.0  # after a transfer expired: how long to wait for the payee's late fulfil


class Progress(Protocol):
    def run_started(self, run: RunResult) -> None: ...
    def step_started(self, number: int, total: int, title: str) -> None: ...
    def message(self, msg: Message) -> None: ...
    def step_finished(self, result: StepResult) -> None: ...
    def run_finished(self, run: RunResult) -> None: ...


class SetupError(Exception):
    """The run could not start: a DFSP could not be onboarded, a role is missing ..."""


class Run:
    """One run of one scenario against one hub."""

    def __init__(self, loaded: Loaded, urls: dict[str, str], progress: Progress,
                 externals: dict[str, str] | None = None, admin_token: str | None = None,
                 hub_ssl: ssl.SSLContext | None = None) -> None:
        self.scenario = loaded.scenario
        self.loaded = loaded
        self.urls = urls
        self.progress = progress
        self.wire = Wire(urls["fspiop"], urls.get("nats"))
        self.wire.use_admin_token(admin_token, urls)
        self.wire.use_tls(hub_ssl)
        self.hub_ssl = hub_ssl
        self.roles = _assign(loaded, externals or {})
        self.ctx = Context(vars=dict(self.scenario.vars), roles={r: p.name for r, p in self.roles.items()}, results={})
        self.result = RunResult(loaded.name, self.scenario.description, str(loaded.path), urls["fspiop"],
                                datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                participants=list(self.roles.values()))
        self.under_test = {p.name for p in self.roles.values() if p.played_by in UNDER_TEST}
        self._references: list[Any] = []
        self._quotes: dict[str, dict[str, Any]] = {}  # quote step id (or "") -> its request and answer
        self._transfers: dict[str, str] = {}  # transfer step id -> transfer id
        self.closed_windows: list[int] = []  # settlement windows this run closed and has not settled yet
        self.settlement_id: int | None = None  # the latest settlement this run created
        self.consent_id: str | None = None  # the latest consent a pisp link step of this run made

    # ---------------------------------------------------------------- the whole run

    async def execute(self) -> RunResult:
        began = time.monotonic()
        await self.wire.start()
        try:
            await self._set_up()
            self.progress.run_started(self.result)
            failed_ids: set[str] = set()
            for number, step in enumerate(self.scenario.steps, 1):
                result = await self._step(number, step, failed_ids)
                if not result.ok and step.id:
                    failed_ids.add(step.id)
        finally:
            for reference in self._references:
                await reference.stop()
            await self.wire.stop()
        self.result.duration_s = time.monotonic() - began
        self.progress.run_finished(self.result)
        return self.result

    async def _step(self, number: int, step: fmt.Step, failed_ids: set[str]) -> StepResult:
        kind = type(step).__struct_config__.tag
        line = self.loaded.step_lines[number - 1] if number <= len(self.loaded.step_lines) else None
        result = StepResult(number, str(kind), step.name or "", step.id, line, started=self.wire.now())
        try:
            result.title = self.text(step.name) if step.name else self._title(step)
        except ValueError as exc:
            result.title = f"{kind} step"
            result.skipped = bool(failed_ids)
            result.error = None if failed_ids else str(exc)
        self.progress.step_started(number, len(self.scenario.steps), result.title)
        mark = self.wire.mark()
        began = time.monotonic()
        if not result.skipped and result.error is None:
            try:
                values = await steps.KINDS[str(kind)](self, step, result)
                if step.id:
                    self.ctx.results[step.id] = values
                self._remember(step, values)
            except steps.StepFailed as exc:
                result.error = str(exc)
            except (ValueError, KeyError) as exc:
                if failed_ids:
                    result.skipped, result.error = True, None
                    result.checks.append(Check("an earlier step this one needs", False, str(exc).strip("'\"")))
                else:
                    result.error = str(exc).strip("'\"")
        result.duration_s = time.monotonic() - began
        result.messages = sorted(self.wire.since(mark) + result.messages, key=lambda m: m.at)
        self._audit(result, step)
        for message in result.messages:
            self.progress.message(message)
        self.progress.step_finished(result)
        self.result.steps.append(result)
        return result

    def _remember(self, step: fmt.Step, values: dict[str, Any]) -> None:
        if isinstance(step, fmt.Quote) and values.get("outcome") == "answered":
            terms = {"request": values["request"], "answer": {k: v for k, v in values.items() if k != "request"}}
            self._quotes[""] = terms
            if step.id:
                self._quotes[step.id] = terms
        if isinstance(step, fmt.Transfer) and step.id:
            self._transfers[step.id] = values["transferId"]

    # ---------------------------------------------------------------- what steps ask of the run

    def text(self, value: Any) -> str:
        return str(resolve(value, self.ctx))

    def value(self, value: Any) -> Any:
        return resolve(value, self.ctx)

    def name(self, role_or_name: str) -> str:
        """The participant name of a role, or the text itself (a name on the hub)."""
        text = self.text(role_or_name)
        return self.roles[text].name if text in self.roles else text

    def engine_dfsp(self, role: str) -> str:
        text = self.text(role)
        participant = self.roles.get(text)
        if participant is None or participant.played_by != "engine":
            raise steps.StepFailed(f"{text} is not a DFSP this run plays itself: only those can send requests "
                                   f"(give it a [dfsps.{text}] table with played_by = \"engine\")")
        return participant.name

    def within(self, expect: fmt.Expect) -> float:
        return expect.within if expect.within is not None else self.scenario.callback_timeout

    def quote_terms(self, step_id: str | None) -> dict[str, Any]:
        terms = self._quotes.get(step_id or "")
        if terms is None:
            raise ValueError(f"no answered quote {'from step ' + step_id if step_id else 'yet'}: "
                             "a transfer needs the terms of an answered quote")
        return terms

    def transfer_id(self, reference: str) -> str:
        text = self.text(reference)
        return self._transfers.get(text, text)

    async def positions(self, wanted: dict[str, str]) -> dict[str, Decimal]:
        found: dict[str, Decimal] = {}
        for key in wanted:
            name = self.name(key)
            status, body = await self.wire.call_json(
                "GET", f"{self.urls['admin']}/participants/{name}/positions?currency={self._currency(key)}")
            if status != 200 or not isinstance(body, dict):
                raise steps.StepFailed(f"the position of {name} could not be read ({status}: {body})")
            found[name] = Decimal(str(body.get("value", 0)))
        return found

    async def check_positions(self, result: StepResult, wanted: dict[str, str], before: dict[str, Decimal]) -> None:
        if wanted:
            after = await self.positions(wanted)
            self._check_changes(result, {self.name(k): v for k, v in wanted.items()}, before, after, "position")

    async def balances(self, wanted: dict[str, str]) -> dict[str, Decimal]:
        found: dict[str, Decimal] = {}
        for key in wanted:
            dfsp, _, customer = self.text(key).partition("/")
            status, body = await self.wire.call_json("GET", f"{self.urls['sim']}/{self.name(dfsp)}/customers")
            match = [c for c in body or [] if isinstance(c, dict) and c.get("id") == customer] if status == 200 else []
            if not match:
                raise steps.StepFailed(f"{key}: no such customer of a simulated DFSP")
            found[key] = Decimal(match[0]["balance"])
        return found

    async def check_balances(self, result: StepResult, wanted: dict[str, str], before: dict[str, Decimal]) -> None:
        if wanted:
            self._check_changes(result, wanted, before, await self.balances(wanted), "balance")

    def _check_changes(self, result: StepResult, wanted: dict[str, str], before: dict[str, Decimal],
                       after: dict[str, Decimal], what: str) -> None:
        for key, change in wanted.items():
            expected = Decimal(self.text(change))
            moved = after[key] - before[key]
            result.checks.append(Check(f"{key}'s {what} changes by {expected:+}", moved == expected,
                                       f"it changed by {moved:+} ({before[key]} -> {after[key]})"))

    async def settlement_account(self, name: str, currency: str) -> int:
        status, accounts = await self.wire.call_json("GET", f"{self.urls['admin']}/participants/{name}/accounts")
        for account in accounts if status == 200 and isinstance(accounts, list) else []:
            if account.get("ledgerAccountType") == "SETTLEMENT" and account.get("currency") == currency:
                return int(account["id"])
        raise steps.StepFailed(f"{name} has no {currency} settlement account ({status})")

    def _currency(self, key: str) -> str:
        role = self.roles.get(self.text(key))
        return role_currency(self.scenario, role.role) if role else "USD"

    # ---------------------------------------------------------------- auditing DFSPs under test

    def _audit(self, result: StepResult, step: fmt.Step) -> None:
        if not self.under_test:
            return
        found = list(result.deviations)
        for message in result.messages:
            if message.sender == HUB and message.receiver in self.under_test:
                found += rules.sync_answer(message, message.receiver)
            elif message.receiver == HUB and message.sender in self.under_test:
                request = _request_for(result.messages, message)
                headers = request.headers if request else {}
                problems = rules.callback_headers(message, message.sender, headers.get("fspiop-source"),
                                                  headers.get("accept"))
                if message.method == "PUT":
                    problems += rules.callback_body(message, message.sender)
                found += problems + rules.refused(message, message.sender, problems)
        found += self._unanswered(result, found)
        if step.rule and any(not c.ok for c in result.checks):
            involved = sorted({m.receiver for m in result.messages if m.receiver in self.under_test})
            for dfsp in [d for d in involved if not any(f.dfsp == d for f in found)]:  # not explained yet
                failed = "; ".join(f"{c.what}: {c.detail}" for c in result.checks if not c.ok)
                found.append(rules.broken(step.rule, dfsp, failed))
        unique: dict[tuple[str, str, str], Any] = {}
        for deviation in found:
            unique.setdefault((deviation.dfsp, deviation.rule, deviation.detail), deviation)
        result.deviations = list(unique.values())

    def _unanswered(self, result: StepResult, known: list[Any]) -> list[Any]:
        """Requests the hub delivered to a DFSP under test that it never answered (nor late).

        A fulfilment the hub refused (wrong, or late) was an answer: `known` already says so.
        """
        found = []
        explained = {d.dfsp for d in known if d.rule in ("fulfilment", "fulfil-in-time")}
        for message in result.messages:
            if message.receiver in explained:
                continue
            if message.sender != HUB or message.receiver not in self.under_test or message.method not in ("GET", "POST"):
                continue
            if message.status is None or message.status >= 400:
                continue
            base = steps._callback_path(message.method, message.path, message.body)
            answered = any(m.sender == message.receiver and m.receiver == HUB and
                           m.path in (base, base + "/error") for m in result.messages)
            late = any(m.sender == HUB and m.receiver == message.receiver and m.path == base + "/error" and
                       "not RESERVED" in str((m.body or {}).get("errorInformation", {}).get("errorDescription", ""))
                       for m in result.messages if isinstance(m.body, dict))
            if late:
                found.append(rules.broken("fulfil-in-time", message.receiver,
                                          f"{message.title}: the fulfilment came after the transfer expired"))
            elif not answered:
                found.append(rules.broken("answers-requests", message.receiver,
                                          f"{message.title}: no answer came"))
        return found

    def audit_quote(self, result: StepResult, payee: str, request: dict[str, Any], callback: steps.Callback) -> None:
        if payee in self.under_test and callback.outcome == "answered":
            result.deviations += rules.quote_answer(request, callback.body, payee)

    def audit_transfer(self, result: StepResult, payee: str, request: dict[str, Any], callback: steps.Callback) -> None:
        if payee not in self.under_test:
            return
        if callback.outcome == "answered":
            result.deviations += rules.fulfil(callback.body, request.get("condition"), payee)
        info = callback.body.get("errorInformation", {}) if callback.outcome == "error" else {}
        description = str(info.get("errorDescription", ""))
        if info.get("errorCode") == "3100" and "fulfilment" in description:
            result.deviations.append(rules.broken("fulfilment", payee, f"the hub refused the fulfilment: {description}"))
        if info.get("errorCode") == "3303" and "arrived after" in description:
            result.deviations.append(rules.broken("fulfil-in-time", payee, f"the hub said: {description}"))

    async def late_answer(self, payee: str, transfer_id: str) -> None:
        """After a transfer expired: give a DFSP under test a moment to show it fulfilled late."""
        if payee not in self.under_test:
            return
        path = f"/transfers/{transfer_id}/error"

        def late() -> bool:
            return any(m.receiver == payee and m.path == path and "not RESERVED" in str(m.body) for m in self.wire.messages)

        await self.wire.wait_for(late, LATE_ANSWER_GRACE_S)

    # ---------------------------------------------------------------- setting up

    async def _set_up(self) -> None:
        for participant in self.roles.values():
            role = self.scenario.dfsps.get(participant.role)
            if participant.played_by == "simulator" or role is None:
                continue
            if participant.played_by == "reference":
                from miniloop.scenario.reference_dfsp import ReferenceDfsp

                parties = [self.text(p) for p in role.parties] or None
                reference = ReferenceDfsp(participant.name, self.urls["fspiop"], currency=role.currency,
                                          fault=role.fault or "none", ssl_context=self.hub_ssl,
                                          **({"parties": parties} if parties else {}))
                participant.url = await reference.start()
                self._references.append(reference)
            if participant.played_by == "engine":
                base = self.wire.engine_base(participant.name)
            else:
                assert participant.url is not None
                base = self.wire.proxy_base(participant.name, participant.url)
            await self._onboard(participant.name, role, base)

    async def _onboard(self, name: str, role: fmt.DfspRole, base: str) -> None:
        admin = self.urls["admin"]
        status, found = await self.wire.call_json("GET", f"{admin}/participants/{name}")
        if status is None:
            raise SetupError(f"the hub's Admin API at {admin} cannot be reached")
        currencies = {a.get("currency") for a in found.get("accounts", [])} if status == 200 and isinstance(found, dict) else set()
        if role.currency not in currencies:
            await self._must("POST", f"{admin}/participants", {"name": name, "currency": role.currency},
                             f"creating participant {name}")
            await self._must("POST", f"{admin}/participants/{name}/initialPositionAndLimits",
                             {"currency": role.currency, "limit": {"type": "NET_DEBIT_CAP", "value": _json_number(self.text(role.ndc))},
                              "initialPosition": 0}, f"setting {name}'s net debit cap")
            account = await self.settlement_account(name, role.currency)
            await self._must("POST", f"{admin}/participants/{name}/accounts/{account}", {
                "transferId": str(uuid.uuid4()), "externalReference": "scenario", "action": "recordFundsIn",
                "reason": "scenario set-up", "amount": {"amount": self.text(role.funds), "currency": role.currency},
            }, f"depositing {name}'s funds")
        elif isinstance(found, dict) and found.get("isActive") in (0, False):
            await self._must("PUT", f"{admin}/participants/{name}", {"isActive": True}, f"activating {name}")
        for endpoint_type, value in for_base_url(base).items():
            await self._must("POST", f"{admin}/participants/{name}/endpoints", {"type": endpoint_type, "value": value},
                             f"registering {name}'s callback URL")
        for party in role.parties:
            id_type, _, party_id = self.text(party).partition("/")
            await self._must("POST", f"{self.urls['als_admin']}/oracle/participants/{id_type}/{party_id}",
                             {"fspId": name, "currency": role.currency}, f"registering {party} for {name}")

    async def _must(self, method: str, url: str, body: Any, what: str) -> Any:
        status, answer = await self.wire.call_json(method, url, body)
        if status is None or status >= 400:
            raise SetupError(f"{what} failed: {status} {answer}")
        return answer

    def _title(self, step: fmt.Step) -> str:
        t = self.text
        if isinstance(step, fmt.Lookup):
            return f"{t(step.from_)} looks up {t(step.party)}"
        if isinstance(step, fmt.Quote):
            return f"{t(step.from_)} asks {t(step.to)} to quote {t(step.amount)} {t(step.currency)} {step.amount_type} to {t(step.payee)}"
        if isinstance(step, fmt.Transfer):
            return f"{t(step.from_)} transfers to {t(step.to)}" + (f" (quote {step.quote})" if step.quote else "")
        if isinstance(step, fmt.Send):
            verb = {"p2p": "sends", "merchant-pay": "pays merchant", "cash-in": "pays cash in", "cash-out": "cashes out",
                    "refund": "refunds"}[step.use_case]
            return f"{t(step.dfsp)} customer {t(step.from_)} {verb} {t(step.amount)} {t(step.currency)} to {t(step.to)}"
        if isinstance(step, fmt.RequestToPay):
            return (f"{t(step.dfsp)} {t(step.from_)} asks {t(step.payer)} to pay {t(step.amount)} {t(step.currency)} "
                    f"({step.use_case}" + (", OTP)" if step.authentication == "OTP" else ")"))
        if isinstance(step, fmt.PayQr):
            return f"{t(step.dfsp)} customer {t(step.from_)} pays {t(step.merchant)}'s QR code"
        if isinstance(step, fmt.Pisp):
            if step.action == "link":
                return f"{step.pisp} links {t(step.user or '')}'s account at {t(step.dfsp or '')} ({step.channel})"
            if step.action == "pay":
                return f"{step.pisp} pays {t(step.amount or '')} {t(step.currency)} to {t(step.to or '')} from the linked account"
            if step.action == "unlink":
                return f"{step.pisp} unlinks the account"
            return f"{t(step.dfsp or '')} revokes the link"
        if isinstance(step, fmt.BulkPay):
            people = sum(step.employees.values()) + len(step.payments)
            return f"{t(step.dfsp)} {t(step.from_)} pays {people} people in bulk"
        if isinstance(step, fmt.Admin):
            return f"operator: {step.action.replace('_', ' ')} {t(step.dfsp)}" + (f" {t(step.amount)} {t(step.currency)}" if step.amount else "")
        if isinstance(step, fmt.Request):
            return f"{t(step.from_) if step.from_ else 'operator'}: {step.method} {t(step.path)}"
        if isinstance(step, fmt.Wait):
            return f"wait until transfer {t(step.transfer)} is {step.state}"
        if isinstance(step, fmt.Settle):
            return self._settle_title(step)
        return "check " + ", ".join(list(step.expect.positions) + list(step.expect.balances))

    def _settle_title(self, step: fmt.Settle) -> str:
        if step.action == "settle_all":
            return f"operator: settle everything still unsettled with {self.text(step.model or 'DEFERREDNET')}"
        if step.action == "close":
            return "operator: close the open settlement window" + (" (if it holds transfers)" if step.skip_if_empty else "")
        if step.action == "settle":
            windows = [self.text(w) for w in step.windows] if step.windows is not None else self.closed_windows
            model = self.text(step.model or "DEFERREDNET")
            if not windows:
                return f"operator: settle the windows this run closed (none yet) with {model}"
            return f"operator: settle window{'s' if len(windows) != 1 else ''} {', '.join(map(str, windows))} with {model}"
        settlement = self.text(step.settlement) if step.settlement is not None else self.settlement_id or "(none yet)"
        if step.action == "advance":
            return f"operator: move settlement {settlement} to {step.to}"
        return f"operator: abort settlement {settlement}"


def role_currency(scenario: fmt.Scenario, role: str) -> str:
    found = scenario.dfsps.get(role)
    return found.currency if found else "USD"


def _json_number(amount: str) -> int | str:
    try:
        value = Decimal(amount)
    except InvalidOperation:
        return amount
    return int(value) if value == value.to_integral() else amount


def _request_for(messages: list[Message], callback: Message) -> Message | None:
    """The request (hub to the DFSP) that a DFSP's callback answers, if it is in the step."""
    base = callback.path.removesuffix("/error")
    for message in reversed(messages):
        if message.at > callback.at or message.sender != HUB or message.receiver != callback.sender:
            continue
        if message.method in ("GET", "POST") and steps._callback_path(message.method, message.path, message.body) == base:
            return message
    return None


def _assign(loaded: Loaded, externals: dict[str, str]) -> dict[str, Participant]:
    """Who plays each role, after `--dfsp NAME=URL`."""
    scenario = loaded.scenario
    roles = {key: Participant(key, role.name or key, role.played_by, role.url) for key, role in scenario.dfsps.items()}
    for name, url in externals.items():
        if name in roles:
            key = name
        else:
            testable = [key for key, role in scenario.dfsps.items() if role.testable]
            if len(testable) != 1:
                raise ScenarioError(loaded.path, f"--dfsp {name}=...: the scenario has no role {name!r}"
                                    + (f" and more than one testable role ({', '.join(testable)})" if testable else
                                       " and no testable role"))
            key = testable[0]
        roles[key].name = name
        roles[key].played_by, roles[key].url = "external", url
    for participant in roles.values():
        if participant.played_by == "external" and not participant.url:
            raise ScenarioError(loaded.path, f"the DFSP {participant.role!r} is external but has no url: "
                                f"give --dfsp {participant.name}=URL")
    for number, step in enumerate(scenario.steps, 1):
        if step.rule is not None and step.rule not in rules.RULES:
            line = loaded.step_lines[number - 1] if number <= len(loaded.step_lines) else None
            raise ScenarioError(loaded.path, f"step {number}: rule {step.rule!r} is not one of: "
                                f"{', '.join(rules.RULES)}", line)
    return roles


async def run_scenario(loaded: Loaded, urls: dict[str, str], progress: Progress,
                       externals: dict[str, str] | None = None, admin_token: str | None = None,
                       hub_ssl: ssl.SSLContext | None = None) -> RunResult:
    """Run one scenario; SetupError or ScenarioError when it cannot start. `admin_token`: the
    hub's --admin-token, if it has one; `hub_ssl`: the SSL context for an https FSPIOP port
    (miniloop.tls.tool_context: the client certificate for mutual TLS)."""
    return await Run(loaded, urls, progress, externals, admin_token, hub_ssl).execute()
