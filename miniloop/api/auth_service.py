"""The auth-service's routes (participant centralAuth), under /authService on the ALS admin port.

These are the `TP_CB_URL_*` endpoints centralAuth registers: the switch delivers here what DFSPs
send with FSPIOP-Destination centralAuth, with the headers they sent, as it delivers to any
participant. Like Mojaloop's auth-service (and any FSPIOP server), a route checks the headers
and the body, answers 400 with an errorInformation body when they are malformed, and otherwise
records the message and answers 202 (POST, DELETE) or 200 (PUT, PATCH); the outcome reaches the
DFSP as a message from centralAuth (miniloop.services.auth_service).
"""

from __future__ import annotations

import re

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty

from miniloop.api.fspiop import body_hash
from miniloop.fspiop import headers, models
from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.thirdparty_models import (
    ConsentsIDPatchRequest,
    ConsentsPostRequest,
    ThirdpartyRequestsVerificationsPostRequest,
)
from miniloop.services.auth_service import VERSION, AuthService
from miniloop.services.outbox import Inbound

PREFIX = "/authService"
_CORRELATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def auth_service_blueprint(service: AuthService) -> Blueprint:
    bp = Blueprint("auth_service", url_prefix=PREFIX)

    def inbound(request: Request, resource: str) -> Inbound:
        """The FSPIOP header checks, then what the service keeps of the message. FSPIOP-Destination
        is not required: the switch already routed the message by it (and a DELETE sent on to the
        consent's holder may still name the consent's DFSP)."""
        checked = headers.check(request.method, resource, request.headers, destination_required=False)
        raw = request.body or b""
        path = request.path.removeprefix(PREFIX)
        return Inbound(checked.source, checked.destination, checked.content_version or VERSION, path,
                       checked.forwarded, raw, body_hash(raw) if raw else "")

    def correlation_id(value: str) -> str:
        """A path {ID}: a consentId or verificationRequestId is a CorrelationId (a UUID)."""
        if not _CORRELATION_ID.fullmatch(value):
            raise FspiopError("3101", f"{value[:40]} is not a CorrelationId")
        return value

    @bp.post("/consents")
    async def post_consent(request: Request) -> HTTPResponse:
        msg = inbound(request, "consents")
        body = models.decode(ConsentsPostRequest, msg.body)
        if body.credential is None:  # the PISP's form of POST /consents: not for the auth-service
            raise FspiopError("3102", "credential is required")
        if body.credential.status != "PENDING":
            raise FspiopError("3100", "credential.status must be PENDING")
        await service.register_consent(msg, body)
        return empty(202)

    @bp.delete("/consents/<consent_id>")
    async def delete_consent(request: Request, consent_id: str) -> HTTPResponse:
        msg = inbound(request, "consents")
        await service.revoke(msg, correlation_id(consent_id), None)
        return empty(202)

    @bp.patch("/consents/<consent_id>")
    async def patch_consent(request: Request, consent_id: str) -> HTTPResponse:
        msg = inbound(request, "consents")
        patch = models.decode(ConsentsIDPatchRequest, msg.body)
        if patch.status != "REVOKED":  # {credential: {status: VERIFIED}} is for PISPs
            raise FspiopError("3100", "status must be REVOKED")
        await service.revoke(msg, correlation_id(consent_id), patch)
        return empty(200)

    @bp.put("/consents/<consent_id>")
    async def put_consent(request: Request, consent_id: str) -> HTTPResponse:
        inbound(request, "consents")  # nothing centralAuth waits for
        return empty(200)

    @bp.put("/consents/<consent_id>/error")
    async def put_consent_error(request: Request, consent_id: str) -> HTTPResponse:
        msg = inbound(request, "consents")
        models.decode(models.ErrorInformationObject, msg.body)
        await service.error_received(msg, "consent", correlation_id(consent_id))
        return empty(200)

    @bp.post("/thirdpartyRequests/verifications")
    async def post_verification(request: Request) -> HTTPResponse:
        msg = inbound(request, "thirdpartyRequests")
        await service.verify(msg, models.decode(ThirdpartyRequestsVerificationsPostRequest, msg.body))
        return empty(202)

    @bp.put("/thirdpartyRequests/verifications/<request_id>")
    async def put_verification(request: Request, request_id: str) -> HTTPResponse:
        inbound(request, "thirdpartyRequests")
        return empty(200)

    @bp.put("/thirdpartyRequests/verifications/<request_id>/error")
    async def put_verification_error(request: Request, request_id: str) -> HTTPResponse:
        msg = inbound(request, "thirdpartyRequests")
        models.decode(models.ErrorInformationObject, msg.body)
        await service.error_received(msg, "verification", correlation_id(request_id))
        return empty(200)

    return bp
