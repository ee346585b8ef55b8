"""The OpenAPI descriptions of the sim port and the wallet port (GET /openapi.json on each), made
like the hub's own by miniloop.api.openapi from the routes each app really serves.

What the routes cannot say about themselves is added here:

- sim port: which routes are the simulated DFSPs' FSPIOP endpoints (the handlers that hand the
  message to `_take`): they want FSPIOP-Source, take any JSON object (what the simulator checks at
  once; the body's rules are applied afterwards, refusals are error callbacks) and answer 202 or
  200 with no body. The driving API's handlers check their bodies field by field, so the Structs
  below state those rules for the description only; each names the module whose checks it states
  (mobile_sim.send, .rtp, .join, .bulk, .pisp, .faults, .payer, mobile_sim.app). A payment flow's
  answer is 502 when it failed downstream and 504 when its deadline passed, with the flow's body
  (docs/simulator.md), so those two are described as answers, not errors.
- wallet port: the page (HTML), its files, the event stream, and the proxy to the sim port.
- Path parameters `{dfsp}` and `{name}` are enums of the simulated DFSPs and PISPs the app has;
  `/static/{name}` an enum of the page's files.
- Summaries: the FSPIOP endpoints' say what a simulated DFSP receives, from the FSPIOP table of
  miniloop.api.openapi_apis (`fspiop_summary`); the driving API's and the wallet port's are the
  tables below (docs/simulator.md, docs/wallet.md).
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from sanic import Sanic

from miniloop.api.openapi import Api
from miniloop.api.openapi_apis import fspiop_body_media, fspiop_summary
from miniloop.fspiop.models import Currency
from miniloop.services.oracles import PARTY_ID_TYPES
from mobile_sim import bulk, faults, join, payer, pisp, send, thirdparty, usecases
from mobile_sim.dfsp import REQUEST_TO_PAY_ANSWERS

JSON = {"application/json": {"schema": {}}}
HTML = {"text/html": {"schema": {"type": "string"}}}
_PISP_ROUTES = ("link", "pay", "unlink", "links", "linked")  # /{name}/<these>: a PISP's driving routes

# --------------------------------------------------------------------------- the bodies


class _Body(msgspec.Struct, omit_defaults=True, kw_only=True, forbid_unknown_fields=True):
    pass


class FspiopBody(msgspec.Struct):
    """Any JSON object: the FSPIOP body of the resource (docs/fspiop-api.md). A simulated DFSP
    checks at once only that it is a JSON object; its rules are applied when the message is worked
    on, and a refusal is an error callback to the hub."""


Id = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^/\s](?:[^/]*[^/\s])?$",
                         description="an id: 1 to 128 characters, no '/', no surrounding spaces")]
IdType = Literal[PARTY_ID_TYPES]  # type: ignore[valid-type]
OrderAmount = Annotated[str | Annotated[int, Meta(ge=1)], Meta(
    description='a string such as "10.5" or an integer, never a JSON float; more than 0, at most the '
                "currency's decimals")]
Balance = Annotated[str | Annotated[int, Meta(ge=0)], Meta(
    description='a string such as "500" or an integer, never a JSON float; 0 or more')]
Note = Annotated[str, Meta(min_length=1, max_length=128)]
Timeout = Annotated[float, Meta(ge=1, le=send.MAX_TIMEOUT_S, description="seconds: the flow's deadline")]
Uuid = Annotated[str, Meta(pattern=send._CORRELATION_ID.pattern)]


class PartyRef(_Body, kw_only=True):
    idType: IdType = "MSISDN"
    id: Id
    subId: Id | None = None


class Send(_Body, kw_only=True):
    """POST /{dfsp}/send (mobile_sim.send.parse_order)."""

    from_: Id = msgspec.field(name="from")
    fromIdType: IdType | None = None
    to: PartyRef | None = None  # required, but for a refund of a payment that names its payer
    amount: OrderAmount
    currency: Currency | None = None
    amountType: Literal["SEND", "RECEIVE"] = "SEND"
    note: Note | None = None
    timeoutSeconds: Timeout = send.DEFAULT_TIMEOUT_S
    useCase: Literal[tuple(usecases.PAYER_USE_CASES)] = "p2p"  # type: ignore[valid-type]
    refundOf: Uuid | None = None
    reason: Note | None = None
    confirm: bool = False


class SendDecision(_Body, kw_only=True):
    """PUT /{dfsp}/send/{transfer_id} (mobile_sim.send.decide): exactly one of the two, the answer
    to the pause the /send waits at."""

    acceptParty: bool | None = None
    acceptQuote: bool | None = None


class Join(_Body, kw_only=True):
    """POST /{dfsp}/customers (mobile_sim.join.parse_join)."""

    name: Annotated[str, Meta(min_length=1, max_length=join.NAME_MAX)] | None = None
    balance: Balance = join.DEFAULT_BALANCE
    idType: Literal["MSISDN"] = "MSISDN"


class Settings(_Body, kw_only=True):
    """PUT /{dfsp}/customers/{customer_id}/settings."""

    requestToPay: Literal[REQUEST_TO_PAY_ANSWERS] | None = None  # type: ignore[valid-type]


class Fault(_Body, kw_only=True):
    """PUT /{dfsp}/faults (mobile_sim.faults.parse): delaySeconds with slow, errorCode with reject."""

    mode: Literal[faults.MODES]  # type: ignore[valid-type]
    delaySeconds: Annotated[float, Meta(ge=faults.DELAY_MIN_S, le=faults.DELAY_MAX_S)] | None = None
    errorCode: Annotated[str, Meta(pattern=r"^[0-9]{4}$")] | None = None


class RequestToPay(_Body, kw_only=True):
    """POST /{dfsp}/requestToPay (mobile_sim.rtp.parse_order)."""

    from_: Id = msgspec.field(name="from")
    fromIdType: IdType | None = None
    payer: Annotated[str, Meta(min_length=1, description='"TYPE/ID" or a bare MSISDN')] | PartyRef
    amount: OrderAmount
    currency: Currency | None = None
    useCase: Literal[tuple(usecases.PAYEE_USE_CASES)] = "merchant-request"  # type: ignore[valid-type]
    authentication: Literal["OTP", "none"] = "OTP"
    otp: Annotated[str, Meta(pattern=r"^(phone|ask|cancel|[0-9]{3,10})$")] = "phone"
    note: Note | None = None
    timeoutSeconds: Timeout = send.DEFAULT_TIMEOUT_S


class TypedOtp(_Body, kw_only=True):
    """PUT /{dfsp}/requestToPay/{request_id}: the OTP typed at the till, or "cancel"."""

    otp: Annotated[str, Meta(pattern=r"^(cancel|[0-9]{3,10})$")]


class Qr(_Body, kw_only=True):
    """POST /{dfsp}/qr (mobile_sim.app._merchant_qr): static without amount, dynamic with one."""

    from_: Id = msgspec.field(name="from")
    fromIdType: IdType | None = None
    amount: OrderAmount | None = None
    currency: Currency | None = None
    reference: Id | None = None


class PayQr(_Body, kw_only=True):
    """POST /{dfsp}/payQr (mobile_sim.send.parse_qr_order)."""

    from_: Id = msgspec.field(name="from")
    fromIdType: IdType | None = None
    payload: Annotated[str, Meta(min_length=1, description="the text of a merchant's QR code")]
    amount: OrderAmount | None = None  # a static QR's amount
    note: Note | None = None
    timeoutSeconds: Timeout = send.DEFAULT_TIMEOUT_S
    confirm: bool = False


class Payment(_Body, kw_only=True):
    to: Annotated[str, Meta(pattern=r"^[A-Z_]+/[^/\s](?:[^/]*[^/\s])?$", description="TYPE/ID")]
    amount: OrderAmount


class BulkPay(_Body, kw_only=True):
    """POST /{dfsp}/bulkPay (mobile_sim.bulk.parse_pay)."""

    from_: Id = msgspec.field(name="from")
    fromIdType: IdType | None = None
    payments: Annotated[list[Payment], Meta(min_length=1, max_length=bulk.PAYMENTS_MAX)]
    currency: Currency | None = None
    reference: Note | None = None
    timeoutSeconds: Annotated[float, Meta(ge=1, le=bulk.MAX_TIMEOUT_S)] = bulk.DEFAULT_TIMEOUT_S


class Generate(_Body, kw_only=True):
    """POST /{dfsp}/customers/generate (mobile_sim.bulk.parse_generate)."""

    count: Annotated[int, Meta(ge=1, le=bulk.GENERATE_MAX)]
    prefix: Annotated[str, Meta(pattern=r"^[1-9][0-9]{0,10}$", description="digits; with the counter at most 15")]
    namePrefix: Annotated[str, Meta(min_length=1, max_length=100)] = "Employee"
    balance: Balance = "0"
    timeoutSeconds: Annotated[float, Meta(ge=1, le=bulk.MAX_TIMEOUT_S)] = bulk.GENERATE_TIMEOUT_S


class RequestAnswer(_Body, kw_only=True):
    """POST /{dfsp}/customers/{customer_id}/requests/{request_id} (mobile_sim.payer.answer_request)."""

    answer: Literal[payer.CUSTOMER_ANSWERS]  # type: ignore[valid-type]


class Link(_Body, kw_only=True):
    """POST /{name}/link (mobile_sim.pisp.parse_link)."""

    dfsp: Id
    userId: Id
    channel: Literal["OTP", "WEB"] = "OTP"
    scopes: Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(min_length=1, max_length=32)] \
        = msgspec.field(default_factory=lambda: list(pisp.DEFAULT_ACTIONS))
    otp: Annotated[str, Meta(min_length=1, max_length=64)] = "phone"
    login: Literal[pisp.LOGINS] = "allow"  # type: ignore[valid-type]
    authToken: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    credential: Literal[pisp.CREDENTIALS] = "GENERIC"  # type: ignore[valid-type]
    timeoutSeconds: Timeout = send.DEFAULT_TIMEOUT_S


class PispPay(_Body, kw_only=True):
    """POST /{name}/pay (mobile_sim.pisp.parse_pay): consentId or link, not both."""

    consentId: Id | None = None
    link: Id | None = None
    to: Annotated[str, Meta(pattern=r"^[A-Z_]+/[^/\s](?:[^/]*[^/\s])?$", description="TYPE/ID")]
    amount: OrderAmount
    currency: Currency | None = None
    amountType: Literal["SEND", "RECEIVE"] = "SEND"
    note: Note | None = None
    signature: Literal[pisp.SIGNATURES] = "valid"  # type: ignore[valid-type]
    timeoutSeconds: Timeout = send.DEFAULT_TIMEOUT_S


class Unlink(_Body, kw_only=True):
    """POST /{name}/unlink."""

    consentId: Id
    timeoutSeconds: Timeout = send.DEFAULT_TIMEOUT_S


class LoginDecision(_Body, kw_only=True):
    """POST /{dfsp}/tplogin/{request_id}: the DFSP's login page answered (a form, or JSON)."""

    decision: Literal["allow", "deny"]


