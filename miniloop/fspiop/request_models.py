"""The bodies of the payee-initiated resources and of bulk quotes, as msgspec Structs.

`/transactionRequests`, `/authorizations`, `/transactions` and `/bulkQuotes` (FSPIOP v1.1). The
hub only routes these (miniloop.services.requests), but it checks every body against the API's
schema first, as Mojaloop's transaction-requests-service and quoting-service do, so a sender
learns of a broken body at once (400) rather than from a receiver that cannot answer it.

The rules are those of miniloop.fspiop.models (camelCase on the wire, unknown fields ignored,
optional fields None, decoded with `models.decode`), and the shared types (Party, Money,
TransactionType ...) are reused from there. Where the implementation file of v1.1
(fspiop-v1.1-openapi3.yaml) and the prose differ, the file wins: AuthenticationType includes
U2F, and an authenticationValue may be a U2F `{pinValue, counter}` object.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.models import (
    Amount,
    AmountType,
    CorrelationId,
    Currency,
    DateTime,
    ErrorInformation,
    ExtensionList,
    GeoCode,
    IlpCondition,
    IlpPacket,
    Money,
    Party,
    PartyIdInfo,
    Text128,
    TransactionType,
    _Body,
)

INDIVIDUAL_QUOTES_MAX = 1000  # the API's bound on individualQuotes and individualQuoteResults

AuthenticationType = Literal["OTP", "QRCODE", "U2F"]
AuthorizationResponse = Literal["ENTERED", "REJECTED", "RESEND"]
TransactionRequestState = Literal["RECEIVED", "PENDING", "ACCEPTED", "REJECTED"]
TransactionState = Literal["RECEIVED", "PENDING", "COMPLETED", "REJECTED"]

Integer = Annotated[str, Meta(title="Integer", pattern=r"\A[1-9][0-9]*\Z")]
Code = Annotated[str, Meta(title="Code", pattern=r"\A[0-9a-zA-Z]{4,32}\Z")]
U2FPin = Annotated[str, Meta(title="U2FPIN", pattern=r"\A\S{1,64}\Z")]
# The API's `^\d{3,10}$|^\S{1,64}$` for a string authenticationValue: an OTP, or a QR code of 1 to
# 64 characters without white space. (Every OTP also matches the second half; both are kept.)
_AUTHENTICATION_TEXT = re.compile(r"\A(?:[0-9]{3,10}|\S{1,64})\Z")


# ------------------------------------------------------------------------------ /transactionRequests


class TransactionRequestsPostRequest(_Body, kw_only=True):
    """POST /transactionRequests: the payee's FSP asks the payer's FSP to pay (request to pay).

    The payer is only a PartyIdInfo: the payee's side knows who to ask, not their details.
    """

    transaction_request_id: CorrelationId
    payee: Party
    payer: PartyIdInfo
    amount: Money
    transaction_type: TransactionType
    note: Text128 | None = None
    geo_code: GeoCode | None = None
    authentication_type: AuthenticationType | None = None
    expiration: DateTime | None = None
    extension_list: ExtensionList | None = None


class TransactionRequestsIDPutResponse(_Body, kw_only=True):
    """PUT /transactionRequests/{ID}: the payer's FSP tells the payee's FSP where the request stands."""

    transaction_id: CorrelationId | None = None
    transaction_request_state: TransactionRequestState
    extension_list: ExtensionList | None = None


# ------------------------------------------------------------------------------ /authorizations


class U2FPinValue(_Body):
    pin_value: U2FPin
    counter: Integer


class AuthenticationInfo(_Body):
    authentication: AuthenticationType
    # The object comes first: `models.decode` follows the first member of a union to name a field.
    authentication_value: U2FPinValue | str

    def __post_init__(self) -> None:
        # checked here rather than as a constrained str inside the union, for the same reason
        if isinstance(self.authentication_value, str) and not _AUTHENTICATION_TEXT.match(self.authentication_value):
            # msgspec adds " - at `$.<path of this object>`"; `decode` joins the two
            raise ValueError("authenticationValue does not match the AuthenticationValue pattern")


class AuthorizationsQuery(_Body):
    """The query of GET /authorizations/{ID}, e.g. `?authenticationType=OTP&retriesLeft=2&amount=102&currency=USD`."""

    authentication_type: AuthenticationType
    retries_left: Integer
    amount: Amount
    currency: Currency


_QUERY_TYPES: tuple[tuple[str, Any, str], ...] = (
    ("authenticationType", AuthenticationType, "AuthenticationType (OTP, QRCODE or U2F)"),
    ("retriesLeft", Integer, "Integer"),
    ("amount", Amount, "Amount"),
    ("currency", Currency, "Currency"),
)


def authorizations_query(args: Mapping[str, str]) -> AuthorizationsQuery:
    """Check the query of GET /authorizations/{ID}, or raise the FspiopError it deserves.

    The API requires all four parameters (API Definition 6.6.3.1; the OpenAPI file describes them
    only in prose, Mojaloop's transaction-requests-service declares them required). A missing one
    is 3102, a malformed one 3100, as a body field would be. `args.get(name)` is the parameter's
    (first) value, as Sanic's `request.args` gives it.
    """
    values = {}
    for name, type_, title in _QUERY_TYPES:
        value = args.get(name)
        if not value:
            raise FspiopError("3102", f"the query parameter {name} is required")
        try:
            msgspec.convert(value, type_)
        except msgspec.ValidationError:
            raise FspiopError("3100", f"the query parameter {name} is not a valid {title}"[:100]) from None
        values[name] = value
    return msgspec.convert(values, AuthorizationsQuery)


class AuthorizationsIDPutResponse(_Body, kw_only=True):
    """PUT /authorizations/{ID}: what the payer entered on the payee's device (or that they refused)."""

    authentication_info: AuthenticationInfo | None = None
    response_type: AuthorizationResponse


# ------------------------------------------------------------------------------ /transactions


class TransactionsIDPutResponse(_Body, kw_only=True):
    """PUT /transactions/{ID}: the payee's FSP tells the payer's FSP how the transaction ended."""

    completed_timestamp: DateTime | None = None
    transaction_state: TransactionState
    code: Code | None = None
    extension_list: ExtensionList | None = None


# ------------------------------------------------------------------------------ /bulkQuotes


class IndividualQuote(_Body, kw_only=True):
    quote_id: CorrelationId
    transaction_id: CorrelationId
    payee: Party
    amount_type: AmountType
    amount: Money
    fees: Money | None = None
    transaction_type: TransactionType
    note: Text128 | None = None
    extension_list: ExtensionList | None = None


class BulkQuotesPostRequest(_Body, kw_only=True):
    """POST /bulkQuotes: one payer asks one payee FSP for up to 1,000 quotes at once."""

    bulk_quote_id: CorrelationId
    payer: Party
    geo_code: GeoCode | None = None
    expiration: DateTime | None = None
    individual_quotes: Annotated[list[IndividualQuote], Meta(min_length=1, max_length=INDIVIDUAL_QUOTES_MAX)]
    extension_list: ExtensionList | None = None


class IndividualQuoteResult(_Body, kw_only=True):
    """One quote of a bulk answer: its terms, or the error that refused it alone."""

    quote_id: CorrelationId
    payee: Party | None = None
    transfer_amount: Money | None = None
    payee_receive_amount: Money | None = None
    payee_fsp_fee: Money | None = None
    payee_fsp_commission: Money | None = None
    ilp_packet: IlpPacket | None = None
    condition: IlpCondition | None = None
    error_information: ErrorInformation | None = None
    extension_list: ExtensionList | None = None


class BulkQuotesIDPutResponse(_Body, kw_only=True):
    """PUT /bulkQuotes/{ID}: the payee FSP's answer to a bulk quote."""

    individual_quote_results: Annotated[
        list[IndividualQuoteResult], Meta(max_length=INDIVIDUAL_QUOTES_MAX)] | None = None
    expiration: DateTime
    extension_list: ExtensionList | None = None
