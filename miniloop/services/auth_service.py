"""The hub-hosted auth-service: the participant `centralAuth`, as Mojaloop's auth-service is.

DFSPs talk to it like to any participant: the switch routes their `POST /consents`,
`POST /thirdpartyRequests/verifications`, and a consent's `DELETE`/`PATCH` with
FSPIOP-Destination `centralAuth` to the `TP_CB_URL_*` endpoints it registered (the ALS admin
port, under /authService: miniloop.api.auth_service). Its answers are FSPIOP messages with
FSPIOP-Source `centralAuth` and FSPIOP-Destination the DFSP, written to the hub's outbox in the
same writer command that records what caused them, and delivered to the DFSP's `TP_CB_URL_*`
endpoint with retries (miniloop.services.outbox, miniloop.notify): what a DFSP receives is what
Mojaloop's switch would forward from Mojaloop's auth-service.

- Registering a consent (`POST /consents`): the credential must sign the challenge derived from
  the consent (miniloop.thirdparty.credentials). A valid one is stored (consent id, the DFSP
  that registered it, scopes, credential type, public key, FIDO counter, status ISSUED),
  `CONSENT/{consentId}` -> centralAuth is registered with the CONSENT oracle, and the DFSP gets
  `PUT /consents/{ID}` with the credential's status VERIFIED; else `PUT /consents/{ID}/error` 6200.
- Verifying (`POST /thirdpartyRequests/verifications`): the consent must be the sender's and
  ISSUED (else 6103), the signed challenge must verify with its key (else 6201); a FIDO
  counter must go up and is stored. Answer `PUT /thirdpartyRequests/verifications/{ID}`
  `{authenticationResponse: VERIFIED}`, or its /error.
- Revoking (`DELETE /consents/{ID}`, or `PATCH /consents/{ID}` `{status: REVOKED}` from the
  DFSP): the consent is marked REVOKED with its revokedAt and kept; the oracle entry is kept, so
  centralAuth stays the authoritative source that answers "revoked". A DELETE is answered with
  `PATCH /consents/{ID}` `{status: REVOKED, revokedAt}` to the DFSP and to the sender if other.

Each incoming message is one writer command (after the credential checks, which are pure), so
a 202 means it is recorded and its answer owed. Events (docs/thirdparty.md) never hold a key, a
signature or a challenge.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import msgspec

from miniloop.bus import subjects
from miniloop.fspiop import headers as fspiop_headers
from miniloop.fspiop.endpoints import THIRDPARTY_PATHS
from miniloop.fspiop.thirdparty_models import (
    ConsentsIDPatchRequest,
    ConsentsPostRequest,
    ThirdpartyRequestsVerificationsPostRequest,
)
from miniloop.ledger import Ledger, Tx
from miniloop.services import outbox
from miniloop.services.als import ORACLE_SQL
from miniloop.services.oracles import record_party
from miniloop.services.outbox import Inbound
from miniloop.services.participants import HUB_NAME, Participants
from miniloop.services.thirdparty import AUTH_SERVICE
from miniloop.thirdparty import credentials
from miniloop.thirdparty.credentials import CredentialError

log = logging.getLogger(__name__)

CENTRAL_AUTH = AUTH_SERVICE  # "centralAuth", the auth-service's participant name as Mojaloop deploys it
VERSION = "1.0"  # the Third-party API version it speaks
ORACLE_TIMEOUT_S = 5.0
# What centralAuth receives, at {base}{path} (base: the ALS admin port's /authService).
ENDPOINT_TYPES = (
    "TP_CB_URL_CONSENT_POST", "TP_CB_URL_CONSENT_GET", "TP_CB_URL_CONSENT_PUT", "TP_CB_URL_CONSENT_PUT_ERROR",
    "TP_CB_URL_CONSENT_PATCH", "TP_CB_URL_TRANSACTION_REQUEST_VERIFY_POST",
    "TP_CB_URL_TRANSACTION_REQUEST_VERIFY_PUT", "TP_CB_URL_TRANSACTION_REQUEST_VERIFY_PUT_ERROR",
)

# The Third-party API's error codes the auth-service answers with (errorDescription: the name,
# then " - " and the detail, as miniloop.fspiop.errors writes FSPIOP errors).
ERRORS = {
    "6000": "Generic thirdparty error",
    "6001": "Thirdparty request error",
    "6003": "Downstream Failure",
    "6103": "Consent not valid",
    "6200": "Invalid consent credential",
    "6201": "Invalid transaction signature",
}
DESCRIPTION_MAX = 128


def error_body(code: str, detail: str = "") -> dict[str, Any]:
    """`{"errorInformation": {errorCode, errorDescription}}` for a Third-party API error code."""
    text = f"{ERRORS[code]} - {detail}" if detail else ERRORS[code]
    if len(text) > DESCRIPTION_MAX:
        text = text[: DESCRIPTION_MAX - 1] + "…"
    return {"errorInformation": {"errorCode": code, "errorDescription": text}}


# --------------------------------------------------------------------------- the service


@dataclass(frozen=True, slots=True)
class Checked:
    """A registration's credential after the pure checks: what to store, or why it is refused."""

    credential_type: str
    public_key: bytes = b""
    credential_id: bytes | None = None
    counter: int = 0
    challenge: str = ""
    error_code: str = ""
    reason: str = ""


