"""A simulated DFSP's third-party side: account linking with a PISP, and transfers a PISP asks for.

Why: with the Third-party API v1.0 a PISP (a budgeting app, say) pays from a customer's wallet
after the customer linked it. Every simulated DFSP plays the DFSP's part, in the message order
of OPERATIONS-APIS.md §5, with the hub's auth-service (participant "centralAuth") keeping the
credential. docs/simulator.md, "The simulated PISP", documents it with the PISP's driving API.

Linking (the PISP drives it, mobile_sim.pisp):
- GET /accounts/{userId} -> PUT /accounts/{userId} {accountList: [{accountNickname, address,
  currency}]}: the customer's one account, at the address `<dfsp>.<customer id>`; an unknown
  user gets /error 6205.
- POST /consentRequests -> checks (6101: an action other than ACCOUNTS_TRANSFER or
  ACCOUNTS_GET_BALANCE, or an address that is not the user's; 6204: a callbackUri that is not
  http(s); 6104: a user it does not know or a resent id with other data), then PUT
  /consentRequests/{ID} with the channel it picked (the PISP's first, OTP or WEB). OTP: a
  6-digit code goes to the customer's phone first. WEB: `authUri` is the DFSP's login page on
  the sim port, GET/POST /<dfsp>/tplogin/{ID}: "allow" issues a token and redirects (303) to
  the PISP's callbackUri with `authToken` in the query; "deny" answers the PISP PUT
  /consentRequests/{ID}/error 6102.
- PATCH /consentRequests/{ID} {authToken}: a wrong token is PUT /consentRequests/{ID}/error 6203
  (one try: the request is then closed); the right one issues a consent: POST /consents
  {consentId, consentRequestId, scopes, status: ISSUED} to the PISP.
- PUT /consents/{ID} from the PISP with a PENDING credential -> POST /consents to centralAuth
  (consentId, consentRequestId, scopes, credential, status ISSUED) and its answer: PUT
  /consents/{ID} with the credential VERIFIED, or /error (6200), passed on to the PISP. Once
  verified, POST /participants/THIRD_PARTY_LINK/{address} to the ALS for each scope address
  (waiting for each PUT /participants/...), then PATCH /consents/{ID} {credential: {status:
  VERIFIED}} to the PISP. A failed step answers the PISP PUT /consents/{ID}/error. A PISP has
  one live consent per account: an older one of the same PISP on the same address is then
  revoked (as below), since a payer's THIRD_PARTY_LINK address must name one consent.
- Unlinking: DELETE /consents/{ID} from the consent's PISP, or POST /<dfsp>/consents/{ID}/revoke
  on the driving API: the consent is REVOKED, PATCH /consents/{ID} {status: REVOKED, revokedAt}
  goes to the PISP and to centralAuth, and each scope address no other live consent uses is
  removed from the ALS (DELETE /participants/THIRD_PARTY_LINK/{address}).

Transfers: POST /thirdpartyRequests/transactions from a PISP, payer {THIRD_PARTY_LINK, address}:
1. checks: a consent of that PISP, ISSUED and verified, with ACCOUNTS_TRANSFER on the address
   (else /error 6103: unknown, revoked or not granted), the DFSP's currency (4103), an amount,
   a payee with its fspId (3100);
2. PUT /thirdpartyRequests/transactions/{ID} {transactionRequestState: RECEIVED};
3. POST /quotes to the payee's DFSP (transactionRequestId, the PISP's amountType) -> PUT
   /quotes; a failed quote or a customer who cannot pay is /error (6003 with the quote's code,
   4000);
4. POST /thirdpartyRequests/authorizations to the PISP with challenge =
   base64(hex(SHA-256(RFC 8785 JSON of the PUT /quotes body))) (mobile_sim.tpcrypto), the
   amounts and the parties -> PUT /thirdpartyRequests/authorizations/{ID}: REJECTED ends it
   (PATCH ... REJECTED); ACCEPTED goes on;
5. POST /thirdpartyRequests/verifications to centralAuth (the same challenge, the consentId,
   the signed payload) -> PUT .../verifications/{ID} VERIFIED, or /error (6201), passed on to
   the PISP as PUT /thirdpartyRequests/transactions/{ID}/error;
6. reserves the amount and POST /transfers as /send does -> on COMMITTED, PATCH
   /thirdpartyRequests/transactions/{ID} {transactionRequestState: ACCEPTED, transactionState:
   COMPLETED, completedTimestamp} with the transferId in its extensionList; a transfer that
   fails is /error 6003.
Every wait ends at the request's expiration (60 s without one, 300 s at most). GET
/thirdpartyRequests/transactions/{ID} from the same PISP answers PUT {transactionRequestState}.

State is in memory and bounded like the books: consent requests, consents and third-party
transactions, the oldest finished ones forgotten first.
"""