class WalletJoin(_Body, kw_only=True):
    """POST /api/join: a new customer at a wallet DFSP; the body may be left empty."""

    name: Annotated[str, Meta(min_length=1, pattern=r"\S")] | None = None


class DrivingBody(msgspec.Struct):
    """The body of the sim port's driving route named by the path, forwarded as it is
    (docs/simulator.md)."""


_DRIVING_BODIES: dict[tuple[str, str], type] = {
    ("POST", "/{dfsp}/send"): Send,
    ("PUT", "/{dfsp}/send/{transfer_id}"): SendDecision,
    ("POST", "/{dfsp}/customers"): Join,
    ("PUT", "/{dfsp}/customers/{customer_id}/settings"): Settings,
    ("PUT", "/{dfsp}/faults"): Fault,
    ("POST", "/{dfsp}/requestToPay"): RequestToPay,
    ("PUT", "/{dfsp}/requestToPay/{request_id}"): TypedOtp,
    ("POST", "/{dfsp}/qr"): Qr,
    ("POST", "/{dfsp}/payQr"): PayQr,
    ("POST", "/{dfsp}/bulkPay"): BulkPay,
    ("POST", "/{dfsp}/customers/generate"): Generate,
    ("POST", "/{dfsp}/customers/{customer_id}/requests/{request_id}"): RequestAnswer,
    ("POST", "/{dfsp}/consents/{consent_id}/revoke"): None,  # no body
    ("POST", "/{name}/link"): Link,
    ("POST", "/{name}/pay"): PispPay,
    ("POST", "/{name}/unlink"): Unlink,
    ("POST", "/{dfsp}/tplogin/{request_id}"): LoginDecision,
}