class AuthService:
    """centralAuth: each method handles one message and is one writer command."""

    def __init__(self, ledger: Ledger, builtin_oracle_url: str, session: aiohttp.ClientSession | None = None) -> None:
        self.ledger = ledger
        self.builtin_oracle_url = builtin_oracle_url.rstrip("/")
        self.session = session  # for an external CONSENT oracle

    async def ensure_participant(self, base_url: str) -> None:
        """Create centralAuth if missing (active, no accounts: it never pays) and point its
        endpoints at `base_url` (the ALS admin port's /authService; the port may change)."""
        endpoints = {kind: base_url.rstrip("/") + THIRDPARTY_PATHS[kind] for kind in ENDPOINT_TYPES}
        await self.ledger.write(_ensure_participant, endpoints)

    async def register_consent(self, msg: Inbound, body: ConsentsPostRequest) -> None:
        """POST /consents from a DFSP."""
        checked = check_credential(body)
        oracle = await self._consent_oracle()
        if not checked.error_code and oracle not in (None, self.builtin_oracle_url):
            problem = await self._register_at(oracle, body.consent_id)
            if problem:
                checked = Checked(checked.credential_type, error_code="6003", reason=problem)
        await self.ledger.write(_register, msg, body, checked, oracle in (None, self.builtin_oracle_url))

    async def verify(self, msg: Inbound, body: ThirdpartyRequestsVerificationsPostRequest) -> None:
        """POST /thirdpartyRequests/verifications from a DFSP."""
        await self.ledger.write(_verify, msg, body)

    async def revoke(self, msg: Inbound, consent_id: str, patch: ConsentsIDPatchRequest | None) -> None:
        """DELETE /consents/{ID} (patch None), or PATCH /consents/{ID} {status: REVOKED} from its DFSP."""
        await self.ledger.write(_revoke, msg, consent_id, patch)

    async def error_received(self, msg: Inbound, entity: str, entity_id: str) -> None:
        """An error callback sent to centralAuth (a DFSP refusing one of its answers): it waits for
        nothing, so it is only announced: `consent.errorReceived`, `thirdpartyVerification.errorReceived`."""
        await self.ledger.write(_error_received, msg, entity, entity_id)

    async def _consent_oracle(self) -> str | None:
        row = await self.ledger.fetch_one(ORACLE_SQL, ("CONSENT", None))
        return row["endpoint_value"].rstrip("/") if row else None

    async def _register_at(self, oracle: str, consent_id: str) -> str:
        """POST /participants/CONSENT/{ID} {fspId: centralAuth} at an external oracle; '' when done."""
        url = f"{oracle}/participants/CONSENT/{quote(consent_id)}"
        if self.session is None:
            return "the hub has no HTTP client for the CONSENT oracle"
        try:
            async with self.session.post(url, json={"fspId": CENTRAL_AUTH},
                                         timeout=aiohttp.ClientTimeout(total=ORACLE_TIMEOUT_S)) as response:
                await response.read()
                return "" if response.status < 300 else f"the CONSENT oracle answered {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"the CONSENT oracle could not be reached: {type(exc).__name__}"


