"""What each kind of step does, and how its expectations are checked.

Why one module: a step is always the same three moves (send something, wait with a bound for
what comes back, compare with `expect`), so every kind is a short function over the same helpers
and reads top to bottom: lookup, quote, transfer, send (and the other customer flows the simulator
drives: request_to_pay, pay_qr, bulk_pay), admin, request, wait, check, settle. The run
(miniloop.scenario.engine) gives each function its `Run` (wire, roles, values) and the
StepResult to fill; the function returns what later steps may refer to as ${<step id>.<path>}.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from miniloop.fspiop.models import datetime_text
from miniloop.scenario import format as fmt
from miniloop.scenario.results import HUB, Check, Message, StepResult
from miniloop.scenario.values import get_path

if TYPE_CHECKING:
    from miniloop.scenario.engine import Run

Results = dict[str, Any]

_ID_FIELD = {"quotes": "quoteId", "transfers": "transferId", "participants": "requestId",
             "transactionRequests": "transactionRequestId", "bulkQuotes": "bulkQuoteId",
             "bulkTransfers": "bulkTransferId"}
_API_STATE = {"RECEIVED_PREPARE": "RECEIVED", "RESERVED": "RESERVED", "COMMITTED": "COMMITTED"}


class StepFailed(Exception):
    """The step could not be carried out (a role that is missing, a hub that is down)."""


@dataclass
class Callback:
    """What came back for a request: the callback, or the hub's refusal of the answer, or nothing."""

    message: Message | None = None
    refusal: Message | None = None

    @property
    def outcome(self) -> str:
        if self.message is None:
            return "none"
        return "error" if self.message.path.endswith("/error") else "answered"

    @property
    def body(self) -> dict[str, Any]:
        body = self.message.body if self.message is not None else None
        return body if isinstance(body, dict) else {}


# ------------------------------------------------------------------------------ the kinds


async def lookup(run: Run, step: fmt.Lookup, result: StepResult) -> Results:
    asker = run.engine_dfsp(step.from_)
    path = "/parties/" + run.text(step.party).strip("/")
    if step.currency:
        path_q = f"{path}?currency={run.text(step.currency)}"
    else:
        path_q = path
    mark = run.wire.mark()
    sync = await run.wire.send("GET", path_q, None, run.wire.fspiop_headers("GET", path, asker, None), asker)
    callback = await wait_callback(run, mark, asker, path, sync, run.within(step.expect))
    check_expect(run, step.expect, result, sync, callback, default_outcome="answered")
    return {**callback.body, "status": sync.status, "outcome": callback.outcome}


async def quote(run: Run, step: fmt.Quote, result: StepResult) -> Results:
    payer, payee = run.engine_dfsp(step.from_), run.name(step.to)
    quote_id = run.text(step.quote_id) if step.quote_id else str(uuid.uuid4())
    payee_type, payee_id = _party(run.text(step.payee))
    payer_type, payer_id = _party(run.text(step.payer))
    body: dict[str, Any] = {
        "quoteId": quote_id,
        "transactionId": run.text(step.transaction_id) if step.transaction_id else str(uuid.uuid4()),
        "payee": {"partyIdInfo": {"partyIdType": payee_type, "partyIdentifier": payee_id, "fspId": payee}},
        "payer": {"partyIdInfo": {"partyIdType": payer_type, "partyIdentifier": payer_id, "fspId": payer}},
        "amountType": step.amount_type,
        "amount": {"amount": run.text(step.amount), "currency": run.text(step.currency)},
        "transactionType": {"scenario": step.scenario, "initiator": step.initiator,
                            "initiatorType": step.initiator_type},
    }
    if step.note:
        body["note"] = run.text(step.note)
    if step.expiration_s is not None:
        body["expiration"] = datetime_text(datetime.now(timezone.utc) + timedelta(seconds=step.expiration_s))
    path = "/quotes"
    mark = run.wire.mark()
    sync = await run.wire.send("POST", path, body, run.wire.fspiop_headers("POST", path, payer, payee), payer)
    callback = await wait_callback(run, mark, payer, f"/quotes/{quote_id}", sync, run.within(step.expect))
    check_expect(run, step.expect, result, sync, callback, default_outcome="answered")
    run.audit_quote(result, payee, body, callback)
    return {**callback.body, "quoteId": quote_id, "transactionId": body["transactionId"], "request": body,
            "status": sync.status, "outcome": callback.outcome}


async def transfer(run: Run, step: fmt.Transfer, result: StepResult) -> Results:
    payer, payee = run.engine_dfsp(step.from_), run.name(step.to)
    terms = run.quote_terms(step.quote)
    answer, asked = terms.get("answer", {}), terms.get("request", {})
    amount = run.text(step.amount) if step.amount else get_path(answer, "transferAmount.amount")
    currency = run.text(step.currency) if step.currency else get_path(answer, "transferAmount.currency")
    transfer_id = run.text(step.transfer_id) if step.transfer_id else asked.get("transactionId") or str(uuid.uuid4())
    expires = datetime.now(timezone.utc) + timedelta(seconds=step.expiration_s)
    condition = run.text(step.condition) if step.condition else answer.get("condition")
    body = {
        "transferId": transfer_id, "payerFsp": payer, "payeeFsp": payee,
        "amount": {"amount": amount, "currency": currency},
        "ilpPacket": run.text(step.ilp_packet) if step.ilp_packet else answer.get("ilpPacket"),
        "condition": condition, "expiration": datetime_text(expires),
    }
    before = await run.positions(step.expect.positions)
    mark = run.wire.mark()
    sync = await run.wire.send("POST", "/transfers", body, run.wire.fspiop_headers("POST", "/transfers", payer, payee),
                               payer)
    callback = await wait_callback(run, mark, payer, f"/transfers/{transfer_id}", sync,
                                   step.expiration_s + run.within(step.expect))
    state = _transfer_state(callback)
    if callback.message is not None and callback.message.error_code == "3303":
        await run.late_answer(payee, transfer_id)
    check_expect(run, step.expect, result, sync, callback, default_outcome=None, state=state)
    if not step.expect.state and not step.expect.outcome and not step.expect.error_code:
        result.checks.append(_check("transfer is COMMITTED", state == "COMMITTED", _seen(state, callback)))
    await run.check_positions(result, step.expect.positions, before)
    run.audit_transfer(result, payee, body, callback)
    return {**callback.body, "transferId": transfer_id, "state": state, "request": body, "status": sync.status}


