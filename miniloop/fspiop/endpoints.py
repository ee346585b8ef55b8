"""The callback endpoint types a DFSP registers, and their URL templates under one base URL.

Mojaloop keeps one endpoint per (participant, type); values are templates whose `{{...}}` parts
the switch fills in per message. This is the FSPIOP set that Mojaloop's own onboarding scripts
register; a DFSP whose FSPIOP API lives under one base URL gets all of them from `for_base_url`.
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


def for_base_url(base_url: str) -> dict[str, str]:
    """Every FSPIOP callback endpoint of a DFSP served under `base_url`."""
    base = base_url.rstrip("/")
    return {endpoint_type: base + path for endpoint_type, path in _PATHS.items()}