# the driving calls that run a flow: 502 when it failed downstream, 504 when its deadline passed
# (503 when the simulator stopped under it), each with the flow's body
_FLOWS = frozenset({
    ("POST", "/{dfsp}/send"), ("PUT", "/{dfsp}/send/{transfer_id}"), ("POST", "/{dfsp}/payQr"),
    ("POST", "/{dfsp}/requestToPay"), ("PUT", "/{dfsp}/requestToPay/{request_id}"),
    ("POST", "/{dfsp}/bulkPay"), ("POST", "/{dfsp}/customers/generate"), ("POST", "/{dfsp}/customers"),
    ("GET", "/{dfsp}/transactionStatus/{transaction_id}"), ("POST", "/{dfsp}/consents/{consent_id}/revoke"),
    ("POST", "/{name}/link"), ("POST", "/{name}/pay"), ("POST", "/{name}/unlink"),
})
FLOW_ANSWERS = {
    "502": {"description": "the flow failed downstream (ABORTED, REJECTED, FAILED): the flow's body, "
                           "with `error`", "content": JSON},
    "504": {"description": "the flow's deadline passed (TIMED_OUT): the flow's body", "content": JSON},
}


# --------------------------------------------------------------------------- the summaries

# the driving API, one line per operation (docs/simulator.md); the simulated DFSPs' FSPIOP endpoints
# have theirs from their resource and path shape (miniloop.api.openapi_apis.fspiop_summary)
_DRIVING_SUMMARIES: dict[tuple[str, str], str] = {
    ("GET", "/dfsps"): "The simulated DFSPs: their currency, customers and fee rule",
    ("GET", "/pisps"): "The simulated PISPs, and how many links each keeps",
    ("POST", "/{dfsp}/send"): "A customer of the DFSP pays someone: lookup, quote and transfer through the hub "
                              "(P2P, merchant payment, cash-in, cash-out or refund)",
    ("GET", "/{dfsp}/send/{transfer_id}"): "A payment (a /send or /payQr) as it is now",
    ("PUT", "/{dfsp}/send/{transfer_id}"): "The customer accepts or refuses the payee or the quote a paused "
                                           "payment waits at (confirm)",
    ("POST", "/{dfsp}/requestToPay"): "A merchant, agent or ATM of the DFSP asks a customer at another DFSP to pay "
                                      "it (payee-initiated, with an OTP)",
    ("GET", "/{dfsp}/requestToPay/{request_id}"): "A request to pay as it is now",
    ("PUT", "/{dfsp}/requestToPay/{request_id}"): "The till types the OTP the customer reads out, or cancels "
                                                  "(\"otp\": \"ask\")",
    ("POST", "/{dfsp}/qr"): "Make a merchant's QR code (static, or with an amount): its payload, an SVG and a "
                            "text drawing",
    ("POST", "/{dfsp}/payQr"): "A customer pays the merchant a QR code's payload names",
    ("GET", "/{dfsp}/transactionStatus/{transaction_id}"): "Ask the payee's DFSP about a payment this DFSP made "
                                                           "(GET /transactions/{ID} through the hub)",
    ("GET", "/{dfsp}/customers"): "The DFSP's customers and their balances",
    ("POST", "/{dfsp}/customers"): "A new customer joins the DFSP, with a new phone number registered in the "
                                   "hub's oracle",
    ("POST", "/{dfsp}/customers/generate"): "Create many customers at once and register them in the hub's oracle "
                                            "(for a payroll)",
    ("GET", "/{dfsp}/customers/{customer_id}"): "One customer, with their balance and settings",
    ("GET", "/{dfsp}/customers/{customer_id}/messages"): "The texts on a customer's phone, newest first",
    ("GET", "/{dfsp}/customers/{customer_id}/settings"): "How a customer answers a request to pay",
    ("PUT", "/{dfsp}/customers/{customer_id}/settings"): "Set how a customer answers a request to pay (approve, "
                                                         "decline, ignore, ask)",
    ("GET", "/{dfsp}/customers/{customer_id}/requests"): "The requests to pay waiting for a customer's answer",
    ("POST", "/{dfsp}/customers/{customer_id}/requests/{request_id}"): "A customer approves or declines a request "
                                                                       "to pay on their phone",
    ("GET", "/{dfsp}/transfers/recent"): "The DFSP's last transfers, the callbacks nobody waited for and the "
                                         "requests to pay it received",
    ("GET", "/{dfsp}/faults"): "The fault injected into the DFSP, if any",
    ("PUT", "/{dfsp}/faults"): "Make the DFSP slow, silent, rejecting or down, or normal again",
    ("POST", "/{dfsp}/bulkPay"): "A customer pays many people at once: lookups, then bulk quotes and bulk "
                                 "transfers through the hub",
    ("GET", "/{dfsp}/consents"): "The DFSP's consents (linked accounts), newest first",
    ("POST", "/{dfsp}/consents/{consent_id}/revoke"): "The DFSP revokes a consent, as a customer would in their "
                                                      "wallet's settings",
    ("GET", "/{dfsp}/tplogin/{request_id}"): "The DFSP's login page of a consent request's WEB channel",
    ("POST", "/{dfsp}/tplogin/{request_id}"): "The user allows or denies the PISP on the DFSP's login page; back "
                                              "to the PISP's callbackUri",
    ("POST", "/{name}/link"): "The PISP links a customer's account at a DFSP (OTP or WEB login) and registers a "
                              "credential",
    ("POST", "/{name}/pay"): "The PISP pays someone from a linked account, with a signed authorization",
    ("POST", "/{name}/unlink"): "The PISP revokes one of its links (DELETE /consents/{ID} to the DFSP)",
    ("GET", "/{name}/links"): "The PISP's links, newest first",
    ("GET", "/{name}/linked"): "The page the PISP's user comes back to after the DFSP's login page",
}