from __future__ import annotations

import hmac
import html
import logging
import re
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from miniloop import money
from mobile_sim import bodies, tpcrypto, usecases
from mobile_sim.bodies import Refused
from mobile_sim.dfsp import Customer, SimDfsp
from mobile_sim.send import MAX_TIMEOUT_S, Stop, WireFlow, _usable_quote
from mobile_sim.thirdparty import AUTH_SERVICE, correlation_id, error, unmatched

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

log = logging.getLogger(__name__)

SUPPORTED_ACTIONS = ("ACCOUNTS_TRANSFER", "ACCOUNTS_GET_BALANCE")
ALL_ACTIONS = ("ACCOUNTS_GET_BALANCE", "ACCOUNTS_TRANSFER", "ACCOUNTS_STATEMENT")
CHANNELS = ("OTP", "WEB")
OTP_DIGITS = 6
CONSENT_REQUESTS_MAX = 1_000  # per DFSP, the oldest finished ones forgotten first
CONSENTS_MAX = 1_000
TRANSACTIONS_MAX = 1_000
REGISTRATION_S = 60.0  # how long registering a credential (auth-service, ALS) may take
REVOKE_S = 20.0
DEFAULT_REQUEST_S = 60.0
FLOWS_MAX = 200  # third-party transfers and registrations being worked on at once, all DFSPs
_ADDRESS_CHARS = re.compile(r"[^0-9A-Za-z_~-]")


# --- state ---------------------------------------------------------------------------------------


@dataclass
class ConsentRequest:
    request_id: str
    pisp: str
    customer: Customer
    scopes: list[dict[str, Any]]
    channel: str
    callback_uri: str
    body: dict[str, Any]  # the POST, to answer a resend
    answer: dict[str, Any]  # our PUT /consentRequests/{ID}
    secret: str | None = None  # the OTP, or the token the login page issued
    state: str = "REQUESTED"  # REQUESTED, AUTHORIZED (login done), CONSENTED, DENIED, FAILED
    consent_id: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.state in ("CONSENTED", "DENIED", "FAILED")


@dataclass
class Consent:
    consent_id: str
    request_id: str
    pisp: str
    customer: Customer
    scopes: list[dict[str, Any]]
    state: str = "ISSUED"  # ISSUED (waiting for a credential), REGISTERING, ACTIVE, FAILED, REVOKED
    credential_type: str | None = None
    public_key: str | None = None
    issued_at: str = field(default_factory=bodies.timestamp)
    verified_at: str | None = None
    revoked_at: str | None = None
    revoked_by: str | None = None
    reason: str | None = None

    @property
    def addresses(self) -> list[str]:
        return [str(s.get("address")) for s in self.scopes]

    def grants(self, address: str, action: str) -> bool:
        return any(s.get("address") == address and action in (s.get("actions") or []) for s in self.scopes)

    @property
    def finished(self) -> bool:
        return self.state in ("FAILED", "REVOKED")

    def view(self) -> dict[str, Any]:
        return {
            "consentId": self.consent_id, "consentRequestId": self.request_id, "pisp": self.pisp,
            "customer": self.customer.id, "scopes": self.scopes, "state": self.state,
            "credentialType": self.credential_type, "issuedAt": self.issued_at, "verifiedAt": self.verified_at,
            "revokedAt": self.revoked_at, "revokedBy": self.revoked_by, "reason": self.reason,
        }


@dataclass
class TpTransaction:
    request_id: str
    pisp: str
    body: dict[str, Any]
    state: str = "RECEIVED"  # RECEIVED, PENDING (asked the PISP), ACCEPTED, COMPLETED, REJECTED, FAILED
    consent_id: str | None = None
    transfer_id: str | None = None
    reason: str | None = None
    at: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.state in ("COMPLETED", "REJECTED", "FAILED")

    def api_state(self) -> str:
        return {"COMPLETED": "ACCEPTED", "FAILED": "REJECTED"}.get(self.state, self.state)


@dataclass
class TpState:
    """One DFSP's third-party records."""

    requests: OrderedDict[str, ConsentRequest] = field(default_factory=OrderedDict)
    consents: OrderedDict[str, Consent] = field(default_factory=OrderedDict)
    transactions: OrderedDict[str, TpTransaction] = field(default_factory=OrderedDict)

    def keep(self, table: OrderedDict[str, Any], key: str, item: Any, limit: int) -> None:
        table[key] = item
        table.move_to_end(key)
        excess = len(table) - limit
        if excess > 0:
            for old in [k for k, v in table.items() if v.finished][:excess]:
                del table[old]


def state_of(dfsp: SimDfsp) -> TpState:
    if dfsp.thirdparty is None:
        dfsp.thirdparty = TpState()
    return dfsp.thirdparty