async def hub_is_fresh(participants: Participants) -> bool:
    """miniloop.seed.is_fresh, not counting centralAuth, which the hub itself creates at start:
    True until anything beyond the Hub (and centralAuth) has been created."""
    everyone = [p for p in await participants.list() if p["name"] != CENTRAL_AUTH]
    return len(everyone) == 1 and everyone[0]["name"] == HUB_NAME and not everyone[0]["accounts"]


def check_credential(body: ConsentsPostRequest) -> Checked:
    """The pure checks of a registration: the credential signs the challenge derived from the
    consent (miniloop.thirdparty.credentials)."""
    credential = body.credential
    assert credential is not None  # the API layer refuses a POST /consents to centralAuth without one
    kind = credential.credential_type
    if body.status != "ISSUED":
        return Checked(kind, error_code="6103", reason="a consent is registered with status ISSUED")
    challenge = credentials.derive_challenge(body.consent_id, [msgspec.to_builtins(s) for s in body.scopes])
    try:
        if kind == "GENERIC":
            if credential.generic_payload is None:
                raise CredentialError("a GENERIC credential needs a genericPayload")
            public_key = credentials.generic_public_key(credential.generic_payload.public_key)
            credentials.verify_generic(public_key, challenge, credential.generic_payload.signature)
            return Checked(kind, public_key, challenge=challenge)
        if credential.fido_payload is None:
            raise CredentialError("a FIDO credential needs a fidoPayload")
        payload = credential.fido_payload
        fido = credentials.verify_fido_attestation(
            credential_id=payload.id, raw_id=payload.raw_id, client_data_json=payload.response.client_data_json,
            attestation_object=payload.response.attestation_object, challenge=challenge)
        return Checked(kind, fido.public_key, fido.credential_id, fido.counter, challenge)
    except CredentialError as exc:
        return Checked(kind, error_code="6200", reason=str(exc))


# --------------------------------------------------------------------------- writer commands


def _ensure_participant(tx: Tx, endpoints: dict[str, str]) -> None:
    row = tx.conn.execute("SELECT id FROM participant WHERE name = ?", (CENTRAL_AUTH,)).fetchone()
    if row is None:
        row = tx.conn.execute(
            "INSERT INTO participant (name, is_active, is_proxy, created_date, created_by) "
            "VALUES (?, 1, 0, ?, 'miniloop') RETURNING id", (CENTRAL_AUTH, tx.now)).fetchone()
        tx.emit(subjects.participant(CENTRAL_AUTH, "created"), {"type": "participant.created", "name": CENTRAL_AUTH})
    for kind, value in endpoints.items():
        changed = tx.conn.execute(
            "INSERT INTO participant_endpoint (participant_id, endpoint_type, value, changed_date) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (participant_id, endpoint_type) DO UPDATE SET value = excluded.value, "
            "changed_date = excluded.changed_date WHERE value IS NOT excluded.value RETURNING 1",
            (row["id"], kind, value, tx.now)).fetchone()
        if changed:
            tx.emit(subjects.participant(CENTRAL_AUTH, "endpoint"), {
                "type": "participant.endpoint", "name": CENTRAL_AUTH, "endpointType": kind, "value": value})


def _register(tx: Tx, msg: Inbound, body: ConsentsPostRequest, checked: Checked, builtin_oracle: bool) -> None:
    consent_id, dfsp = body.consent_id, msg.source
    path = f"/consents/{consent_id}"
    existing = tx.conn.execute("SELECT participant, request_hash, status FROM consent WHERE id = ?",
                               (consent_id,)).fetchone()
    if existing is not None:
        if existing["participant"] == dfsp and existing["request_hash"] == msg.body_hash and existing["status"] == "ISSUED":
            _send(tx, msg, dfsp, "PUT", path, _verified_body(msg))  # a resend: the same answer again
        else:
            _send(tx, msg, dfsp, "PUT", path + "/error", error_body("6001", f"consent {consent_id} is already registered"))
        return
    if checked.error_code:
        _send(tx, msg, dfsp, "PUT", path + "/error", error_body(checked.error_code, checked.reason))
        tx.emit(subjects.consent(consent_id, "rejected"), {
            "type": "consent.rejected", "consentId": consent_id, "source": CENTRAL_AUTH, "destination": dfsp,
            "credentialType": checked.credential_type, "errorCode": checked.error_code, "reason": checked.reason})
        return
    scopes = [msgspec.to_builtins(s) for s in body.scopes]
    tx.conn.execute(
        "INSERT INTO consent (id, participant, consent_request_id, scopes, status, credential_type, credential_id, "
        "public_key, counter, challenge, request_hash, created_date) VALUES (?, ?, ?, ?, 'ISSUED', ?, ?, ?, ?, ?, ?, ?)",
        (consent_id, dfsp, body.consent_request_id, json.dumps(scopes, separators=(",", ":")), checked.credential_type,
         checked.credential_id, checked.public_key, checked.counter, checked.challenge, msg.body_hash, tx.now))
    if builtin_oracle:  # what POST /participants/CONSENT/{ID} to the ALS does, in the same transaction
        record_party(tx, "CONSENT", consent_id, "", "", CENTRAL_AUTH)
    _send(tx, msg, dfsp, "PUT", path, _verified_body(msg))
    tx.emit(subjects.consent(consent_id, "verified"), {
        "type": "consent.verified", "consentId": consent_id, "source": CENTRAL_AUTH, "destination": dfsp,
        "credentialType": checked.credential_type, "scopes": scopes})


