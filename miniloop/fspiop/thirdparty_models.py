"""The bodies of the Third-party API v1.0 (PISPs, DFSPs, the auth-service), as msgspec Structs.

`/consentRequests`, `/consents`, `/accounts`, `/services` and `/thirdpartyRequests/...`. The hub
only routes these (miniloop.services.thirdparty), but it checks every body against the API first,
as Mojaloop's thirdparty-api-svc does with its OpenAPI file (thirdparty-api-svc-switch-openapi3),
so a sender learns of a broken body at once (400/3100 naming the field) rather than from a
receiver that cannot answer it.

The rules are those of miniloop.fspiop.models (camelCase on the wire, unknown fields ignored,
optional fields None, decoded with `models.decode`), and the shared FSPIOP types (Money,
TransactionType, CorrelationId ...) are reused from there. Where the API has two or three body
shapes for one message (`oneOf`: PUT /consentRequests/{ID} for the WEB or the OTP channel, the
PATCH /consents/{ID} of a verified or a revoked consent ...), one Struct holds the fields of all
of them and `__post_init__` checks the rules that tell them apart.

Where the API files disagree, what a real DFSP or PISP sends wins (docs/thirdparty.md):
`PUT /accounts/{ID}` names its list `accounts` in the switch's file and `accountList` in the
DFSP's and PISP's; either is accepted.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from miniloop.fspiop.models import (
    AmountType,
    CorrelationId,
    Currency,
    DateTime,
    ExtensionList,
    FspId,
    MerchantClassificationCode,
    Money,
    PartyPersonalInfo,
    Text128,
    TransactionType,
    _Body,
)

SERVICE_TYPES = ("THIRD_PARTY_DFSP", "PISP", "AUTH_SERVICE")

# The FSPIOP party id types and the two the Third-party API adds: a consent (held by the
# auth-service or the DFSP) and a link between a PISP's user and one account at a DFSP.
TpPartyIdType = Literal["MSISDN", "EMAIL", "PERSONAL_ID", "BUSINESS", "DEVICE", "ACCOUNT_ID", "IBAN", "ALIAS",
                        "CONSENT", "THIRD_PARTY_LINK"]
ScopeAction = Literal["ACCOUNTS_GET_BALANCE", "ACCOUNTS_TRANSFER", "ACCOUNTS_STATEMENT"]
AuthChannel = Literal["WEB", "OTP"]
ConsentStatus = Literal["ISSUED", "REVOKED"]
CredentialType = Literal["FIDO", "GENERIC"]
SignedPayloadType = Literal["FIDO", "GENERIC"]
TransactionRequestState = Literal["RECEIVED", "PENDING", "ACCEPTED", "REJECTED"]
TransactionState = Literal["RECEIVED", "PENDING", "COMPLETED", "REJECTED"]

# An account as its DFSP names it: letters, digits and `_~-.`, not ending in a period.
AccountAddress = Annotated[str, Meta(
    title="AccountAddress", pattern=r"\A[0-9A-Za-z_~.-]*[0-9A-Za-z_~-]\Z", min_length=1, max_length=1023)]
# The API's Name, `^(?!\s*$)[\w .,'-]{1,128}$`: an account's nickname.
Name = Annotated[str, Meta(title="Name", pattern=r"\A(?!\s*\Z)[\w .,'-]{1,128}\Z")]
# Base64url bytes, padded or not. The API writes the class `[A-Za-z0-9-_]`: `-` and `_` are literal.
BinaryString = Annotated[str, Meta(title="BinaryString", pattern=r"\A[A-Za-z0-9_-]+={0,2}\Z")]
Uri = Annotated[str, Meta(min_length=1, max_length=512)]  # the API's pattern matches any string
UserId = Annotated[str, Meta(min_length=1, max_length=128)]
Note = Annotated[str, Meta(min_length=1, max_length=256)]
ClientDataJson = Annotated[str, Meta(min_length=121, max_length=512)]


# ------------------------------------------------------------------------------ parties


class TpPartyIdInfo(_Body):
    """PartyIdInfo with the third-party id types: a payer is `THIRD_PARTY_LINK` + the scope address."""

    party_id_type: TpPartyIdType
    party_identifier: Text128
    party_sub_id_or_type: Text128 | None = None
    fsp_id: FspId | None = None
    extension_list: ExtensionList | None = None


class TpParty(_Body):
    party_id_info: TpPartyIdInfo
    merchant_classification_code: MerchantClassificationCode | None = None
    name: Text128 | None = None
    personal_info: PartyPersonalInfo | None = None


# ------------------------------------------------------------------------------ /accounts


class Account(_Body):
    account_nickname: Name
    address: AccountAddress
    currency: Currency


AccountList = Annotated[list[Account], Meta(min_length=1, max_length=256)]


class AccountsIDPutResponse(_Body):
    """PUT /accounts/{ID}: the DFSP lists the user's accounts that can be linked."""

    accounts: AccountList | None = None
    account_list: AccountList | None = None
    extension_list: ExtensionList | None = None

    def __post_init__(self) -> None:
        if self.accounts is None and self.account_list is None:
            raise ValueError("accounts is required")