def address_of(dfsp: SimDfsp, customer: Customer) -> str:
    """The account address a DFSP gives a customer's account: `<dfsp>.<customer id>`."""
    return f"{dfsp.name}.{_ADDRESS_CHARS.sub('-', customer.id)}"


def customer_at(dfsp: SimDfsp, address: str) -> Customer | None:
    prefix = f"{dfsp.name}."
    if not address.startswith(prefix):
        return None
    return next((c for c in dfsp.books.customers.values() if address_of(dfsp, c) == address), None)


def _account(dfsp: SimDfsp, customer: Customer) -> dict[str, Any]:
    nickname = re.sub(r"[^\w .,'-]", "", f"{customer.name} at {dfsp.name}").strip()[:128] or dfsp.name
    return {"accountNickname": nickname, "address": address_of(dfsp, customer), "currency": dfsp.currency}


# --- the simulator's hook ------------------------------------------------------------------------


async def handle(sim: Simulator, message: Incoming) -> None:
    """A Third-party API message to a simulated DFSP."""
    resource, method = message.resource, message.method
    item = str(message.ids[0]) if message.ids else ""
    if resource == "accounts" and method == "GET":
        await _accounts(sim, message, item)
    elif resource == "consentRequests" and method == "POST":
        await _consent_request(sim, message)
    elif resource == "consentRequests" and method == "PATCH":
        await _auth_token(sim, message, item)
    elif resource == "consents":
        await _consents(sim, message, item)
    elif resource == "thirdpartyRequests/transactions" and method == "POST":
        await _transaction(sim, message)
    elif resource == "thirdpartyRequests/transactions" and method == "GET":
        await _transaction_state(sim, message, item)
    elif method in ("PUT", "PATCH") and (resource.startswith("thirdpartyRequests/") or resource == "services"):
        if not sim.waiters.deliver(message.key, message):
            unmatched(message, "third-party callback nobody waits for")
    else:
        unmatched(message, "a simulated DFSP does not take")


async def _consents(sim: Simulator, message: Incoming, consent_id: str) -> None:
    consents = state_of(message.dfsp).consents
    consent = consents.get(consent_id)
    body = message.body or {}
    credential = body.get("credential") if isinstance(body.get("credential"), dict) else {}
    from_pisp = consent is not None and message.source == consent.pisp
    if message.method == "PUT" and not message.is_error and from_pisp and credential.get("status") == "PENDING":
        await _register(sim, message, consent)  # type: ignore[arg-type]
    elif message.method == "DELETE":
        if consent is None or not from_pisp:
            await sim.reply(message, "PUT", f"/consents/{consent_id}/error",
                            error("6103", f"{message.dfsp.name} knows no consent {consent_id} of {message.source}"))
        elif consent.state == "REVOKED":
            await sim.reply(message, "PUT", f"/consents/{consent_id}/error",
                            error("6103", f"consent {consent_id} was already revoked at {consent.revoked_at}"))
        else:
            await revoke(sim, message.dfsp, consent, by=message.source, trace=message.traceparent)
    elif message.method == "PUT" and message.is_error and from_pisp:
        assert consent is not None
        if consent.state in ("ISSUED", "REGISTERING"):
            consent.state, consent.reason = "FAILED", _reason(body)
    elif message.method == "PATCH" and body.get("status") == "REVOKED" and consent is not None:
        if consent.state != "REVOKED":  # revoked at the auth-service: take note, nobody to tell
            consent.state, consent.revoked_at, consent.revoked_by = "REVOKED", body.get("revokedAt"), message.source
    elif not sim.waiters.deliver(message.key, message):
        unmatched(message, "consent message nobody waits for")


def _reason(body: dict[str, Any]) -> str:
    info = body.get("errorInformation") if isinstance(body.get("errorInformation"), dict) else {}
    return f"{info.get('errorCode')} {info.get('errorDescription')}"


# --- linking -------------------------------------------------------------------------------------


async def _accounts(sim: Simulator, message: Incoming, user_id: str) -> None:
    dfsp = message.dfsp
    customer = dfsp.books.find(user_id)
    if customer is None:
        await sim.reply(message, "PUT", f"/accounts/{user_id}/error",
                        error("6205", f"{dfsp.name} has no accounts for {user_id}"))
        return
    await sim.reply(message, "PUT", f"/accounts/{user_id}", {"accountList": [_account(dfsp, customer)]})


