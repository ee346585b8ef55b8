"""What the dashboard knows about the hub, built from the live event stream (tui.client.events).

Why a model apart from the screens: the stream runs all the time, whichever screen is shown, and
every screen reads the same facts (a transfer's states, the FSPIOP messages of a payment, the
errors, the throughput). `HubState.apply` takes one event and says which topics changed, so the
app tells only the screens that care. Everything is bounded: the newest TRANSFERS_KEPT
transfers, WIRE_KEPT messages, ERRORS_KEPT errors, THROUGHPUT_S seconds of throughput.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

TRANSFERS_KEPT = 2000
WIRE_KEPT = 3000
ERRORS_KEPT = 100
THROUGHPUT_S = 120
FINAL_STATES = ("COMMITTED", "ABORTED")

# topics a change can touch; screens subscribe to the ones they show
TRANSFERS, WIRE, ERRORS, POSITIONS, WINDOWS, PARTICIPANTS, CONNECTION = (
    "transfers", "wire", "errors", "positions", "windows", "participants", "connection")
TICK = "tick"  # once a second (the throughput moves on)
THEME = "theme"  # light/dark changed: redraw what is coloured from the theme


@dataclass
class Transfer:
    """One transfer as the hub's events told it: who, how much, and every state with its time."""

    transfer_id: str
    payer: str = ""
    payee: str = ""
    amount: str = ""
    currency: str = ""
    state: str = ""  # the event's state: RESERVED, COMMITTED, ABORTED_REJECTED, EXPIRED_RESERVED ...
    transfer_state: str = ""  # the FSPIOP transferState: RESERVED, COMMITTED, ABORTED
    error_code: str | None = None
    error_description: str | None = None
    states: list[tuple[str, str]] = field(default_factory=list)  # (state, at) in order
    trace_id: str | None = None  # the traceparent's trace id of its FSPIOP messages, once seen
    first_seen: str = ""  # the time of the first event or message that named it

    @property
    def when(self) -> str:
        """When it started, as far as the dashboard knows (its first state, else its first message)."""
        return self.started or self.first_seen

    @property
    def started(self) -> str:
        return self.states[0][1] if self.states else ""

    @property
    def finished(self) -> bool:
        return self.transfer_state in FINAL_STATES


@dataclass
class HubError:
    """Something that went wrong, for the overview's list: when, what, the FSPIOP code and words."""

    at: str
    what: str
    code: str
    description: str


