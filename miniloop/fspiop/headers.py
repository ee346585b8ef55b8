"""The FSPIOP header rules: what a request must carry, and what the hub's own messages carry.

Why a module of its own: every FSPIOP request passes these checks before anything else happens,
and the order matters, because a DFSP sees only the first failure and Mojaloop's own test
collections expect that one (Accept, then Content-Type, Date, FSPIOP-Source, FSPIOP-Destination).
The checks are pure: the participant registry is the caller's business, so this runs and is
tested without a hub.

Header names are case-insensitive on the wire; every lookup here is on lowercase names, and
error descriptions name the header in lowercase, as Mojaloop's do.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache, lru_cache

from miniloop.fspiop.errors import FspiopError

SUPPORTED_VERSIONS = ("1.0", "1.1")
RESOURCES = (
    "participants", "parties", "quotes", "transfers", "bulkQuotes", "bulkTransfers",
    "transactionRequests", "authorizations", "transactions",
)
# The Third-party API v1.0 (docs/thirdparty.md) on the same port: its resources, the one version it
# has, and the media type Mojaloop's third-party SDKs send for all of them,
# `application/vnd.interoperability.thirdparty+json;version=1.0`. The FSPIOP-style name of the
# resource (`...consentRequests+json`) is accepted too; the hub's own messages use `thirdparty`.
THIRDPARTY_RESOURCES = ("accounts", "consentRequests", "consents", "thirdpartyRequests", "services")
THIRDPARTY_VERSIONS = ("1.0",)
THIRDPARTY_MEDIA = "thirdparty"
# Headers a forwarded message keeps unchanged, so that an end-to-end signature still verifies.
FORWARDED = (
    "accept", "content-type", "date", "fspiop-source", "fspiop-destination", "fspiop-signature",
    "fspiop-uri", "fspiop-http-method", "fspiop-encryption", "traceparent", "tracestate",
    "x-forwarded-for",
)
# Versions a client may name in Accept: the major alone means any minor of it.
_ACCEPTED = frozenset(SUPPORTED_VERSIONS) | {v.split(".")[0] for v in SUPPORTED_VERSIONS}
# 406 answers list what is supported, one {key: major, value: minor} pair per version.
_VERSION_EXTENSIONS = [
    {"key": major, "value": minor} for major, minor in (v.split(".") for v in SUPPORTED_VERSIONS)
]
_TP_ACCEPTED = frozenset(THIRDPARTY_VERSIONS) | {v.split(".")[0] for v in THIRDPARTY_VERSIONS}
_TP_VERSION_EXTENSIONS = [
    {"key": major, "value": minor} for major, minor in (v.split(".") for v in THIRDPARTY_VERSIONS)
]
_NEEDS_ACCEPT = frozenset({"GET", "POST", "DELETE"})
_HAS_BODY = frozenset({"POST", "PUT", "PATCH"})
_FSP_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_IMF_FIXDATE = re.compile(
    rf"({'|'.join(_DAYS)}), ([0-9]{{2}}) ({'|'.join(_MONTHS)}) ([0-9]{{4}}) "
    r"([0-9]{2}):([0-9]{2}):([0-5][0-9]|60) GMT"
)
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


@dataclass(frozen=True, slots=True)
class Checked:
    """What `check` learnt from a request's headers."""

    resource: str
    source: str
    destination: str | None
    content_version: str | None  # "1.0"/"1.1" from Content-Type; None when there is none
    forwarded: dict[str, str]  # lowercase name -> value as received, for FORWARDED headers


