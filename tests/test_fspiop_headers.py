"""Unit tests of miniloop.fspiop.headers: the FSPIOP header rules, their order, dates, tracing."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from miniloop.fspiop import headers
from miniloop.fspiop.errors import FspiopError
from sanic.compat import Header

QUOTES = "application/vnd.interoperability.quotes+json"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACEPARENT_RE = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
VERSION_EXTENSIONS = [{"key": "1", "value": "0"}, {"key": "1", "value": "1"}]


def request_headers(**changes: str | None) -> dict[str, str]:
    """Valid headers of a POST /quotes; `changes` sets (or, with None, removes) some of them."""
    values: dict[str, str | None] = {
        "Accept": f"{QUOTES};version=1",
        "Content-Type": f"{QUOTES};version=1.1",
        "Date": headers.imf_date(),
        "FSPIOP-Source": "payerfsp",
        "FSPIOP-Destination": "payeefsp",
    }
    values.update({name.replace("_", "-"): value for name, value in changes.items()})
    return {name: value for name, value in values.items() if value is not None}


def check(method: str = "POST", resource: str = "quotes", destination_required: bool = True,
          **changes: str | None) -> headers.Checked:
    return headers.check(method, resource, request_headers(**changes), destination_required=destination_required)


def refused(method: str = "POST", resource: str = "quotes", destination_required: bool = True,
            **changes: str | None) -> FspiopError:
    with pytest.raises(FspiopError) as caught:
        check(method, resource, destination_required, **changes)
    return caught.value


# ------------------------------------------------------------------------------ a valid request


def test_valid_request() -> None:
    checked = check()
    assert checked == headers.Checked(
        resource="quotes", source="payerfsp", destination="payeefsp", content_version="1.1",
        forwarded={name.lower(): value for name, value in request_headers().items()},
    )


def test_names_are_case_insensitive_and_forwarded_keeps_values_as_received() -> None:
    sent = {
        "ACCEPT": f"{QUOTES};version=1", "content-TYPE": f"{QUOTES};version=1.0", "date": headers.imf_date(),
        "Fspiop-Source": "payerfsp", "FSPIOP-DESTINATION": "payeefsp", "FSPIOP-Signature": '{"signature":"x"}',
        "FSPIOP-URI": "/quotes", "FSPIOP-HTTP-Method": "POST", "FSPIOP-Encryption": "e", "Traceparent": TRACEPARENT,
        "tracestate": "vendor=1", "X-Forwarded-For": "10.0.0.1, 10.0.0.2",
        "Host": "hub:3000", "Content-Length": "10", "User-Agent": "test",
    }
    checked = headers.check("POST", "quotes", sent, destination_required=True)
    assert checked.content_version == "1.0"
    assert checked.forwarded == {name.lower(): value for name, value in sent.items()
                                 if name.lower() not in ("host", "content-length", "user-agent")}


def test_sanic_header_multidict() -> None:
    checked = headers.check("POST", "quotes", Header(request_headers()), destination_required=True)
    assert checked.source == "payerfsp"


def test_unknown_resource_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        check(resource="widgets")


def test_constants() -> None:
    assert headers.SUPPORTED_VERSIONS == ("1.0", "1.1")
    assert set(headers.RESOURCES) == {
        "participants", "parties", "quotes", "transfers", "bulkQuotes", "bulkTransfers",
        "transactionRequests", "authorizations", "transactions"}


# ------------------------------------------------------------------------------ the order of the rules


def test_rules_apply_in_order() -> None:
    """Break every header; fix them one at a time: each fix reveals the next rule."""
    broken = {"Accept": "text/html", "Content-Type": "application/json", "Date": "yesterday",
              "FSPIOP-Source": "{curly}", "FSPIOP-Destination": None}
    expected = [("Accept", "3101", "accept"), ("Content-Type", "3101", "content-type"),
                ("Date", "3101", "date"), ("FSPIOP-Source", "3101", "fspiop-source"),
                ("FSPIOP-Destination", "3102", "fspiop-destination")]
    for name, code, named in expected:
        error = refused(**broken)
        assert (error.code, error.status) == (code, 400)
        assert named in error.description
        broken.pop(name)
    check(**broken)


def test_missing_headers_in_order() -> None:
    missing = {name: None for name in ("Accept", "Content-Type", "Date", "FSPIOP-Source", "FSPIOP-Destination")}
    for name in list(missing):
        error = refused(**missing)
        assert error.code == "3102"
        assert name.lower() in error.description.lower()
        missing.pop(name)


def test_accept_version_is_checked_before_content_type() -> None:
    error = refused(Accept=f"{QUOTES};version=2", Content_Type=None)
    assert (error.status, error.code) == (406, "3001")


# ------------------------------------------------------------------------------ Accept


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "get"])
def test_accept_required_on_get_post_delete(method: str) -> None:
    error = refused(method, Accept=None)
    assert (error.status, error.code) == (400, "3102")
    assert error.description == "Missing mandatory element - Accept is required"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_accept_not_required_on_put_patch(method: str) -> None:
    assert check(method, Accept=None).source == "payerfsp"


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_accept_ignored_on_put_patch(method: str) -> None:
    """HTTP clients add `Accept: */*` by themselves; a callback must not be refused for it."""
    assert check(method, Accept="*/*").source == "payerfsp"


def test_empty_accept_is_missing() -> None:
    assert refused(Accept=" ").code == "3102"


@pytest.mark.parametrize("accept", [
    QUOTES,
    f"{QUOTES};version=1",
    f"{QUOTES};version=1.0",
    f"{QUOTES};version=1.1",
    f"{QUOTES} ; version=1",
    f"{QUOTES};version=2, {QUOTES};version=1",
    f"{QUOTES};version=2,{QUOTES}",
    f"{QUOTES};version=1, {QUOTES}",
    "APPLICATION/VND.INTEROPERABILITY.QUOTES+JSON;VERSION=1",
])
def test_accept_valid(accept: str) -> None:
    check(Accept=accept)


@pytest.mark.parametrize("accept", [
    "application/json",
    "*/*",
    "application/vnd.interoperability.transfers+json;version=1",
    f"{QUOTES};version=",
    f"{QUOTES};version=one",
    f"{QUOTES};version=1.",
    f"{QUOTES};charset=utf-8",
    "application/vnd.interoperability.quotes+xml;version=1",
    f"{QUOTES};version=1, application/json",
    f"{QUOTES};version=1,",
])
def test_accept_malformed(accept: str) -> None:
    error = refused(Accept=accept)
    assert (error.status, error.code) == (400, "3101")
    assert error.description == "Malformed syntax - Invalid accept header"


@pytest.mark.parametrize("accept", [
    f"{QUOTES};version=2",
    f"{QUOTES};version=2.0",
    f"{QUOTES};version=1.2",
    f"{QUOTES};version=0",
    f"{QUOTES};version=2, {QUOTES};version=3.1",
])
def test_accept_unsupported_version_is_406_with_the_supported_versions(accept: str) -> None:
    error = refused(Accept=accept)
    assert (error.status, error.code) == (406, "3001")
    assert error.description.startswith("Unacceptable version requested - ")
    assert error.body()["errorInformation"]["extensionList"] == {"extension": VERSION_EXTENSIONS}
    assert len(error.description) <= 128


# ------------------------------------------------------------------------------ Content-Type


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_content_type_required_with_a_body(method: str) -> None:
    error = refused(method, Content_Type=None)
    assert (error.status, error.code) == (400, "3102")
    assert error.description == "Missing mandatory element - content-type is required"


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_content_type_optional_without_a_body(method: str) -> None:
    assert check(method, Content_Type=None).content_version is None


@pytest.mark.parametrize("content_type", [
    "application/json",
    "application/xml",
    QUOTES,
    f"{QUOTES};version=1",
    f"{QUOTES};version=1.1, {QUOTES};version=1.0",
    f"{QUOTES};version=1.1;charset=utf-8",
    "application/vnd.interoperability.transfers+json;version=1.1",
])
def test_content_type_malformed(content_type: str) -> None:
    error = refused(Content_Type=content_type)
    assert (error.status, error.code) == (400, "3101")
    assert error.description == "Malformed syntax - Invalid content-type header"


def test_content_type_checked_on_get_when_present() -> None:
    assert refused("GET", Content_Type="application/json").code == "3101"


@pytest.mark.parametrize("version", ["2.0", "1.2", "0.9"])
def test_content_type_unsupported_version(version: str) -> None:
    error = refused(Content_Type=f"{QUOTES};version={version}")
    assert (error.status, error.code) == (406, "3001")
    assert "content-type" in error.description
    assert error.body()["errorInformation"]["extensionList"] == {"extension": VERSION_EXTENSIONS}
    assert len(error.description) <= 128


@pytest.mark.parametrize(("content_type", "version"), [
    (f"{QUOTES};version=1.0", "1.0"), (f"{QUOTES};version=1.1", "1.1"), (f"{QUOTES} ;version=1.1", "1.1")])
def test_content_version(content_type: str, version: str) -> None:
    assert check(Content_Type=content_type).content_version == version


# ------------------------------------------------------------------------------ Date


def test_date_required() -> None:
    error = refused(Date=None)
    assert (error.status, error.code) == (400, "3102")
    assert error.description == "Missing mandatory element - date is required"


@pytest.mark.parametrize("date", [
    "Sun, 06 Nov 1994 08:49:37 GMT",
    "Thu, 29 Feb 2024 23:59:59 GMT",
    "Sat, 31 Dec 2016 23:59:60 GMT",  # a leap second
])
def test_date_valid(date: str) -> None:
    check(Date=date)


@pytest.mark.parametrize("date", [
    "2024-01-01T00:00:00.000Z",
    "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850, obsolete
    "Sun Nov  6 08:49:37 1994",  # asctime, obsolete
    "Sun, 6 Nov 1994 08:49:37 GMT",
    "Mon, 06 Nov 1994 08:49:37 GMT",  # 6 Nov 1994 was a Sunday
    "Sun, 06 Nov 1994 08:49:37 UTC",
    "Sun, 06 Nov 1994 08:49:37 +0000",
    "sun, 06 nov 1994 08:49:37 GMT",
    "Fri, 29 Feb 2023 10:00:00 GMT",
    "Sun, 06 Nov 1994 24:00:00 GMT",
    "Sun, 06 Nov 1994 08:61:00 GMT",
    "So, 06 Nov 1994 08:49:37 GMT",
])
def test_date_malformed(date: str) -> None:
    error = refused(Date=date)
    assert (error.status, error.code) == (400, "3101")
    assert error.description == "Malformed syntax - Invalid date header"


# ------------------------------------------------------------------------------ FSPIOP-Source / Destination


@pytest.mark.parametrize("source", [None, "", "   "])
def test_source_required(source: str | None) -> None:
    error = refused(FSPIOP_Source=source)
    assert (error.status, error.code) == (400, "3102")
    assert error.description == "Missing mandatory element - fspiop-source is required"


@pytest.mark.parametrize("source", ["{curly}", "payer fsp", "payer.fsp", "x" * 33, "dfsp/1", "dfsp\u00e9"])
def test_source_malformed(source: str) -> None:
    error = refused(FSPIOP_Source=source)
    assert (error.status, error.code) == (400, "3101")
    assert error.description == "Malformed syntax - Invalid fspiop-source header"


@pytest.mark.parametrize("source", ["Hub", "dfsp_1-a", "x" * 32, "a"])
def test_source_valid(source: str) -> None:
    assert check(FSPIOP_Source=source).source == source


@pytest.mark.parametrize("destination", [None, ""])
def test_destination_required(destination: str | None) -> None:
    error = refused(FSPIOP_Destination=destination)
    assert (error.status, error.code) == (400, "3102")
    assert error.description == "Missing mandatory element - fspiop-destination is required"


def test_destination_optional_when_not_required() -> None:
    checked = check("GET", "parties", destination_required=False, FSPIOP_Destination=None,
                    Accept="application/vnd.interoperability.parties+json;version=1", Content_Type=None)
    assert checked.destination is None
    assert checked.resource == "parties"


def test_destination_kept_when_not_required() -> None:
    assert check(destination_required=False).destination == "payeefsp"


def test_destination_malformed() -> None:
    error = refused(FSPIOP_Destination="{curly}")
    assert (error.status, error.code) == (400, "3101")
    assert "fspiop-destination" in error.description


# ------------------------------------------------------------------------------ media types and dates


def test_media_type() -> None:
    assert headers.media_type("transfers", "1.1") == "application/vnd.interoperability.transfers+json;version=1.1"
    assert headers.media_type("bulkQuotes", "1") == "application/vnd.interoperability.bulkQuotes+json;version=1"
    with pytest.raises(ValueError):
        headers.media_type("widgets", "1.1")


@pytest.mark.parametrize(("moment", "text"), [
    (datetime(1994, 11, 6, 8, 49, 37, tzinfo=timezone.utc), "Sun, 06 Nov 1994 08:49:37 GMT"),
    (datetime(1994, 11, 6, 8, 49, 37, 999999, tzinfo=timezone.utc), "Sun, 06 Nov 1994 08:49:37 GMT"),
    (datetime(1994, 11, 6, 10, 49, 37, tzinfo=timezone(timedelta(hours=2))), "Sun, 06 Nov 1994 08:49:37 GMT"),
    (datetime(1994, 11, 6, 8, 49, 37), "Sun, 06 Nov 1994 08:49:37 GMT"),  # naive = UTC
    (datetime(2024, 2, 29, 0, 0, 0, tzinfo=timezone.utc), "Thu, 29 Feb 2024 00:00:00 GMT"),
    (datetime(2025, 1, 1, 23, 30, tzinfo=timezone(timedelta(hours=-1))), "Thu, 02 Jan 2025 00:30:00 GMT"),
])
def test_imf_date(moment: datetime, text: str) -> None:
    assert headers.imf_date(moment) == text


def test_imf_date_now_is_accepted_by_check() -> None:
    now = headers.imf_date()
    assert re.fullmatch(r"[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT", now)
    check(Date=now)


def test_imf_date_of_a_fixed_moment() -> None:
    """English day and month names whatever the process locale (the names are not strftime's)."""
    assert headers.imf_date(datetime(2024, 3, 7, tzinfo=timezone.utc)) == "Thu, 07 Mar 2024 00:00:00 GMT"


# ------------------------------------------------------------------------------ hub headers


@pytest.mark.parametrize("method", ["GET", "POST", "post"])
def test_hub_headers_with_accept(method: str) -> None:
    sent = headers.hub_headers("transfers", "1.1", destination="payerfsp", method=method, uri="/transfers/1")
    assert sent.pop("Date")
    assert sent == {
        "Content-Type": "application/vnd.interoperability.transfers+json;version=1.1",
        "Accept": "application/vnd.interoperability.transfers+json;version=1",
        "FSPIOP-Source": "Hub",
        "FSPIOP-Destination": "payerfsp",
        "FSPIOP-URI": "/transfers/1",
        "FSPIOP-HTTP-Method": method.upper(),
    }


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_message_headers_without_accept(method: str) -> None:
    sent = headers.message_headers("quotes", "1.0", destination="payerfsp", method=method, uri="/quotes/1/error",
                                   traceparent=TRACEPARENT, tracestate="a=1", source="switch")
    assert "Accept" not in sent
    assert sent["Content-Type"] == f"{QUOTES};version=1.0"
    assert (sent["FSPIOP-Source"], sent["FSPIOP-HTTP-Method"]) == ("switch", method)
    assert (sent["traceparent"], sent["tracestate"]) == (TRACEPARENT, "a=1")


def test_message_headers_without_destination() -> None:
    """GET /parties: the sender does not know who serves the party; the hub fills it in."""
    sent = headers.message_headers("parties", "1.1", source="payerfsp", destination=None, method="GET",
                                   uri="/parties/MSISDN/1")
    assert "FSPIOP-Destination" not in sent
    assert sent["Accept"] == "application/vnd.interoperability.parties+json;version=1"


def test_hub_headers_pass_the_header_checks() -> None:
    sent = headers.hub_headers("transfers", "1.1", destination="payerfsp", method="POST", uri="/transfers")
    checked = headers.check("POST", "transfers", sent, destination_required=True)
    assert (checked.source, checked.destination, checked.content_version) == ("Hub", "payerfsp", "1.1")


def test_hub_headers_omit_absent_tracing() -> None:
    sent = headers.hub_headers("transfers", "1.1", destination="p", method="PUT", uri="/transfers/1")
    assert "traceparent" not in sent and "tracestate" not in sent


# ------------------------------------------------------------------------------ trace context


def test_new_traceparent() -> None:
    first, second = headers.new_traceparent(), headers.new_traceparent()
    assert TRACEPARENT_RE.fullmatch(first) and TRACEPARENT_RE.fullmatch(second)
    assert first.split("-")[1] != second.split("-")[1]


def test_child_keeps_the_trace_and_flags_with_a_new_span() -> None:
    child = headers.child_traceparent(TRACEPARENT)
    version, trace_id, span_id, flags = child.split("-")
    assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "01")
    assert span_id != "b7ad6b7169203331"
    assert headers.child_traceparent(TRACEPARENT.replace("-01", "-00")).endswith("-00")


def test_child_of_a_future_version_keeps_the_trace() -> None:
    child = headers.child_traceparent("cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-ever")
    assert child.startswith("00-0af7651916cd43dd8448eb211c80319c-")


@pytest.mark.parametrize("parent", [
    None, "", "garbage",
    TRACEPARENT.upper(),
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    TRACEPARENT + "-extra",
    "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",
])
def test_child_of_a_bad_parent_starts_a_new_trace(parent: str | None) -> None:
    child = headers.child_traceparent(parent)
    assert TRACEPARENT_RE.fullmatch(child)
    assert "0af7651916cd43dd8448eb211c80319c" not in child
