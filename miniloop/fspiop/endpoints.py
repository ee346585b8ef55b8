"""The callback endpoint types a DFSP registers, and their URL templates under one base URL.

Mojaloop keeps one endpoint per (participant, type); values are templates whose `{{...}}` parts
the switch fills in per message. This is the FSPIOP set that Mojaloop's own onboarding scripts
register; a DFSP whose FSPIOP API lives under one base URL gets all of them from `for_base_url`.

The Third-party API v1.0 (PISPs, DFSPs that accept third-party requests, the auth-service) has
its own set, the `TP_CB_URL_*` types of Mojaloop's central-services-shared:
`thirdparty_for_base_url` (for a DFSP, a PISP or the auth-service: `THIRDPARTY_ROLES`), or
`for_base_url(..., thirdparty=True)` for both sets at once. Here they are full templates
(`{base}/consentRequests/{{ID}}`); Mojaloop registers a bare base URL for them and appends the
path, which miniloop's outbox also understands (docs/thirdparty.md).
"""

from __future__ import annotations

_PATHS = {
    "FSPIOP_CALLBACK_URL_PARTICIPANT_PUT": "/participants/{{partyIdType}}/{{partyIdentifier}}",
    "FSPIOP_CALLBACK_URL_PARTICIPANT_PUT_ERROR": "/participants/{{partyIdType}}/{{partyIdentifier}}/error",
    "FSPIOP_CALLBACK_URL_PARTICIPANT_SUB_ID_PUT":
        "/participants/{{partyIdType}}/{{partyIdentifier}}/{{partySubIdOrType}}",
    "FSPIOP_CALLBACK_URL_PARTICIPANT_SUB_ID_PUT_ERROR":
        "/participants/{{partyIdType}}/{{partyIdentifier}}/{{partySubIdOrType}}/error",
    "FSPIOP_CALLBACK_URL_PARTICIPANT_BATCH_PUT": "/participants/{{requestId}}",
    "FSPIOP_CALLBACK_URL_PARTICIPANT_BATCH_PUT_ERROR": "/participants/{{requestId}}/error",
    "FSPIOP_CALLBACK_URL_PARTIES_GET": "/parties/{{partyIdType}}/{{partyIdentifier}}",
    "FSPIOP_CALLBACK_URL_PARTIES_PUT": "/parties/{{partyIdType}}/{{partyIdentifier}}",
    "FSPIOP_CALLBACK_URL_PARTIES_PUT_ERROR": "/parties/{{partyIdType}}/{{partyIdentifier}}/error",
    "FSPIOP_CALLBACK_URL_PARTIES_SUB_ID_GET": "/parties/{{partyIdType}}/{{partyIdentifier}}/{{partySubIdOrType}}",
    "FSPIOP_CALLBACK_URL_PARTIES_SUB_ID_PUT": "/parties/{{partyIdType}}/{{partyIdentifier}}/{{partySubIdOrType}}",
    "FSPIOP_CALLBACK_URL_PARTIES_SUB_ID_PUT_ERROR":
        "/parties/{{partyIdType}}/{{partyIdentifier}}/{{partySubIdOrType}}/error",
    "FSPIOP_CALLBACK_URL_QUOTES": "",
    "FSPIOP_CALLBACK_URL_BULK_QUOTES": "",
    "FSPIOP_CALLBACK_URL_TRANSFER_POST": "/transfers",
    "FSPIOP_CALLBACK_URL_TRANSFER_PUT": "/transfers/{{transferId}}",
    "FSPIOP_CALLBACK_URL_TRANSFER_ERROR": "/transfers/{{transferId}}/error",
    "FSPIOP_CALLBACK_URL_BULK_TRANSFER_POST": "/bulkTransfers",
    "FSPIOP_CALLBACK_URL_BULK_TRANSFER_PUT": "/bulkTransfers/{{id}}",
    "FSPIOP_CALLBACK_URL_BULK_TRANSFER_ERROR": "/bulkTransfers/{{id}}/error",
    "FSPIOP_CALLBACK_URL_AUTHORIZATIONS": "",
    "FSPIOP_CALLBACK_URL_TRX_REQ_SERVICE": "",
}


