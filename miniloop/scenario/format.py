"""The scenario file format: what a TOML scenario may say, as msgspec Structs.

Why Structs: the file is decoded straight into these, so an unknown field, a number where a
string is expected or a step kind that does not exist is refused with the path of the value
(`$.steps[2].expect.state`), which miniloop.scenario.loading turns into a file line.

A scenario has a description, variables, the DFSPs it involves (by role) and steps. Every step
has a `kind`; the fields after it depend on the kind. Money is always a string ("10", "12.5").
Strings may hold `${...}` references, resolved when the step runs (miniloop.scenario.values).
docs/scenario-format.md is the user's description of the same thing.
"""

from __future__ import annotations

from typing import Literal

import msgspec

PLAYED_BY = ("engine", "simulator", "reference", "external")
TRANSFER_STATES = ("RECEIVED", "RESERVED", "COMMITTED", "ABORTED")
OUTCOMES = ("answered", "error", "none")
SETTLE_ACTIONS = ("close", "settle", "advance", "abort")
# the states `advance` may move a settlement's accounts to, in order (Settlement API v2)
SETTLEMENT_STEPS = ("PS_TRANSFERS_RECORDED", "PS_TRANSFERS_RESERVED", "PS_TRANSFERS_COMMITTED", "SETTLED")
SETTLEMENT_STATES = ("PENDING_SETTLEMENT", *SETTLEMENT_STEPS, "SETTLING", "ABORTED")
WINDOW_STATES = ("OPEN", "PROCESSING", "CLOSED", "PENDING_SETTLEMENT", "SETTLED", "ABORTED", "FAILED")