def _check_consent_request(dfsp: SimDfsp, body: dict[str, Any]) -> tuple[Customer, list[dict[str, Any]], str]:
    """The customer, the scopes and the channel of a POST /consentRequests; Refused if we will not."""
    user_id = body.get("userId")
    customer = dfsp.books.find(user_id) if isinstance(user_id, str) else None
    if customer is None:
        raise Refused("6104", f"{dfsp.name} has no user {user_id}")
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not 1 <= len(scopes) <= 256:
        raise Refused("3100", "scopes must be a list of 1 to 256 scopes")
    own = address_of(dfsp, customer)
    checked = []
    for scope in scopes:
        if not isinstance(scope, dict) or not isinstance(scope.get("actions"), list) or not scope["actions"]:
            raise Refused("3100", "each scope needs an address and a list of actions")
        address = scope.get("address")
        if address != own:
            raise Refused("6101", f"{address} is not an account of {user_id} at {dfsp.name}")
        unsupported = [a for a in scope["actions"] if a not in SUPPORTED_ACTIONS]
        if unsupported:
            raise Refused("6101", f"{dfsp.name} grants only {' and '.join(SUPPORTED_ACTIONS)}, "
                                  f"not {str(unsupported[0])[:32]}")
        checked.append({"address": address, "actions": list(dict.fromkeys(scope["actions"]))})
    channels = body.get("authChannels")
    if not isinstance(channels, list) or not channels:
        raise Refused("3100", "authChannels must list OTP or WEB")
    channel = next((c for c in channels if c in CHANNELS), None)
    if channel is None:
        raise Refused("6104", f"{dfsp.name} authenticates with OTP or WEB only")
    callback = body.get("callbackUri")
    if not isinstance(callback, str) or urlsplit(callback).scheme not in ("http", "https") \
            or not urlsplit(callback).netloc or len(callback) > 512:
        raise Refused("6204", "callbackUri must be an http(s) URL")
    return customer, checked, channel


async def _consent_request(sim: Simulator, message: Incoming) -> None:
    dfsp, body = message.dfsp, message.body or {}
    request_id = body.get("consentRequestId")
    if not correlation_id(request_id):
        log.warning("%s: dropped POST /consentRequests without a usable consentRequestId", dfsp.name)
        return
    path = f"/consentRequests/{request_id}"
    known = state_of(dfsp).requests.get(request_id)
    if known is not None:
        if known.body == body and known.pisp == message.source:
            await sim.reply(message, "PUT", path, known.answer)
        else:
            await sim.reply(message, "PUT", path + "/error",
                            error("6104", f"consent request {request_id} was sent before with other data"))
        return
    try:
        customer, scopes, channel = _check_consent_request(dfsp, body)
    except Refused as exc:
        await sim.reply(message, "PUT", path + "/error", error(exc.code, exc.detail))
        return
    answer: dict[str, Any] = {"scopes": scopes, "authChannels": [channel], "callbackUri": body["callbackUri"]}
    request = ConsentRequest(request_id, message.source, customer, scopes, channel, body["callbackUri"], body, answer)
    if channel == "WEB":
        answer["authUri"] = f"{sim.base_url}/{dfsp.name}/tplogin/{request_id}"
    else:
        request.secret = "".join(secrets.choice("0123456789") for _ in range(OTP_DIGITS))
        customer.text("otp", f"{request.secret} is your code to link your {dfsp.name} account to {message.source}. "
                             f"Enter it only in the {message.source} app.",
                      consentRequestId=request_id, otp=request.secret)
    state_of(dfsp).keep(state_of(dfsp).requests, request_id, request, CONSENT_REQUESTS_MAX)
    await sim.reply(message, "PUT", path, answer)


async def _auth_token(sim: Simulator, message: Incoming, request_id: str) -> None:
    dfsp, body = message.dfsp, message.body or {}
    path = f"/consentRequests/{request_id}"
    request = state_of(dfsp).requests.get(request_id)
    if request is None or request.pisp != message.source:
        await sim.reply(message, "PUT", path + "/error", error("6104", f"{dfsp.name} knows no consent request {request_id}"))
        return
    if request.state not in ("REQUESTED", "AUTHORIZED"):
        await sim.reply(message, "PUT", path + "/error",
                        error("6104", f"consent request {request_id} is {request.state.lower()}"))
        return
    token = body.get("authToken")
    if not isinstance(token, str) or request.secret is None \
            or not hmac.compare_digest(token.encode(), request.secret.encode()):
        request.state = "FAILED"
        await sim.reply(message, "PUT", path + "/error",
                        error("6203", "the OTP is wrong" if request.channel == "OTP" else "the login token is wrong"))
        return
    consent = Consent(str(uuid.uuid4()), request_id, request.pisp, request.customer, request.scopes)
    request.state, request.consent_id = "CONSENTED", consent.consent_id
    state_of(dfsp).keep(state_of(dfsp).consents, consent.consent_id, consent, CONSENTS_MAX)
    await sim.reply(message, "POST", "/consents", {
        "consentId": consent.consent_id, "consentRequestId": request_id, "scopes": consent.scopes, "status": "ISSUED",
    })


