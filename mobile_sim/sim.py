"""The running simulators: every simulated DFSP, the one client to the switch, and dispatch.

Why one object: all simulated DFSPs share a port, an HTTP client, a bounded task pool and the
table of callbacks being waited for. The HTTP layer (mobile_sim.app) turns each request into an
`Incoming` message, answers 202/200 at once and hands the message here; `handle` then does what
a DFSP does with it, in the background:

- requests to the DFSP as payee (GET /parties, POST /quotes, POST /transfers) -> mobile_sim.payee;
- callbacks to the DFSP as payer (PUT /parties, /quotes, /transfers and their /error, PATCH)
  -> the books are settled first (mobile_sim.payee.settle_books), then the callback goes to the
  /send flow waiting for it (matched by id). One nobody waits for is recorded and dropped.
- payee-initiated transactions: POST /transactionRequests and GET /transactionRequests/{ID} to
  the DFSP as payer -> mobile_sim.payer; GET /authorizations/{ID} to the DFSP as payee -> the
  request to pay waiting for it (mobile_sim.rtp); GET /transactions/{ID} -> mobile_sim.payee.
  A request to pay also sees every message about its transaction request (the payer's quote and
  transfer, and our answers to them) through `rtp.tap`, for its wire log and its outcome.
- bulk payments: POST /bulkQuotes and POST /bulkTransfers to the DFSP as payee -> mobile_sim.bulk;
  PUT /bulkTransfers/{ID} and its /error settle the books (mobile_sim.bulk.settle_books) before
  going to the /bulkPay flow waiting for them; the hub's final PUT to the payee ends there.
- the Third-party API (/accounts, /consentRequests, /consents, /thirdpartyRequests/..., /services)
  -> mobile_sim.thirdparty: to the simulated PISP (mobile_sim.pisp) or to the DFSP's third-party
  side (mobile_sim.tpdfsp). The ALS's PUT /participants/THIRD_PARTY_LINK/{ID} goes to the
  DFSP's linking flow waiting for it, like any callback.

Everything that happens is also published on `feed` (mobile_sim.feed), for the wallet page:
every request a DFSP sends passes `send` (a "wire" event, direction "out"; the incoming ones are
published by mobile_sim.app as they arrive), and every customer's texts and balance moves reach
it through the books' watch (`_watch`).

Injected faults (mobile_sim.faults) are applied first in `handle`: a slow DFSP waits there, a
silent one drops the request, a rejecting one answers it with an error callback; a DFSP that is
down never gets that far (mobile_sim.app answers 503).
"""

from __future__ import annotations

import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from miniloop.fspiop.headers import new_traceparent
from mobile_sim import bulk, faults, feed, join, payee, payer, pisp, rtp, thirdparty
from mobile_sim.dfsp import Customer, SimDfsp
from mobile_sim.fspiop_client import Answer, SwitchClient
from mobile_sim.tasks import FlowRecords, TaskPool, Waiters

log = logging.getLogger(__name__)


@dataclass
class Incoming:
    """One FSPIOP request the switch made to a simulated DFSP.

    `ids` are the path's ids: (type, id, subId or None) for parties, (id,) for a quote or a
    transfer, () for POST. `path` is the FSPIOP path, without the /<dfsp> prefix.
    """

    dfsp: SimDfsp
    method: str
    path: str
    resource: str
    ids: tuple[str | None, ...]
    is_error: bool
    source: str
    destination: str | None
    traceparent: str | None
    body: dict[str, Any] | None
    at: float = field(default_factory=time.monotonic)
    query: str = ""  # the query string (GET /authorizations carries retriesLeft, amount, currency)
    flow: Any = None  # the request to pay this message belongs to (mobile_sim.rtp.tap), if any

    @property
    def key(self) -> tuple[Any, ...]:
        """What a waiting flow is keyed by: ("parties", type, id, sub) or ("quotes", id) ..."""
        return (self.dfsp.name, self.resource, *self.ids)

    def what(self) -> str:
        return f"{self.method} /{self.dfsp.name}{self.path} from {self.source}"