class HubState:
    """The dashboard's picture of the hub; fed one event at a time by `apply`."""

    def __init__(self) -> None:
        self.transfers: OrderedDict[str, Transfer] = OrderedDict()
        self.wire: deque[dict[str, Any]] = deque(maxlen=WIRE_KEPT)
        self.errors: deque[HubError] = deque(maxlen=ERRORS_KEPT)
        self.committed_per_second: deque[int] = deque([0] * THROUGHPUT_S, maxlen=THROUGHPUT_S)
        self._second = int(time.monotonic())
        self.hub_view: dict[str, Any] = {"participants": [], "window": None}
        self.connected = False
        self.disconnect_reason: str | None = None
        self._seen_wire: set[int] = set()
        self._wire_seq: deque[int] = deque(maxlen=WIRE_KEPT)

    # --- feeding -----------------------------------------------------------------------------

    def apply(self, kind: str, data: Any) -> set[str]:
        """Take one (kind, data) from the stream; the topics it changed."""
        if kind == "hello":
            self.connected, self.disconnect_reason = True, None
            changed = {CONNECTION}
            recent = [m for m in (data or {}).get("wire") or [] if isinstance(m, dict)]
            seqs = [m["seq"] for m in recent if isinstance(m.get("seq"), int)]
            if seqs and self._wire_seq and max(seqs) < max(self._wire_seq):
                self._seen_wire.clear()  # a new hub process on the same port counts from 1 again
                self._wire_seq.clear()
            for message in recent:
                changed |= self._wire(message)
            return changed
        if kind == "disconnected":
            self.connected, self.disconnect_reason = False, (data or {}).get("reason")
            return {CONNECTION}
        if kind == "wire" and isinstance(data, dict):
            return self._wire(data)
        if kind == "hub" and isinstance(data, dict):
            return self._hub_event(data)
        return set()

    def tick(self) -> None:
        """Move the throughput window on to now (called once a second and before reading it)."""
        now = int(time.monotonic())
        for _ in range(min(now - self._second, THROUGHPUT_S)):
            self.committed_per_second.append(0)
        self._second = max(self._second, now)

    def _wire(self, message: dict[str, Any]) -> set[str]:
        seq = message.get("seq")
        if isinstance(seq, int):
            if seq in self._seen_wire:
                return set()
            if len(self._wire_seq) == self._wire_seq.maxlen:
                self._seen_wire.discard(self._wire_seq[0])
            self._wire_seq.append(seq)
            self._seen_wire.add(seq)
        self.wire.append(message)
        changed = {WIRE}
        body = message.get("body")
        if (message.get("method") == "POST" and str(message.get("path", "")).startswith("/transfers")
                and isinstance(body, dict) and isinstance(body.get("transferId"), str)):
            transfer = self._transfer(body["transferId"], str(message.get("at", "")))
            if not transfer.payer:  # until the hub's event tells it (a refused prepare may never)
                amount = body.get("amount") if isinstance(body.get("amount"), dict) else {}
                transfer.payer, transfer.payee = str(body.get("payerFsp", "")), str(body.get("payeeFsp", ""))
                transfer.amount, transfer.currency = str(amount.get("amount", "")), str(amount.get("currency", ""))
                changed.add(TRANSFERS)
            if transfer.trace_id is None and message.get("traceId"):
                transfer.trace_id = message["traceId"]
                changed.add(TRANSFERS)
        elif message.get("method") == "PUT" and str(message.get("path", "")).startswith("/transfers/"):
            changed |= self._outcome_from_wire(message)
        return changed

    def _outcome_from_wire(self, message: dict[str, Any]) -> set[str]:
        """A transfer's outcome from its PUT callback, for transfers whose hub events the dashboard
        never saw (those before it connected: `hello` brings recent messages, not events)."""
        parts = str(message.get("path", "")).split("/")
        transfer = self.transfers.get(parts[2]) if len(parts) > 2 else None
        if transfer is None or transfer.states:
            return set()
        body = message.get("body") if isinstance(message.get("body"), dict) else {}
        if len(parts) > 3 and parts[3] == "error":
            transfer.state = transfer.transfer_state = "ABORTED"
            transfer.error_code = str(message.get("errorCode") or "") or None
            info = body.get("errorInformation") if isinstance(body.get("errorInformation"), dict) else {}
            transfer.error_description = str(info.get("errorDescription", "")) or None
        elif body.get("transferState") in ("RESERVED", "COMMITTED", "ABORTED"):
            transfer.state = transfer.transfer_state = str(body["transferState"])
        else:
            return set()
        return {TRANSFERS}

    def _transfer(self, transfer_id: str, at: str = "") -> Transfer:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            transfer = self.transfers[transfer_id] = Transfer(transfer_id, first_seen=at)
            while len(self.transfers) > TRANSFERS_KEPT:
                self.transfers.popitem(last=False)
        return transfer

    def _hub_event(self, event: dict[str, Any]) -> set[str]:
        subject = str(event.get("subject", ""))
        kind = str(event.get("type", ""))
        at = str(event.get("at", ""))
        changed: set[str] = set()
        if kind.startswith("transfer.") and isinstance(event.get("transferId"), str) and "payerFsp" in event:
            transfer = self._transfer(event["transferId"], at)
            transfer.payer, transfer.payee = str(event.get("payerFsp", "")), str(event.get("payeeFsp", ""))
            transfer.amount, transfer.currency = str(event.get("amount", "")), str(event.get("currency", ""))
            transfer.state = str(event.get("state", ""))
            transfer.transfer_state = str(event.get("transferState", ""))
            transfer.states.append((transfer.state, at))
            if event.get("errorCode"):
                transfer.error_code = str(event["errorCode"])
                transfer.error_description = str(event.get("errorDescription") or "")
                self.errors.append(HubError(at, f"transfer {event['transferId'][:8]} {transfer.payer} → "
                                                f"{transfer.payee} {transfer.amount} {transfer.currency}",
                                            transfer.error_code, transfer.error_description))
                changed.add(ERRORS)
            if transfer.state == "COMMITTED":
                self.tick()
                self.committed_per_second[-1] += 1
            changed |= {TRANSFERS, POSITIONS}
        elif kind == "request.refused":
            self.errors.append(HubError(at, f"{event.get('method', '')} {event.get('path', '')} from "
                                            f"{event.get('source') or 'unknown'}",
                                        str(event.get("errorCode", "")), str(event.get("errorDescription", ""))))
            changed.add(ERRORS)
        elif kind == "callback.failed":
            self.errors.append(HubError(at, f"{event.get('method', '')} to {event.get('participant', '')}",
                                        "1001", str(event.get("problem", ""))))
            changed.add(ERRORS)
        elif subject.startswith("ml.event.participant."):
            changed |= {PARTICIPANTS, POSITIONS}
        elif subject.startswith(("ml.event.settlementWindow.", "ml.event.settlement.")):
            changed |= {WINDOWS, POSITIONS}
        return changed

    # --- reading -----------------------------------------------------------------------------

    def newest_transfers(self, limit: int) -> list[Transfer]:
        return list(reversed(list(self.transfers.values())[-limit:]))

    def messages_of(self, transfer: Transfer) -> list[dict[str, Any]]:
        """The FSPIOP messages of the payment this transfer belongs to (same trace id), in order."""
        if transfer.trace_id is None:
            return [m for m in self.wire if transfer.transfer_id in str(m.get("path", ""))]
        return [m for m in self.wire if m.get("traceId") == transfer.trace_id]

    def throughput(self) -> list[int]:
        self.tick()
        return list(self.committed_per_second)