def web_login(sim: Simulator, dfsp: SimDfsp, request_id: str, decision: str) -> tuple[int, str | None, str]:
    """The DFSP's login page was answered: (HTTP status, redirect Location, page text).

    "allow" issues the token and sends the browser back to the PISP's callbackUri with it; "deny"
    tells the PISP (PUT /consentRequests/{ID}/error 6102) and sends the browser back with an error.
    """
    request = state_of(dfsp).requests.get(request_id)
    if request is None or request.channel != "WEB":
        return 404, None, f"{dfsp.name} has no login waiting for {request_id}"
    if request.state != "REQUESTED":
        return 409, None, f"this login was already answered ({request.state.lower()})"
    separator = "&" if urlsplit(request.callback_uri).query else "?"
    if decision == "allow":
        request.secret = secrets.token_urlsafe(24)
        request.state = "AUTHORIZED"
        query = urlencode({"consentRequestId": request_id, "authToken": request.secret})
        return 303, f"{request.callback_uri}{separator}{query}", "allowed"
    request.state = "DENIED"
    flow = WireFlow(sim, dfsp, 10.0)
    sim.pool.start(flow._tell("PUT", f"/consentRequests/{request_id}/error",
                              error("6102", f"{request.customer.name} did not allow {request.pisp}"), request.pisp),
                   f"{dfsp.name} tells {request.pisp} consent request {request_id} was denied")
    query = urlencode({"consentRequestId": request_id, "error": "denied"})
    return 303, f"{request.callback_uri}{separator}{query}", "denied"


def login_page(dfsp: SimDfsp, request_id: str) -> tuple[int, str]:
    """The tiny HTML login page behind a WEB consent request's authUri."""
    request = state_of(dfsp).requests.get(request_id)
    if request is None or request.channel != "WEB":
        return 404, f"<p>{dfsp.name} has no login waiting for {request_id}.</p>"
    e = html.escape
    scopes = "".join(f"<li>{e(str(s['address']))}: {e(', '.join(s['actions']))}</li>" for s in request.scopes)
    state = "" if request.state == "REQUESTED" else f"<p>Already answered: {request.state.lower()}.</p>"
    return 200, (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(dfsp.name)}: log in</title></head><body>"
        f"<h1>{e(dfsp.name)}</h1><p>{e(request.customer.name)}, <b>{e(request.pisp)}</b> asks to use your account:</p>"
        f"<ul>{scopes}</ul>{state}<form method='post'>"
        "<button name='decision' value='allow'>Log in and allow</button> "
        "<button name='decision' value='deny'>Deny</button></form></body></html>"
    )


async def _register(sim: Simulator, message: Incoming, consent: Consent) -> None:
    """PUT /consents/{ID} from the PISP, with the credential it signed: have centralAuth verify it."""
    dfsp, body = message.dfsp, message.body or {}
    path = f"/consents/{consent.consent_id}"
    flow = WireFlow(sim, dfsp, REGISTRATION_S, trace=message.traceparent)
    if consent.state != "ISSUED":
        await flow._tell("PUT", path + "/error", error("6103", f"consent {consent.consent_id} is "
                                                              f"{consent.state.lower()}"), consent.pisp)
        return
    credential = body.get("credential") if isinstance(body.get("credential"), dict) else {}
    if body.get("scopes") != consent.scopes:
        await flow._tell("PUT", path + "/error", error("6101", "the scopes are not those of the consent"), consent.pisp)
        return
    if credential.get("credentialType") not in ("GENERIC", "FIDO"):
        await flow._tell("PUT", path + "/error", error("6200", "credentialType must be GENERIC or FIDO"), consent.pisp)
        return
    consent.state, consent.credential_type = "REGISTERING", credential["credentialType"]
    try:
        auth = {"consentId": consent.consent_id, "consentRequestId": consent.request_id, "scopes": consent.scopes,
                "credential": credential, "status": "ISSUED"}
        answer = await flow._exchange("POST", "/consents", auth, AUTH_SERVICE, (dfsp.name, "consents", consent.consent_id))
        verified = (answer.body or {}).get("credential") or {}
        if verified.get("status") != "VERIFIED":
            raise Stop("ABORTED", 502, {"errorCode": "6200", "errorDescription":
                                        "Invalid Consent Credential - the auth-service did not verify it"})
        payload = credential.get("genericPayload") if isinstance(credential.get("genericPayload"), dict) else {}
        consent.public_key = payload.get("publicKey")
        for address in consent.addresses:
            await flow._exchange("POST", f"/participants/THIRD_PARTY_LINK/{address}", {"fspId": dfsp.name}, None,
                                 (dfsp.name, "participants", "THIRD_PARTY_LINK", address))
    except Stop as stop:
        if consent.state == "REGISTERING":
            consent.state = "FAILED"
            code = str((stop.error or {}).get("errorCode") or "6003")
            consent.reason = f"{code} {(stop.error or {}).get('errorDescription') or stop.state}"
            passed = code if code.startswith("6") else "6003"
            await flow._tell("PUT", path + "/error", error(passed, consent.reason), consent.pisp)
        return
    if consent.state != "REGISTERING":  # revoked meanwhile
        return
    consent.state, consent.verified_at = "ACTIVE", bodies.timestamp()
    await flow._tell("PATCH", path, {"credential": {"status": "VERIFIED"}}, consent.pisp)
    # one live link per PISP and account: the payer's THIRD_PARTY_LINK address must name one consent
    replaced = [c for c in state_of(dfsp).consents.values() if c is not consent and c.pisp == consent.pisp
                and c.state == "ACTIVE" and set(c.addresses) & set(consent.addresses)]
    for old in replaced:
        old.reason = f"replaced by consent {consent.consent_id}"
        await revoke(sim, dfsp, old, by=dfsp.name, trace=message.traceparent)