class Simulator:
    """All simulated DFSPs of one hub, and their shared machinery."""

    def __init__(self, dfsps: dict[str, SimDfsp], switch_url: str, ssl_context: ssl.SSLContext | None = None) -> None:
        self.dfsps = dfsps
        self.client = SwitchClient(switch_url, ssl_context)
        self.pool = TaskPool()
        self.waiters = Waiters()
        self.sends_in_flight = 0
        self.send_flows = FlowRecords()  # /send and /payQr flows by (DFSP, transferId), for GET and PUT
        self.rtp_records = FlowRecords()  # /requestToPay flows by (payee DFSP, transactionRequestId)
        self.rtp_flows: dict[tuple[str, str], Any] = self.rtp_records.running  # the running ones (rtp.tap)
        self.payer_requests_in_flight = 0
        self.bulk = bulk.BulkState()  # bulk payments (mobile_sim.bulk)
        # the Third-party API (mobile_sim.thirdparty): the simulated PISPs, the flows' mailboxes,
        # and the sim port's own URL as the hub reaches it (for WEB login pages and callbackUris)
        self.pisps = pisp.pisps_of(dfsps)
        self.tp_mail = thirdparty.Mailboxes()
        self.tp_flows = 0
        self.pisp_flows = 0
        self.base_url = ""
        self.feed = feed.Feed()  # what happens, live, for the wallet page (mobile_sim.feed)
        self.joins = join.Joins()  # customers who joined through POST /<dfsp>/customers
        self.faults: dict[str, faults.Fault] = {}  # injected faults by DFSP (mobile_sim.faults); none is normal
        for dfsp in dfsps.values():
            dfsp.books.listen(self._watch(dfsp.name))

    def _watch(self, dfsp: str) -> Any:
        """What a DFSP's customers report (texts, balance moves), published on the feed."""

        def watch(kind: str, customer: Customer, message: dict[str, Any] | None) -> None:
            if kind == "text" and message is not None:
                self.feed.publish(feed.text(dfsp, customer, message))
            elif kind == "balance":
                self.feed.publish(feed.balance(dfsp, customer))

        return watch

    async def start(self) -> None:
        await self.client.open()

    def stopping(self) -> None:
        """Wake every /send still waiting, so the server can stop without waiting for timeouts."""
        self.waiters.cancel_all()
        self.tp_mail.stop_all()
        rtp.stop_all(self)
        for flow in list(self.send_flows.running.values()):
            flow.pauses.stop()

    async def stop(self) -> None:
        await self.pool.close()
        await self.client.close()

    def accept(self, message: Incoming) -> bool:
        """Take a request for background handling; False when too busy (answer 503)."""
        return self.pool.start(self.handle(message), message.what())

    def fault_of(self, dfsp: str) -> faults.Fault:
        return self.faults.get(dfsp, faults.NORMAL)

    def set_fault(self, dfsp: str, fault: faults.Fault) -> faults.Fault:
        """Give `dfsp` this fault (normal clears it) and say so on the feed."""
        if fault.mode == "normal":
            self.faults.pop(dfsp, None)
        else:
            self.faults[dfsp] = fault
        log.info("%s: fault %s", dfsp, fault)
        self.feed.publish(feed.fault(fault.view(dfsp)))
        return fault

    async def handle(self, message: Incoming) -> None:
        if self.faults and await faults.apply(self, message):
            return  # silent, or rejected with an error callback (a slow DFSP has waited: go on)
        if message.resource.split("/", 1)[0] in thirdparty.RESOURCES:
            await thirdparty.handle(self, message)  # the PISP or a DFSP's third-party side
            return
        tapped = rtp.tap(self, message)
        if message.method == "GET" and message.resource == "parties":
            await payee.answer_party(self, message)
        elif message.method == "POST" and message.resource == "quotes":
            await payee.answer_quote(self, message)
        elif message.method == "POST" and message.resource == "transfers":
            await payee.answer_transfer(self, message)
        elif message.method in ("GET", "POST") and message.resource == "transactionRequests":
            await payer.answer(self, message)
        elif message.method == "GET" and message.resource == "authorizations":
            await rtp.answer_authorization(self, message)
        elif message.method == "GET" and message.resource == "transactions":
            await payee.answer_transaction(self, message)
        elif message.method == "POST" and message.resource in bulk.RESOURCES:
            await (bulk.answer_bulk_quote if message.resource == "bulkQuotes" else bulk.answer_bulk_transfer)(
                self, message)
        else:
            if message.resource == "transfers":
                await payee.settle_books(self, message)
            elif message.resource == "bulkTransfers" and await bulk.settle_books(self, message):
                return  # the hub's news to a bulk's payee: settled, and nobody waits for it
            if not self.waiters.deliver(message.key, message) and not tapped:
                log.info("unmatched callback %s", message.what())
                message.dfsp.unmatched.append({
                    "method": message.method, "path": message.path, "source": message.source,
                    "receivedAt": time.time(),
                })

    async def send(self, dfsp: SimDfsp, method: str, path: str, body: dict[str, Any] | None, *,
                   destination: str | None, traceparent: str | None) -> Answer:
        """One request from `dfsp` to the switch, published on the feed with the hub's answer."""
        traceparent = traceparent or new_traceparent()  # so that the feed can say which trace it starts
        answer = await self.client.send(method, path, body, source=dfsp.name, destination=destination,
                                        traceparent=traceparent)
        if not answer.accepted:
            log.warning("%s: %s %s refused by the switch: %s", dfsp.name, method, path, answer.error)
        self.feed.publish(feed.wire(dfsp.name, "out", method, path, dfsp.name, destination, answer.status,
                                    traceparent, body, answer.error, headers=feed.fspiop_headers(answer.headers)))
        return answer

    async def reply(self, message: Incoming, method: str, path: str, body: dict[str, Any]) -> Answer:
        """Answer `message` with a callback to whoever sent it (FSPIOP-Destination = its Source)."""
        answer = await self.send(message.dfsp, method, path, body, destination=message.source,
                                 traceparent=message.traceparent)
        if message.flow is not None:  # a request to pay logs our answers about its transaction request
            message.flow.saw_reply(method, path, body, message.source, answer)
        return answer
