"""One simulated DFSP: its settings from the hub file and its own books (customers and money).

Why: a real DFSP keeps its customers' accounts in its own core system, which the switch never
sees; the switch only moves the DFSPs' positions. The simulators keep that core system in
memory, so a demo shows both sides: the hub's positions and the wallets' balances.

The books are **in memory and reset at every start of miniloop** to the balances in the hub file.
Transfers a DFSP took part in before a restart are not remembered; its ILP secret, however, is
derived from its name, so a restarted hub can still fulfil transfers quoted before the restart.

Bookkeeping, in integer units of 1/10,000 (miniloop.money, never float):
- as payer: `reserve` holds the transfer amount on the customer before POST /transfers, then
  `commit` debits it (the switch said COMMITTED) or `release` frees it (an error or ABORTED);
- as payee: `credit` pays the customer when the DFSP releases its fulfilment, and `reverse`
  takes that back if the switch later aborts the transfer (expiry, invalid fulfilment).
Each step is keyed by transfer id and happens at most once, so a resent callback never moves
money twice. Every method is synchronous: on one event loop each is atomic.

Each customer also has a phone: a short inbox of the texts their DFSP sent them (payment
notifications, requests to pay, one-time passwords), shown by GET /<dfsp>/customers/<id>/messages,
and settings (how they answer a request to pay). As payee, a DFSP keeps a record of each
transaction it was paid in, by transactionId, to answer GET /transactions/{ID} and to check refunds.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from miniloop import hubfile, money
from mobile_sim.pricing import FeeRule

HISTORY_MAX = 10_000  # finished transfers kept per DFSP (for idempotency and /transfers/recent)
PENDING_MAX = 10_000  # transfers a DFSP may have reserved and not finished at once
UNMATCHED_MAX = 100  # callbacks nobody waited for, kept for inspection
QUOTES_MAX = 10_000  # quotes a DFSP answered as payee, kept to pay out and to answer resends
PHONE_MAX = 50  # texts kept on each customer's phone (the oldest go first)
TRANSACTIONS_MAX = 10_000  # transactions a DFSP was paid in, kept per DFSP
REQUESTS_MAX = 1_000  # transaction requests a DFSP received as payer, kept per DFSP
# a customer's setting "requestToPay"; "ask": they answer on their phone (GET/POST .../requests)
REQUEST_TO_PAY_ANSWERS = ("approve", "decline", "ignore", "ask")


class BooksError(Exception):
    """A reservation the books refuse. `code`: 4000 not enough money, 2003 too many in flight."""

    def __init__(self, detail: str, code: str = "4000") -> None:
        super().__init__(detail)
        self.code = code


@dataclass
class Customer:
    id: str
    id_type: str
    name: str
    balance: int  # units of 1/10,000
    reserved: int = 0
    request_to_pay: str = "approve"  # how the customer answers a request to pay: REQUEST_TO_PAY_ANSWERS
    phone: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=PHONE_MAX), compare=False,
                                         repr=False)
    texts_sent: int = field(default=0, compare=False, repr=False)
    # told ("text", customer, message) and ("balance", customer, None) as they happen: the live feed
    # (mobile_sim.feed), set by Books.listen / Books.add
    watch: Callable[[str, Customer, dict[str, Any] | None], None] | None = field(default=None, compare=False,
                                                                                repr=False)

    @property
    def available(self) -> int:
        return self.balance - self.reserved

    def changed(self) -> None:
        """The balance or the reserved amount moved: tell whoever watches."""
        if self.watch is not None:
            self.watch("balance", self, None)

    def text(self, kind: str, text: str, **details: Any) -> dict[str, Any]:
        """Put a text on the customer's phone (kind: request, otp, paid, received, failed, declined...)."""
        self.texts_sent += 1
        message = {"id": self.texts_sent, "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                   "kind": kind, "text": text}
        message.update({k: v for k, v in details.items() if v is not None})
        self.phone.append(message)
        if self.watch is not None:
            self.watch("text", self, message)
        return message

    def settings(self) -> dict[str, Any]:
        return {"requestToPay": self.request_to_pay}

    def view(self) -> dict[str, Any]:
        """The customer as GET /<dfsp>/customers shows it."""
        return {
            "id": self.id, "idType": self.id_type, "name": self.name,
            "balance": money.format_amount(self.balance), "reserved": money.format_amount(self.reserved),
        }


@dataclass
class Entry:
    """One transfer in the books. direction "out": our customer pays; "in": our customer is paid."""

    transfer_id: str
    direction: str
    customer: Customer
    units: int
    counterparty: str
    currency: str
    state: str  # out: RESERVED, COMMITTED, ABORTED; in: COMMITTED, ABORTED
    created_at: float = field(default_factory=time.time)
    reply: dict[str, Any] | None = None  # "in": the fulfil body we sent, resent on a duplicate
    label: str = ""  # who the other side is, for the customer's texts ("Corner Grocery")
    transaction_id: str | None = None  # "in": the transaction it paid (dfsp.transactions)

    def view(self) -> dict[str, Any]:
        return {
            "transferId": self.transfer_id, "direction": self.direction, "customer": self.customer.id,
            "amount": money.format_amount(self.units), "currency": self.currency,
            "counterparty": self.counterparty, "state": self.state,
        }


class Books:
    """Customers' balances and reservations, and the transfers that moved them."""

    def __init__(self, customers: list[Customer]) -> None:
        self.customers = {(c.id_type, c.id): c for c in customers}
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self._pending = 0
        self.watch: Callable[[str, Customer, dict[str, Any] | None], None] | None = None

    def listen(self, watch: Callable[[str, Customer, dict[str, Any] | None], None]) -> None:
        """Have every customer, now and added later, report texts and balance moves to `watch`."""
        self.watch = watch
        for customer in self.customers.values():
            customer.watch = watch

    def add(self, customer: Customer) -> None:
        """A new customer (generated, or joined through the driving API), watched like the others."""
        customer.watch = self.watch
        self.customers[(customer.id_type, customer.id)] = customer

    def customer(self, id_type: str, party_id: str) -> Customer | None:
        return self.customers.get((id_type, party_id))

    def find(self, party_id: str, id_type: str | None = None) -> Customer | None:
        """A customer by id alone (the first one, in hub file order), or by type and id."""
        if id_type is not None:
            return self.customer(id_type, party_id)
        return next((c for c in self.customers.values() if c.id == party_id), None)

    def entry(self, transfer_id: str, direction: str) -> Entry | None:
        return self.entries.get(f"{direction}:{transfer_id}")

    # --- as payer --------------------------------------------------------------------------------

    def reserve(self, transfer_id: str, customer: Customer, units: int, payee_fsp: str, currency: str,
                label: str = "") -> Entry:
        if units < 0:
            raise BooksError("a negative amount cannot be reserved")
        if self.entry(transfer_id, "out") is not None:
            raise BooksError(f"transfer {transfer_id} was already reserved")
        if self._pending >= PENDING_MAX:
            raise BooksError(f"{PENDING_MAX} transfers are already in flight", "2003")
        if customer.available < units:
            raise BooksError(
                f"customer {customer.id} has {money.format_amount(customer.available)} available, "
                f"{money.format_amount(units)} is needed"
            )
        customer.reserved += units
        self._pending += 1
        customer.changed()
        return self._remember(Entry(transfer_id, "out", customer, units, payee_fsp, currency, "RESERVED",
                                    label=label or payee_fsp))

    def commit(self, transfer_id: str) -> bool:
        """Debit a reserved transfer (the switch committed it); False if not reserved here."""
        entry = self.entry(transfer_id, "out")
        if entry is None or entry.state != "RESERVED":
            return False
        entry.customer.reserved -= entry.units
        entry.customer.balance -= entry.units
        entry.state = "COMMITTED"
        self._pending -= 1
        entry.customer.changed()
        entry.customer.text("paid", f"You paid {_amount(entry)} to {entry.label}. "
                                    f"New balance: {_money_text(entry.customer.balance, entry.currency)}.",
                            transferId=transfer_id)
        return True

    def release(self, transfer_id: str) -> bool:
        """Free a reserved transfer (aborted or refused); False if not reserved here."""
        entry = self.entry(transfer_id, "out")
        if entry is None or entry.state != "RESERVED":
            return False
        entry.customer.reserved -= entry.units
        entry.state = "ABORTED"
        self._pending -= 1
        entry.customer.changed()
        entry.customer.text("failed", f"Your payment of {_amount(entry)} to {entry.label} failed. "
                                      "No money was taken.", transferId=transfer_id)
        return True

    # --- as payee --------------------------------------------------------------------------------

    def credit(self, transfer_id: str, customer: Customer, units: int, payer_fsp: str, currency: str,
               reply: dict[str, Any], label: str = "", transaction_id: str | None = None) -> Entry | None:
        """Pay the payee customer once per transfer; None if this transfer was seen before."""
        if self.entry(transfer_id, "in") is not None:
            return None
        customer.balance += units
        customer.changed()
        entry = self._remember(Entry(transfer_id, "in", customer, units, payer_fsp, currency, "COMMITTED",
                                     reply=reply, label=label or payer_fsp, transaction_id=transaction_id))
        customer.text("received", f"You received {_amount(entry)} from {entry.label}. "
                                  f"New balance: {_money_text(customer.balance, currency)}.",
                      transferId=transfer_id, transactionId=transaction_id)
        return entry

    def reverse(self, transfer_id: str) -> bool:
        """Take back a credit the switch did not commit after all; False if there is none."""
        entry = self.entry(transfer_id, "in")
        if entry is None or entry.state != "COMMITTED":
            return False
        entry.customer.balance -= entry.units
        entry.state = "ABORTED"
        entry.customer.changed()
        entry.customer.text("failed", f"The payment of {_amount(entry)} from {entry.label} did not go through "
                                      "after all and was taken back.", transferId=transfer_id)
        return True

    # --- history ---------------------------------------------------------------------------------

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest transfers first."""
        out = []
        for entry in reversed(self.entries.values()):
            if len(out) >= limit:
                break
            out.append(entry.view())
        return out

    def _remember(self, entry: Entry) -> Entry:
        self.entries[f"{entry.direction}:{entry.transfer_id}"] = entry
        excess = len(self.entries) - HISTORY_MAX
        if excess > 0:  # forget the oldest finished ones; never a reservation still open
            doomed = []
            for key, old in self.entries.items():
                if len(doomed) >= excess:
                    break
                if old.state != "RESERVED":
                    doomed.append(key)
            for key in doomed:
                del self.entries[key]
        return entry


def _money_text(units: int, currency: str) -> str:
    return f"{money.format_amount(units)} {currency}"


def _amount(entry: Entry) -> str:
    return _money_text(entry.units, entry.currency)


@dataclass
class Transaction:
    """A transaction this DFSP was paid in (as payee), as GET /transactions/{ID} reports it.

    `state` is the API's TransactionState: COMPLETED, or REJECTED when the switch took it back.
    `code` is redemption information for the payer (a cash-out code for a WITHDRAWAL).
    """

    transaction_id: str
    transfer_id: str
    customer: Customer
    payer_fsp: str
    payer: dict[str, Any]  # the payer's Party, from the ILP packet
    transaction_type: dict[str, Any]
    amount: str  # the transfer amount
    currency: str
    completed: str  # FSPIOP DateTime
    state: str = "COMPLETED"
    code: str | None = None

    def put_body(self) -> dict[str, Any]:
        """The body of PUT /transactions/{ID}."""
        body: dict[str, Any] = {"transactionState": self.state}
        if self.state == "COMPLETED":
            body["completedTimestamp"] = self.completed
        if self.code:
            body["code"] = self.code
        return body


def secret_for(name: str) -> str:
    """The DFSP's ILP secret: derived from its name, so it survives a restart of the hub.

    Anyone who knows the name can compute it; that is fine for a sandbox and is the point
    (fulfilments stay reproducible), and it is why no real DFSP does this.
    """
    return hashlib.sha256(f"miniloop simulated DFSP {name}".encode()).hexdigest()


@dataclass(frozen=True)
class Quoted:
    """A quote this DFSP gave as payee: the request, our PUT /quotes body, what the payee gets."""

    request: dict[str, Any]
    answer: dict[str, Any]
    receive_units: int


@dataclass
class SimDfsp:
    """A simulated DFSP: name, currency, fee rule, ILP secret, books and the quotes it gave."""

    name: str
    currency: str
    fees: FeeRule
    books: Books
    secret: str
    quotes: OrderedDict[str, Quoted] = field(default_factory=OrderedDict)
    unmatched: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=UNMATCHED_MAX))
    transactions: OrderedDict[str, Transaction] = field(default_factory=OrderedDict)
    requests: OrderedDict[str, Any] = field(default_factory=OrderedDict)  # mobile_sim.payer.PayerRequest
    kind: str = "wallet"  # the hub file's kind; "pisp" is the simulated PISP (mobile_sim.pisp)
    thirdparty: Any = None  # consents and third-party transfers (mobile_sim.tpdfsp.TpState)

    def remember_quote(self, quote_id: str, quoted: Quoted) -> None:
        self.quotes[quote_id] = quoted
        self.quotes.move_to_end(quote_id)
        while len(self.quotes) > QUOTES_MAX:
            self.quotes.popitem(last=False)

    def remember_transaction(self, transaction: Transaction) -> None:
        self.transactions[transaction.transaction_id] = transaction
        self.transactions.move_to_end(transaction.transaction_id)
        while len(self.transactions) > TRANSACTIONS_MAX:
            self.transactions.popitem(last=False)

    def remember_request(self, request_id: str, request: Any) -> None:
        """Keep a transaction request received as payer; the oldest finished ones are forgotten."""
        self.requests[request_id] = request
        self.requests.move_to_end(request_id)
        excess = len(self.requests) - REQUESTS_MAX
        if excess > 0:
            doomed = [k for k, r in self.requests.items() if r.finished][:excess]
            for key in doomed:
                del self.requests[key]

    @classmethod
    def from_hub_file(cls, dfsp: hubfile.Dfsp, default_currency: str) -> SimDfsp:
        customers = [
            Customer(c.id, c.id_type, c.name, money.to_units(Decimal(c.balance))) for c in dfsp.customers
        ]
        return cls(
            name=dfsp.name,
            currency=dfsp.currency or default_currency,
            fees=FeeRule.from_text(dfsp.quote_fee_fixed, dfsp.quote_fee_percent),
            books=Books(customers),
            secret=secret_for(dfsp.name),
            kind=dfsp.kind,
        )


def simulated(hub: hubfile.HubFile | None) -> dict[str, SimDfsp]:
    """The DFSPs of the hub file that miniloop simulates: those without a callback_url."""
    if hub is None:
        return {}
    return {
        d.name: SimDfsp.from_hub_file(d, hub.currencies[0]) for d in hub.dfsps if d.callback_url is None
    }