async def revoke(sim: Simulator, dfsp: SimDfsp, consent: Consent, *, by: str,
                 trace: str | None = None) -> dict[str, Any]:
    """Revoke a consent (asked by its PISP, or by the DFSP itself): tell the PISP and centralAuth,
    and take its addresses out of the ALS. Returns the answer of POST /<dfsp>/consents/{ID}/revoke."""
    flow = WireFlow(sim, dfsp, REVOKE_S, trace=trace)
    was_active = consent.state in ("ACTIVE", "REGISTERING")
    consent.state, consent.revoked_at, consent.revoked_by = "REVOKED", bodies.timestamp(), by
    patch = {"status": "REVOKED", "revokedAt": consent.revoked_at}
    path = f"/consents/{consent.consent_id}"
    await flow._tell("PATCH", path, patch, consent.pisp)
    if was_active:
        await flow._tell("PATCH", path, patch, AUTH_SERVICE)
    still_used = {a for c in state_of(dfsp).consents.values() if c.state == "ACTIVE" for a in c.addresses}
    problems = []
    for address in consent.addresses if was_active else []:
        if address in still_used:
            continue
        try:
            await flow._exchange("DELETE", f"/participants/THIRD_PARTY_LINK/{address}", None, None,
                                 (dfsp.name, "participants", "THIRD_PARTY_LINK", address))
        except Stop as stop:
            problems.append({"address": address, **(stop.error or {"errorDescription": stop.state})})
    result: dict[str, Any] = {"state": "REVOKED", "consentId": consent.consent_id, "revokedAt": consent.revoked_at,
                              "revokedBy": by, "messages": flow.messages}
    if problems:
        result["problems"] = problems
    return result


# --- third-party transfers -----------------------------------------------------------------------


def _find_consent(dfsp: SimDfsp, pisp: str, address: str) -> Consent | None:
    """The newest consent of `pisp` on `address` (a live one before a revoked one)."""
    found = [c for c in state_of(dfsp).consents.values() if c.pisp == pisp and address in c.addresses]
    live = [c for c in found if c.state == "ACTIVE"]
    return (live or found or [None])[-1]


def _check_transaction(dfsp: SimDfsp, pisp: str, body: dict[str, Any]) -> tuple[Consent, Customer, float]:
    payer = body.get("payer")
    if not isinstance(payer, dict) or payer.get("partyIdType") != "THIRD_PARTY_LINK" \
            or not isinstance(payer.get("partyIdentifier"), str):
        raise Refused("3100", "payer must be a PartyIdInfo of type THIRD_PARTY_LINK")
    address = payer["partyIdentifier"]
    consent = _find_consent(dfsp, pisp, address)
    if consent is None:
        raise Refused("6103", f"{pisp} has no consent on {address}")
    if consent.state == "REVOKED":
        raise Refused("6103", f"consent {consent.consent_id} was revoked at {consent.revoked_at}")
    if consent.state != "ACTIVE":
        raise Refused("6103", f"consent {consent.consent_id} is {consent.state.lower()}, not verified")
    if not consent.grants(address, "ACCOUNTS_TRANSFER"):
        raise Refused("6103", f"consent {consent.consent_id} does not grant ACCOUNTS_TRANSFER on {address}")
    customer = customer_at(dfsp, address)
    if customer is None:
        raise Refused("6103", f"{address} is no longer an account at {dfsp.name}")
    payee = body.get("payee")
    info = payee.get("partyIdInfo") if isinstance(payee, dict) else None
    if not isinstance(info, dict) or not isinstance(info.get("fspId"), str) or not info.get("partyIdentifier"):
        raise Refused("3100", "payee must be a Party whose partyIdInfo has the payee's fspId")
    if info["fspId"] == dfsp.name:
        raise Refused("6104", f"the payee is at {dfsp.name} itself: on-us payments do not go through the hub")
    bodies.check_amount(body.get("amount"), dfsp.currency, dfsp.name)
    if body.get("amountType") not in ("SEND", "RECEIVE"):
        raise Refused("3100", "amountType must be SEND or RECEIVE")
    problem = usecases.check_transaction_type(body.get("transactionType"))
    if problem:
        raise Refused("3100", problem)
    return consent, customer, bodies.seconds_left(body.get("expiration"), DEFAULT_REQUEST_S, MAX_TIMEOUT_S,
                                                  "the request")


