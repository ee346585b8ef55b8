"""The simulated PISP: a budgeting app ("budgetapp" in the demo hub) that links its users' wallets and pays from them.

Why: the Third-party API v1.0 lets a payment initiation service provider (PISP) pay from an
account at a DFSP once the account holder linked it. This module plays the PISP, in the message
order of OPERATIONS-APIS.md §5, against the hub's third-party routing, the hub's auth-service
("centralAuth") and the simulated DFSPs' third-party side (mobile_sim.tpdfsp). A participant of
kind "pisp" in the hub file is simulated by it. docs/simulator.md, "The simulated PISP",
documents the driving API.

- POST /<pisp>/link: GET /services/THIRD_PARTY_DFSP (answered by the hub) -> GET
  /accounts/{userId} -> POST /consentRequests (every account, the scopes asked) -> the user
  authenticates: OTP (the code the DFSP texted to the customer's phone, or a literal one) or WEB
  (the PISP plays the user's browser: GET and POST on the DFSP's authUri, whose redirect to our
  callbackUri carries the token) -> PATCH /consentRequests/{ID} {authToken} -> POST /consents
  from the DFSP -> a new ECDSA P-256 key signs the consent's challenge (GENERIC, the default), or
  a software WebAuthn authenticator attests a new key for it (FIDO) -> PUT /consents/{ID} with
  the credential -> PATCH /consents/{ID} {credential: VERIFIED} once the DFSP had centralAuth
  verify it. The link (consentId, DFSP, addresses, the private key) is kept.
- POST /<pisp>/pay: GET /parties/{Type}/{ID} (a normal lookup) -> POST
  /thirdpartyRequests/transactions (payer: the link's THIRD_PARTY_LINK address) -> then it
  reacts: PUT .../transactions/{ID} RECEIVED; POST /thirdpartyRequests/authorizations ->
  signs the challenge with the link's key and answers PUT /thirdpartyRequests/authorizations/{ID}
  ACCEPTED (or a bad signature, or REJECTED, as asked); PATCH .../transactions/{ID} COMPLETED
  ends it COMMITTED, PUT .../transactions/{ID}/error ends it REJECTED (or ABORTED for 6003, a
  failure downstream of the DFSP).
- POST /<pisp>/unlink: DELETE /consents/{ID} to the DFSP -> PATCH /consents/{ID} REVOKED.
- GET /<pisp>/links: the links kept, newest first (without the private keys).

A PATCH /consents/{ID} REVOKED from a DFSP that unlinked on its own marks the link REVOKED too.
A payment or an unlink on a revoked link is still sent, so that the DFSP's refusal can be seen.
Each flow runs under one deadline (30 s unless "timeoutSeconds" says otherwise) and answers
with its wire log, like /send. Links live in memory, at most 1,000 per PISP.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec

from miniloop import money
from miniloop.fspiop.errors import FspiopError
from miniloop.services.oracles import PARTY_ID_TYPES
from mobile_sim import bodies, tpcrypto
from mobile_sim.dfsp import SimDfsp
from mobile_sim.payee import parties_path
from mobile_sim.send import (
    Stop,
    WireFlow,
    _bad,
    _error_info,
    _identifier,
    amount_type_of,
    note_of,
    order_amount,
    timeout_of,
)
from mobile_sim.thirdparty import correlation_id, error, unmatched
from mobile_sim.tpdfsp import ALL_ACTIONS

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

log = logging.getLogger(__name__)

LINK_FIELDS = ("dfsp", "userId", "channel", "scopes", "otp", "login", "authToken", "credential", "timeoutSeconds")
PAY_FIELDS = ("consentId", "link", "to", "amount", "currency", "amountType", "note", "signature", "timeoutSeconds")
UNLINK_FIELDS = ("consentId", "timeoutSeconds")
DEFAULT_ACTIONS = ("ACCOUNTS_TRANSFER", "ACCOUNTS_GET_BALANCE")
SIGNATURES = ("valid", "bad", "decline")
LOGINS = ("allow", "deny")
CREDENTIALS = ("GENERIC", "FIDO")
LINKS_MAX = 1_000  # links one PISP keeps (the oldest revoked ones are forgotten first)
FLOWS_MAX = 200  # /link, /pay and /unlink running at once, all PISPs together
STATUS = {"LINKED": 200, "COMMITTED": 200, "REVOKED": 200, "REJECTED": 502, "ABORTED": 502, "TIMED_OUT": 504}
WEB_TIMEOUT_S = 10.0


@dataclass
class Link:
    """A linked account: what the PISP keeps to pay from it."""

    consent_id: str
    consent_request_id: str
    dfsp: str
    user_id: str
    channel: str
    scopes: list[dict[str, Any]]
    accounts: list[dict[str, Any]]
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    public_key: str  # GENERIC: the publicKey; FIDO: the credential id (base64url)
    authenticator: tpcrypto.SoftAuthenticator | None = field(default=None, repr=False)  # FIDO only
    state: str = "LINKED"  # LINKED or REVOKED
    linked_at: str = field(default_factory=bodies.timestamp)
    revoked_at: str | None = None
    revoked_by: str | None = None

    @property
    def addresses(self) -> list[str]:
        return [str(s.get("address")) for s in self.scopes]

    @property
    def credential_type(self) -> str:
        return "FIDO" if self.authenticator is not None else "GENERIC"

    def view(self) -> dict[str, Any]:
        return {
            "consentId": self.consent_id, "consentRequestId": self.consent_request_id, "dfsp": self.dfsp,
            "userId": self.user_id, "channel": self.channel, "scopes": self.scopes, "addresses": self.addresses,
            "accounts": self.accounts, "state": self.state, "credentialType": self.credential_type,
            ("credentialId" if self.authenticator else "publicKey"): self.public_key, "linkedAt": self.linked_at, "revokedAt": self.revoked_at,
            "revokedBy": self.revoked_by,
        }


@dataclass
class Pisp:
    """One simulated PISP: its participant (to send as) and its links."""

    dfsp: SimDfsp  # the participant's simulator entry: its name, for sending and receiving
    links: OrderedDict[str, Link] = field(default_factory=OrderedDict)

    @property
    def name(self) -> str:
        return self.dfsp.name

    def remember(self, link: Link) -> None:
        self.links[link.consent_id] = link
        self.links.move_to_end(link.consent_id)
        while len(self.links) > LINKS_MAX:
            doomed = next((k for k, v in self.links.items() if v.state == "REVOKED"), next(iter(self.links)))
            del self.links[doomed]

    def find(self, consent_id: str | None, address: str | None) -> Link | None:
        if consent_id is not None:
            return self.links.get(consent_id)
        found = [link for link in self.links.values() if address in link.addresses]
        live = [link for link in found if link.state == "LINKED"]
        return (live or found or [None])[-1]


def pisps_of(dfsps: dict[str, SimDfsp]) -> dict[str, Pisp]:
    """The simulated participants of kind "pisp"."""
    return {name: Pisp(d) for name, d in dfsps.items() if d.kind == "pisp"}


# --- the simulator's hook ------------------------------------------------------------------------


async def handle(sim: Simulator, pisp: Pisp, message: Incoming) -> None:
    """A Third-party API message to the PISP."""
    resource, method, body = message.resource, message.method, message.body or {}
    item = str(message.ids[0]) if message.ids else ""
    if resource == "consents" and method == "POST":
        request_id, consent_id = body.get("consentRequestId"), body.get("consentId")
        if sim.waiters.deliver((pisp.name, "consentRequests", request_id), message):
            return
        if correlation_id(consent_id):
            await sim.reply(message, "PUT", f"/consents/{consent_id}/error",
                            error("6104", f"{pisp.name} is not linking with consent request {request_id}"))
        else:
            unmatched(message, "a consent without a consentId")
    elif resource == "consents" and method == "PATCH":
        link = pisp.links.get(item)
        revoked = body.get("status") == "REVOKED"
        if revoked and link is not None and link.state != "REVOKED":
            link.state, link.revoked_at, link.revoked_by = "REVOKED", body.get("revokedAt"), message.source
        if not sim.waiters.deliver(message.key, message) and not (revoked and link is not None):
            unmatched(message, "consent news nobody waits for")
    elif resource == "thirdpartyRequests/authorizations" and method == "POST":
        request_id, authorization_id = body.get("transactionRequestId"), body.get("authorizationRequestId")
        if sim.tp_mail.deliver((pisp.name, "tptx", request_id), message):
            return
        if correlation_id(authorization_id):
            await sim.reply(message, "PUT", f"/thirdpartyRequests/authorizations/{authorization_id}/error",
                            error("6104", f"{pisp.name} has no payment {request_id} waiting"))
        else:
            unmatched(message, "an authorization request without an authorizationRequestId")
    elif resource == "thirdpartyRequests/transactions" and method in ("PUT", "PATCH"):
        if not sim.tp_mail.deliver((pisp.name, "tptx", item), message):
            unmatched(message, "third-party transaction news nobody waits for")
    elif method == "PUT":
        if not sim.waiters.deliver(message.key, message):
            unmatched(message, "third-party callback nobody waits for")
    else:
        unmatched(message, "the simulated PISP does not take")


# --- driving: link -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkOrder:
    dfsp: str
    user_id: str
    channel: str
    actions: tuple[str, ...]
    otp: str  # "phone" or a literal value
    login: str  # WEB: "allow" or "deny"
    auth_token: str | None  # WEB: sent instead of the token the login gave
    credential: str  # GENERIC (an ECDSA key pair) or FIDO (a software WebAuthn authenticator)
    timeout_s: float


def _fields(body: dict[str, Any], allowed: tuple[str, ...], route: str) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise _bad(f"{unknown[0]} is not a field of {route} (fields: {', '.join(allowed)})")


def parse_link(sim: Simulator, body: dict[str, Any]) -> LinkOrder:
    _fields(body, LINK_FIELDS, "/link")
    dfsp = _identifier(body.get("dfsp"), "dfsp")
    user_id = _identifier(body.get("userId"), "userId")
    channel = body.get("channel", "OTP")
    if channel not in ("OTP", "WEB"):
        raise _bad("channel must be OTP or WEB")
    actions = body.get("scopes", list(DEFAULT_ACTIONS))
    if not isinstance(actions, list) or not 1 <= len(actions) <= 32 \
            or not all(isinstance(a, str) and 1 <= len(a) <= 64 for a in actions):
        raise _bad(f"scopes must be a list of 1 to 32 actions, such as {', '.join(ALL_ACTIONS)}")
    otp = body.get("otp", "phone")
    if not isinstance(otp, str) or not 1 <= len(otp) <= 64:
        raise _bad('otp must be "phone" (read from the customer\'s phone) or the value to type')
    if otp == "phone" and channel == "OTP" and dfsp not in sim.dfsps:
        raise _bad(f'{dfsp} is not simulated here, so its texts cannot be read: give "otp"')
    login = body.get("login", "allow")
    if login not in LOGINS:
        raise _bad('login must be "allow" or "deny"')
    token = body.get("authToken")
    if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 256):
        raise _bad("authToken must be 1 to 256 characters")
    credential = body.get("credential", "GENERIC")
    if credential not in CREDENTIALS:
        raise _bad("credential must be GENERIC or FIDO")
    return LinkOrder(dfsp, user_id, channel, tuple(dict.fromkeys(actions)), otp, login, token, credential,
                     timeout_of(body))


class LinkFlow(WireFlow):
    def __init__(self, sim: Simulator, pisp: Pisp, order: LinkOrder) -> None:
        super().__init__(sim, pisp.dfsp, order.timeout_s)
        self.pisp, self.order = pisp, order
        self.consent_request_id = str(uuid.uuid4())
        self.consent_id: str | None = None
        self.accounts: list[dict[str, Any]] = []
        self.scopes: list[dict[str, Any]] = []
        self.step = "services"

    async def run(self) -> tuple[int, dict[str, Any]]:
        try:
            await self._run()
        except Stop as stop:
            state = "TIMED_OUT" if stop.state == "TIMED_OUT" else "REJECTED"
            return (503 if stop.status == 503 else STATUS[state]), self.result(state, stop.error)
        return 200, self.result("LINKED")

    async def _run(self) -> None:
        order, name = self.order, self.pisp.name
        # 0. which DFSPs link with PISPs: the hub answers
        answer = await self._exchange("GET", "/services/THIRD_PARTY_DFSP", None, None,
                                      (name, "services", "THIRD_PARTY_DFSP"))
        providers = (answer.body or {}).get("providers")
        if not isinstance(providers, list) or order.dfsp not in providers:
            raise Stop("REJECTED", 502, {"errorCode": "6000", "errorDescription": f"Third party error - {order.dfsp} "
                                         f"is not among the THIRD_PARTY_DFSP providers {providers}"})
        # 1. the user's accounts
        self.step = "accounts"
        answer = await self._exchange("GET", f"/accounts/{order.user_id}", None, order.dfsp,
                                      (name, "accounts", order.user_id))
        accounts = (answer.body or {}).get("accountList")
        if not isinstance(accounts, list) or not accounts \
                or not all(isinstance(a, dict) and isinstance(a.get("address"), str) for a in accounts):
            raise Stop("REJECTED", 502, {"errorCode": "6205", "errorDescription": "No accounts found - "
                                         "the PUT /accounts body has no usable accountList"})
        self.accounts = accounts
        # 2. the consent request
        self.step = "consentRequest"
        request_id = self.consent_request_id
        key = (name, "consentRequests", request_id)
        self.scopes = [{"address": a["address"], "actions": list(order.actions)} for a in accounts]
        request = {
            "consentRequestId": request_id, "userId": order.user_id, "scopes": self.scopes,
            "authChannels": [order.channel], "callbackUri": f"{self.sim.base_url}/{name}/linked",
        }
        answer = await self._exchange("POST", "/consentRequests", request, order.dfsp, key)
        granted = answer.body or {}
        channels = granted.get("authChannels") or []
        if isinstance(granted.get("scopes"), list):
            self.scopes = granted["scopes"]
        # 3. the user proves it is them; 4. the DFSP grants the consent
        self.step = "authentication"
        if "WEB" in channels:
            token = await self._web_login(str(granted.get("authUri") or ""), key)
        else:
            token = self._otp()
        self.step = "consent"
        answer = await self._exchange("PATCH", f"/consentRequests/{request_id}", {"authToken": token},
                                      order.dfsp, key)
        consent = answer.body or {}
        consent_id, scopes = consent.get("consentId"), consent.get("scopes")
        if answer.method != "POST" or not isinstance(consent_id, str) or not isinstance(scopes, list):
            raise Stop("REJECTED", 502, {"errorCode": "6000", "errorDescription": "Third party error - "
                                         "the DFSP's POST /consents has no consentId or scopes"})
        self.consent_id, self.scopes = consent_id, scopes
        # 5. a credential: a fresh key signs the consent's challenge (GENERIC), or a software
        # WebAuthn authenticator attests a new key for it (FIDO)
        self.step = "credential"
        challenge = tpcrypto.consent_challenge(consent_id, scopes)
        authenticator = None
        if order.credential == "FIDO":
            authenticator = tpcrypto.SoftAuthenticator(self.sim.base_url)
            private_key = authenticator.key
            payload = authenticator.register(challenge)
            public_key = str(payload["id"])
            credential = {"credentialType": "FIDO", "status": "PENDING", "fidoPayload": payload}
        else:
            private_key = tpcrypto.new_key()
            public_key = tpcrypto.public_key_text(private_key)
            credential = {"credentialType": "GENERIC", "status": "PENDING", "genericPayload": {
                "publicKey": public_key, "signature": tpcrypto.sign(private_key, challenge)}}
        signed = {"status": "ISSUED", "scopes": scopes, "credential": credential}
        answer = await self._exchange("PUT", f"/consents/{consent_id}", signed, order.dfsp,
                                      (name, "consents", consent_id))
        verified = (answer.body or {}).get("credential") or {}
        if answer.method != "PATCH" or verified.get("status") != "VERIFIED":
            raise Stop("REJECTED", 502, {"errorCode": "6200", "errorDescription":
                                         "Invalid Consent Credential - the DFSP did not report it VERIFIED"})
        self.pisp.remember(Link(consent_id, request_id, order.dfsp, order.user_id, order.channel, scopes,
                                self.accounts, private_key, public_key, authenticator))
        self.step = "linked"

    def _otp(self) -> str:
        """The OTP the user types: the newest one the DFSP texted for this consent request."""
        if self.order.otp != "phone":
            return self.order.otp
        dfsp = self.sim.dfsps.get(self.order.dfsp)
        customer = dfsp.books.find(self.order.user_id) if dfsp is not None else None
        texts = [] if customer is None else [m for m in customer.phone if m.get("kind") == "otp"
                                             and m.get("consentRequestId") == self.consent_request_id]
        if not texts:
            raise Stop("REJECTED", 502, {"errorCode": "6100", "errorDescription": "Authentication rejection - "
                                         f"no OTP for this consent request reached {self.order.user_id}'s phone"})
        return str(texts[-1]["otp"])

    async def _web_login(self, auth_uri: str, key: tuple[Any, ...]) -> str:
        """Play the user's browser: open the DFSP's login page, answer it, follow the redirect.

        "deny" waits for the DFSP's PUT /consentRequests/{ID}/error (6102) instead.
        """
        if urlsplit(auth_uri).scheme not in ("http", "https"):
            raise Stop("REJECTED", 502, {"errorCode": "6000", "errorDescription":
                                         "Third party error - the DFSP sent no usable authUri"})
        session = self.sim.client.session
        if session is None:
            raise Stop("TIMED_OUT", 503, {"errorCode": "2003", "errorDescription": "Service currently unavailable"})
        future = self.sim.waiters.expect(key) if self.order.login == "deny" else None
        try:
            timeout = aiohttp.ClientTimeout(total=min(WEB_TIMEOUT_S, max(self.remaining(), 0.1)))
            record = self._record("web", "GET", auth_uri, self.pisp.name, self.order.dfsp, None)
            try:
                async with session.get(auth_uri, timeout=timeout) as page:
                    record["status"] = page.status
                record = self._record("web", "POST", auth_uri, self.pisp.name, self.order.dfsp,
                                      {"decision": self.order.login})
                async with session.post(auth_uri, data={"decision": self.order.login}, allow_redirects=False,
                                        timeout=timeout) as answer:
                    record["status"] = answer.status
                    location = answer.headers.get("Location", "")
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise Stop("REJECTED", 502, {"errorCode": "6000", "errorDescription":
                                             f"Third party error - the DFSP's login page failed: {exc}"[:128]}) from None
            record["location"] = location
            if future is not None:
                await self._wait(future)  # the DFSP's refusal ends the flow; anything else is odd
                raise Stop("REJECTED", 502, {"errorCode": "6102", "errorDescription": "Consent not granted"})
        finally:
            if future is not None:
                self.sim.waiters.forget(key, future)
        token = parse_qs(urlsplit(location).query).get("authToken", [None])[0]
        if self.order.auth_token is not None:
            return self.order.auth_token
        if not token:
            raise Stop("REJECTED", 502, {"errorCode": "6100", "errorDescription": "Authentication rejection - "
                                         "the login page's redirect carries no authToken"})
        return token

    def result(self, state: str, error_info: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "state": state, "pisp": self.pisp.name, "dfsp": self.order.dfsp, "userId": self.order.user_id,
            "channel": self.order.channel, "consentRequestId": self.consent_request_id, "consentId": self.consent_id,
            "accounts": self.accounts, "scopes": self.scopes, "step": self.step, "messages": self.messages,
        }
        if error_info:
            body["error"] = error_info
        return body


# --- driving: pay --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayOrder:
    link: Link
    id_type: str
    party_id: str
    amount: str
    currency: str
    amount_type: str
    note: str | None
    signature: str
    timeout_s: float


def parse_pay(pisp: Pisp, body: dict[str, Any]) -> PayOrder:
    _fields(body, PAY_FIELDS, "/pay")
    consent_id, address = body.get("consentId"), body.get("link")
    if (consent_id is None) == (address is None):
        raise _bad('give either consentId or link (the THIRD_PARTY_LINK address, such as "greenwallet.27710000001")')
    link = pisp.find(None if consent_id is None else str(consent_id), None if address is None else str(address))
    if link is None:
        raise _bad(f"{pisp.name} has no link {consent_id or address}")
    to = body.get("to")
    if not isinstance(to, str) or "/" not in to:
        raise _bad('to must be "TYPE/ID" of the payee, such as "MSISDN/27720000001"')
    id_type, _, party_id = to.partition("/")
    if id_type not in PARTY_ID_TYPES:
        raise _bad(f"the payee's id type must be one of {', '.join(PARTY_ID_TYPES)}")
    party_id = _identifier(party_id, "the payee's id")
    currency = body.get("currency", next((a.get("currency") for a in link.accounts if a.get("currency")), None))
    if not isinstance(currency, str) or len(currency) != 3:
        raise _bad("currency must be a currency code such as USD")
    amount = order_amount(body.get("amount"), currency)
    amount_type = amount_type_of(body)
    note = note_of(body)
    signature = body.get("signature", "valid")
    if signature not in SIGNATURES:
        raise _bad(f"signature must be one of {', '.join(SIGNATURES)}")
    return PayOrder(link, id_type, party_id, money.format_amount(money.to_units(amount)), currency, amount_type,
                    note, signature, timeout_of(body))


class PayFlow(WireFlow):
    def __init__(self, sim: Simulator, pisp: Pisp, order: PayOrder) -> None:
        super().__init__(sim, pisp.dfsp, order.timeout_s)
        self.pisp, self.order = pisp, order
        self.request_id = str(uuid.uuid4())
        self.transfer_id: str | None = None
        self.payee: dict[str, Any] | None = None
        self.authorization: dict[str, Any] | None = None
        self.request_state: str | None = None
        self.step = "lookup"

    async def run(self) -> tuple[int, dict[str, Any]]:
        try:
            await self._run()
        except Stop as stop:
            state = stop.state if stop.state in STATUS else "ABORTED"
            return (503 if stop.status == 503 else STATUS[state]), self.result(state, stop.error)
        return 200, self.result("COMMITTED")

    async def _run(self) -> None:
        order, name, link = self.order, self.pisp.name, self.order.link
        # 1. the payee, through the hub's account lookup
        answer = await self._exchange("GET", parties_path(order.id_type, order.party_id, None), None, None,
                                      (name, "parties", order.id_type, order.party_id, None))
        party = (answer.body or {}).get("party")
        if not isinstance(party, dict) or not isinstance(party.get("partyIdInfo"), dict):
            raise Stop("ABORTED", 502, {"errorCode": "3100", "errorDescription":
                                        "Generic validation error - the PUT /parties body has no party"})
        party["partyIdInfo"].setdefault("fspId", answer.source)
        self.payee = party
        # 2. the transaction request, to the DFSP of the linked account
        self.step = "transactionRequest"
        mailbox_key = (name, "tptx", self.request_id)
        queue = self.sim.tp_mail.open(mailbox_key)
        if queue is None:
            raise Stop("ABORTED", 503, {"errorCode": "2003", "errorDescription": "Service currently unavailable - "
                                        "too many third-party flows are waiting"})
        try:
            request: dict[str, Any] = {
                "transactionRequestId": self.request_id, "payee": party,
                "payer": {"partyIdType": "THIRD_PARTY_LINK", "partyIdentifier": link.addresses[0],
                          "fspId": link.dfsp},
                "amountType": order.amount_type, "amount": {"amount": order.amount, "currency": order.currency},
                "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
                "expiration": bodies.timestamp_in(max(self.remaining(), 1.0)),
            }
            if order.note:
                request["note"] = order.note
            sent = await self._tell("POST", "/thirdpartyRequests/transactions", request, link.dfsp)
            if not sent.accepted:
                raise Stop("ABORTED", 502, _error_info(sent.error), refused=True)
            while await self._react(await self._next(queue)):
                pass
        finally:
            self.sim.tp_mail.close(mailbox_key)

    async def _next(self, queue: asyncio.Queue[Any]) -> Incoming:
        try:
            message = await asyncio.wait_for(queue.get(), max(self.remaining(), 0))
        except TimeoutError:
            raise Stop("TIMED_OUT", 504, None) from None
        if message is None:
            raise Stop("TIMED_OUT", 503, {"errorCode": "2003", "errorDescription":
                                          "Service currently unavailable - the simulator is stopping"})
        self._record("in", message.method, message.path, message.source, message.destination, message.body,
                     at=message.at)
        return message

    async def _react(self, message: Incoming) -> bool:
        """Act on one message about our transaction request; False once it is final (COMMITTED)."""
        body = message.body or {}
        if message.resource == "thirdpartyRequests/authorizations":
            await self._authorize(message)
            return True
        if message.is_error:
            info = _error_info(body) or {}
            raise Stop("ABORTED" if info.get("errorCode") == "6003" else "REJECTED", 502, info)
        if message.method == "PUT":
            self.request_state = body.get("transactionRequestState")
            return True
        # PATCH: the outcome
        self.request_state = body.get("transactionRequestState")
        extensions = (body.get("extensionList") or {}).get("extension") or []
        self.transfer_id = next((e.get("value") for e in extensions if isinstance(e, dict)
                                 and e.get("key") == "transferId"), None)
        if body.get("transactionState") == "COMPLETED":
            self.step = "completed"
            return False
        if body.get("transactionState") == "REJECTED":
            raise Stop("REJECTED", 502, None)  # our user declined the terms: no error, nothing moved
        raise Stop("ABORTED", 502, {"errorCode": "6104", "errorDescription": "Third Party request rejection - "
                                    f"transactionState {body.get('transactionState')}"})

    async def _authorize(self, message: Incoming) -> None:
        """The DFSP asks our user to agree to the terms: sign its challenge with the link's key."""
        self.step = "authorization"
        body = message.body or {}
        authorization_id = body.get("authorizationRequestId")
        challenge = body.get("challenge")
        self.authorization = {k: body.get(k) for k in ("authorizationRequestId", "challenge", "transferAmount",
                                                       "payeeReceiveAmount", "fees")}
        path = f"/thirdpartyRequests/authorizations/{authorization_id}"
        authenticator = self.order.link.authenticator
        if self.order.signature == "decline" or not isinstance(challenge, str):
            answer: dict[str, Any] = {"responseType": "REJECTED"}
        elif authenticator is not None:
            try:
                assertion = authenticator.assert_(challenge, bad=self.order.signature == "bad")
            except ValueError:  # a challenge that is not base64: what the DFSP sent cannot be signed
                assertion = authenticator.assert_(tpcrypto.quote_challenge({"not": challenge}))
            answer = {"responseType": "ACCEPTED", "signedPayload": {
                "signedPayloadType": "FIDO", "fidoSignedPayload": assertion}}
        else:
            signed = challenge if self.order.signature == "valid" else tpcrypto.quote_challenge({"not": challenge})
            answer = {"responseType": "ACCEPTED", "signedPayload": {
                "signedPayloadType": "GENERIC", "genericSignedPayload": tpcrypto.sign(self.order.link.key, signed)}}
        await self._tell("PUT", path, answer, message.source)

    def result(self, state: str, error_info: dict[str, Any] | None = None) -> dict[str, Any]:
        link = self.order.link
        body: dict[str, Any] = {
            "state": state, "pisp": self.pisp.name, "transactionRequestId": self.request_id,
            "transferId": self.transfer_id, "consentId": link.consent_id,
            "payer": {"partyIdType": "THIRD_PARTY_LINK", "partyIdentifier": link.addresses[0], "fspId": link.dfsp},
            "payee": self.payee, "amount": {"amount": self.order.amount, "currency": self.order.currency},
            "amountType": self.order.amount_type, "signature": self.order.signature,
            "transactionRequestState": self.request_state, "authorization": self.authorization,
            "step": self.step, "messages": self.messages,
        }
        if error_info:
            body["error"] = error_info
        return body