async def send(run: Run, step: fmt.Send, result: StepResult) -> Results:
    dfsp = run.name(step.dfsp)
    id_type, party_id = _party(run.text(step.to))
    order: dict[str, Any] = {"from": run.text(step.from_), "to": {"idType": id_type, "id": party_id},
                             "amount": run.text(step.amount), "currency": run.text(step.currency),
                             "amountType": step.amount_type}
    if step.note:
        order["note"] = run.text(step.note)
    if step.use_case != "p2p":
        order["useCase"] = step.use_case
    if step.refund_of:
        order["refundOf"] = run.text(step.refund_of)
    if step.reason:
        order["reason"] = run.text(step.reason)
    return await _customer_flow(run, step, result, dfsp, "send", order, "payment")


async def request_to_pay(run: Run, step: fmt.RequestToPay, result: StepResult) -> Results:
    """The payee's DFSP asks; the payer's DFSP quotes, asks for the OTP, and pays."""
    dfsp = run.name(step.dfsp)
    order: dict[str, Any] = {"from": run.text(step.from_), "payer": run.text(step.payer), "amount": run.text(step.amount),
                             "currency": run.text(step.currency), "useCase": step.use_case,
                             "authentication": step.authentication, "otp": run.text(step.otp)}
    if step.timeout_seconds is not None:
        order["timeoutSeconds"] = step.timeout_seconds
    if step.payer_answers is None:
        return await _customer_flow(run, step, result, dfsp, "requestToPay", order, "request to pay")
    if step.payer_dfsp is None:
        raise StepFailed("payer_answers needs payer_dfsp, the payer's simulated DFSP")
    settings = f"{run.urls['sim']}/{run.name(step.payer_dfsp)}/customers/{_party(run.text(step.payer))[1]}/settings"
    status, answer = await run.wire.call_json("PUT", settings, {"requestToPay": step.payer_answers})
    if status != 200:
        raise StepFailed(f"the payer's phone could not be set to {step.payer_answers}: {status} {_error_text(answer)}")
    result.checks.append(Check(f"the customer will {step.payer_answers} requests to pay", True))
    try:
        return await _customer_flow(run, step, result, dfsp, "requestToPay", order, "request to pay")
    finally:
        await run.wire.call_json("PUT", settings, {"requestToPay": "approve"})


async def pay_qr(run: Run, step: fmt.PayQr, result: StepResult) -> Results:
    """The merchant's DFSP makes the QR code (shown in the report); the customer's wallet pays it."""
    merchant_dfsp, dfsp = run.name(step.merchant_dfsp), run.name(step.dfsp)
    order: dict[str, Any] = {"from": run.text(step.merchant), "currency": run.text(step.currency)}
    if step.amount:
        order["amount"] = run.text(step.amount)
    if step.reference:
        order["reference"] = run.text(step.reference)
    status, made = await run.wire.call_json("POST", f"{run.urls['sim']}/{merchant_dfsp}/qr", order)
    if status != 200 or not isinstance(made, dict) or "payload" not in made:
        raise StepFailed(f"{merchant_dfsp} could not make the QR code: {status} {_error_text(made) or made}")
    result.checks.append(Check(f"{merchant_dfsp} shows a QR code", True,
                               f"{made['payload']}\n{made.get('ascii', '')}".rstrip()))
    payment: dict[str, Any] = {"from": run.text(step.from_), "payload": made["payload"]}
    if step.pay:
        payment["amount"] = run.text(step.pay)
    answer = await _customer_flow(run, step, result, dfsp, "payQr", payment, "payment")
    return {**answer, "qr": made}


