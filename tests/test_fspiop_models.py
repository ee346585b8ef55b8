"""Unit tests of miniloop.fspiop.models: the body types, their rules, and the error descriptions."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from miniloop import money
from miniloop.fspiop import models
from miniloop.fspiop.errors import FspiopError

QUOTE_ID = "b51ec534-ee48-4575-b6a9-ead2955b8069"
CONDITION = "GRzLaTP7DJ9t4P-a_BA0WA9wzzlsugf00-Tn6kESAfM"
FULFILMENT = "UNlJ98hZTY_dsw0cAqw4i_UN3v4utt7CZFB4yfLbVFA"
ILP_PACKET = "AYIBgQAAAAAAAASwNGxldmVsb25lLmRmc3AxLm1lci45T2RTOF81MDdqUUZERmZlakgyOVc4bXFmNEpLMHlGTFGCAUBQU0svMS4wCk5vbmNlOiB1SXlweUYzY3pYSXBFdzVVc05TYWh3CkVuY3J5cHRpb246IG5vbmUKUGF5bWVudC1JZDogMTMyMzZhM2ItOGZhOC00MTYzLTg0NDctNGMzZWQzZGE5OGE3Cg=="

QUOTE: dict[str, Any] = {
    "quoteId": QUOTE_ID,
    "transactionId": "a8323bc6-c228-4df2-ae82-e5a997baf898",
    "transactionRequestId": "a8323bc6-c228-1df2-8e82-e5a997baf898",
    "payee": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": "123456789", "fspId": "payeefsp"}},
    "payer": {
        "partyIdInfo": {"partyIdType": "PERSONAL_ID", "partyIdentifier": "16135551212",
                        "partySubIdOrType": "PASSPORT", "fspId": "payerfsp",
                        "extensionList": {"extension": [{"key": "k", "value": "v"}]}},
        "merchantClassificationCode": "4321",
        "name": "Mats Hagman",
        "personalInfo": {"complexName": {"firstName": "Mats", "middleName": "Per", "lastName": "Hagman"},
                         "dateOfBirth": "1983-10-25"},
    },
    "amountType": "RECEIVE",
    "amount": {"currency": "USD", "amount": "123.45"},
    "fees": {"currency": "USD", "amount": "1.5"},
    "transactionType": {"scenario": "REFUND", "subScenario": "LOCALLY_DEFINED", "initiator": "PAYEE",
                        "initiatorType": "AGENT",
                        "refundInfo": {"originalTransactionId": QUOTE_ID, "refundReason": "wrong payee"},
                        "balanceOfPayments": "123"},
    "geoCode": {"latitude": "+45.4215", "longitude": "-75.6972"},
    "note": "Free-text memo",
    "expiration": "2016-05-24T08:38:08.699-04:00",
    "extensionList": {"extension": [{"key": "errorDescription", "value": "This is a more detailed error"}]},
}
MINIMAL_QUOTE: dict[str, Any] = {
    "quoteId": QUOTE_ID,
    "transactionId": "a8323bc6-c228-4df2-ae82-e5a997baf898",
    "payee": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": "123456789"}},
    "payer": {"partyIdInfo": {"partyIdType": "MSISDN", "partyIdentifier": "987654321"}},
    "amountType": "SEND",
    "amount": {"currency": "USD", "amount": "5"},
    "transactionType": {"scenario": "TRANSFER", "initiator": "PAYER", "initiatorType": "CONSUMER"},
}
TRANSFER: dict[str, Any] = {
    "transferId": "85feac2f-39b2-491b-817e-4a03203d4f14",
    "payeeFsp": "payeefsp",
    "payerFsp": "payerfsp",
    "amount": {"currency": "XOF", "amount": "100"},
    "ilpPacket": ILP_PACKET,
    "condition": CONDITION,
    "expiration": "2030-01-01T00:00:00.000Z",
    "extensionList": {"extension": [{"key": "a", "value": "b"}]},
}


def body(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()


def changed(base: dict[str, Any], path: str, value: Any = ..., drop: bool = False) -> bytes:
    """`base` with the field at a dotted path set to `value`, or removed."""
    result = copy.deepcopy(base)
    *parents, last = path.split(".")
    target = result
    for name in parents:
        target = target.setdefault(name, {})
    if drop:
        del target[last]
    else:
        target[last] = value
    return body(result)


def refused(model: type, raw: bytes) -> FspiopError:
    with pytest.raises(FspiopError) as caught:
        models.decode(model, raw)
    return caught.value


def money_ok(amount: Any, currency: Any = "USD") -> bool:
    try:
        models.decode(models.Money, body({"currency": currency, "amount": amount}))
    except FspiopError as error:
        assert error.code == "3100"
        return False
    return True


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize(("model", "value"), [
    (models.QuotesPostRequest, QUOTE),
    (models.QuotesPostRequest, MINIMAL_QUOTE),
    (models.QuotesIDPutResponse, {
        "transferAmount": {"currency": "USD", "amount": "124.45"},
        "payeeReceiveAmount": {"currency": "USD", "amount": "123.45"},
        "payeeFspFee": {"currency": "USD", "amount": "1"},
        "payeeFspCommission": {"currency": "USD", "amount": "0"},
        "expiration": "2016-05-24T08:38:08.699Z",
        "geoCode": {"latitude": "90", "longitude": "-180.000000"},
        "ilpPacket": ILP_PACKET, "condition": CONDITION,
    }),
    (models.TransfersPostRequest, TRANSFER),
    (models.TransfersIDPutResponse, {"fulfilment": FULFILMENT, "completedTimestamp": "2016-05-24T08:38:08.699Z",
                                     "transferState": "COMMITTED"}),
    (models.TransfersIDPutResponse, {"transferState": "RESERVED"}),
    (models.TransfersIDPatchResponse, {"completedTimestamp": "2016-05-24T08:38:08.699Z", "transferState": "COMMITTED"}),
    (models.PartiesTypeIDPutResponse, {"party": QUOTE["payer"]}),
    (models.ParticipantsTypeIDSubIDPostRequest, {"fspId": "dfsp1", "currency": "EUR"}),
    (models.ParticipantsPostRequest, {"requestId": QUOTE_ID, "partyList": [QUOTE["payee"]["partyIdInfo"]],
                                      "currency": "USD"}),
    (models.ParticipantsTypeIDPutResponse, {"fspId": "dfsp1"}),
    (models.ParticipantsTypeIDPutResponse, {}),
    (models.ParticipantsIDPutResponse, {"partyList": [
        {"partyId": QUOTE["payee"]["partyIdInfo"]},
        {"partyId": QUOTE["payer"]["partyIdInfo"],
         "errorInformation": {"errorCode": "3003", "errorDescription": "Add Party information error"}}]}),
    (models.ErrorInformationObject, {"errorInformation": {
        "errorCode": "5100", "errorDescription": "Generic Payee rejection",
        "extensionList": {"extension": [{"key": "k", "value": "v"}]}}}),
])
def test_round_trip(model: type, value: dict[str, Any]) -> None:
    decoded = models.decode(model, body(value))
    encoded = models.encode(decoded)
    assert json.loads(encoded) == value
    assert models.decode(model, encoded) == decoded


def test_attributes_are_snake_case() -> None:
    quote = models.decode(models.QuotesPostRequest, body(QUOTE))
    assert quote.quote_id == QUOTE_ID
    assert quote.amount.amount == "123.45"  # amounts stay strings
    assert money.parse_amount(quote.amount.amount, strict=True) == money.parse_amount("123.45")
    assert quote.payer.party_id_info.party_sub_id_or_type == "PASSPORT"
    assert quote.transaction_type.refund_info is not None
    assert quote.transaction_type.refund_info.original_transaction_id == QUOTE_ID
    assert quote.geo_code == models.GeoCode(latitude="+45.4215", longitude="-75.6972")
    transfer = models.decode(models.TransfersPostRequest, body(TRANSFER))
    assert (transfer.payer_fsp, transfer.payee_fsp, transfer.ilp_packet) == ("payerfsp", "payeefsp", ILP_PACKET)
    assert datetime.fromisoformat(transfer.expiration) == datetime(2030, 1, 1, tzinfo=timezone.utc)


def test_encode_leaves_out_none_and_builds_from_attributes() -> None:
    patch = models.TransfersIDPatchResponse(completed_timestamp="2016-05-24T08:38:08.699Z", transfer_state="COMMITTED")
    assert json.loads(models.encode(patch)) == {"completedTimestamp": "2016-05-24T08:38:08.699Z",
                                                "transferState": "COMMITTED"}
    assert models.encode({"a": [1]}) == b'{"a":[1]}'


def test_unknown_fields_are_ignored() -> None:
    value = dict(TRANSFER, futureField={"x": 1}, amount={"currency": "USD", "amount": "1", "extra": True})
    transfer = models.decode(models.TransfersPostRequest, body(value))
    assert "futureField" not in json.loads(models.encode(transfer))


# The API's property names for each body, in its order; the camel renaming must give exactly these.
WIRE_NAMES = {
    models.Extension: "key value",
    models.ExtensionList: "extension",
    models.Money: "currency amount",
    models.PartyIdInfo: "partyIdType partyIdentifier partySubIdOrType fspId extensionList",
    models.PartyComplexName: "firstName middleName lastName",
    models.PartyPersonalInfo: "complexName dateOfBirth",
    models.Party: "partyIdInfo merchantClassificationCode name personalInfo",
    models.Refund: "originalTransactionId refundReason",
    models.TransactionType: "scenario subScenario initiator initiatorType refundInfo balanceOfPayments",
    models.GeoCode: "latitude longitude",
    models.ErrorInformation: "errorCode errorDescription extensionList",
    models.ErrorInformationObject: "errorInformation",
    models.QuotesPostRequest: "quoteId transactionId transactionRequestId payee payer amountType amount fees "
                              "transactionType geoCode note expiration extensionList",
    models.QuotesIDPutResponse: "transferAmount payeeReceiveAmount payeeFspFee payeeFspCommission expiration "
                                "geoCode ilpPacket condition extensionList",
    models.TransfersPostRequest: "transferId payeeFsp payerFsp amount ilpPacket condition expiration extensionList",
    models.TransfersIDPutResponse: "fulfilment completedTimestamp transferState extensionList",
    models.TransfersIDPatchResponse: "completedTimestamp transferState extensionList",
    models.PartiesTypeIDPutResponse: "party",
    models.ParticipantsTypeIDSubIDPostRequest: "fspId currency extensionList",
    models.ParticipantsPostRequest: "requestId partyList currency",
    models.ParticipantsTypeIDPutResponse: "fspId",
    models.PartyResult: "partyId errorInformation",
    models.ParticipantsIDPutResponse: "partyList currency",
}


@pytest.mark.parametrize("model", WIRE_NAMES, ids=lambda model: model.__name__)
def test_wire_names(model: type) -> None:
    assert [field.encode_name for field in msgspec.structs.fields(model)] == WIRE_NAMES[model].split()


def test_decoders_are_cached() -> None:
    assert models._decoder(models.TransfersPostRequest) is models._decoder(models.TransfersPostRequest)


# ------------------------------------------------------------------------------ Amount, Currency


@pytest.mark.parametrize("amount", ["5", "5.5", "0.5", "5.5555", "0", "0.0001", "123456789012345678",
                                    "123456789012345678.1234", "10", "100.01"])
def test_amount_accepted(amount: str) -> None:
    assert money_ok(amount)
    assert money.AMOUNT_PATTERN.match(amount)  # the same rule as the ledger's


@pytest.mark.parametrize("amount", ["5.0", "5.", "5.50", ".5", "00.5", "-5.5", "1234567890123456789",
                                    "5.55555", "05", "+5", "5e3", " 5", "5 ", "5\n", "", "1,5", "\u0665"])
def test_amount_rejected(amount: str) -> None:
    assert not money_ok(amount)


@pytest.mark.parametrize("amount", [5, 5.5, None, True])
def test_amount_must_be_a_string(amount: Any) -> None:
    assert not money_ok(amount)


@pytest.mark.parametrize(("currency", "ok"), [("USD", True), ("XOF", True), ("XTS", True), ("usd", False),
                                              ("ABC", False), ("US", False), ("", False), (840, False)])
def test_currency(currency: Any, ok: bool) -> None:
    assert money_ok("1", currency) is ok


# ------------------------------------------------------------------------------ DateTime, Date


def patch_ok(timestamp: Any) -> bool:
    try:
        models.decode(models.TransfersIDPatchResponse,
                      body({"completedTimestamp": timestamp, "transferState": "COMMITTED"}))
    except FspiopError:
        return False
    return True


@pytest.mark.parametrize("timestamp", [
    "2016-05-24T08:38:08.699Z",
    "2016-05-24T08:38:08.699-04:00",
    "2016-05-24T08:38:08.699+05:30",
    "2016-05-24T23:59:59.000+19:59",
    "2024-02-29T00:00:00.000Z",  # leap year
    "2000-02-29T00:00:00.000Z",  # divisible by 400
    "1600-02-29T00:00:00.000Z",
    "2016-12-31T00:00:00.000Z",
    "2016-04-30T00:00:00.000Z",
    "1000-01-01T00:00:00.000Z",
    "9999-12-31T23:59:59.999Z",
])
def test_datetime_accepted(timestamp: str) -> None:
    assert patch_ok(timestamp)
    assert datetime.fromisoformat(timestamp)  # what callers use to read it


@pytest.mark.parametrize("timestamp", [
    "2016-05-24T08:38:08Z",  # milliseconds are mandatory
    "2016-05-24T08:38:08.69Z",
    "2016-05-24T08:38:08.6999Z",
    "2016-05-24T08:38:08.699",  # so is the offset
    "2016-05-24T08:38:08.699+0400",
    "2016-05-24T08:38:08.699+24:00",
    "2016-05-24T08:38:08.699+04:60",
    "2016-05-24T08:38:08.699z",
    "2016-05-24t08:38:08.699Z",
    "2016-05-24 08:38:08.699Z",
    "2016-05-24T24:00:00.000Z",
    "2016-05-24T08:60:00.000Z",
    "2016-05-24T08:38:60.000Z",
    "2023-02-29T00:00:00.000Z",  # not a leap year
    "1900-02-29T00:00:00.000Z",  # divisible by 100, not by 400
    "2100-02-29T00:00:00.000Z",
    "2016-02-30T00:00:00.000Z",
    "2016-04-31T00:00:00.000Z",
    "2016-13-01T00:00:00.000Z",
    "2016-00-01T00:00:00.000Z",
    "2016-01-00T00:00:00.000Z",
    "0999-01-01T00:00:00.000Z",
    "2016-05-24T08:38:08.699Z\n",
    "\u0662016-05-24T08:38:08.699Z",
    "2016-05-24",
    1464079088699,
])
def test_datetime_rejected(timestamp: Any) -> None:
    assert not patch_ok(timestamp)


@pytest.mark.parametrize(("date", "ok"), [
    ("1983-10-25", True), ("2024-02-29", True), ("2023-02-29", False), ("1900-02-29", False),
    ("1983-10-25T00:00:00.000Z", False), ("83-10-25", False), ("1983-1-25", False),
])
def test_date_of_birth(date: str, ok: bool) -> None:
    raw = changed(QUOTE, "payer.personalInfo.dateOfBirth", date)
    if ok:
        models.decode(models.QuotesPostRequest, raw)
    else:
        assert "payer.personalInfo.dateOfBirth does not match the Date pattern" in \
            refused(models.QuotesPostRequest, raw).description


def test_datetime_text() -> None:
    moment = datetime(2024, 2, 29, 10, 11, 12, 345678, tzinfo=timezone(timedelta(hours=2)))
    assert models.datetime_text(moment) == "2024-02-29T08:11:12.345Z"
    assert models.datetime_text(datetime(2024, 1, 1)) == "2024-01-01T00:00:00.000Z"  # naive = UTC
    assert patch_ok(models.datetime_text())


# ------------------------------------------------------------------------------ ids, ILP, names, lists


def transfer_ok(**changes: Any) -> bool:
    try:
        models.decode(models.TransfersPostRequest, body(dict(TRANSFER, **changes)))
    except FspiopError as error:
        assert error.code == "3100"
        return False
    return True


@pytest.mark.parametrize(("transfer_id", "ok"), [
    ("85feac2f-39b2-491b-817e-4a03203d4f14", True),  # v4
    ("6ba7b810-9dad-11d1-80b4-00c04fd430c8", True),  # v1
    ("886313e1-3b8a-5372-9b90-0c9aee199e5d", True),  # v5
    ("85FEAC2F-39B2-491B-817E-4A03203D4F14", False),  # upper case
    ("85feac2f-39b2-091b-817e-4a03203d4f14", False),  # version 0
    ("85feac2f-39b2-691b-817e-4a03203d4f14", False),  # version 6 (v2.0 only)
    ("85feac2f-39b2-491b-c17e-4a03203d4f14", False),  # variant
    ("85feac2f39b2491b817e4a03203d4f14", False),
    ("{85feac2f-39b2-491b-817e-4a03203d4f14}", False),
    ("01ARZ3NDEKTSV4RRFFQ69G5FAV", False),  # ULID (v2.0 only)
    ("", False),
])
def test_correlation_id(transfer_id: str, ok: bool) -> None:
    assert transfer_ok(transferId=transfer_id) is ok


@pytest.mark.parametrize(("condition", "ok"), [
    (CONDITION, True), ("A" * 43, True), ("-_" * 21 + "x", True),
    ("A" * 42, False), ("A" * 44, False), ("A" * 42 + "=", False), ("A" * 42 + "+", False), ("A" * 42 + "/", False),
])
def test_condition(condition: str, ok: bool) -> None:
    assert transfer_ok(condition=condition) is ok


@pytest.mark.parametrize(("fulfilment", "ok"), [
    (FULFILMENT, True), (FULFILMENT[:-1], False), (FULFILMENT + "=", False)])
def test_fulfilment(fulfilment: str, ok: bool) -> None:
    raw = body({"fulfilment": fulfilment, "transferState": "COMMITTED"})
    if ok:
        assert models.decode(models.TransfersIDPutResponse, raw).fulfilment == fulfilment
    else:
        assert refused(models.TransfersIDPutResponse, raw).code == "3100"


@pytest.mark.parametrize(("packet", "ok"), [
    (ILP_PACKET, True), ("AQ", True), ("AQ==", True), ("A" * 32768, True),
    ("", False), ("AQ===", False), ("A+B", False), ("A" * 32769, False), ("=", False),
])
def test_ilp_packet(packet: str, ok: bool) -> None:
    assert transfer_ok(ilpPacket=packet) is ok


@pytest.mark.parametrize(("fsp", "ok"), [("payerfsp", True), ("x" * 32, True), ("x" * 33, False), ("", False)])
def test_fsp_id(fsp: str, ok: bool) -> None:
    assert transfer_ok(payerFsp=fsp) is ok


@pytest.mark.parametrize("state", ["RECEIVED", "RESERVED", "COMMITTED", "ABORTED"])
def test_transfer_states(state: str) -> None:
    assert models.decode(models.TransfersIDPutResponse, body({"transferState": state})).transfer_state == state


def test_transfer_state_enum() -> None:
    error = refused(models.TransfersIDPutResponse, body({"transferState": "DONE"}))
    assert error.description == ("Generic validation error - transferState must be one of "
                                 "ABORTED, COMMITTED, RECEIVED, RESERVED, not 'DONE'")


@pytest.mark.parametrize("id_type", ["MSISDN", "EMAIL", "PERSONAL_ID", "BUSINESS", "DEVICE", "ACCOUNT_ID", "IBAN",
                                     "ALIAS"])
def test_party_id_types(id_type: str) -> None:
    raw = body({"fspId": "dfsp1"})
    assert models.decode(models.ParticipantsTypeIDSubIDPostRequest, raw).fsp_id == "dfsp1"
    raw = body({"requestId": QUOTE_ID, "partyList": [{"partyIdType": id_type, "partyIdentifier": "1"}]})
    assert models.decode(models.ParticipantsPostRequest, raw).party_list[0].party_id_type == id_type


@pytest.mark.parametrize(("field", "value"), [
    ("partyIdType", "PHONE"), ("partyIdentifier", ""), ("partyIdentifier", "x" * 129),
    ("partySubIdOrType", ""), ("partySubIdOrType", "x" * 129), ("fspId", "x" * 33),
])
def test_party_id_info_rejected(field: str, value: str) -> None:
    error = refused(models.QuotesPostRequest, changed(QUOTE, f"payee.partyIdInfo.{field}", value))
    assert error.code == "3100"
    assert f"payee.partyIdInfo.{field} " in error.description


@pytest.mark.parametrize("name", [
    "Mats", "Jean-Luc O'Neil", "J. R. R.", "Zoë", "Zoe\u0308", "प्रिया", "محمد", "名前", "Ana_Maria", "Anna2", "x" * 128,
    "\u0915\u094d\u200d\u0937",  # a conjunct joined with ZWJ
])
def test_person_name_accepted(name: str) -> None:
    models.decode(models.QuotesPostRequest, changed(QUOTE, "payer.personalInfo.complexName.firstName", name))


@pytest.mark.parametrize("name", ["   ", "Ma$ts", "a@b", "Mats\n", "\U0001F600", "x" * 129, "", "Mats!", "1+1",
                                  "Mats\u2019"])
def test_person_name_rejected(name: str) -> None:
    error = refused(models.QuotesPostRequest, changed(QUOTE, "payer.personalInfo.complexName.lastName", name))
    assert error.code == "3100"
    assert "payer.personalInfo.complexName.lastName " in error.description


def test_person_name_description() -> None:
    error = refused(models.QuotesPostRequest, changed(QUOTE, "payer.personalInfo.complexName.middleName", "Ma$"))
    assert error.description == ("Generic validation error - payer.personalInfo.complexName.middleName "
                                 "does not match the MiddleName pattern")


@pytest.mark.parametrize(("count", "ok"), [(1, True), (16, True), (0, False), (17, False)])
def test_extension_list_size(count: int, ok: bool) -> None:
    extensions = {"extension": [{"key": f"k{i}", "value": "v"} for i in range(count)]}
    assert transfer_ok(extensionList=extensions) is ok


@pytest.mark.parametrize(("extension", "ok"), [
    ({"key": "k" * 32, "value": "v" * 128}, True), ({"key": "k" * 33, "value": "v"}, False),
    ({"key": "k", "value": "v" * 129}, False), ({"key": "", "value": "v"}, False), ({"key": "k"}, False),
])
def test_extension(extension: dict[str, str], ok: bool) -> None:
    assert transfer_ok(extensionList={"extension": [extension]}) is ok


@pytest.mark.parametrize(("latitude", "longitude", "ok"), [
    ("0", "0", True), ("-90", "180", True), ("90.000000", "-180.0", True), ("+12.345678", "179.999999", True),
    ("90.1", "0", False), ("91", "0", False), ("0", "180.5", False), ("0", "181", False), ("1.1234567", "0", False),
    ("01", "0", False), ("", "0", False), ("0", "1e2", False),
])
def test_geo_code(latitude: str, longitude: str, ok: bool) -> None:
    raw = changed(QUOTE, "geoCode", {"latitude": latitude, "longitude": longitude})
    if ok:
        models.decode(models.QuotesPostRequest, raw)
    else:
        assert refused(models.QuotesPostRequest, raw).code == "3100"


def test_party_list_bounds() -> None:
    party = {"partyIdType": "MSISDN", "partyIdentifier": "1"}
    assert refused(models.ParticipantsPostRequest, body({"requestId": QUOTE_ID, "partyList": []})).description == \
        "Generic validation error - partyList must not be empty"
    raw = body({"requestId": QUOTE_ID, "partyList": [party] * 10001})
    assert refused(models.ParticipantsPostRequest, raw).description == \
        "Generic validation error - partyList must have at most 10000 items"
    assert len(models.decode(models.ParticipantsPostRequest,
                             body({"requestId": QUOTE_ID, "partyList": [party] * 10000})).party_list) == 10000


@pytest.mark.parametrize(("code", "ok"), [("3100", True), ("5105", True), ("0100", False), ("310", False),
                                          ("31000", False), (3100, False)])
def test_error_code(code: Any, ok: bool) -> None:
    raw = body({"errorInformation": {"errorCode": code, "errorDescription": "x"}})
    if ok:
        assert models.decode(models.ErrorInformationObject, raw).error_information.error_code == code
    else:
        assert refused(models.ErrorInformationObject, raw).code == "3100"


# ------------------------------------------------------------------------------ descriptions


@pytest.mark.parametrize(("raw", "description"), [
    (changed(MINIMAL_QUOTE, "quoteId", drop=True), "quoteId is required"),
    (changed(MINIMAL_QUOTE, "transactionId", drop=True), "transactionId is required"),
    (changed(MINIMAL_QUOTE, "amountType", drop=True), "amountType is required"),
    (changed(MINIMAL_QUOTE, "amount", drop=True), "amount is required"),
    (changed(MINIMAL_QUOTE, "amount.currency", drop=True), "amount.currency is required"),
    (changed(MINIMAL_QUOTE, "transactionType.scenario", drop=True), "transactionType.scenario is required"),
    (changed(MINIMAL_QUOTE, "transactionType.initiator", drop=True), "transactionType.initiator is required"),
    (changed(MINIMAL_QUOTE, "transactionType.initiatorType", drop=True), "transactionType.initiatorType is required"),
    (changed(MINIMAL_QUOTE, "payee.partyIdInfo.partyIdType", drop=True), "payee.partyIdInfo.partyIdType is required"),
    (changed(MINIMAL_QUOTE, "amount.amount", "5.0"), "amount.amount does not match the Amount pattern"),
    (changed(MINIMAL_QUOTE, "quoteId", "nope"), "quoteId does not match the CorrelationId pattern"),
    (changed(MINIMAL_QUOTE, "expiration", "2016-05-24T08:38:08Z"), "expiration does not match the DateTime pattern"),
    (changed(MINIMAL_QUOTE, "amount.currency", "ABC"), "amount.currency is not a valid Currency: 'ABC'"),
    (changed(MINIMAL_QUOTE, "amountType", "BOTH"), "amountType must be one of RECEIVE, SEND, not 'BOTH'"),
    (changed(MINIMAL_QUOTE, "quoteId", 5), "quoteId must be a string, not a number"),
    (changed(MINIMAL_QUOTE, "payee", []), "payee must be an object, not an array"),
    (changed(MINIMAL_QUOTE, "note", ""), "note must not be empty"),
    (changed(MINIMAL_QUOTE, "note", "x" * 129), "note must have at most 128 characters"),
    (changed(MINIMAL_QUOTE, "transactionType.balanceOfPayments", "012"),
     "transactionType.balanceOfPayments does not match the BalanceOfPayments pattern"),
])
def test_description_names_the_field(raw: bytes, description: str) -> None:
    error = refused(models.QuotesPostRequest, raw)
    assert (error.code, error.status) == ("3100", 400)
    assert error.description == f"Generic validation error - {description}"


@pytest.mark.parametrize("field", ["transferId", "payerFsp", "payeeFsp", "amount", "expiration", "ilpPacket",
                                   "condition"])
def test_transfer_required_fields(field: str) -> None:
    error = refused(models.TransfersPostRequest, changed(TRANSFER, field, drop=True))
    assert error.description == f"Generic validation error - {field} is required"


def test_description_with_list_index() -> None:
    raw = body({"requestId": QUOTE_ID, "partyList": [{"partyIdType": "MSISDN", "partyIdentifier": "1"},
                                                     {"partyIdType": "MSISDN"}]})
    assert refused(models.ParticipantsPostRequest, raw).description == \
        "Generic validation error - partyList[1].partyIdentifier is required"


def test_description_fits_128_characters() -> None:
    error = refused(models.QuotesPostRequest, changed(MINIMAL_QUOTE, "amount.currency", "X" * 1000))
    assert error.code == "3100"
    assert len(error.description) == 128
    assert error.description.endswith("...")


def test_patch_needs_completed_timestamp() -> None:
    assert refused(models.TransfersIDPatchResponse, body({"transferState": "COMMITTED"})).description == \
        "Generic validation error - completedTimestamp is required"


# ------------------------------------------------------------------------------ malformed bodies, payer


@pytest.mark.parametrize("raw", [b"", b"   ", b"\r\n"])
def test_empty_body(raw: bytes) -> None:
    error = refused(models.TransfersPostRequest, raw)
    assert (error.code, error.status) == ("3102", 400)
    assert error.description == "Missing mandatory element - the body is required"


@pytest.mark.parametrize("raw", [b"nope", b'{"transferId": }', b"{'a': 1}", b'{"a": 1,}', b"\xff\xfe", b'{"a"'])
def test_not_json(raw: bytes) -> None:
    error = refused(models.TransfersPostRequest, raw)
    assert (error.code, error.status) == ("3101", 400)
    assert error.description.startswith("Malformed syntax - ")


@pytest.mark.parametrize("raw", [b"[]", b"[{}]", b'"text"', b"5", b"null", b"true"])
def test_not_an_object(raw: bytes) -> None:
    assert refused(models.TransfersPostRequest, raw).code == "3101"


def test_quote_without_payer_is_malformed_syntax() -> None:
    error = refused(models.QuotesPostRequest, changed(MINIMAL_QUOTE, "payer", drop=True))
    assert (error.code, error.status) == ("3101", 400)
    assert "payer" in error.description


def test_quote_with_a_broken_payer_is_a_validation_error() -> None:
    error = refused(models.QuotesPostRequest, changed(MINIMAL_QUOTE, "payer.partyIdInfo", drop=True))
    assert error.description == "Generic validation error - payer.partyIdInfo is required"


def test_payer_rule_is_only_for_quotes() -> None:
    raw = body({"requestId": QUOTE_ID})
    assert refused(models.ParticipantsPostRequest, raw).code == "3100"


def test_error_descriptions_stay_within_the_specification_limit() -> None:
    """Details such as a network error's text can be long; errorDescription is 1..128 characters."""
    from miniloop.fspiop.errors import FspiopError

    error = FspiopError("1001", "x" * 300)
    assert len(error.description) == 128
    assert error.description.startswith("Destination communication error - xxx")
