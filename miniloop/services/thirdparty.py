"""The Third-party API v1.0 (PISPs): routed between participants by FSPIOP-Destination, not stored.

This is what Mojaloop's thirdparty-api-svc does: it forwards `/consentRequests`, `/consents`,
`/accounts`, `/thirdpartyRequests/transactions`, `/thirdpartyRequests/authorizations` and
`/thirdpartyRequests/verifications` unchanged to the destination's `TP_CB_URL_*` endpoint and
keeps nothing of them. The state of account linking lives in the DFSP, the PISP and the
auth-service; the hub never looks inside a consent, a token or a signature. The one thing the
hub answers itself is `GET /services/{ServiceType}` (Mojaloop's participant-list service): which
participants provide a service, derived from the endpoints they registered (`providers`).

What the hub checks, on every message (as miniloop.services.requests does for FSPIOP):
- FSPIOP-Destination must be a registered, active participant with an endpoint for the message,
  else the sender gets 3201 "Destination FSP Error" as `PUT .../error` from the Hub. An error
  callback that cannot be forwarded is dropped instead, so that two errors never chase each other.
- A request (GET, POST, DELETE, and `PATCH /consentRequests/{ID}`, which asks the DFSP to check a
  token and is answered) that cannot be delivered gives its sender 1001; a callback that cannot
  be delivered is only recorded (miniloop.services.outbox).

Each step people follow is announced after commit (docs/events.md, docs/thirdparty.md). Events
never carry an auth token, a credential's key or signature, a signed payload or a challenge.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from miniloop.bus import subjects
from miniloop.fspiop import thirdparty_models as tp
from miniloop.fspiop.models import ErrorInformationObject
from miniloop.ledger import Ledger, Tx
from miniloop.services import outbox
from miniloop.services.outbox import Inbound
from miniloop.services.participants import HUB_NAME
from miniloop.services.requests import forward_to_destination

THIRDPARTY_PARTY_TYPES = ("CONSENT", "THIRD_PARTY_LINK")  # served by the built-in oracle by default
AUTH_SERVICE = "centralAuth"  # the hub-hosted auth-service's participant name, as in Mojaloop
PROVIDERS_MAX = 256  # the API's bound on providers

# Which participants provide each service (docs/thirdparty.md): a DFSP that takes third-party
# requests receives POST /consentRequests; a PISP receives the answers to them but not requests.
# The Hub and the auth-service are never listed as DFSPs or PISPs.
_HAS = ("EXISTS (SELECT 1 FROM participant_endpoint e WHERE e.participant_id = p.id "
        "AND e.endpoint_type = 'TP_CB_URL_CONSENT_REQUEST_{}')")
_PROVIDERS_SQL = {
    "THIRD_PARTY_DFSP": (f"SELECT p.name FROM participant p WHERE p.is_active = 1 AND p.name NOT IN (?, ?) "
                         f"AND {_HAS.format('POST')} ORDER BY p.name LIMIT ?"),
    "PISP": (f"SELECT p.name FROM participant p WHERE p.is_active = 1 AND p.name NOT IN (?, ?) "
             f"AND {_HAS.format('PUT')} AND NOT {_HAS.format('POST')} ORDER BY p.name LIMIT ?"),
}

# The routed resources (the path's first one or two segments): the entity of their events
# (ml.event.<entity>.<id>.<what>), its subject, and the field that names the id in the events.
_ENTITIES: dict[str, tuple[str, Callable[[str, str], str], str]] = {
    "consentRequests": ("consentRequest", subjects.consent_request, "consentRequestId"),
    "consents": ("consent", subjects.consent, "consentId"),
    "accounts": ("accounts", subjects.accounts, "userId"),
    "services": ("service", subjects.service, "serviceType"),
    "thirdpartyRequests/transactions": (
        "thirdpartyTransaction", subjects.thirdparty_transaction, "transactionRequestId"),
    "thirdpartyRequests/authorizations": (
        "thirdpartyAuthorization", subjects.thirdparty_authorization, "authorizationRequestId"),
    "thirdpartyRequests/verifications": (
        "thirdpartyVerification", subjects.thirdparty_verification, "verificationRequestId"),
}
RESOURCES = tuple(_ENTITIES)
_SUBJECT_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a path {ID} that is not one gets no event

Body = Any  # a Struct of miniloop.fspiop.thirdparty_models, an ErrorInformationObject, or None (GET, DELETE)


class Thirdparty:
    """The routed third-party resources and GET /services; each method is one writer command, so
    a 202/200 means recorded."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def route(self, msg: Inbound, method: str, resource: str, resource_id: str, body: Body = None) -> None:
        """Forward `method` on `/<resource>[/{ID}]` to FSPIOP-Destination. `resource_id` is the
        path's {ID}, or for a POST the id its body gives (where errors about it go)."""
        await self.ledger.write(route, msg, method, resource, resource_id, body)

    async def list_services(self, msg: Inbound, service_type: str) -> None:
        """GET /services/{ServiceType}: the hub answers PUT /services/{ServiceType} {providers}."""
        await self.ledger.write(list_services, msg, service_type)