async def bulk_pay(run: Run, step: fmt.BulkPay, result: StepResult) -> Results:
    """Create the employees (registered in the oracle by their DFSP), then the business pays them all."""
    payments: list[dict[str, str]] = []
    for block, (role, count) in enumerate(step.employees.items()):
        where = run.name(role)
        prefix = f"{run.text(step.prefix)}{block}{uuid.uuid4().int % 10**5:05d}"
        status, made = await run.wire.call_json("POST", f"{run.urls['sim']}/{where}/customers/generate",
                                                {"count": count, "prefix": prefix, "balance": "0"})
        if status != 200 or not isinstance(made, dict) or made.get("state") != "REGISTERED":
            raise StepFailed(f"{where} could not create {count} employees: {status} {_error_text(made) or made}")
        result.checks.append(Check(f"{where} has {count} new employees", True,
                                   f"MSISDN {made['first']} to {made['last']}, registered in the oracle"))
        first, last = int(made["first"]), int(made["last"])
        width = len(str(made["first"]))
        payments += [{"to": f"MSISDN/{n:0{width}d}", "amount": run.text(step.amount)} for n in range(first, last + 1)]
    for text in step.payments:
        party, _, amount = run.text(text).partition("=")
        if not amount:
            raise StepFailed(f"a payment is written TYPE/ID=AMOUNT, not {text!r}")
        payments.append({"to": party, "amount": amount})
    order: dict[str, Any] = {"from": run.text(step.from_), "payments": payments, "currency": run.text(step.currency)}
    if step.reference:
        order["reference"] = run.text(step.reference)
    answer = await _customer_flow(run, step, result, run.name(step.dfsp), "bulkPay", order, "payroll",
                                  expected_state="COMPLETED")
    counts = answer.get("counts") or {}
    if counts:  # all of them, unless the step expects a PARTIAL or FAILED payroll
        everyone = counts.get("paid") == counts.get("payments")
        result.checks.append(Check("payments made", everyone or (step.expect.state or "COMPLETED") != "COMPLETED",
                                   f"{counts.get('paid')} of {counts.get('payments')} paid, "
                                   f"{(answer.get('total') or {}).get('paid')} {run.text(step.currency)} in all; "
                                   + ", ".join(f"{b.get('payeeFsp')}: {b.get('paid')} paid ({b.get('state')})"
                                               for b in answer.get("bulks", []))))
    return answer


PISP_EXPECTED = {"link": "LINKED", "pay": "COMMITTED", "unlink": "REVOKED", "revoke": "REVOKED"}


async def pisp(run: Run, step: fmt.Pisp, result: StepResult) -> Results:
    """A third-party flow the simulated PISP (or, for revoke, the DFSP) drives through the hub."""
    consent = run.text(step.consent) if step.consent else run.consent_id
    if step.action == "link":
        if not step.dfsp or not step.user:
            raise StepFailed("a link needs dfsp and user")
        order: dict[str, Any] = {"dfsp": run.name(step.dfsp), "userId": run.text(step.user), "channel": step.channel,
                                 "otp": run.text(step.otp)}
        if step.scopes:
            order["scopes"] = step.scopes
        answer = await _customer_flow(run, step, result, step.pisp, "link", order, "linking",
                                      expected_state=PISP_EXPECTED["link"])
        if answer.get("state") == "LINKED":
            run.consent_id = answer.get("consentId")
        return answer
    if consent is None:
        raise StepFailed(f"{step.action} needs a consent: no link step of this run made one, and the step names none")
    if step.action == "pay":
        if not step.to or not step.amount:
            raise StepFailed("a payment needs to and amount")
        order = {"consentId": consent, "to": run.text(step.to), "amount": run.text(step.amount),
                 "currency": run.text(step.currency), "signature": step.signature}
        return await _customer_flow(run, step, result, step.pisp, "pay", order, "third-party payment",
                                    expected_state=PISP_EXPECTED["pay"])
    if step.action == "unlink":
        return await _customer_flow(run, step, result, step.pisp, "unlink", {"consentId": consent}, "unlinking",
                                    expected_state=PISP_EXPECTED["unlink"])
    if not step.dfsp:
        raise StepFailed("revoke needs the dfsp that revokes")
    return await _customer_flow(run, step, result, run.name(step.dfsp), f"consents/{consent}/revoke", {},
                                "revocation", expected_state=PISP_EXPECTED["revoke"])


async def _customer_flow(run: Run, step: Any, result: StepResult, dfsp: str, route: str, order: dict[str, Any],
                         what: str, expected_state: str = "COMMITTED") -> Results:
    """POST an order to a simulated DFSP's driving API; show its wire log; check state, error,
    positions and balances."""
    before = await run.positions(step.expect.positions)
    balances = await run.balances(step.expect.balances)
    began = run.wire.now()
    status, answer = await run.wire.call_json("POST", f"{run.urls['sim']}/{dfsp}/{route}", order)
    if not isinstance(answer, dict):
        raise StepFailed(f"the simulator answered {status}: {answer}")
    for m in answer.get("messages", []):
        outgoing = m.get("direction") == "out"
        sender, receiver = (dfsp, HUB) if outgoing else (HUB, dfsp)
        note = "" if outgoing or m.get("source") in (None, "Hub") else f"from {m['source']}, through the hub"
        if m.get("direction") == "web":  # the user's browser at a DFSP's login page, not through the hub
            sender, receiver, note = dfsp, str(m.get("destination") or "web page"), "the user's browser"
        if m.get("items"):
            note = (note + "; " if note else "") + f"{m['items']} items"
        result.messages.append(Message(began + m.get("elapsedMs", 0) / 1000, sender, receiver, m.get("method", "?"),
                                       m.get("path", "?"), {}, m.get("body"), m.get("status"), note))
    expected = step.expect.state or expected_state
    state = answer.get("state")
    error = answer.get("error") or {}
    if "messages" not in answer:  # the simulator refused the order itself (bad input, no such payment)
        error, state = answer.get("errorInformation") or {}, "REFUSED"
        if expected != "REFUSED":
            result.checks.append(_check("the simulator takes the order", False,
                                        f"refused: {error.get('errorCode')} {error.get('errorDescription')}"))
    result.checks.append(_check(f"{what} ends {expected}", state == expected,
                                f"got {state}" + (f" ({error.get('errorCode')}: {error.get('errorDescription')})"
                                                  if error else "")))
    if step.expect.error_code:
        result.checks.append(_check(f"error {step.expect.error_code}", error.get("errorCode") == step.expect.error_code,
                                    f"got {error.get('errorCode') or 'no error'}"))
    await run.check_positions(result, step.expect.positions, before)
    await run.check_balances(result, step.expect.balances, balances)
    return {**answer, "status": status}