# The Third-party API v1.0 set (docs/thirdparty.md). DELETE /consents/{ID} has no type of its own
# in Mojaloop; miniloop sends it to TP_CB_URL_CONSENT_GET, the other request to a consent's holder.
THIRDPARTY_PATHS = {
    "TP_CB_URL_TRANSACTION_REQUEST_GET": "/thirdpartyRequests/transactions/{{ID}}",
    "TP_CB_URL_TRANSACTION_REQUEST_POST": "/thirdpartyRequests/transactions",
    "TP_CB_URL_TRANSACTION_REQUEST_PUT": "/thirdpartyRequests/transactions/{{ID}}",
    "TP_CB_URL_TRANSACTION_REQUEST_PUT_ERROR": "/thirdpartyRequests/transactions/{{ID}}/error",
    "TP_CB_URL_TRANSACTION_REQUEST_PATCH": "/thirdpartyRequests/transactions/{{ID}}",
    "TP_CB_URL_TRANSACTION_REQUEST_AUTH_POST": "/thirdpartyRequests/authorizations",
    "TP_CB_URL_TRANSACTION_REQUEST_AUTH_PUT": "/thirdpartyRequests/authorizations/{{ID}}",
    "TP_CB_URL_TRANSACTION_REQUEST_AUTH_PUT_ERROR": "/thirdpartyRequests/authorizations/{{ID}}/error",
    "TP_CB_URL_TRANSACTION_REQUEST_VERIFY_POST": "/thirdpartyRequests/verifications",
    "TP_CB_URL_TRANSACTION_REQUEST_VERIFY_PUT": "/thirdpartyRequests/verifications/{{ID}}",
    "TP_CB_URL_TRANSACTION_REQUEST_VERIFY_PUT_ERROR": "/thirdpartyRequests/verifications/{{ID}}/error",
    "TP_CB_URL_CONSENT_REQUEST_POST": "/consentRequests",
    "TP_CB_URL_CONSENT_REQUEST_PUT": "/consentRequests/{{ID}}",
    "TP_CB_URL_CONSENT_REQUEST_PUT_ERROR": "/consentRequests/{{ID}}/error",
    "TP_CB_URL_CONSENT_REQUEST_PATCH": "/consentRequests/{{ID}}",
    "TP_CB_URL_CREATE_CREDENTIAL_POST": "/consentRequests/{{ID}}/createCredential",
    "TP_CB_URL_CONSENT_POST": "/consents",
    "TP_CB_URL_CONSENT_GET": "/consents/{{ID}}",
    "TP_CB_URL_CONSENT_PUT": "/consents/{{ID}}",
    "TP_CB_URL_CONSENT_PATCH": "/consents/{{ID}}",
    "TP_CB_URL_CONSENT_PUT_ERROR": "/consents/{{ID}}/error",
    "TP_CB_URL_CONSENT_GENERATE_CHALLENGE_POST": "/consents/{{ID}}/generateChallenge",
    "TP_CB_URL_CONSENT_GENERATE_CHALLENGE_PUT_ERROR": "/consents/{{ID}}/generateChallenge/error",
    "TP_CB_URL_ACCOUNTS_GET": "/accounts/{{ID}}",
    "TP_CB_URL_ACCOUNTS_PUT": "/accounts/{{ID}}",
    "TP_CB_URL_ACCOUNTS_PUT_ERROR": "/accounts/{{ID}}/error",
    "TP_CB_URL_SERVICES_GET": "/services/{{ServiceType}}",
    "TP_CB_URL_SERVICES_PUT": "/services/{{ServiceType}}",
    "TP_CB_URL_SERVICES_PUT_ERROR": "/services/{{ServiceType}}/error",
}


def for_base_url(base_url: str, *, thirdparty: bool = False) -> dict[str, str]:
    """Every FSPIOP callback endpoint of a DFSP served under `base_url`; with `thirdparty`, the
    Third-party API's `TP_CB_URL_*` endpoints under the same base URL as well."""
    base = base_url.rstrip("/")
    found = {endpoint_type: base + path for endpoint_type, path in _PATHS.items()}
    if thirdparty:
        found.update(thirdparty_for_base_url(base))
    return found


# What each kind of third-party participant receives, so that GET /services/{ServiceType} can tell
# them apart (docs/thirdparty.md): a DFSP receives POST /consentRequests, a PISP does not.
THIRDPARTY_ROLES = {
    "dfsp": tuple(THIRDPARTY_PATHS),
    "pisp": tuple(t for t in THIRDPARTY_PATHS if t != "TP_CB_URL_CONSENT_REQUEST_POST"),
    "auth-service": (
        "TP_CB_URL_CONSENT_POST", "TP_CB_URL_CONSENT_GET", "TP_CB_URL_CONSENT_PUT_ERROR",
        "TP_CB_URL_TRANSACTION_REQUEST_VERIFY_POST", "TP_CB_URL_SERVICES_PUT", "TP_CB_URL_SERVICES_PUT_ERROR",
    ),
}


def thirdparty_for_base_url(base_url: str, role: str = "dfsp") -> dict[str, str]:
    """The Third-party API's `TP_CB_URL_*` endpoints of a participant served under `base_url`.

    `role`: "dfsp" (every type), "pisp" (every type but TP_CB_URL_CONSENT_REQUEST_POST: a PISP
    never receives a consent request) or "auth-service" (what a hub-hosted auth-service receives).
    """
    base = base_url.rstrip("/")
    return {endpoint_type: base + THIRDPARTY_PATHS[endpoint_type] for endpoint_type in THIRDPARTY_ROLES[role]}
