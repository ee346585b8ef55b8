"""A person joins a simulated wallet: POST /<dfsp>/customers opens an account with a new phone number.

Why: the wallet simulator page lets a visitor become a customer of greenwallet or bluewallet and
pay, be paid, and answer requests to pay on a simulated phone. That needs a customer who does not
collide with anyone else's, whom lookups find, and who answers requests to pay themselves.

So a joining customer gets:

- a fresh MSISDN that no customer of any simulated DFSP has (nor one joining at the same time),
  following the DFSP's own numbering: the next free number after the highest MSISDN of its
  hub-file customers (greenwallet's 27710000003 -> 27710000004, 27710000005, ...);
- a name (default "Guest <n>", n counting the DFSP's joins) and an opening balance (default 500);
- the setting requestToPay "ask": requests to pay wait for their answer on the phone
  (GET/POST /<dfsp>/customers/<id>/requests, mobile_sim.payer).

It is registered in the hub's account lookup the way /customers/generate registers customers
(mobile_sim.bulk.register: POST /participants -> PUT /participants/{requestId}). The customer is
added to the books only once the hub confirmed the registration, so a refusal (502) or no answer
(504) leaves nothing behind. Bounded: JOINS_MAX per DFSP (then 400 / 3100), JOINS_AT_ONCE.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from miniloop import money
from miniloop.fspiop.errors import FspiopError
from mobile_sim import bodies, feed
from mobile_sim.bulk import Exchanges, register
from mobile_sim.dfsp import Customer, SimDfsp
from mobile_sim.send import order_amount

if TYPE_CHECKING:
    from mobile_sim.sim import Simulator

FIELDS = ("name", "balance", "idType")
JOINS_MAX = 1000  # customers who may join one simulated DFSP (until miniloop restarts)
JOINS_AT_ONCE = 20  # joins being registered at once, all DFSPs together
JOIN_TIMEOUT_S = 30.0  # how long the hub may take to confirm a registration
NAME_MAX = 64
DEFAULT_BALANCE = "500"
FALLBACK_START = 27790000000  # numbering of a DFSP that has no MSISDN customer to follow
MSISDN_DIGITS_MAX = 15
_DIGITS = re.compile(r"[1-9][0-9]{0,14}")


def _bad(detail: str) -> FspiopError:
    return FspiopError("3100", detail)


@dataclass
class Joins:
    """The joins of all simulated DFSPs: how many per DFSP, the last number given, the ones in progress."""

    counts: dict[str, int] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)  # the last number given per DFSP
    pending: dict[str, str] = field(default_factory=dict)  # numbers being registered now -> their DFSP
    running: int = 0

    def start_after(self, dfsp: SimDfsp) -> int:
        """Where the DFSP's numbering goes on from: its highest MSISDN, the first time it is asked."""
        if dfsp.name not in self.last:
            numbers = [int(c.id) for c in dfsp.books.customers.values()
                       if c.id_type == "MSISDN" and _DIGITS.fullmatch(c.id)]
            self.last[dfsp.name] = max(numbers, default=FALLBACK_START)
        return self.last[dfsp.name]


@dataclass(frozen=True)
class JoinOrder:
    """A checked POST /<dfsp>/customers body."""

    name: str | None  # None: "Guest <n>"
    balance: int  # units
    id_type: str = "MSISDN"


def parse_join(dfsp: SimDfsp, body: dict[str, Any]) -> JoinOrder:
    """Check a join; FspiopError 3100 for anything unusable."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise _bad(f"{unknown[0]} is not a field of POST /customers (fields: {', '.join(FIELDS)})")
    if dfsp.kind == "pisp":
        raise _bad(f"{dfsp.name} is a PISP: it keeps no customers' accounts")
    if body.get("idType", "MSISDN") != "MSISDN":
        raise _bad("idType must be MSISDN: a customer who joins gets a phone number")
    name = body.get("name")
    if name is not None:
        if not isinstance(name, str) or not name.isprintable() or not 1 <= len(name.strip()) <= NAME_MAX:
            raise _bad(f"name must be 1 to {NAME_MAX} printable characters")
        name = name.strip()
    return JoinOrder(name, money.to_units(order_amount(body.get("balance", DEFAULT_BALANCE), dfsp.currency, "balance",
                                                          allow_zero=True)))


def _taken(sim: Simulator, number: str) -> bool:
    return number in sim.joins.pending or any(
        d.books.customer("MSISDN", number) is not None for d in sim.dfsps.values())


def next_number(sim: Simulator, dfsp: SimDfsp) -> str:
    """The next free MSISDN in the DFSP's numbering; held in `pending` until the join ends."""
    joins = sim.joins
    candidate = joins.start_after(dfsp) + 1
    # every customer of every DFSP, and every pending join, could be in the way: a bounded walk
    for _ in range(sum(len(d.books.customers) for d in sim.dfsps.values()) + len(joins.pending) + 1):
        if not _taken(sim, str(candidate)):
            break
        candidate += 1
    number = str(candidate)
    if len(number) > MSISDN_DIGITS_MAX:
        raise _bad(f"{dfsp.name} has no MSISDN left after {joins.last[dfsp.name]}")
    joins.last[dfsp.name] = candidate
    joins.pending[number] = dfsp.name
    return number


async def join(sim: Simulator, dfsp: SimDfsp, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /<dfsp>/customers: a new customer, registered in the hub's account lookup; 201 with it."""
    order = parse_join(dfsp, body)
    joins = sim.joins
    joined = joins.counts.get(dfsp.name, 0) + sum(1 for name in joins.pending.values() if name == dfsp.name)
    if joined >= JOINS_MAX:
        raise _bad(f"{JOINS_MAX} customers have joined {dfsp.name} already: that is all until miniloop restarts")
    if joins.running >= JOINS_AT_ONCE:
        raise FspiopError("2003", f"{JOINS_AT_ONCE} customers are joining already: try again", status=503)
    number = next_number(sim, dfsp)
    joins.running += 1
    try:
        problem = await _register(sim, dfsp, number)
    finally:
        joins.running -= 1
        joins.pending.pop(number, None)
    if problem is not None:
        return problem
    joins.counts[dfsp.name] = joins.counts.get(dfsp.name, 0) + 1
    customer = Customer(number, order.id_type, order.name or f"Guest {joins.counts[dfsp.name]}", order.balance,
                        request_to_pay="ask")
    dfsp.books.add(customer)
    sim.feed.publish(feed.customer(dfsp.name, customer.view()))
    return 201, {"dfsp": dfsp.name, **customer.view(), "settings": customer.settings()}


async def _register(sim: Simulator, dfsp: SimDfsp, number: str) -> tuple[int, dict[str, Any]] | None:
    """Register the number in the hub's oracle; None when confirmed, else the (status, error body) to answer."""
    flow = Exchanges(sim, dfsp, JOIN_TIMEOUT_S)
    failures: list[dict[str, Any]] = []
    if await register(flow, [number], failures) == 1:
        return None
    if flow.timed_out:
        return 504, bodies.error("2004", f"the hub did not confirm the registration of MSISDN {number} in time")
    failure = failures[0] if failures else {}
    code = str(failure.get("errorCode") or "3003")
    detail = str(failure.get("errorDescription") or "the hub refused the registration")
    return 502, {"errorInformation": {"errorCode": code, "errorDescription": detail[:128]}}