async def admin(run: Run, step: fmt.Admin, result: StepResult) -> Results:
    name, currency = run.name(step.dfsp), run.text(step.currency)
    admin_url = run.urls["admin"]
    amount = run.text(step.amount) if step.amount else None
    if step.action in ("set_ndc", "funds_in", "funds_out") and amount is None:
        raise StepFailed(f"{step.action} needs an amount")
    if step.action == "set_ndc":
        calls = [("PUT", f"/participants/{name}/limits",
                  {"currency": currency, "limit": {"type": "NET_DEBIT_CAP", "value": _number(amount), "alarmPercentage": 10}})]
    elif step.action in ("deactivate", "activate"):
        calls = [("PUT", f"/participants/{name}", {"isActive": step.action == "activate"})]
    else:
        account = await run.settlement_account(name, currency)
        transfer_id = str(uuid.uuid4())
        action = "recordFundsIn" if step.action == "funds_in" else "recordFundsOutPrepareReserve"
        calls = [("POST", f"/participants/{name}/accounts/{account}",
                  {"transferId": transfer_id, "externalReference": "scenario", "action": action,
                   "reason": f"scenario {run.result.scenario}", "amount": {"amount": amount, "currency": currency}})]
        if step.action == "funds_out":
            calls.append(("PUT", f"/participants/{name}/accounts/{account}/transfers/{transfer_id}",
                          {"action": "recordFundsOutCommit", "reason": f"scenario {run.result.scenario}"}))
    status, answer = None, None
    for method, path, body in calls:
        result.messages.append(Message(run.wire.now(), "operator", HUB, method, path, {}, body))
        status, answer = await run.wire.call_json(method, admin_url + path, body)
        result.messages[-1].status = status
        if status is None or status >= 400:
            break
    _check_status(result, step.expect, status, answer)
    return {"status": status, "body": answer}


async def request(run: Run, step: fmt.Request, result: StepResult) -> Results:
    path = run.text(step.path)
    body = run.value(step.body) if step.body is not None else None
    if step.api != "fspiop":
        result.messages.append(Message(run.wire.now(), "operator", HUB, step.method, path, {}, body))
        status, answer = await run.wire.call_json(step.method, run.urls[_API_URL[step.api]] + path, body)
        result.messages[-1].status = status
        _check_status(result, step.expect, status, answer)
        for dotted, expected in step.expect.body.items():
            _compare(result, f"answer {dotted}", answer, dotted, run.text(expected))
        return {"status": status, "body": answer}
    if step.from_ is None:
        raise StepFailed("an FSPIOP request needs `from`")
    source = run.engine_dfsp(step.from_)
    destination = run.name(step.to) if step.to else None
    headers = run.wire.fspiop_headers(step.method, path.split("?")[0], source, destination)
    for header, value in step.headers.items():
        for existing in [h for h in headers if h.lower() == header.lower()]:
            del headers[existing]
        if value != "":
            headers[header] = run.text(value)
    mark = run.wire.mark()
    sync = await run.wire.send(step.method, path, body, headers, source)
    expect = step.expect
    wants_callback = expect.outcome is not None or expect.error_code or expect.error_text or expect.body or expect.headers
    callback = Callback()
    if wants_callback and step.method in ("GET", "POST", "DELETE", "PUT"):
        callback = await wait_callback(run, mark, source, _callback_path(step.method, path, body), sync,
                                       run.within(expect), expect_nothing=expect.outcome == "none")
    check_expect(run, expect, result, sync, callback, default_outcome=None)
    return {**callback.body, "status": sync.status, "outcome": callback.outcome}


async def wait(run: Run, step: fmt.Wait, result: StepResult) -> Results:
    if not run.wire.has_events:
        raise StepFailed("waiting on a transfer's state needs the hub's events (NATS), which are not available")
    transfer_id = run.transfer_id(step.transfer)
    prefix = f"ml.event.transfer.{transfer_id}."

    def reached() -> str | None:
        for event in run.wire.events_for(prefix):
            if api_state(event.subject.rsplit(".", 1)[1]) == step.state:
                return step.state
        return None

    found = await run.wire.wait_for(reached, step.within)
    states = [e.subject.rsplit(".", 1)[1] for e in run.wire.events_for(prefix)]
    result.checks.append(_check(f"transfer {transfer_id} reaches {step.state} within {step.within:g} s",
                                found is not None, f"its states: {', '.join(states) or 'none seen'}"))
    return {"state": found, "transferId": transfer_id}


async def check(run: Run, step: fmt.Check, result: StepResult) -> Results:
    for key, expected in step.expect.positions.items():
        name = run.name(key)
        value = (await run.positions({key: "0"}))[name]
        result.checks.append(_check(f"{name}'s position is {run.text(expected)}", value == Decimal(run.text(expected)),
                                    f"it is {value}"))
    balances = await run.balances(step.expect.balances)
    for key, expected in step.expect.balances.items():
        result.checks.append(_check(f"{key}'s balance is {run.text(expected)}",
                                    balances.get(key) == Decimal(run.text(expected)), f"it is {balances.get(key)}"))
    return {}