async def _transaction_state(sim: Simulator, message: Incoming, request_id: str) -> None:
    path = f"/thirdpartyRequests/transactions/{request_id}"
    known = state_of(message.dfsp).transactions.get(request_id)
    if known is None or known.pisp != message.source:
        await sim.reply(message, "PUT", path + "/error",
                        error("3206", f"{message.dfsp.name} knows no third-party transaction request {request_id}"))
    else:
        await sim.reply(message, "PUT", path, {"transactionRequestState": known.api_state()})


async def _transaction(sim: Simulator, message: Incoming) -> None:
    dfsp, body = message.dfsp, message.body or {}
    request_id = body.get("transactionRequestId")
    if not correlation_id(request_id):
        log.warning("%s: dropped POST /thirdpartyRequests/transactions without a transactionRequestId", dfsp.name)
        return
    path = f"/thirdpartyRequests/transactions/{request_id}"
    state = state_of(dfsp)
    known = state.transactions.get(request_id)
    if known is not None:
        if known.body == body and known.pisp == message.source:
            await sim.reply(message, "PUT", path, {"transactionRequestState": known.api_state()})
        else:
            await sim.reply(message, "PUT", path + "/error",
                            error("3106", f"transaction request {request_id} was sent before with other data"))
        return
    record = TpTransaction(request_id, message.source, body)
    state.keep(state.transactions, request_id, record, TRANSACTIONS_MAX)
    try:
        consent, customer, timeout_s = _check_transaction(dfsp, message.source, body)
        if sim.tp_flows >= FLOWS_MAX:
            raise Refused("2003", f"{FLOWS_MAX} third-party requests are already being worked on")
    except Refused as exc:
        record.state, record.reason = "FAILED", f"{exc.code} {exc.detail}"
        await sim.reply(message, "PUT", path + "/error", error(exc.code, exc.detail))
        return
    record.consent_id = consent.consent_id
    sim.tp_flows += 1
    try:
        await TransferFlow(sim, message, record, consent, customer, timeout_s).run()
    finally:
        sim.tp_flows -= 1