# the wallet port, one line per operation (docs/wallet.md)
_WALLET_SUMMARIES: dict[tuple[str, str], str] = {
    ("GET", "/"): "The room: two phones, a merchant's till, the budgeting app and the hub",
    ("GET", "/phone/{dfsp}/{customer_id}"): "One customer's phone, full screen",
    ("GET", "/till/{dfsp}/{customer_id}"): "One merchant's or agent's till",
    ("GET", "/hub"): "The hub pane alone: the messages of the current payment, the positions, the open window",
    ("GET", "/pisp"): "The budgeting app (the simulated PISP) alone",
    ("GET", "/join"): "Join as a new customer, for a workshop participant's own phone",
    ("GET", "/static/{name}"): "One of the page's files (scripts, styles)",
    ("GET", "/api/config"): "The simulated DFSPs, their fees and customers, the PISPs, and the join URL",
    ("GET", "/api/sim/{path}"): "The sim port's driving API, passed through as it is",
    ("POST", "/api/sim/{path}"): "The sim port's driving API, passed through as it is",
    ("PUT", "/api/sim/{path}"): "The sim port's driving API, passed through as it is",
    ("GET", "/api/qrs"): "The last QR codes made on tills through the page, newest first",
    ("GET", "/api/hub"): "Each DFSP's position, Net Debit Cap, settlement balance and liquidity, and the open "
                         "settlement window",
    ("POST", "/api/join"): "A new customer at one of the simulated wallet DFSPs (taken in turn), registered in the hub's "
                              "oracle",
    ("GET", "/api/join-qr"): "The join page's address and its QR code, when the hub listens beyond loopback",
    ("GET", "/api/events"): "Server-sent events: the simulators' messages, texts, balances and flows, and the "
                            "hub's events",
}