async def settle(run: Run, step: fmt.Settle, result: StepResult) -> Results:
    """One operator's move in settlement; the ids come from the run (or from the step, if it names them)."""
    before = await run.positions(step.expect.positions)
    values = await _SETTLE_ACTIONS[step.action](run, step, result)
    await run.check_positions(result, step.expect.positions, before)
    for dotted, expected in step.expect.body.items():
        _compare(result, f"answer {dotted}", values, dotted, run.text(expected))
    return values


async def _close(run: Run, step: fmt.Settle, result: StepResult) -> Results:
    found = await _read(run, "/settlementWindows?state=OPEN")
    if not isinstance(found, list) or not found or not isinstance(found[0], dict):
        raise StepFailed(f"the hub has no open settlement window ({found})")
    window = found[0]  # there is exactly one
    window_id = window["id"]
    status, answer = await _operator(run, result, "POST", f"/settlementWindows/{window_id}",
                                     {"state": "CLOSED", "reason": _reason(run, step)})
    if status == 400 and "is empty" in _error_text(answer) and step.skip_if_empty:
        result.checks.append(Check(f"window {window_id} is empty", True, "nothing to close (skip_if_empty): it stays open"))
        return {**window, "status": status, "closed": False}
    if not _settle_answer_ok(run, step, result, status, answer):
        return {**(answer if isinstance(answer, dict) else {}), "status": status, "closed": False}
    run.closed_windows.append(window_id)
    closed = await _read(run, f"/settlementWindows/{window_id}")
    _settle_state(result, step, f"window {window_id}", closed.get("state"), "CLOSED",
                  f"window {answer.get('id')} is now the open one")
    return {**closed, "status": status, "closed": True, "next": answer}


async def _settle(run: Run, step: fmt.Settle, result: StepResult) -> Results:
    if step.windows is not None:
        windows = [_id(run.value(w), "windows") for w in step.windows]
    else:
        windows = list(run.closed_windows)
    if not windows:
        raise StepFailed("no settlement window to settle: no close step of this run closed one "
                         "(an empty window is not closed), and the step names no `windows`")
    body = {"settlementModel": run.text(step.model or "DEFERREDNET"), "reason": _reason(run, step),
            "settlementWindows": [{"id": w} for w in windows]}
    status, answer = await _operator(run, result, "POST", "/settlements", body)
    if not _settle_answer_ok(run, step, result, status, answer):
        return {**(answer if isinstance(answer, dict) else {}), "status": status}
    run.settlement_id = int(answer["id"])
    run.closed_windows = [w for w in run.closed_windows if w not in windows]
    _settle_state(result, step, f"settlement {answer['id']}", answer.get("state"), "PENDING_SETTLEMENT",
                  _nets(answer, await _account_names(run)))
    return {**answer, "status": status}


async def _advance(run: Run, step: fmt.Settle, result: StepResult) -> Results:
    settlement_id = _settlement_of(run, step)
    assert step.to is not None  # loading refuses an advance without `to`
    current = await _read(run, f"/settlements/{settlement_id}")
    names = await _account_names(run)
    reason = _reason(run, step)
    body = {"participants": [{"id": p["id"], "accounts": [{"id": a["id"], "state": step.to, "reason": reason}
                                                          for a in p.get("accounts", [])]}
                             for p in current.get("participants", [])]}
    status, answer = await _operator(run, result, "PUT", f"/settlements/{settlement_id}", body)
    if not _settle_answer_ok(run, step, result, status, answer):
        return {**(answer if isinstance(answer, dict) else {}), "status": status}
    refused = [a for p in answer.get("participants", []) for a in p.get("accounts", []) if "errorInformation" in a]
    if refused:  # a failure, unless the step expects one
        expected = bool(step.expect.state or step.expect.error_code or step.expect.error_text)
        what = f"every account moves to {step.to}" if not expected else "the hub refuses the move"
        result.checks.append(Check(what, expected, _refusals(refused, names, step.to)))
    _settle_errors(step, result, answer)
    windows = "".join(f"; window {w.get('id')} is {w.get('state')}" for w in answer.get("settlementWindows", []))
    was, now = current.get("state"), answer.get("state")
    _settle_state(result, step, f"settlement {settlement_id}", now, step.to,
                  (f"it was {was}" if now != was else "unchanged") + windows)
    return {**answer, "status": status}


async def _abort(run: Run, step: fmt.Settle, result: StepResult) -> Results:
    settlement_id = _settlement_of(run, step)
    current = await _read(run, f"/settlements/{settlement_id}")
    status, answer = await _operator(run, result, "PUT", f"/settlements/{settlement_id}",
                                     {"state": "ABORTED", "reason": _reason(run, step)})
    if not _settle_answer_ok(run, step, result, status, answer):
        return {**(answer if isinstance(answer, dict) else {}), "status": status}
    windows = [int(w["id"]) for w in current.get("settlementWindows", [])]
    run.closed_windows += [w for w in windows if w not in run.closed_windows]  # they can be settled again
    _settle_state(result, step, f"settlement {settlement_id}", answer.get("state"), "ABORTED",
                  f"it was {current.get('state')}; window{'s' if len(windows) != 1 else ''} "
                  f"{', '.join(map(str, windows))} can be settled again")
    return {**answer, "status": status}


