"""The FSPIOP v1.1 bodies of /bulkTransfers as msgspec Structs (the API's BulkTransfers* schemas).

They follow the rules of miniloop.fspiop.models: snake_case attributes that are camelCase on the
wire, the API's patterns and lengths on the types, unknown fields ignored, optional fields None
and left out when encoding. `models.decode` decodes them like any other body, naming a broken
field by its JSON path ("individualTransfers[2].transferAmount.amount does not match ...").
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from miniloop.fspiop.models import (
    CorrelationId,
    DateTime,
    ErrorInformation,
    ExtensionList,
    FspId,
    IlpCondition,
    IlpFulfilment,
    IlpPacket,
    Money,
    _Body,
)

INDIVIDUAL_MAX = 1000  # individual transfers in one bulk, and results in one answer

# what the API shows; central-ledger's internal states map onto these (services.bulk_transfers)
BulkTransferState = Literal["RECEIVED", "PENDING", "ACCEPTED", "PROCESSING", "COMPLETED", "REJECTED"]


class IndividualTransfer(_Body):
    """One transfer of a bulk: payer, payee and expiration are the bulk's."""

    transfer_id: CorrelationId
    transfer_amount: Money
    ilp_packet: IlpPacket
    condition: IlpCondition
    extension_list: ExtensionList | None = None


class BulkTransfersPostRequest(_Body, kw_only=True):
    """POST /bulkTransfers: the payer's transfers to one payee FSP."""

    bulk_transfer_id: CorrelationId
    bulk_quote_id: CorrelationId
    payer_fsp: FspId
    payee_fsp: FspId
    individual_transfers: Annotated[list[IndividualTransfer], Meta(min_length=1, max_length=INDIVIDUAL_MAX)]
    expiration: DateTime
    extension_list: ExtensionList | None = None


class IndividualTransferResult(_Body):
    """The outcome of one transfer of a bulk: a fulfilment (committed) or errorInformation."""

    transfer_id: CorrelationId
    fulfilment: IlpFulfilment | None = None
    error_information: ErrorInformation | None = None
    extension_list: ExtensionList | None = None


class BulkTransfersIDPutResponse(_Body, kw_only=True):
    """PUT /bulkTransfers/{ID}: the payee's answer, and the hub's to the payer and payee."""

    completed_timestamp: DateTime | None = None
    individual_transfer_results: Annotated[
        list[IndividualTransferResult], Meta(max_length=INDIVIDUAL_MAX)] | None = None
    bulk_transfer_state: BulkTransferState
    extension_list: ExtensionList | None = None