# --- driving: unlink -----------------------------------------------------------------------------


class UnlinkFlow(WireFlow):
    def __init__(self, sim: Simulator, pisp: Pisp, link: Link, timeout_s: float) -> None:
        super().__init__(sim, pisp.dfsp, timeout_s)
        self.pisp, self.link = pisp, link

    async def run(self) -> tuple[int, dict[str, Any]]:
        link = self.link
        try:
            answer = await self._exchange("DELETE", f"/consents/{link.consent_id}", None, link.dfsp,
                                          (self.pisp.name, "consents", link.consent_id))
            if (answer.body or {}).get("status") != "REVOKED":
                raise Stop("REJECTED", 502, {"errorCode": "6000", "errorDescription":
                                             "Third party error - the DFSP's answer does not say REVOKED"})
        except Stop as stop:
            state = "TIMED_OUT" if stop.state == "TIMED_OUT" else "REJECTED"
            return (503 if stop.status == 503 else STATUS[state]), self.result(state, stop.error)
        return 200, self.result("REVOKED")

    def result(self, state: str, error_info: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"state": state, "pisp": self.pisp.name, "consentId": self.link.consent_id,
                                "dfsp": self.link.dfsp, "revokedAt": self.link.revoked_at, "messages": self.messages}
        if error_info:
            body["error"] = error_info
        return body