async def _settle_all(run: Run, step: fmt.Settle, result: StepResult) -> Results:
    """Leave nothing unsettled: close the open window if it holds transfers, take every settlement
    still in progress to SETTLED, then settle every CLOSED or ABORTED window with the model, all
    the way. Nothing to do is a pass. A demo starts from here, whatever earlier runs left."""
    model = run.text(step.model or "DEFERREDNET")
    status, answer = await _operator(run, result, "POST", "/settlementWindows/"
                                     + str((await _read(run, "/settlementWindows?state=OPEN"))[0]["id"]),
                                     {"state": "CLOSED", "reason": _reason(run, step)})
    if status != 200 and "is empty" not in _error_text(answer):
        result.checks.append(_check("the open window is closed", False, f"it answered {status}: {_error_text(answer)}"))
        return {"status": status}
    names = await _account_names(run)
    done: list[str] = []
    for state in ("PENDING_SETTLEMENT", *fmt.SETTLEMENT_STEPS[:-1], "SETTLING"):
        for settlement in await _read_all(run, f"/settlements?state={state}"):
            if await _finish(run, result, settlement, names):
                done.append(f"settlement {settlement['id']} (was {state})")
    windows = [w["id"] for state in ("CLOSED", "ABORTED")
               for w in await _read_all(run, f"/settlementWindows?state={state}")]
    if windows:
        status, answer = await _operator(run, result, "POST", "/settlements", {
            "settlementModel": model, "reason": _reason(run, step), "settlementWindows": [{"id": w} for w in windows]})
        if status != 200 or not isinstance(answer, dict):
            result.checks.append(_check(f"windows {', '.join(map(str, windows))} are settled with {model}", False,
                                        f"it answered {status}: {_error_text(answer)}"))
            return {"status": status}
        run.settlement_id = int(answer["id"])
        if await _finish(run, result, answer, names):
            done.append(f"window{'s' if len(windows) != 1 else ''} {', '.join(map(str, windows))} "
                        f"({_nets(answer, names)})")
    result.checks.append(Check("nothing is left unsettled", True,
                               "settled " + "; ".join(done) if done else "there was nothing to settle"))
    return {"settled": done, "status": 200}


async def _read_all(run: Run, path: str) -> list[dict[str, Any]]:
    """A Settlement API list; the API answers 400 'not found' for an empty one."""
    status, answer = await run.wire.call_json("GET", run.urls["settlement"] + path)
    return answer if status == 200 and isinstance(answer, list) else []


async def _finish(run: Run, result: StepResult, settlement: dict[str, Any], names: dict[int, str]) -> bool:
    """Move every account of `settlement` through the states it has still to go; True if SETTLED."""
    state = settlement.get("state")
    for to in fmt.SETTLEMENT_STEPS[fmt.SETTLEMENT_STEPS.index(state) + 1 if state in fmt.SETTLEMENT_STEPS else
                                   (3 if state == "SETTLING" else 0):]:
        body = {"participants": [{"id": p["id"], "accounts": [{"id": a["id"], "state": to, "reason": "settle_all"}
                                                              for a in p.get("accounts", [])]}
                                 for p in settlement.get("participants", [])]}
        status, answer = await _operator(run, result, "PUT", f"/settlements/{settlement['id']}", body)
        refused = [a for p in (answer or {}).get("participants", []) for a in p.get("accounts", [])
                   if "errorInformation" in a] if isinstance(answer, dict) else []
        if status != 200 or refused:
            result.checks.append(_check(f"settlement {settlement['id']} moves to {to}", False,
                                        _refusals(refused, names, to) if refused else f"it answered {status}"))
            return False
    return True


_SETTLE_ACTIONS = {"close": _close, "settle": _settle, "advance": _advance, "abort": _abort, "settle_all": _settle_all}


KINDS = {"lookup": lookup, "quote": quote, "transfer": transfer, "send": send, "admin": admin,
         "request": request, "wait": wait, "check": check, "settle": settle, "request_to_pay": request_to_pay,
         "pay_qr": pay_qr, "bulk_pay": bulk_pay, "pisp": pisp}

_API_URL = {"admin": "admin", "settlement": "settlement", "als": "als_admin"}


# ------------------------------------------------------------------------------ waiting for callbacks


async def wait_callback(run: Run, mark: int, receiver: str, base: str, sync: Message, timeout: float,
                        *, expect_nothing: bool = False) -> Callback:
    """The hub's callback to `receiver` for `base` (or base/error), or the refusal of the answer.

    Nothing comes when the hub refused the request itself, so then there is nothing to wait for.
    """
    if sync.status is None or sync.status >= 400:
        return Callback()
    targets = (base, base + "/error")

    def arrived() -> Callback | None:
        refusal = None
        for message in run.wire.since(mark):
            if message.receiver == receiver and message.sender == HUB and message.path in targets:
                return Callback(message)
            if message.receiver == HUB and message.path in targets and "refused by the hub" in message.note:
                refusal = message
        return Callback(refusal=refusal) if refusal is not None and not expect_nothing else None

    return await run.wire.wait_for(arrived, timeout) or Callback()


def _callback_path(method: str, path: str, body: Any) -> str:
    path = path.split("?")[0].removesuffix("/error")
    if method == "POST" and isinstance(body, dict):
        field = _ID_FIELD.get(path.strip("/"))
        if field and isinstance(body.get(field), str):
            return f"{path}/{body[field]}"
    return path


def _transfer_state(callback: Callback) -> str:
    if callback.outcome == "error":
        return "ABORTED"
    if callback.outcome == "answered":
        return str(callback.body.get("transferState") or "?")
    return "no answer"