def check(method: str, resource: str, headers: Mapping[str, str], *, destination_required: bool) -> Checked:
    """Apply the FSPIOP header rules in order; raise FspiopError for the first one broken."""
    if resource not in RESOURCES and resource not in THIRDPARTY_RESOURCES:
        raise ValueError(f"unknown FSPIOP resource {resource!r}")
    method = method.upper()
    lower = {name.lower(): value for name, value in headers.items()}

    # Accept belongs to requests that expect an answer; on a callback (PUT/PATCH) it means
    # nothing, and HTTP clients add `Accept: */*` on their own, so it is not looked at there.
    accept = _value(lower, "accept")
    if method in _NEEDS_ACCEPT:
        if accept is None:
            raise FspiopError("3102", "Accept is required")
        _check_accept(resource, accept)

    content_type = _value(lower, "content-type")
    content_version = None
    if content_type is None:
        if method in _HAS_BODY:
            raise FspiopError("3102", "content-type is required")
    else:
        content_version = _content_version(resource, content_type)

    date = _value(lower, "date")
    if date is None:
        raise FspiopError("3102", "date is required")
    if _parse_imf_date(date) is None:
        raise FspiopError("3101", "Invalid date header")

    source = _value(lower, "fspiop-source")
    if source is None:
        raise FspiopError("3102", "fspiop-source is required")
    if not _FSP_ID.fullmatch(source):
        raise FspiopError("3101", "Invalid fspiop-source header")

    destination = _value(lower, "fspiop-destination")
    if destination is None:
        if destination_required:
            raise FspiopError("3102", "fspiop-destination is required")
    elif not _FSP_ID.fullmatch(destination):
        raise FspiopError("3101", "Invalid fspiop-destination header")

    forwarded = {name: lower[name] for name in FORWARDED if name in lower}
    return Checked(resource, source, destination, content_version, forwarded)


def _value(lower: Mapping[str, str], name: str) -> str | None:
    """A header's value without surrounding spaces; None when absent or empty."""
    value = (lower.get(name) or "").strip()
    return value or None


def _media_name(resource: str) -> str:
    """The name part of the resource's media type, as a pattern: a third-party resource's own
    name or `thirdparty`."""
    if resource in THIRDPARTY_RESOURCES:
        return f"(?:{THIRDPARTY_MEDIA}|{re.escape(resource)})"
    return re.escape(resource)


@cache
def _accept_re(resource: str) -> re.Pattern[str]:
    """One item of an Accept list: the media type, optionally with `version=N` or `N.N`."""
    return re.compile(
        rf"application/vnd\.interoperability\.{_media_name(resource)}\+json"
        r"(?:\s*;\s*version=([0-9]+(?:\.[0-9]+)?))?", re.IGNORECASE)


@cache
def _content_type_re(resource: str) -> re.Pattern[str]:
    """A Content-Type: the media type with a mandatory `version=N.N`."""
    return re.compile(
        rf"application/vnd\.interoperability\.{_media_name(resource)}\+json"
        r"\s*;\s*version=([0-9]+\.[0-9]+)", re.IGNORECASE)


@lru_cache(maxsize=256)  # DFSPs send the same few values over and over; refusals are not kept
def _check_accept(resource: str, accept: str) -> None:
    """Accept: a comma-separated list of media types; at least one version must be supported."""
    pattern = _accept_re(resource)
    thirdparty = resource in THIRDPARTY_RESOURCES
    supported = _TP_ACCEPTED if thirdparty else _ACCEPTED
    versions = []
    for item in accept.split(","):
        match = pattern.fullmatch(item.strip())
        if match is None:
            raise FspiopError("3101", "Invalid accept header")
        versions.append(match[1])
    if not any(version is None or version in supported for version in versions):
        raise FspiopError(
            "3001", "The Client requested an unsupported version, see extension list for supported version(s).",
            extensions=[dict(pair) for pair in (_TP_VERSION_EXTENSIONS if thirdparty else _VERSION_EXTENSIONS)],
        )


@lru_cache(maxsize=256)
def _content_version(resource: str, content_type: str) -> str:
    """Content-Type: one media type with a major.minor version the hub speaks."""
    match = _content_type_re(resource).fullmatch(content_type)
    if match is None:
        raise FspiopError("3101", "Invalid content-type header")
    thirdparty = resource in THIRDPARTY_RESOURCES
    if match[1] not in (THIRDPARTY_VERSIONS if thirdparty else SUPPORTED_VERSIONS):
        raise FspiopError(
            "3001", "Client supplied a protocol version which is not supported by the server (content-type)",
            extensions=[dict(pair) for pair in (_TP_VERSION_EXTENSIONS if thirdparty else _VERSION_EXTENSIONS)],
        )
    return match[1]


