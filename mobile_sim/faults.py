"""Injected faults: a simulated DFSP made slow, silent, rejecting or down, for demos and tests.

Why: a trainer shows what timeouts and errors look like on a live hub, and reliability tests need
a payee that misbehaves on demand, without pointing endpoints at dead addresses. `GET` and
`PUT /<dfsp>/faults` (mobile_sim.app) read and set one DFSP's fault; it lives in memory and every
start of miniloop clears it, like the books.

A fault changes what the DFSP does **as the one the hub calls**: the requests the hub forwards
to it (GET /parties, POST /quotes, POST /transfers, POST and GET /transactionRequests, GET
/authorizations, GET /transactions, POST /bulkQuotes, POST /bulkTransfers; `SERVED`):

- `slow`: answered 202 at once as always, the callback only after `delaySeconds` (0.1 to 60,
  default 5). The wait runs in the simulator's bounded TaskPool, like every callback.
- `silent`: 202 and never a callback.
- `reject`: 202, then an error callback (`PUT .../error`) with `errorCode`, or by default the
  code that fits the request (`NATURAL`): 3204 for a lookup, 5101 for a quote, 5105 for a
  transfer, ...
- `down`: every FSPIOP route of the DFSP (callbacks included) answers HTTP 503 with error 2003
  at once (mobile_sim.app._take), so the hub's delivery fails, is retried and given up.

Callbacks to the DFSP as payer (PUT /parties, /quotes, /transfers for its own /send), and the
Third-party API, are affected only by `down`. The driving API works in every mode.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from miniloop.fspiop.errors import ERROR_CODES, FspiopError
from mobile_sim import bodies

if TYPE_CHECKING:
    from mobile_sim.sim import Incoming, Simulator

log = logging.getLogger(__name__)

MODES = ("normal", "slow", "silent", "reject", "down")
DELAY_DEFAULT_S = 5.0
DELAY_MIN_S = 0.1
DELAY_MAX_S = 60.0
FIELDS = ("mode", "delaySeconds", "errorCode")

# (method, resource) of the requests the hub forwards to a DFSP, and the code a rejecting DFSP
# answers each with by default (the simulator's own refusal code where it has one)
NATURAL: dict[tuple[str, str], str] = {
    ("GET", "parties"): "3204",  # Party not found
    ("POST", "quotes"): "5101",  # Payee rejected quote
    ("POST", "transfers"): "5105",  # Payee FSP rejected transaction
    ("POST", "transactionRequests"): "4101",  # Payer rejected transaction request
    ("GET", "transactionRequests"): "4101",
    ("GET", "authorizations"): "5100",  # Generic Payee rejection
    ("GET", "transactions"): "3207",  # Transaction ID not found
    ("POST", "bulkQuotes"): "5101",
    ("POST", "bulkTransfers"): "5105",
}
SERVED = frozenset(NATURAL)

@dataclass(frozen=True)
class Fault:
    """One DFSP's fault: the mode, and the delay (slow) or error code (reject) it uses."""

    mode: str = "normal"
    delay_seconds: float | None = None
    error_code: str | None = None

    def view(self, dfsp: str) -> dict[str, Any]:
        """The body of GET/PUT /<dfsp>/faults and of the feed's "fault" event."""
        return {"dfsp": dfsp, "mode": self.mode, "delaySeconds": self.delay_seconds, "errorCode": self.error_code}


NORMAL = Fault()


def parse(body: dict[str, Any]) -> Fault:
    """The fault a PUT /<dfsp>/faults body asks for; FspiopError 3100 when it is not a valid one."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise FspiopError("3100", f"{unknown[0]} is not a field of /faults (fields: {', '.join(FIELDS)})")
    mode = body.get("mode")
    if mode not in MODES:
        raise FspiopError("3100", f"mode must be one of {', '.join(MODES)}")
    delay = body.get("delaySeconds")
    if delay is not None:
        if mode != "slow":
            raise FspiopError("3100", "delaySeconds goes with mode slow only")
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not DELAY_MIN_S <= delay <= DELAY_MAX_S:
            raise FspiopError("3100", f"delaySeconds must be a number from {DELAY_MIN_S:g} to {DELAY_MAX_S:g}")
    code = body.get("errorCode")
    if code is not None:
        if mode != "reject":
            raise FspiopError("3100", "errorCode goes with mode reject only")
        if not isinstance(code, str) or len(code) != 4 or not code.isdigit() or code not in ERROR_CODES:
            raise FspiopError("3100", "errorCode must be a 4-digit FSPIOP error code as a string, such as \"5105\"")
    if mode == "slow":
        return Fault("slow", float(delay if delay is not None else DELAY_DEFAULT_S))
    if mode == "reject":
        return Fault("reject", None, code)
    return Fault(mode)


def is_down(sim: Simulator, dfsp: str) -> bool:
    return sim.faults.get(dfsp, NORMAL).mode == "down"


async def apply(sim: Simulator, message: Incoming) -> bool:
    """Apply the DFSP's fault to a request the hub forwarded; True when the message is done with.

    `slow` waits here (in the TaskPool task handling the message) and returns False: the caller
    goes on as usual. `silent` drops it; `reject` answers the error callback.
    """
    fault = sim.faults.get(message.dfsp.name, NORMAL)
    if fault.mode == "normal" or message.is_error or (message.method, message.resource) not in SERVED:
        return False
    if fault.mode == "slow":
        await asyncio.sleep(fault.delay_seconds or DELAY_DEFAULT_S)
        return False
    if fault.mode == "silent":
        log.info("%s is silent (fault): no answer to %s", message.dfsp.name, message.what())
        return True
    if fault.mode == "reject":
        path = error_path(message)
        if path is None:
            log.warning("%s: cannot reject %s, it has no usable id", message.dfsp.name, message.what())
            return True
        code = fault.error_code or NATURAL[(message.method, message.resource)]
        await sim.reply(message, "PUT", path, bodies.error(code, f"{message.dfsp.name} rejects it (fault injected)"))
        return True
    return False  # down: refused at the door (mobile_sim.app), never gets here


def error_path(message: Incoming) -> str | None:
    """The path of the error callback that answers a forwarded request: PUT /quotes/{ID}/error ..."""
    if message.resource == "parties":
        id_type, party_id, sub_id = message.ids
        return f"/parties/{id_type}/{party_id}" + (f"/{sub_id}" if sub_id else "") + "/error"
    if message.method == "GET":
        return f"/{message.resource}/{message.ids[0]}/error" if message.ids else None
    id_field = {"quotes": "quoteId", "transfers": "transferId", "transactionRequests": "transactionRequestId",
                "bulkQuotes": "bulkQuoteId", "bulkTransfers": "bulkTransferId"}[message.resource]
    item = (message.body or {}).get(id_field)
    if not isinstance(item, str) or not item or "/" in item:
        return None
    return f"/{message.resource}/{item}/error"