def api_state(internal: str) -> str:
    """The API's transfer state for one of the ledger's internal states."""
    if internal in _API_STATE:
        return _API_STATE[internal]
    if internal.startswith(("ABORTED", "EXPIRED", "INVALID")):
        return "ABORTED"
    return "RESERVED" if internal.startswith(("RECEIVED", "RESERVED")) else internal


# ------------------------------------------------------------------------------ expectations


def check_expect(run: Run, expect: fmt.Expect, result: StepResult, sync: Message, callback: Callback, *,
                 default_outcome: str | None, state: str | None = None) -> None:
    if expect.status is not None:
        result.checks.append(_check(f"the hub answers {expect.status}", sync.status == expect.status,
                                    f"it answered {sync.status}" + (f": {sync.note}" if sync.note else "")))
    elif sync.status not in (200, 202):
        result.checks.append(_check("the hub accepts the request", False,
                                    f"it answered {sync.status}" + (f": {sync.note}" if sync.note else "")))
        return
    outcome = expect.outcome or ("error" if expect.error_code or expect.error_text else default_outcome)
    if outcome is not None:
        result.checks.append(_check(_OUTCOME_TEXT[outcome], callback.outcome == outcome, _seen(None, callback)))
    if expect.error_code:
        code = callback.message.error_code if callback.message else None
        result.checks.append(_check(f"error code {expect.error_code}", code == expect.error_code,
                                    _seen(None, callback)))
    if expect.error_text:
        description = str(get_path(callback.body, "errorInformation.errorDescription")) if callback.message and \
            callback.message.error_code else ""
        result.checks.append(_check(f"error description mentions {expect.error_text!r}",
                                    expect.error_text.lower() in description.lower(), _seen(None, callback)))
    if expect.state:
        result.checks.append(_check(f"transfer ends {expect.state}", state == expect.state, _seen(state, callback)))
    for dotted, expected in expect.body.items():
        _compare(result, dotted, callback.body if callback.message else None, dotted, run.text(expected))
    headers = callback.message.headers if callback.message else {}
    for name, expected in expect.headers.items():
        value = headers.get(name.lower())
        wanted = run.text(expected)
        ok = value is None if wanted == "" else value == wanted
        result.checks.append(_check(f"header {name} is {wanted!r}" if wanted else f"no header {name}", ok,
                                    f"it is {value!r}"))


_OUTCOME_TEXT = {"answered": "the callback answers (PUT)", "error": "an error callback (PUT .../error)",
                 "none": "no callback"}


def _seen(state: str | None, callback: Callback) -> str:
    if callback.refusal is not None:
        return f"no callback: the hub refused the answer ({callback.refusal.note.removeprefix('refused by the hub: ')})"
    if callback.message is None:
        return "no callback came"
    code = callback.message.error_code
    if code:
        info = callback.body.get("errorInformation", {})
        return f"{callback.message.title}: error {code} {info.get('errorDescription', '')}".strip()
    return f"{callback.message.title}" + (f": {state}" if state else "")


def _compare(result: StepResult, label: str, data: Any, dotted: str, expected: str) -> None:
    try:
        value = get_path(data, dotted)
    except (KeyError, TypeError):
        result.checks.append(_check(f"{label} is {expected!r}", False, "it is missing"))
        return
    result.checks.append(_check(f"{label} is {expected!r}", _same(value, expected), f"it is {value!r}"))


def _same(value: Any, expected: str) -> bool:
    if str(value) == expected:
        return True
    try:
        return Decimal(str(value)) == Decimal(expected)
    except InvalidOperation:
        return False


def _check_status(result: StepResult, expect: fmt.Expect, status: int | None, answer: Any) -> None:
    detail = f"it answered {status}" + (f": {answer}" if isinstance(answer, (dict, str)) and answer else "")
    if expect.status is not None:
        result.checks.append(_check(f"the answer is {expect.status}", status == expect.status, detail[:300]))
    else:
        result.checks.append(_check("the request succeeds", status is not None and status < 400, detail[:300]))


# ------------------------------------------------------------------------------ settlement helpers


async def _operator(run: Run, result: StepResult, method: str, path: str, body: Any) -> tuple[int | None, Any]:
    """A call to the Settlement API, recorded as the operator's message."""
    result.messages.append(Message(run.wire.now(), "operator", HUB, method, path, {}, body))
    status, answer = await run.wire.call_json(method, run.urls["settlement"] + path, body)
    result.messages[-1].status = status
    return status, answer


async def _read(run: Run, path: str) -> Any:
    """A Settlement API read the step needs (not recorded: it is not what the step shows)."""
    status, answer = await run.wire.call_json("GET", run.urls["settlement"] + path)
    if status != 200:
        raise StepFailed(f"GET {path} on the Settlement API answered {status}: {_error_text(answer) or answer}")
    return answer


async def _account_names(run: Run) -> dict[int, str]:
    """Account id -> the name of the DFSP it belongs to (settlements name accounts, not DFSPs)."""
    status, participants = await run.wire.call_json("GET", f"{run.urls['admin']}/participants")
    if status != 200 or not isinstance(participants, list):
        return {}
    return {int(a["id"]): str(p["name"]) for p in participants if isinstance(p, dict)
            for a in p.get("accounts", []) if isinstance(a, dict) and "id" in a}


def _reason(run: Run, step: fmt.Settle) -> str:
    return run.text(step.reason) if step.reason else f"miniloop scenario {run.result.scenario}"