# --- the routes' entry points --------------------------------------------------------------------


def pisp_of(sim: Simulator, name: str) -> Pisp:
    found = sim.pisps.get(name)
    if found is None:
        raise FspiopError("3002", f"{name} is not a simulated PISP")
    return found


async def _bounded(sim: Simulator, flow: Any) -> tuple[int, dict[str, Any]]:
    if sim.pisp_flows >= FLOWS_MAX:
        raise FspiopError("2003", f"{FLOWS_MAX} PISP flows are already running", status=503)
    sim.pisp_flows += 1
    try:
        result: tuple[int, dict[str, Any]] = await flow.run()
        return result
    finally:
        sim.pisp_flows -= 1


async def link(sim: Simulator, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /<pisp>/link."""
    pisp = pisp_of(sim, name)
    return await _bounded(sim, LinkFlow(sim, pisp, parse_link(sim, body)))


async def pay(sim: Simulator, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /<pisp>/pay."""
    pisp = pisp_of(sim, name)
    return await _bounded(sim, PayFlow(sim, pisp, parse_pay(pisp, body)))


async def unlink(sim: Simulator, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /<pisp>/unlink."""
    pisp = pisp_of(sim, name)
    _fields(body, UNLINK_FIELDS, "/unlink")
    consent_id = body.get("consentId")
    link_found = pisp.links.get(consent_id) if isinstance(consent_id, str) else None
    if link_found is None:
        raise _bad(f"{pisp.name} has no link {consent_id}")
    return await _bounded(sim, UnlinkFlow(sim, pisp, link_found, timeout_of(body)))


def links(sim: Simulator, name: str) -> dict[str, Any]:
    """GET /<pisp>/links."""
    pisp = pisp_of(sim, name)
    return {"pisp": pisp.name, "links": [link.view() for link in list(pisp.links.values())[::-1]]}