# ---------------------------------------------------------------- writer commands


def route(tx: Tx, msg: Inbound, method: str, resource: str, resource_id: str, body: Body) -> None:
    error_path = f"/{resource}/{resource_id}/error"
    is_error = isinstance(body, ErrorInformationObject)
    is_request = method in ("GET", "POST", "DELETE") or (method == "PATCH" and resource == "consentRequests")
    if not forward_to_destination(tx, msg, method, None if is_error else error_path, is_request):
        return
    event = _event(resource, method, msg, body)
    if event is None:
        return
    what, fields = event
    entity, subject, id_key = _ENTITIES[resource]
    key = msg.destination if resource == "accounts" and method == "GET" else (
        msg.source if resource == "accounts" else resource_id)
    if key and _SUBJECT_TOKEN.fullmatch(key):
        tx.emit(subject(key, what), {
            "type": f"{entity}.{what}", id_key: resource_id,
            "source": msg.source, "destination": msg.destination, **fields,
        })


def list_services(tx: Tx, msg: Inbound, service_type: str) -> None:
    """Answer GET /services/{ServiceType} from the participants' registered endpoints."""
    providers = _providers(tx, service_type)
    sent = outbox.hub_message(tx, msg.source, "PUT", f"/services/{service_type}", {"providers": providers},
                              msg.version, msg.traceparent)
    tx.emit(subjects.service(service_type, "answered"), {
        "type": "service.answered", "serviceType": service_type, "source": HUB_NAME,
        "destination": msg.source, "providers": providers, "sent": sent,
    })


def _providers(tx: Tx, service_type: str) -> list[str]:
    """The rule of docs/thirdparty.md: THIRD_PARTY_DFSP, the active participants that receive
    consent requests (TP_CB_URL_CONSENT_REQUEST_POST); PISP, those that receive the answers
    (TP_CB_URL_CONSENT_REQUEST_PUT) but no requests; AUTH_SERVICE, centralAuth if it is active."""
    if service_type == "AUTH_SERVICE":
        row = tx.conn.execute("SELECT is_active FROM participant WHERE name = ?", (AUTH_SERVICE,)).fetchone()
        return [AUTH_SERVICE] if row is not None and row["is_active"] else []
    rows = tx.conn.execute(_PROVIDERS_SQL[service_type], (HUB_NAME, AUTH_SERVICE, PROVIDERS_MAX)).fetchall()
    return [row["name"] for row in rows]


# ---------------------------------------------------------------- events