class Expect(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What a step must observe. Every field is optional; only those given are checked."""

    status: int | None = None  # the synchronous HTTP answer to the request the step sent
    outcome: Literal["answered", "error", "none"] | None = None  # the callback: PUT, PUT .../error, or nothing
    error_code: str | None = None  # errorInformation.errorCode of the error callback
    error_text: str | None = None  # a piece of errorInformation.errorDescription (case-insensitive)
    state: str | None = None  # a transfer's final state (transfer, send, wait); settle: the window's or settlement's
    body: dict[str, str] = {}  # dotted path in the callback body -> expected value ("party.name": "Kwame")
    headers: dict[str, str] = {}  # callback header (any case) -> expected value; "" means "absent"
    positions: dict[str, str] = {}  # DFSP role or name -> change of its position in this step ("+10", "-10", "0")
    balances: dict[str, str] = {}  # "<dfsp>/<customer id>" of a simulated DFSP -> change of the wallet balance
    within: float | None = None  # seconds the callback may take (default: the scenario's callback_timeout)


class DfspRole(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One DFSP the scenario involves, under its role name (the key in [dfsps])."""

    name: str | None = None  # its participant name on the hub (default: the role)
    played_by: Literal["engine", "simulator", "reference", "external"] = "engine"
    url: str | None = None  # for played_by = "external": its FSPIOP callback base URL
    currency: str = "USD"
    ndc: str = "100000"  # net debit cap given when the run creates it
    funds: str = "1000000"  # deposited when the run creates it
    parties: list[str] = []  # "TYPE/ID" party ids it serves: registered in the oracle at the start
    testable: bool = False  # `--dfsp NAME=URL` may take this role
    fault: str | None = None  # played_by = "reference" only: misbehave this way (see reference_dfsp)


class _Step(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, tag_field="kind"):
    id: str | None = None  # to refer to this step's results later: ${<id>.<dotted path>}
    name: str | None = None  # a title for the reports (default: made from the step)
    rule: str | None = None  # a rule of miniloop.scenario.rules this step checks: a failed expectation
    # is then also reported as that rule broken by the DFSP under test the step involves
    expect: Expect = msgspec.field(default_factory=Expect)


class Lookup(_Step, tag="lookup", kw_only=True):
    """GET /parties/{Type}/{ID}[/{SubId}] sent by an engine-played DFSP."""

    from_: str = msgspec.field(name="from")  # role of the DFSP that asks
    party: str  # "MSISDN/27730000001" or "PERSONAL_ID/123/PASSPORT"
    currency: str | None = None  # ?currency=


class Quote(_Step, tag="quote", kw_only=True):
    """POST /quotes from an engine-played DFSP to another DFSP."""

    from_: str = msgspec.field(name="from")
    to: str  # role of the payee DFSP
    payee: str  # "TYPE/ID" of the payee party
    payer: str = "MSISDN/27700000000"  # "TYPE/ID" of the payer party
    amount: str
    currency: str = "USD"
    amount_type: Literal["SEND", "RECEIVE"] = "SEND"
    scenario: str = "TRANSFER"
    initiator: str = "PAYER"
    initiator_type: str = "CONSUMER"
    note: str | None = None
    quote_id: str | None = None  # default: a new UUID (use "${<step id>.quoteId}" to resend one)
    transaction_id: str | None = None
    expiration_s: float | None = None  # the request's optional expiration, seconds ahead


class Transfer(_Step, tag="transfer", kw_only=True):
    """POST /transfers from an engine-played DFSP, with the terms of an earlier quote step."""

    from_: str = msgspec.field(name="from")
    to: str
    quote: str | None = None  # id of the quote step (default: the latest quote step)
    amount: str | None = None  # default: the quote's transferAmount
    currency: str | None = None
    condition: str | None = None  # default: the quote's condition
    ilp_packet: str | None = None  # default: the quote's ilpPacket
    transfer_id: str | None = None  # default: the quote's transactionId
    expiration_s: float = 30.0


class Send(_Step, tag="send", kw_only=True):
    """A customer of a simulated DFSP pays (lookup, quote and transfer by the simulator)."""

    dfsp: str  # role or name of the simulated DFSP whose customer pays
    from_: str = msgspec.field(name="from")  # the customer's id at that DFSP
    to: str  # "TYPE/ID" of the payee
    amount: str
    currency: str = "USD"
    amount_type: Literal["SEND", "RECEIVE"] = "SEND"
    note: str | None = None
    use_case: Literal["p2p", "merchant-pay", "cash-in", "cash-out", "refund"] = "p2p"  # the transactionType
    refund_of: str | None = None  # refund: the transactionId of the payment refunded
    reason: str | None = None  # refund: why


class RequestToPay(_Step, tag="request_to_pay", kw_only=True):
    """A merchant, agent or ATM at a simulated DFSP asks a customer to pay (transactionRequests,
    the payer DFSP's quote, an OTP authorization, the transfer), as the simulator drives it."""

    dfsp: str  # role or name of the simulated DFSP of the merchant, agent or ATM (the payee)
    from_: str = msgspec.field(name="from")  # the merchant's, agent's or ATM's id at that DFSP
    payer: str  # "TYPE/ID" of the customer asked to pay
    amount: str
    currency: str = "USD"
    use_case: Literal["merchant-request", "agent-cash-out", "atm-cash-out"] = "merchant-request"
    authentication: Literal["OTP", "none"] = "OTP"
    otp: str = "phone"  # "phone": typed from the customer's phone; "cancel": the POS cancels; else typed as given
    payer_dfsp: str | None = None  # role or name of the payer's simulated DFSP, for payer_answers
    payer_answers: Literal["approve", "decline", "ignore"] | None = None  # how the customer answers (then back to approve)
    timeout_seconds: float | None = None  # how long the merchant's DFSP waits for the whole flow (simulator's default 30)


class PayQr(_Step, tag="pay_qr", kw_only=True):
    """A merchant's DFSP makes a QR code of a payment request; a customer's wallet reads it and pays."""

    merchant_dfsp: str  # role or name of the merchant's simulated DFSP
    merchant: str  # the merchant's id there
    amount: str | None = None  # in the QR (a dynamic QR); without it, `pay` is the amount the customer types
    currency: str = "USD"
    reference: str | None = None
    dfsp: str  # role or name of the paying customer's simulated DFSP
    from_: str = msgspec.field(name="from")  # the customer's id there
    pay: str | None = None  # the amount the customer types for a QR without one


class BulkPay(_Step, tag="bulk_pay", kw_only=True):
    """A business pays many people at once (bulk quotes and bulk transfers), e.g. a payroll.

    `employees` creates that many new customers at each DFSP (registered in the oracle) and pays
    each of them `amount`; `payments` lists payees that already exist. Either or both."""

    dfsp: str  # role or name of the business's simulated DFSP
    from_: str = msgspec.field(name="from")  # the business's id there
    amount: str = "1"  # paid to each generated employee
    currency: str = "USD"
    employees: dict[str, int] = {}  # DFSP role or name -> how many employees to create and pay there
    prefix: str = "2779"  # MSISDN prefix of generated employees (each DFSP gets its own block)
    payments: list[str] = []  # "TYPE/ID=AMOUNT" of existing payees
    reference: str | None = None


class Pisp(_Step, tag="pisp", kw_only=True):
    """The simulated PISP (a budgeting app) links a user's account, pays from it, or unlinks;
    or the DFSP revokes the link (Third-party API v1.0, through the hub)."""

    action: Literal["link", "pay", "unlink", "revoke"]
    pisp: str = "budgetapp"  # the simulated PISP's participant name
    dfsp: str | None = None  # link: the user's DFSP (role or name); revoke: the DFSP that revokes
    user: str | None = None  # link: the user's id (MSISDN) at that DFSP
    channel: Literal["OTP", "WEB"] = "OTP"  # link: how the user proves it is them
    scopes: list[str] = []  # link: the actions asked for (default: transfer and balance)
    otp: str = "phone"  # link, OTP channel: "phone" (read from the user's phone) or typed as given
    consent: str | None = None  # pay, unlink, revoke: the consentId (default: this run's last link)
    to: str | None = None  # pay: "TYPE/ID" of the payee
    amount: str | None = None  # pay
    currency: str = "USD"
    signature: Literal["valid", "bad", "decline"] = "valid"  # pay: how the user's app answers the challenge


class Admin(_Step, tag="admin", kw_only=True):
    """An operator's action through the Admin API."""

    action: Literal["set_ndc", "deactivate", "activate", "funds_in", "funds_out"]
    dfsp: str  # role or name
    amount: str | None = None  # set_ndc, funds_in, funds_out
    currency: str = "USD"


class Request(_Step, tag="request", kw_only=True):
    """Any request, as written: an FSPIOP request from an engine-played DFSP, or an operator API call."""

    api: Literal["fspiop", "admin", "settlement", "als"] = "fspiop"
    from_: str | None = msgspec.field(name="from", default=None)  # fspiop: role of the sending DFSP
    to: str | None = None  # fspiop: role or name for FSPIOP-Destination
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    body: dict[str, object] | None = None
    headers: dict[str, str] = {}  # fspiop: set these headers; "" removes one


class Wait(_Step, tag="wait", kw_only=True):
    """Wait, with a bound, for a transfer to reach a state (as the hub's events tell)."""

    transfer: str  # a transfer id, or the id of a transfer step
    state: str
    within: float = 10.0


class Check(_Step, tag="check", kw_only=True):
    """No action: check positions or balances now (expect.positions are then absolute values)."""


class Settle(_Step, tag="settle", kw_only=True):
    """Drive settlement through the Settlement API without knowing ids: close the open window,
    settle the windows this run closed, move every account of the settlement one state on, abort;
    or settle_all: finish whatever is unsettled on the hub (a clean start for a demo)."""

    action: Literal["close", "settle", "advance", "abort", "settle_all"]
    reason: str | None = None  # the reason sent to the hub (default: "miniloop scenario <name>")
    skip_if_empty: bool = False  # close: an empty window (3100 "is empty") is a pass, nothing closed
    windows: list[str | int] | None = None  # settle: window ids (default: the windows this run closed)
    model: str | None = None  # settle, settle_all: the settlement model (default: "DEFERREDNET")
    to: Literal["PS_TRANSFERS_RECORDED", "PS_TRANSFERS_RESERVED", "PS_TRANSFERS_COMMITTED", "SETTLED"] | None = None
    settlement: str | int | None = None  # advance, abort: the settlement id (default: this run's latest settlement)


Step = Lookup | Quote | Transfer | Send | Admin | Request | Wait | Check | Settle | RequestToPay | PayQr | BulkPay | Pisp


class Scenario(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    description: str
    tags: list[str] = []
    vars: dict[str, str] = {}  # ${name}; `--var name=value` overrides
    callback_timeout: float = 10.0  # seconds a callback may take unless a step says otherwise
    dfsps: dict[str, DfspRole] = {}
    steps: list[Step]