# --------------------------------------------------------------------------- the sim port


def _is_fspiop(handler: Any) -> bool:
    """A simulated DFSP's FSPIOP endpoint: its handler hands the message to `_take` (or `take`)."""
    code = getattr(inspect.unwrap(handler), "__code__", None)
    return code is not None and ("_take" in code.co_names or "take" in code.co_freevars)


def _header(name: str, required: bool, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required,
            "schema": {"type": "string", "minLength": 1, "pattern": r"^[A-Za-z0-9_.-]+$"}, "description": description}


def _fspiop_path(path: str) -> str:
    """/{dfsp}/quotes/{item_id} -> /quotes/{item_id}: the FSPIOP resource path under the prefix."""
    return "/" + path.split("/", 2)[2]


def sim_api(app: Sanic) -> Api:
    """The sim port's description, for this app's simulated DFSPs and PISPs."""
    sim = getattr(app.ctx, "sim", None)
    names = sorted(sim.dfsps) if sim is not None else []
    pisps = sorted(sim.pisps) if sim is not None else []
    from miniloop.api.openapi import routes

    bodies: dict[tuple[str, str], type] = {}
    fspiop: set[tuple[str, str]] = set()
    for path, method, handler, _ in routes(app):
        if _is_fspiop(handler):
            fspiop.add((method, path))
        if method in ("POST", "PUT", "PATCH"):
            if _is_fspiop(handler):
                bodies[(method, path)] = FspiopBody
            elif _DRIVING_BODIES.get((method, path)) is not None:
                bodies[(method, path)] = _DRIVING_BODIES[(method, path)]

    def parameters(method: str, path: str, handler: Any) -> list[dict[str, Any]]:
        if _is_fspiop(handler):
            return [_header("FSPIOP-Source", True, "the sender (the hub forwards the DFSP's)"),
                    _header("FSPIOP-Destination", False, "the participant the message is for")]
        if "{customer_id}" in path:
            return [{"name": "idType", "in": "query", "required": False, "description": "the customer's id type, "
                     "if the id alone is ambiguous", "schema": {"type": "string", "enum": list(PARTY_ID_TYPES)}}]
        return []

    def path_schema(path: str, name: str) -> dict[str, Any] | None:
        if name in ("dfsp", "name") and path.startswith("/{"):
            pisp_route = path.split("/")[2] in _PISP_ROUTES
            allowed = pisps if pisp_route else names
            return {"type": "string", "enum": allowed} if allowed else None
        if name == "kind":
            return {"type": "string", "enum": list(thirdparty.TP_KINDS)}
        return None

    def body_media(method: str, path: str) -> list[str]:
        if bodies.get((method, path)) is FspiopBody:
            return fspiop_body_media(method, _fspiop_path(path))
        if path == "/{dfsp}/tplogin/{request_id}":
            return ["application/x-www-form-urlencoded", "application/json"]
        return ["application/json"]

    def success(method: str, path: str, handler: Any) -> tuple[int, dict[str, Any]] | None:
        if (method, path) == ("POST", "/{dfsp}/customers"):
            return 201, {"description": "joined: the new customer", "content": JSON}
        if _is_fspiop(handler):
            status = 202 if method in ("GET", "POST", "DELETE") else 200
            return status, {"description": "taken: the answer comes as a callback to the hub"}
        if path == "/{name}/linked":
            return 200, {"description": "the page the PISP's user comes back to", "content": HTML}
        if path == "/{dfsp}/tplogin/{request_id}":
            if method == "GET":
                return 200, {"description": "the DFSP's login page", "content": HTML}
            return 303, {"description": "answered: back to the PISP's callbackUri"}
        return None

    def more_answers(method: str, path: str) -> dict[str, dict[str, Any]]:
        if path == "/{dfsp}/tplogin/{request_id}":
            return {"4XX": {"description": "no such login (404), answered already (409): a page; a bad "
                                           "decision: the FSPIOP error body",
                            "content": {**HTML, "application/json": {"schema": {"$ref": "#/components/schemas/"
                                                                               "ErrorInformationObject"}}}}}
        return dict(FLOW_ANSWERS) if (method, path) in _FLOWS else {}

    def summary(method: str, path: str) -> str | None:
        if (method, path) in fspiop:
            return fspiop_summary(method, _fspiop_path(path), receiver="sim")
        return _DRIVING_SUMMARIES.get((method, path))

    return Api(
        title="miniloop simulated DFSPs (sim port)",
        description="Every simulated DFSP's FSPIOP endpoints under /{dfsp}, which the hub calls, and the "
                    "driving API for people, the wallet page and scenarios (docs/simulator.md).",
        parameters=parameters, bodies=bodies, body_media=body_media, path_schema=path_schema,
        success=success, more_answers=more_answers, summary=summary,
    )