# ------------------------------------------------------------------------------ /consentRequests


class Scope(_Body):
    address: AccountAddress
    actions: Annotated[list[ScopeAction], Meta(min_length=1, max_length=32)]


Scopes = Annotated[list[Scope], Meta(min_length=1, max_length=256)]


class ConsentRequestsPostRequest(_Body):
    """POST /consentRequests: a PISP asks a DFSP for access to some of its user's accounts."""

    consent_request_id: CorrelationId
    user_id: UserId
    scopes: Scopes
    auth_channels: Annotated[list[AuthChannel], Meta(min_length=1, max_length=256)]
    callback_uri: Uri
    extension_list: ExtensionList | None = None


class ConsentRequestsIDPutResponse(_Body, kw_only=True):
    """PUT /consentRequests/{ID}: the DFSP accepts and names the one channel to authenticate with.

    WEB: `callbackUri` and `authUri` (where the user logs in) are required. OTP: `callbackUri` is
    optional and there is no `authUri` (the DFSP sends the OTP itself).
    """

    scopes: Scopes
    auth_channels: Annotated[list[AuthChannel], Meta(min_length=1, max_length=1)]
    callback_uri: Uri | None = None
    auth_uri: Uri | None = None
    extension_list: ExtensionList | None = None

    def __post_init__(self) -> None:
        if self.auth_channels[0] == "WEB":
            if self.callback_uri is None:
                raise ValueError("callbackUri is required for the WEB channel")
            if self.auth_uri is None:
                raise ValueError("authUri is required for the WEB channel")
        elif self.auth_uri is not None:
            raise ValueError("authUri is not allowed for the OTP channel")


class ConsentRequestsIDPatchRequest(_Body):
    """PATCH /consentRequests/{ID}: the PISP passes on the token that proves the user authenticated."""

    auth_token: BinaryString
    extension_list: ExtensionList | None = None


# ------------------------------------------------------------------------------ /consents


class GenericCredential(_Body):
    public_key: BinaryString
    signature: BinaryString


class FidoAttestationResponse(_Body):
    # WebAuthn's name: the camelCase renaming would say `clientDataJson`
    client_data_json: ClientDataJson = msgspec.field(name="clientDataJSON")
    attestation_object: Annotated[str, Meta(min_length=306, max_length=2048)]


FidoCredentialId = Annotated[str, Meta(min_length=59, max_length=118)]


class FidoPublicKeyCredentialAttestation(_Body, kw_only=True):
    id: FidoCredentialId
    raw_id: FidoCredentialId | None = None
    response: FidoAttestationResponse
    type: Literal["public-key"]


class Credential(_Body, kw_only=True):
    """A consent's credential: PENDING when the PISP registers it, VERIFIED once the auth-service
    (or the DFSP) checked it. The payload matches `credentialType`."""

    credential_type: CredentialType
    status: Literal["PENDING", "VERIFIED"]
    generic_payload: GenericCredential | None = None
    fido_payload: FidoPublicKeyCredentialAttestation | None = None


class ConsentsPostRequest(_Body, kw_only=True):
    """POST /consents: a DFSP grants a PISP a consent (no credential yet), or registers a consent
    and its credential with the auth-service (`credential` present)."""

    consent_id: CorrelationId
    consent_request_id: CorrelationId | None = None
    scopes: Scopes
    credential: Credential | None = None
    status: ConsentStatus
    extension_list: ExtensionList | None = None

    def __post_init__(self) -> None:
        if self.credential is None and self.consent_request_id is None:
            raise ValueError("consentRequestId is required")


class ConsentsIDPutResponse(_Body, kw_only=True):
    """PUT /consents/{ID}: the PISP sends the signed challenge (credential PENDING), or the
    auth-service tells the DFSP that it verified and registered the credential (VERIFIED)."""

    status: Literal["ISSUED"] | None = None
    scopes: Annotated[list[Scope], Meta(max_length=256)]
    credential: Credential
    extension_list: ExtensionList | None = None


class VerifiedStatus(_Body):
    status: Literal["VERIFIED"]


class ConsentsIDPatchRequest(_Body, kw_only=True):
    """PATCH /consents/{ID}: `{credential: {status: VERIFIED}}` once the credential is registered,
    or `{status: REVOKED, revokedAt}` when the consent is revoked (unlinking)."""

    credential: VerifiedStatus | None = None
    status: Literal["REVOKED"] | None = None
    revoked_at: DateTime | None = None
    extension_list: ExtensionList | None = None

    def __post_init__(self) -> None:
        if self.credential is None and self.status is None:
            raise ValueError("credential is required (or status REVOKED with revokedAt)")
        if self.status is not None and self.revoked_at is None:
            raise ValueError("revokedAt is required")


# ------------------------------------------------------------------------------ /services