def _event(resource: str, method: str, msg: Inbound, body: Body) -> tuple[str, dict[str, Any]] | None:
    """What a forwarded message announces: (what happened, fields), or None. Never a secret."""
    if isinstance(body, ErrorInformationObject):
        return "rejected", {"errorCode": body.error_information.error_code}
    if isinstance(body, tp.ConsentRequestsPostRequest):
        return "requested", {"userId": body.user_id, "scopes": _scopes(body.scopes),
                             "authChannels": list(body.auth_channels)}
    if isinstance(body, tp.ConsentRequestsIDPutResponse):
        return "answered", {"authChannel": body.auth_channels[0], "scopes": _scopes(body.scopes)}
    if isinstance(body, tp.ConsentRequestsIDPatchRequest):
        return "authTokenSent", {}
    if isinstance(body, tp.ConsentsPostRequest):
        fields: dict[str, Any] = {"consentRequestId": body.consent_request_id, "status": body.status,
                                  "scopes": _scopes(body.scopes)}
        if body.credential is None:
            return "granted", fields
        return "registrationRequested", {**fields, **_credential(body.credential)}
    if isinstance(body, tp.ConsentsIDPutResponse):
        what = "credentialVerified" if body.credential.status == "VERIFIED" else "credentialSigned"
        return what, _credential(body.credential)
    if isinstance(body, tp.ConsentsIDPatchRequest):
        if body.status == "REVOKED":
            return "revoked", {"revokedAt": body.revoked_at}
        return "linked", {"credentialStatus": "VERIFIED"}
    if isinstance(body, tp.AccountsIDPutResponse):
        return "answered", {"accounts": len(body.accounts or body.account_list or [])}
    if isinstance(body, tp.ServicesServiceTypePutResponse):
        return "answered", {"providers": list(body.providers)}
    if isinstance(body, tp.ThirdpartyRequestsTransactionsPostRequest):
        return "requested", {
            "amount": body.amount.amount, "currency": body.amount.currency, "amountType": body.amount_type,
            "payerIdType": body.payer.party_id_type, "payeeFsp": body.payee.party_id_info.fsp_id,
            "scenario": body.transaction_type.scenario, "expiration": body.expiration,
        }
    if isinstance(body, tp.ThirdpartyRequestsTransactionsIDPutResponse):
        return "answered", {"transactionRequestState": body.transaction_request_state,
                            "transactionId": body.transaction_id}
    if isinstance(body, tp.ThirdpartyRequestsTransactionsIDPatchResponse):
        return "finished", {"transactionRequestState": body.transaction_request_state,
                            "transactionState": body.transaction_state,
                            "completedTimestamp": body.completed_timestamp}
    if isinstance(body, tp.ThirdpartyRequestsAuthorizationsPostRequest):
        return "requested", {
            "transactionRequestId": body.transaction_request_id, "amount": body.transfer_amount.amount,
            "currency": body.transfer_amount.currency, "fees": body.fees.amount, "expiration": body.expiration,
        }
    if isinstance(body, tp.ThirdpartyRequestsAuthorizationsIDPutResponse):
        signed = body.signed_payload
        return "answered", {"responseType": body.response_type,
                            "signedPayloadType": signed.signed_payload_type if signed else None}
    if isinstance(body, tp.ThirdpartyRequestsVerificationsPostRequest):
        return "requested", {"consentId": body.consent_id, "signedPayloadType": body.signed_payload_type}
    if isinstance(body, tp.ThirdpartyRequestsVerificationsIDPutResponse):
        return "answered", {"authenticationResponse": body.authentication_response}
    # no body: GET re-asks are not steps of their own, except the first question of linking
    if resource == "accounts" and method == "GET":
        return "requested", {}
    if resource == "consents" and method == "DELETE":
        return "revocationRequested", {}
    return None


def _scopes(scopes: list[tp.Scope]) -> list[dict[str, Any]]:
    return [{"address": scope.address, "actions": list(scope.actions)} for scope in scopes]


def _credential(credential: tp.Credential) -> dict[str, Any]:
    """What a credential's event shows: its type and status, never its key or signature."""
    return {"credentialType": credential.credential_type, "credentialStatus": credential.status}