def _id(value: Any, field: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise StepFailed(f"{field}: {value!r} is not an id") from None


def _settlement_of(run: Run, step: fmt.Settle) -> int:
    if step.settlement is not None:
        return _id(run.value(step.settlement), "settlement")
    if run.settlement_id is None:
        raise StepFailed("no settlement to work on: no settle step with action = \"settle\" of this run created "
                         "one, and the step names no `settlement`")
    return run.settlement_id


def _error_text(answer: Any) -> str:
    info = answer.get("errorInformation") if isinstance(answer, dict) else None
    return f"{info.get('errorCode')} {info.get('errorDescription')}" if isinstance(info, dict) else ""


def _settle_answer_ok(run: Run, step: fmt.Settle, result: StepResult, status: int | None, answer: Any) -> bool:
    """Check the answer's status (expect.status, else below 400); True when the action was carried out."""
    if step.expect.status is not None:
        result.checks.append(_check(f"the answer is {step.expect.status}", status == step.expect.status,
                                    f"it answered {status}" + (f": {_error_text(answer)}" if _error_text(answer) else "")))
    elif status is None or status >= 400:
        result.checks.append(_check("the hub carries it out", False,
                                    f"it answered {status}: {_error_text(answer) or answer}"))
    ok = status is not None and status < 400 and isinstance(answer, dict)
    if not ok:
        _settle_errors(step, result, answer)
    return ok


def _settle_errors(step: fmt.Settle, result: StepResult, answer: Any) -> None:
    """expect.error_code and expect.error_text: the answer's error, or any refused account's."""
    if not step.expect.error_code and not step.expect.error_text:
        return
    infos = [answer.get("errorInformation")] if isinstance(answer, dict) else []
    if isinstance(answer, dict):
        infos += [a.get("errorInformation") for p in answer.get("participants", []) if isinstance(p, dict)
                  for a in p.get("accounts", []) if isinstance(a, dict)]
    infos = [i for i in infos if isinstance(i, dict)]
    seen = "; ".join(f"{i.get('errorCode')} {i.get('errorDescription')}" for i in infos) or "no error"
    if step.expect.error_code:
        result.checks.append(_check(f"error code {step.expect.error_code}",
                                    any(str(i.get("errorCode")) == step.expect.error_code for i in infos), seen))
    if step.expect.error_text:
        text = step.expect.error_text.lower()
        result.checks.append(_check(f"error description mentions {step.expect.error_text!r}",
                                    any(text in str(i.get("errorDescription", "")).lower() for i in infos), seen))


def _settle_state(result: StepResult, step: fmt.Settle, what: str, state: Any, default: str, detail: str) -> None:
    """The state the step leaves its window or settlement in; the detail says what a trainer wants to see."""
    expected = step.expect.state or default
    ok = state == expected
    result.checks.append(Check(f"{what} is {expected}", ok, detail if ok else f"it is {state} ({detail})"))


def _nets(settlement: dict[str, Any], names: dict[int, str]) -> str:
    """Who owes and who is owed, in the order the settlement lists its DFSPs."""
    parts = []
    for participant in settlement.get("participants", []):
        for account in participant.get("accounts", []):
            net = account.get("netSettlementAmount") or {}
            amount = Decimal(str(net.get("amount", 0)))
            who = names.get(int(account["id"]), f"participant {participant.get('id')}")
            money = f"{_plain(abs(amount))} {net.get('currency', '')}".strip()
            parts.append(f"{who} owes {money}" if amount > 0 else f"{who} is owed {money}" if amount < 0
                         else f"{who} is even")
    return ", ".join(parts) or "no accounts"


def _refusals(refused: list[dict[str, Any]], names: dict[int, str], wanted: str) -> str:
    """The hub's refusals of accounts, grouped by reason, with the way forward."""
    groups: dict[tuple[str, str], list[str]] = {}
    for account in refused:
        info = account["errorInformation"]
        why = str(info.get("errorDescription", "")).split(" - ")[-1]
        groups.setdefault((why, str(account.get("state"))), []).append(names.get(int(account["id"]), f"account {account['id']}"))
    lines = []
    for (why, state), who in groups.items():
        line = f"refused for {', '.join(who)}: {why}"
        if state in fmt.SETTLEMENT_STEPS or state == "PENDING_SETTLEMENT":
            steps = ("PENDING_SETTLEMENT", *fmt.SETTLEMENT_STEPS)
            following = steps[steps.index(state) + 1] if state != steps[-1] else None
            line += f" (at {state}" + (f"; an account moves one state at a time, so the next is {following}"
                                        if following and following != wanted else "") + ")"
        lines.append(line)
    return "; ".join(lines)


def _plain(amount: Decimal) -> str:
    return str(int(amount)) if amount == amount.to_integral() else str(amount.normalize())


def _check(what: str, ok: bool, detail: str = "") -> Check:
    return Check(what, ok, "" if ok and not detail.startswith("it is") else detail)


def _party(text: str) -> tuple[str, str]:
    id_type, _, party_id = text.strip("/").partition("/")
    if not party_id:
        raise StepFailed(f"a party is written TYPE/ID (e.g. MSISDN/27730000001), not {text!r}")
    return id_type, party_id


def _number(amount: str | None) -> int | str:
    """An amount for a JSON number field of the Admin API: an int when whole, else its text."""
    value = Decimal(amount or "0")
    return int(value) if value == value.to_integral() else str(amount)