def _verified_body(msg: Inbound) -> dict[str, Any]:
    """PUT /consents/{ID}: the scopes and credential as the DFSP sent them, the credential VERIFIED
    (Mojaloop's ConsentsIDPutResponseVerified)."""
    sent = msgspec.json.decode(msg.body)
    return {"scopes": sent["scopes"], "credential": {**sent["credential"], "status": "VERIFIED"}}


def _verify(tx: Tx, msg: Inbound, body: ThirdpartyRequestsVerificationsPostRequest) -> None:
    request_id, consent_id, dfsp = body.verification_request_id, body.consent_id, msg.source
    path = f"/thirdpartyRequests/verifications/{request_id}"
    earlier = tx.conn.execute("SELECT participant, request_hash, error_code, reason FROM consent_verification "
                              "WHERE id = ?", (request_id,)).fetchone()
    if earlier is not None:  # a resend gets the same answer; another request with the same id, an error
        if earlier["participant"] == dfsp and earlier["request_hash"] == msg.body_hash:
            if earlier["error_code"]:
                _send(tx, msg, dfsp, "PUT", path + "/error", error_body(earlier["error_code"], earlier["reason"]))
            else:
                _send(tx, msg, dfsp, "PUT", path, {"authenticationResponse": "VERIFIED"})
        else:
            _send(tx, msg, dfsp, "PUT", path + "/error",
                  error_body("6001", f"verification {request_id} was already requested"))
        return
    consent = tx.conn.execute("SELECT * FROM consent WHERE id = ?", (consent_id,)).fetchone()
    code, reason, counter = _check_verification(consent, dfsp, body)
    if code == "" and consent["credential_type"] == "FIDO":
        tx.conn.execute("UPDATE consent SET counter = ? WHERE id = ?", (counter, consent_id))
    tx.conn.execute(
        "INSERT INTO consent_verification (id, consent_id, participant, signed_payload_type, error_code, reason, "
        "request_hash, created_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (request_id, consent_id, dfsp, body.signed_payload_type, code or None, reason or None, msg.body_hash, tx.now))
    event = {"verificationRequestId": request_id, "consentId": consent_id, "source": CENTRAL_AUTH,
             "destination": dfsp, "signedPayloadType": body.signed_payload_type}
    if code:
        _send(tx, msg, dfsp, "PUT", path + "/error", error_body(code, reason))
        tx.emit(subjects.thirdparty_verification(request_id, "failed"),
                {"type": "thirdpartyVerification.failed", **event, "errorCode": code, "reason": reason})
    else:
        _send(tx, msg, dfsp, "PUT", path, {"authenticationResponse": "VERIFIED"})
        tx.emit(subjects.thirdparty_verification(request_id, "verified"),
                {"type": "thirdpartyVerification.verified", **event})


def _check_verification(consent: Any, dfsp: str, body: ThirdpartyRequestsVerificationsPostRequest) -> tuple[str, str, int]:
    """('', '', new counter) when the signed challenge verifies; else (code, reason, 0)."""
    if consent is None:
        return "6103", f"consent {body.consent_id} is not registered with the auth-service", 0
    if consent["participant"] != dfsp:
        return "6103", f"consent {body.consent_id} was registered by another DFSP", 0
    if consent["status"] != "ISSUED":
        return "6103", f"consent {body.consent_id} was revoked at {consent['revoked_date']}", 0
    if body.signed_payload_type != consent["credential_type"]:
        return "6201", (f"a {body.signed_payload_type} signature cannot verify a "
                        f"{consent['credential_type']} credential"), 0
    try:
        if body.signed_payload_type == "GENERIC":
            assert body.generic_signed_payload is not None  # the API layer requires it
            credentials.verify_generic(bytes(consent["public_key"]), body.challenge, body.generic_signed_payload)
            return "", "", 0
        signed = body.fido_signed_payload
        assert signed is not None
        counter = credentials.verify_fido_assertion(
            credential_id=signed.id, raw_id=signed.raw_id, authenticator_data=signed.response.authenticator_data,
            client_data_json=signed.response.client_data_json, signature=signed.response.signature,
            challenge=body.challenge, registered_id=bytes(consent["credential_id"]),
            public_key=bytes(consent["public_key"]), counter=consent["counter"])
        return "", "", counter
    except CredentialError as exc:
        return "6201", str(exc), 0


def _revoke(tx: Tx, msg: Inbound, consent_id: str, patch: ConsentsIDPatchRequest | None) -> None:
    path = f"/consents/{consent_id}"
    consent = tx.conn.execute("SELECT participant, status, revoked_date FROM consent WHERE id = ?",
                              (consent_id,)).fetchone()
    if consent is None:
        _send(tx, msg, msg.source, "PUT", path + "/error",
              error_body("6103", f"consent {consent_id} is not registered with the auth-service"))
        return
    dfsp = consent["participant"]
    if patch is not None and msg.source != dfsp:
        _send(tx, msg, msg.source, "PUT", path + "/error",
              error_body("6103", f"consent {consent_id} can only be revoked with a PATCH by the DFSP that registered it"))
        return
    revoked_at = consent["revoked_date"]
    if consent["status"] != "REVOKED":
        revoked_at = (patch.revoked_at if patch is not None and patch.revoked_at else None) or tx.now
        tx.conn.execute("UPDATE consent SET status = 'REVOKED', revoked_date = ? WHERE id = ?", (revoked_at, consent_id))
        tx.emit(subjects.consent(consent_id, "revoked"), {
            "type": "consent.revoked", "consentId": consent_id, "source": CENTRAL_AUTH, "destination": dfsp,
            "revokedAt": revoked_at, "revokedBy": msg.source})
    if patch is None:  # DELETE: tell the consent's DFSP, and the PISP that asked
        notice = {"status": "REVOKED", "revokedAt": revoked_at}
        for to in dict.fromkeys((dfsp, msg.source)):
            _send(tx, msg, to, "PATCH", path, notice)


def _error_received(tx: Tx, msg: Inbound, entity: str, entity_id: str) -> None:
    try:
        info = msgspec.json.decode(msg.body).get("errorInformation") or {}
        code = str(info.get("errorCode", ""))[:4]
    except (msgspec.DecodeError, AttributeError):
        code = ""
    if entity == "consent":
        subject, key = subjects.consent(entity_id, "errorReceived"), "consentId"
    else:
        subject, key = subjects.thirdparty_verification(entity_id, "errorReceived"), "verificationRequestId"
        entity = "thirdpartyVerification"
    tx.emit(subject, {"type": f"{entity}.errorReceived", key: entity_id, "source": msg.source,
                      "destination": CENTRAL_AUTH, "errorCode": code})


def _send(tx: Tx, msg: Inbound, to: str, method: str, path: str, body: dict[str, Any]) -> None:
    """A message from centralAuth to `to`, owed through the outbox (its TP_CB_URL_* endpoint)."""
    resource = path.strip("/").split("/")[0]
    headers = fspiop_headers.message_headers(
        resource, VERSION, source=CENTRAL_AUTH, destination=to, method=method, uri=path,
        traceparent=fspiop_headers.child_traceparent(msg.traceparent))
    if not outbox.send(tx, to, method, path, headers, msgspec.json.encode(body)):
        log.warning("centralAuth cannot send %s %s to %s: it registered no endpoint for it", method, path, to)