class TransferFlow(WireFlow):
    """One third-party transfer at the payer's DFSP: quote, authorization, verification, transfer."""

    def __init__(self, sim: Simulator, message: Incoming, record: TpTransaction, consent: Consent,
                 customer: Customer, timeout_s: float) -> None:
        super().__init__(sim, message.dfsp, timeout_s, trace=message.traceparent)
        self.record, self.consent, self.customer = record, consent, customer
        self.body = message.body or {}
        self.path = f"/thirdpartyRequests/transactions/{record.request_id}"

    async def run(self) -> None:
        try:
            await self._run()
        except Stop as stop:
            if not self.record.finished:
                error_info = stop.error or {"errorCode": "6003", "errorDescription": "no answer in time"}
                await self._fail(str(error_info.get("errorCode")), str(error_info.get("errorDescription")))

    async def _fail(self, code: str, detail: str) -> None:
        self.record.state = "FAILED"
        self.record.reason = self.record.reason or f"{code} {detail}"
        await self._tell("PUT", self.path + "/error", error(code, detail.split(" - ", 1)[-1]), self.record.pisp)

    async def _run(self) -> None:
        dfsp, record, body, pisp = self.dfsp, self.record, self.body, self.record.pisp
        await self._tell("PUT", self.path, {"transactionRequestState": "RECEIVED"}, pisp)

        # the quote, with the payee's DFSP
        quote_id, transfer_id = str(uuid.uuid4()), str(uuid.uuid4())
        payee = body["payee"]
        payee_fsp = payee["partyIdInfo"]["fspId"]
        request: dict[str, Any] = {
            "quoteId": quote_id, "transactionId": transfer_id, "transactionRequestId": record.request_id,
            "payee": payee, "payer": bodies.party(self.customer, dfsp.name), "amountType": body["amountType"],
            "amount": body["amount"], "transactionType": body["transactionType"],
        }
        if isinstance(body.get("note"), str) and 1 <= len(body["note"]) <= 128:
            request["note"] = body["note"]
        try:
            answer = await self._exchange("POST", "/quotes", request, payee_fsp, (dfsp.name, "quotes", quote_id))
        except Stop as stop:
            raise Stop(stop.state, stop.status, _downstream("the quote failed", stop)) from None
        quote = answer.body or {}
        units = _usable_quote(quote, dfsp.currency)
        if units is None:
            raise Stop("ABORTED", 502, {"errorCode": "6003", "errorDescription": "Downstream Failure - the payee's "
                                        "quote has no usable transferAmount, ilpPacket, condition or expiration"})
        if self.customer.available < units:
            raise Stop("ABORTED", 400, {"errorCode": "4000", "errorDescription": f"Generic Payer error - the payer has "
                                        f"{money.format_amount(self.customer.available)} {dfsp.currency} available, "
                                        f"{quote['transferAmount']['amount']} is needed"})

        # the PISP's user signs the challenge
        record.state = "PENDING"
        challenge = tpcrypto.quote_challenge(quote)
        authorization_id = str(uuid.uuid4())
        transfer_amount = quote["transferAmount"]
        receive = quote.get("payeeReceiveAmount") or transfer_amount
        fees = money.to_units(money.parse_amount(transfer_amount["amount"])) \
            - money.to_units(money.parse_amount(receive["amount"]))
        ask = {
            "authorizationRequestId": authorization_id, "transactionRequestId": record.request_id,
            "challenge": challenge, "transferAmount": transfer_amount, "payeeReceiveAmount": receive,
            "fees": {"amount": money.format_amount(max(fees, 0)), "currency": transfer_amount["currency"]},
            "payer": body["payer"], "payee": payee, "transactionType": body["transactionType"],
            "expiration": bodies.timestamp_in(max(self.remaining(), 1.0)),
        }
        answer = await self._exchange("POST", "/thirdpartyRequests/authorizations", ask, pisp,
                                      (dfsp.name, "thirdpartyRequests/authorizations", authorization_id))
        signed = answer.body or {}
        if signed.get("responseType") == "REJECTED":
            record.state, record.reason = "REJECTED", "the PISP's user rejected the terms"
            await self._tell("PATCH", self.path, {"transactionRequestState": "REJECTED",
                                                  "transactionState": "REJECTED"}, pisp)
            return
        payload = signed.get("signedPayload") if isinstance(signed.get("signedPayload"), dict) else {}
        payload_type = payload.get("signedPayloadType")
        if signed.get("responseType") != "ACCEPTED" or payload_type not in ("GENERIC", "FIDO"):
            raise Stop("ABORTED", 502, {"errorCode": "6100", "errorDescription": "Authentication rejection - "
                                        "the authorization is neither REJECTED nor ACCEPTED with a signed payload"})

        # the hub's auth-service checks the signature against the consent's credential
        verification_id = str(uuid.uuid4())
        verification: dict[str, Any] = {
            "verificationRequestId": verification_id, "challenge": challenge, "consentId": self.consent.consent_id,
            "signedPayloadType": payload_type,
        }
        signed_field = "genericSignedPayload" if payload_type == "GENERIC" else "fidoSignedPayload"
        verification[signed_field] = payload.get(signed_field)
        answer = await self._exchange("POST", "/thirdpartyRequests/verifications", verification, AUTH_SERVICE,
                                      (dfsp.name, "thirdpartyRequests/verifications", verification_id))
        if (answer.body or {}).get("authenticationResponse") != "VERIFIED":
            raise Stop("ABORTED", 502, {"errorCode": "6201", "errorDescription":
                                        "Invalid transaction signature - the auth-service did not verify it"})

        # the transfer, as /send makes it
        record.state, record.transfer_id = "ACCEPTED", transfer_id
        try:
            await self._pay(self.customer, quote, units, payee_fsp, transfer_id,
                            str(payee.get("name") or payee["partyIdInfo"]["partyIdentifier"]))
        except Stop as stop:
            if stop.error and stop.error.get("errorCode") in ("4000", "2003") \
                    and dfsp.books.entry(transfer_id, "out") is None:
                raise  # the books said no: nothing was sent
            raise Stop(stop.state, stop.status, _downstream("the transfer failed", stop)) from None
        record.state = "COMPLETED"
        await self._tell("PATCH", self.path, {
            "transactionRequestState": "ACCEPTED", "transactionState": "COMPLETED",
            "completedTimestamp": bodies.timestamp(),
            "extensionList": {"extension": [{"key": "transferId", "value": transfer_id}]},
        }, pisp)


def _downstream(what: str, stop: Stop) -> dict[str, Any]:
    """6003 Downstream Failure, saying which FSPIOP step failed and with what."""
    if stop.error:
        detail = f"{what}: {stop.error.get('errorCode')} {str(stop.error.get('errorDescription'))}"
    else:
        detail = f"{what}: {'no answer in time' if stop.state == 'TIMED_OUT' else stop.state}"
    return {"errorCode": "6003", "errorDescription": f"Downstream Failure - {detail}"[:128]}
