"""The Third-party API (PISP) v1.0 on the sim port: which side handles a message, and what both share.

Why: the simulated PISP (mobile_sim.pisp) and the simulated DFSPs' third-party side
(mobile_sim.tpdfsp) receive the same resources (/accounts, /consentRequests, /consents,
/thirdpartyRequests/..., /services) under their own prefix, forwarded by the hub like any
FSPIOP message. `handle` sends each message to the side of the participant it was addressed to
(a participant of kind "pisp" in the hub file is the PISP, any other simulated one a DFSP).

Shared here:
- `Mailboxes`: a queue per running flow, for flows that receive several messages about one id in
  an order the network may shuffle (a PISP's payment hears PUT RECEIVED, POST authorizations
  and PATCH or /error about one transactionRequestId). Request/callback pairs use the
  simulators' Waiters as /send does. Both are bounded.
- `error`: an errorInformation body that also knows the Third-party API's 6xxx codes.
- id and text checks the two sides use.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from miniloop.fspiop.errors import ERROR_CODES
from mobile_sim import bodies

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

log = logging.getLogger(__name__)

# the path's first segment of every Third-party API resource the simulators receive
RESOURCES = ("accounts", "consentRequests", "consents", "thirdpartyRequests", "services")
TP_KINDS = ("transactions", "authorizations", "verifications")  # /thirdpartyRequests/<kind>
AUTH_SERVICE = "centralAuth"  # the hub-hosted auth-service's participant name
MAILBOXES_MAX = 2000  # flows with a mailbox open at once
MAILBOX_DEPTH = 50  # messages queued for one flow
CORRELATION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

# The Third-party API's own error codes (its data model, §3.3), next to FSPIOP's.
TP_ERRORS = {
    "6000": "Third party error",
    "6001": "Third party request error",
    "6003": "Downstream Failure",
    "6100": "Authentication rejection",
    "6101": "Unsupported scopes were requested",
    "6102": "Consent not granted",
    "6103": "Consent not valid",
    "6104": "Third Party request rejection",
    "6200": "Invalid Consent Credential",
    "6201": "Invalid transaction signature",
    "6203": "Invalid authentication token",
    "6204": "Bad callbackUri",
    "6205": "No accounts found",
}


def error(code: str, detail: str | None = None) -> dict[str, Any]:
    """An ErrorInformationObject for an FSPIOP or a Third-party (6xxx) code."""
    if code in ERROR_CODES or code not in TP_ERRORS:
        return bodies.error(code if code in ERROR_CODES else "2001", detail)
    text = f"{TP_ERRORS[code]} - {detail}" if detail else TP_ERRORS[code]
    return {"errorInformation": {"errorCode": code, "errorDescription": text[:128]}}


def resource_of(path: str) -> tuple[str, tuple[str, ...]]:
    """The resource and the ids of a Third-party path: /thirdpartyRequests/transactions/ID ->
    ("thirdpartyRequests/transactions", ("ID",)); /consents/ID/error -> ("consents", ("ID",))."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if parts and parts[-1] == "error":
        parts = parts[:-1]
    if len(parts) >= 2 and parts[0] == "thirdpartyRequests":
        return f"{parts[0]}/{parts[1]}", tuple(parts[2:])
    return (parts[0] if parts else ""), tuple(parts[1:])


def correlation_id(value: Any) -> bool:
    return isinstance(value, str) and CORRELATION_ID.fullmatch(value) is not None


class Mailboxes:
    """A bounded queue per running flow, by key; messages for a key nobody holds are not queued."""

    def __init__(self, limit: int = MAILBOXES_MAX) -> None:
        self.limit = limit
        self._boxes: dict[Hashable, asyncio.Queue[Any]] = {}

    def open(self, *keys: Hashable) -> asyncio.Queue[Any] | None:
        """One queue that receives the messages of every key given; None when too many are open."""
        if len(self._boxes) + len(keys) > self.limit:
            return None
        queue: asyncio.Queue[Any] = asyncio.Queue(MAILBOX_DEPTH)
        for key in keys:
            self._boxes[key] = queue
        return queue

    def add(self, key: Hashable, queue: asyncio.Queue[Any]) -> None:
        """Route one more key to an open queue (an id learnt on the way)."""
        if len(self._boxes) < self.limit:
            self._boxes[key] = queue

    def close(self, *keys: Hashable) -> None:
        for key in keys:
            self._boxes.pop(key, None)

    def deliver(self, key: Hashable, message: Any) -> bool:
        queue = self._boxes.get(key)
        if queue is None:
            return False
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("a third-party flow has %d messages waiting; dropped %s", MAILBOX_DEPTH, key)
            return False
        return True

    def stop_all(self) -> None:
        """Wake every flow (the server is stopping): each receives None."""
        for queue in set(self._boxes.values()):
            try:
                queue.put_nowait(None)
            except asyncio.QueueFull:
                pass
        self._boxes.clear()


def unmatched(message: Incoming, why: str) -> None:
    """Keep a message no flow or handler took, for GET /<participant>/transfers/recent."""
    log.info("%s: %s", why, message.what())
    message.dfsp.unmatched.append({"method": message.method, "path": message.path, "source": message.source,
                                   "receivedAt": time.time()})


async def handle(sim: Simulator, message: Incoming) -> None:
    """A Third-party API message to a simulated participant: to its PISP or DFSP side."""
    from mobile_sim import pisp, tpdfsp  # noqa: PLC0415 - they import this module

    if message.dfsp.name in sim.pisps:
        await pisp.handle(sim, sim.pisps[message.dfsp.name], message)
    else:
        await tpdfsp.handle(sim, message)