class ServicesServiceTypePutResponse(_Body):
    """PUT /services/{ServiceType}: the participants that provide the service."""

    providers: Annotated[list[FspId], Meta(max_length=256)]
    extension_list: ExtensionList | None = None


# ------------------------------------------------------------------------------ /thirdpartyRequests/transactions


class ThirdpartyRequestsTransactionsPostRequest(_Body, kw_only=True):
    """POST /thirdpartyRequests/transactions: a PISP asks the payer's DFSP to make a transfer."""

    transaction_request_id: CorrelationId
    payee: TpParty
    payer: TpPartyIdInfo
    amount_type: AmountType
    amount: Money
    transaction_type: TransactionType
    note: Note | None = None
    expiration: str  # the API gives no format here (a DateTime in every example)
    extension_list: ExtensionList | None = None


class ThirdpartyRequestsTransactionsIDPutResponse(_Body, kw_only=True):
    """PUT /thirdpartyRequests/transactions/{ID}: the DFSP says where the request stands."""

    transaction_id: CorrelationId | None = None
    transaction_request_state: TransactionRequestState
    extension_list: ExtensionList | None = None


class ThirdpartyRequestsTransactionsIDPatchResponse(_Body, kw_only=True):
    """PATCH /thirdpartyRequests/transactions/{ID}: the DFSP tells the PISP how the transfer ended."""

    completed_timestamp: DateTime | None = None
    transaction_request_state: TransactionRequestState
    transaction_state: TransactionState
    extension_list: ExtensionList | None = None


# ------------------------------------------------------------------------------ /thirdpartyRequests/authorizations


class ThirdpartyRequestsAuthorizationsPostRequest(_Body, kw_only=True):
    """POST /thirdpartyRequests/authorizations: the DFSP asks the PISP's user to sign the challenge."""

    authorization_request_id: CorrelationId
    transaction_request_id: CorrelationId
    challenge: str
    transfer_amount: Money
    payee_receive_amount: Money
    fees: Money
    payer: TpPartyIdInfo
    payee: TpParty
    transaction_type: TransactionType
    expiration: DateTime
    extension_list: ExtensionList | None = None


class FidoAssertionResponse(_Body, kw_only=True):
    authenticator_data: Annotated[str, Meta(min_length=49, max_length=256)]
    client_data_json: ClientDataJson = msgspec.field(name="clientDataJSON")
    signature: Annotated[str, Meta(min_length=59, max_length=256)]
    user_handle: Annotated[str, Meta(min_length=1, max_length=88)] | None = None


class FidoPublicKeyCredentialAssertion(_Body, kw_only=True):
    id: FidoCredentialId
    raw_id: FidoCredentialId
    response: FidoAssertionResponse
    type: Literal["public-key"]


class SignedPayload(_Body, kw_only=True):
    signed_payload_type: SignedPayloadType
    fido_signed_payload: FidoPublicKeyCredentialAssertion | None = None
    generic_signed_payload: BinaryString | None = None

    def __post_init__(self) -> None:
        _check_signed(self.signed_payload_type, self.fido_signed_payload, self.generic_signed_payload)


class ThirdpartyRequestsAuthorizationsIDPutResponse(_Body, kw_only=True):
    """PUT /thirdpartyRequests/authorizations/{ID}: REJECTED, or ACCEPTED with the signed challenge."""

    response_type: Literal["ACCEPTED", "REJECTED"]
    signed_payload: SignedPayload | None = None
    extension_list: ExtensionList | None = None

    def __post_init__(self) -> None:
        if self.response_type == "ACCEPTED" and self.signed_payload is None:
            raise ValueError("signedPayload is required when responseType is ACCEPTED")


# ------------------------------------------------------------------------------ /thirdpartyRequests/verifications


class ThirdpartyRequestsVerificationsPostRequest(_Body, kw_only=True):
    """POST /thirdpartyRequests/verifications: the DFSP asks the auth-service to check a signature."""

    verification_request_id: CorrelationId
    challenge: str
    consent_id: CorrelationId
    signed_payload_type: SignedPayloadType
    fido_signed_payload: FidoPublicKeyCredentialAssertion | None = None
    generic_signed_payload: BinaryString | None = None
    extension_list: ExtensionList | None = None

    def __post_init__(self) -> None:
        _check_signed(self.signed_payload_type, self.fido_signed_payload, self.generic_signed_payload)


class ThirdpartyRequestsVerificationsIDPutResponse(_Body):
    """PUT /thirdpartyRequests/verifications/{ID}: the signature is good (a bad one is an error)."""

    authentication_response: Literal["VERIFIED"]
    extension_list: ExtensionList | None = None


def _check_signed(kind: str, fido: object, generic: object) -> None:
    if kind == "FIDO" and fido is None:
        raise ValueError("fidoSignedPayload is required when signedPayloadType is FIDO")
    if kind == "GENERIC" and generic is None:
        raise ValueError("genericSignedPayload is required when signedPayloadType is GENERIC")