@lru_cache(maxsize=64)  # every request of the same second carries the same Date
def _parse_imf_date(value: str) -> datetime | None:
    """An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) as an aware datetime; None if it is not one."""
    match = _IMF_FIXDATE.fullmatch(value)
    if match is None:
        return None
    day_name, day, month, year, hour, minute, second = match.groups()
    try:
        # ":60" (a leap second) is legal in the format; datetime has no room for it
        parsed = datetime(int(year), _MONTHS.index(month) + 1, int(day), int(hour), int(minute),
                          min(int(second), 59), tzinfo=timezone.utc)
    except ValueError:  # 31 Feb, hour 24 ...
        return None
    return parsed if _DAYS[parsed.weekday()] == day_name else None


def media_type(resource: str, version: str) -> str:
    """The versioned FSPIOP media type, e.g. `application/vnd.interoperability.transfers+json;version=1.1`
    (`...thirdparty+json;version=1.0` for every resource of the Third-party API)."""
    if resource in THIRDPARTY_RESOURCES:
        return f"application/vnd.interoperability.{THIRDPARTY_MEDIA}+json;version={version}"
    if resource not in RESOURCES:
        raise ValueError(f"unknown FSPIOP resource {resource!r}")
    return f"application/vnd.interoperability.{resource}+json;version={version}"


def imf_date(now: datetime | None = None) -> str:
    """The HTTP Date format (RFC 7231 IMF-fixdate), always GMT, English names whatever the locale.

    A naive `now` is taken to be UTC.
    """
    if now is None:
        now = datetime.now(timezone.utc)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    now = now.astimezone(timezone.utc)
    return (f"{_DAYS[now.weekday()]}, {now.day:02d} {_MONTHS[now.month - 1]} {now.year:04d} "
            f"{now.hour:02d}:{now.minute:02d}:{now.second:02d} GMT")


def message_headers(resource: str, version: str, *, source: str, destination: str | None, method: str,
                    uri: str, traceparent: str | None = None, tracestate: str | None = None) -> dict[str, str]:
    """The headers an FSPIOP message carries when its sender writes it (not when it is forwarded).

    FSPIOP-URI and FSPIOP-HTTP-Method describe this message itself; Accept is sent where the API
    requires it (GET, POST, DELETE), with the major version; FSPIOP-Destination whenever the
    sender knows it (everywhere but GET /parties).
    """
    method = method.upper()
    headers = {
        "Content-Type": media_type(resource, version),
        "Date": imf_date(),
        "FSPIOP-Source": source,
        "FSPIOP-URI": uri,
        "FSPIOP-HTTP-Method": method,
    }
    if destination:
        headers["FSPIOP-Destination"] = destination
    if method in _NEEDS_ACCEPT:
        headers["Accept"] = media_type(resource, version.split(".")[0])
    if traceparent:
        headers["traceparent"] = traceparent
    if tracestate:
        headers["tracestate"] = tracestate
    return headers


def hub_headers(resource: str, version: str, *, destination: str, method: str, uri: str,
                traceparent: str | None = None, tracestate: str | None = None) -> dict[str, str]:
    """Headers of a message the hub itself originates (an error, a PATCH, a GET /transfers answer)."""
    return message_headers(resource, version, source="Hub", destination=destination, method=method, uri=uri,
                           traceparent=traceparent, tracestate=tracestate)


def new_traceparent() -> str:
    """A W3C trace context `traceparent` starting a new trace (sampled)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_traceparent(parent: str | None) -> str:
    """The `traceparent` of a message caused by `parent`: same trace id and flags, a new span id.

    A missing or malformed parent starts a new trace rather than propagating garbage.
    """
    match = _TRACEPARENT.fullmatch(parent.strip()) if parent else None
    if match is None:
        return new_traceparent()
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == "0" * 32 or span_id == "0" * 16:
        return new_traceparent()
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"