# --------------------------------------------------------------------------- the wallet port


def wallet_api(app: Sanic) -> Api:
    """The wallet port's description (mobile_sim.web)."""
    from mobile_sim.web import CONTENT_TYPES, PAGES, STATIC_DIR

    sim = getattr(app.ctx, "sim", None)
    names = sorted(d for d in sim.dfsps if d not in sim.pisps) if sim is not None else []
    files = sorted(p.name for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix in CONTENT_TYPES) \
        if STATIC_DIR.is_dir() else []
    pages = {"/" + p.strip("/").replace("<", "{").replace(">", "}") if p != "/" else "/" for p in PAGES}

    def path_schema(path: str, name: str) -> dict[str, Any] | None:
        if path == "/static/{name}" and files:
            return {"type": "string", "enum": files}
        if name == "dfsp" and names:
            return {"type": "string", "enum": names}
        if name == "path":  # the sim port's path: one or more segments
            return {"type": "string", "minLength": 1}
        return None

    def success(method: str, path: str, handler: Any) -> tuple[int, dict[str, Any]] | None:
        if path in pages:
            return 200, {"description": "the wallet page (one page, laid out by its path)", "content": HTML}
        if path == "/static/{name}":
            types = sorted({CONTENT_TYPES[f[f.rindex("."):]].split(";")[0] for f in files}) or ["text/plain"]
            return 200, {"description": "the file", "content": {t: {"schema": {"type": "string"}} for t in types}}
        if path == "/api/events":
            return 200, {"description": "server-sent events, until the page goes away",
                         "content": {"text/event-stream": {"schema": {"type": "string"}}}}
        if path == "/api/sim/{path}":
            return 200, {"description": "as the sim port answered", "content": JSON}
        if path == "/api/join":
            return 201, {"description": "joined: the new customer (the sim's POST /{dfsp}/customers)", "content": JSON}
        return None

    def more_answers(method: str, path: str) -> dict[str, dict[str, Any]]:
        return dict(FLOW_ANSWERS) if path == "/api/sim/{path}" and method != "GET" or path == "/api/join" else {}

    return Api(
        title="miniloop mobile wallet (wallet port)",
        description="The wallet page, its files and the JSON API it is written against (docs/wallet.md).",
        bodies={("POST", "/api/join"): WalletJoin, ("POST", "/api/sim/{path}"): DrivingBody,
                ("PUT", "/api/sim/{path}"): DrivingBody},
        optional_bodies=frozenset({("POST", "/api/join")}),
        path_schema=path_schema, success=success, more_answers=more_answers,
        summary=lambda method, path: _WALLET_SUMMARIES.get((method, path)),
    )


def apis(apps: dict[str, Sanic]) -> dict[str, Api]:
    """Every description for serve_openapi (miniloop.app): the hub's own APIs'
    (miniloop.api.openapi_apis) and, for the apps given, the sim and wallet ports'."""
    from miniloop.api.openapi_apis import APIS

    builders = {"sim": sim_api, "wallet": wallet_api}
    return {**APIS, **{name: build(apps[name]) for name, build in builders.items() if name in apps}}
