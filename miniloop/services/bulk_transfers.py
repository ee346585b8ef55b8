"""Bulk transfers: many transfers from one payer FSP to one payee FSP, prepared and answered at once.

What Mojaloop's bulk-api-adapter and central-ledger's bulk prepare, processing, fulfil and get
handlers do, as one writer command per message (miniloop.ledger.writer):

1. prepare (POST /bulkTransfers from the payer): duplicate check on the body hash, the bulk's own
   checks (headers, expiration, payer and payee), then each individual transfer, in order, goes
   through the ordinary prepare (miniloop.services.transfers.reserve: validation, liquidity 4001
   then Net Debit Cap 4200, reservation on the payer's position) with the bulk's payer, payee and
   expiration. One that fails, or whose id is taken (3106), fails alone. The payee gets ONE
   POST /bulkTransfers with the accepted ones (bulk ACCEPTED); if none was accepted the bulk is
   REJECTED and the payer gets PUT /bulkTransfers/{ID} with every individual error.
2. fulfil (PUT /bulkTransfers/{ID} from the payee): each result with a fulfilment commits by the
   ordinary rules (transfers.check_fulfilment, .commit: 3303 expired, 3100 wrong fulfilment abort
   that one); one with errorInformation, without a fulfilment, or not mentioned aborts. The bulk
   is COMPLETED; payer and payee get PUT /bulkTransfers/{ID} with every result.
3. reject (PUT /bulkTransfers/{ID}/error from the payee): every reserved transfer aborts, the bulk
   is REJECTED, the error is forwarded to the payer.
4. get (GET /bulkTransfers/{ID}): the hub answers from the ledger (3210 unknown, 3000 outsider).
5. expiry: the transfers sweeper (transfers.expire_due) expires a bulk's transfers without
   individual callbacks and calls `transfers_expired`; once none is left waiting, the bulk is
   COMPLETED and payer and payee get its results, 3303 for the expired ones.

Individual transfers are ordinary FSPIOP transfers in the ledger (positions, settlement windows,
IMMEDIATE GROSS settlement and `miniloop ledger check` treat them as any transfer), linked to
their bulk by transfer_fspiop.bulk_transfer_id and by one bulk_transfer_association row each
(central-ledger's bulkTransferAssociation, with its bulkProcessingState). No individual
POST /transfers or individual callback is ever sent for them. The bulk keeps central-ledger's
internal bulkTransferState; DFSPs see the API state (API_STATE).
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgspec

from miniloop.bus import subjects
from miniloop.fspiop import models
from miniloop.fspiop.bulk_models import BulkTransfersIDPutResponse, BulkTransfersPostRequest, IndividualTransfer
from miniloop.fspiop.errors import FspiopError
from miniloop.fspiop.models import ErrorInformationObject, TransfersPostRequest
from miniloop.ledger import Ledger, Tx
from miniloop.services import outbox, transfers
from miniloop.services.outbox import Inbound
from miniloop.services.participants import HUB_NAME

# central-ledger's internal bulkTransferState -> the BulkTransferState a DFSP sees
API_STATE = {
    "RECEIVED": "RECEIVED", "PENDING_PREPARE": "PENDING", "PENDING_INVALID": "PENDING",
    "ACCEPTED": "ACCEPTED", "PROCESSING": "PROCESSING", "PENDING_FULFIL": "PROCESSING",
    "EXPIRING": "PROCESSING", "ABORTING": "PROCESSING",
    "COMPLETED": "COMPLETED", "EXPIRED": "COMPLETED", "REJECTED": "REJECTED", "INVALID": "REJECTED",
}
FINISHED = ("COMPLETED", "REJECTED")  # API states after which nothing changes

# bulkProcessingState of an individual transfer -> whether it is still waiting for its outcome
WAITING = "ACCEPTED"


class BulkTransfers:
    """The async face the API calls; every method is one writer command."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def prepare(self, msg: Inbound, body: BulkTransfersPostRequest) -> None:
        await self.ledger.write(prepare, msg, body)

    async def fulfil(self, msg: Inbound, bulk_id: str, body: BulkTransfersIDPutResponse) -> None:
        await self.ledger.write(fulfil, msg, bulk_id, body)

    async def reject(self, msg: Inbound, bulk_id: str, body: ErrorInformationObject) -> None:
        await self.ledger.write(reject, msg, bulk_id, body)

    async def get(self, msg: Inbound, bulk_id: str) -> None:
        await self.ledger.write(get, msg, bulk_id)


# ------------------------------------------------------------------------------------ 1. prepare


def prepare(tx: Tx, msg: Inbound, body: BulkTransfersPostRequest) -> None:
    bulk_id = body.bulk_transfer_id
    error_path = f"/bulkTransfers/{bulk_id}/error"
    existing = _bulk(tx, bulk_id)
    if existing is not None:  # a resend (tell the payer where it stands, once finished) or 3106
        if existing["prepare_hash"] != msg.body_hash:
            outbox.reply_error(tx, msg, error_path,
                               FspiopError("3106", "a bulk transfer with this id and a different body exists"))
        elif API_STATE[existing["state"]] in FINISHED:
            _send_state(tx, existing, msg.source, msg.version, msg.traceparent)
        return  # still in progress: its callback will come

    expires_at = transfers.to_utc(body.expiration)
    tx.conn.execute(
        "INSERT INTO bulk_transfer (id, bulk_quote_id, payer_fsp, payee_fsp, expiration, expires_at, state, "
        "api_version, traceparent, prepare_hash, created_date) VALUES (?, ?, ?, ?, ?, ?, 'RECEIVED', ?, ?, ?, ?)",
        (bulk_id, body.bulk_quote_id, body.payer_fsp, body.payee_fsp, body.expiration, expires_at, msg.version,
         msg.traceparent, msg.body_hash, tx.now),
    )
    _history(tx, bulk_id, ("RECEIVED", None))
    problem = _bulk_problem(tx, msg, body, expires_at)
    if problem is not None:  # the whole bulk is refused; no individual transfer is looked at
        _record_states(tx, bulk_id, ("INVALID", problem.description), error=(problem.code, problem.description))
        outbox.reply_error(tx, msg, error_path, problem)
        _event(tx, bulk_id, "INVALID", body.payer_fsp, body.payee_fsp, errorCode=problem.code,
               errorDescription=problem.description)
        return

    accepted: list[IndividualTransfer] = []
    associations = []
    for item in body.individual_transfers:
        if transfers.transfer_exists(tx, item.transfer_id):
            refusal: FspiopError | None = FspiopError("3106", "Individual transfer prepare duplicate")
            processing = "RECEIVED_DUPLICATE"
        else:
            individual = TransfersPostRequest(
                transfer_id=item.transfer_id, payee_fsp=body.payee_fsp, payer_fsp=body.payer_fsp,
                amount=item.transfer_amount, ilp_packet=item.ilp_packet, condition=item.condition,
                expiration=body.expiration, extension_list=item.extension_list,
            )
            refusal = transfers.reserve(tx, msg, individual, payee_endpoint=None, bulk_id=bulk_id)
            processing = "RECEIVED_INVALID" if refusal else WAITING
        if refusal is None:
            accepted.append(item)
            associations.append((bulk_id, item.transfer_id, processing, None, None))
        else:
            associations.append((bulk_id, item.transfer_id, processing, refusal.code, refusal.description))
    tx.conn.executemany(
        "INSERT INTO bulk_transfer_association (bulk_transfer_id, transfer_id, processing_state, error_code, "
        "error_description) VALUES (?, ?, ?, ?, ?)", associations)

    if accepted:
        _record_states(tx, bulk_id, ("ACCEPTED", None))
        _post_to_payee(tx, msg, body, accepted)
        _event(tx, bulk_id, "ACCEPTED", body.payer_fsp, body.payee_fsp)
    else:
        _record_states(tx, bulk_id, ("REJECTED", "no individual transfer was accepted"))
        _send_state(tx, _bulk(tx, bulk_id), body.payer_fsp, msg.version, msg.traceparent)
        _event(tx, bulk_id, "REJECTED", body.payer_fsp, body.payee_fsp)


def _bulk_problem(tx: Tx, msg: Inbound, body: BulkTransfersPostRequest, expires_at: str) -> FspiopError | None:
    """The first rule the bulk itself breaks, in central-ledger's order, or None."""
    if msg.source != body.payer_fsp:
        return FspiopError("3100", "FSPIOP-Source header should match Payer FSP")
    if msg.destination is not None and msg.destination != body.payee_fsp:
        return FspiopError("3100", "FSPIOP-Destination header should match Payee FSP")
    if expires_at <= tx.now:
        return FspiopError("3100", f"Expiration date {body.expiration} is already in the past")
    if body.payer_fsp == body.payee_fsp:
        return FspiopError("3100", "Payer FSP and Payee FSP should be different")
    for code, role, name in (("3202", "Payer", body.payer_fsp), ("3203", "Payee", body.payee_fsp)):
        active = _participant_active(tx, name)
        if active is None:
            return FspiopError(code, f"{role} FSP {name} is not a registered participant")
        if not active:
            return FspiopError(code, f"{role} FSP {name} is not active")
    if outbox.url_for(tx, body.payee_fsp, "POST", "/bulkTransfers") is None:
        return FspiopError("3201", f"Payee FSP {body.payee_fsp} has registered no endpoint for bulk transfers")
    return None


def _post_to_payee(tx: Tx, msg: Inbound, body: BulkTransfersPostRequest, accepted: list[IndividualTransfer]) -> None:
    """POST /bulkTransfers to the payee: the payer's own bytes when every transfer was accepted
    (its signature still holds), else the same bulk with only the accepted transfers, under the
    payer's headers without the signature, which no longer matches the body."""
    if len(accepted) == len(body.individual_transfers):
        outbox.forward(tx, msg, body.payee_fsp, "POST")
        return
    headers = {name: value for name, value in msg.forwarded.items() if name != "fspiop-signature"}
    payload = models.encode(msgspec.structs.replace(body, individual_transfers=accepted))
    outbox.send(tx, body.payee_fsp, "POST", "/bulkTransfers", headers, payload)


# ------------------------------------------------------------------------------------ 2. fulfil


def fulfil(tx: Tx, msg: Inbound, bulk_id: str, body: BulkTransfersIDPutResponse) -> None:
    error_path = f"/bulkTransfers/{bulk_id}/error"
    b = _from_its_payee(tx, msg, bulk_id)
    if b is None:
        return
    if b["fulfil_hash"] is not None:  # an answer was processed before: a resend, or a modified one
        if b["fulfil_hash"] == msg.body_hash:
            if API_STATE[b["state"]] in FINISHED:
                _send_state(tx, b, msg.source, msg.version, msg.traceparent)
        else:
            outbox.reply_error(tx, msg, error_path,
                               FspiopError("3106", "a different answer was already received for this bulk transfer"))
        return
    if body.bulk_transfer_state == "REJECTED":
        outbox.reply_error(tx, msg, error_path, FspiopError(
            "3100", f"bulkTransferState REJECTED cannot be sent here; reject with PUT {error_path}"))
        return
    if b["state"] != "ACCEPTED":
        code = "3303" if b["expires_at"] <= tx.now else "3100"
        outbox.reply_error(tx, msg, error_path,
                           FspiopError(code, f"the bulk transfer is {API_STATE[b['state']]}, not ACCEPTED"))
        return

    tx.conn.execute("UPDATE bulk_transfer SET fulfil_hash = ? WHERE id = ?", (msg.body_hash, bulk_id))
    _record_states(tx, bulk_id, ("PROCESSING", None))
    # as in central-ledger, a fulfil to the wrong destination fails every transfer of the bulk
    wrong_destination = None
    if msg.destination not in (b["payer_fsp"], HUB_NAME):
        wrong_destination = FspiopError("3100", "FSPIOP-Destination header should match Payer FSP")
    results = {}
    for result in body.individual_transfer_results or ():
        results.setdefault(result.transfer_id, result)
    outcomes = []
    for t in _waiting(tx, bulk_id):
        result = results.get(t["id"])
        problem: FspiopError | None
        if wrong_destination is not None:
            problem, processing = wrong_destination, "FULFIL_INVALID"
        elif result is None:
            problem, processing = FspiopError("3100", "the payee's answer has no result for this transfer"), "REJECTED"
        elif result.error_information is not None:  # the payee refused this one
            info = result.error_information
            transfers.abort_by_payee(tx, t, info.error_code, info.error_description, None)
            outcomes.append(("REJECTED", info.error_code, info.error_description, t["association_id"]))
            continue
        elif result.fulfilment is None:
            problem = FspiopError("3100", "the payee's result has neither a fulfilment nor errorInformation")
            processing = "REJECTED"
        else:
            problem = transfers.check_fulfilment(tx, t, result.fulfilment)
            processing = "EXPIRED" if problem is not None and problem.code == "3303" else "FULFIL_INVALID"
        if problem is None:
            transfers.commit(tx, t, result.fulfilment, msg.body_hash)
            outcomes.append(("COMPLETED", None, None, t["association_id"]))
        else:
            transfers.abort_fulfil(tx, t, problem, msg.body_hash)
            outcomes.append((processing, problem.code, problem.description, t["association_id"]))
    tx.conn.executemany("UPDATE bulk_transfer_association SET processing_state = ?, error_code = ?, "
                        "error_description = ? WHERE id = ?", outcomes)
    _complete(tx, bulk_id, ("COMPLETED", None), version=msg.version, traceparent=msg.traceparent)


# ------------------------------------------------------------------------------------ 3. reject


def reject(tx: Tx, msg: Inbound, bulk_id: str, body: ErrorInformationObject) -> None:
    b = _from_its_payee(tx, msg, bulk_id)
    if b is None:
        return
    if b["error_hash"] is not None or b["state"] != "ACCEPTED":
        if b["error_hash"] not in (None, msg.body_hash):
            outbox.reply_error(tx, msg, f"/bulkTransfers/{bulk_id}/error",
                               FspiopError("3106", "a different error was already received for this bulk transfer"))
        return  # an identical resend, or too late: the bulk has its outcome
    info = body.error_information
    tx.conn.execute("UPDATE bulk_transfer SET error_hash = ? WHERE id = ?", (msg.body_hash, bulk_id))
    outcomes = []
    for t in _waiting(tx, bulk_id):
        transfers.abort_by_payee(tx, t, info.error_code, info.error_description, None)
        outcomes.append((info.error_code, info.error_description, t["association_id"]))
    tx.conn.executemany("UPDATE bulk_transfer_association SET processing_state = 'REJECTED', error_code = ?, "
                        "error_description = ? WHERE id = ?", outcomes)
    _record_states(tx, bulk_id, ("ABORTING", info.error_description), ("REJECTED", info.error_description),
                   error=(info.error_code, info.error_description))
    outbox.forward(tx, msg, b["payer_fsp"], "PUT")
    _event(tx, bulk_id, "REJECTED", b["payer_fsp"], b["payee_fsp"], errorCode=info.error_code)


# ------------------------------------------------------------------------------------ 4. get


def get(tx: Tx, msg: Inbound, bulk_id: str) -> None:
    error_path = f"/bulkTransfers/{bulk_id}/error"
    b = _bulk(tx, bulk_id)
    if b is None:
        outbox.reply_error(tx, msg, error_path, FspiopError("3210", f"bulk transfer {bulk_id} is not known"))
    elif msg.source not in (b["payer_fsp"], b["payee_fsp"]):
        outbox.reply_error(tx, msg, error_path,
                           FspiopError("3000", "only the payer and the payee may ask about a bulk transfer"))
    else:
        _send_state(tx, b, msg.source, msg.version, msg.traceparent)


# ------------------------------------------------------------------------------------ 5. expiry


def transfers_expired(tx: Tx, in_bulks: dict[str, list[str]], expired: FspiopError) -> None:
    """The sweeper expired these transfers of these bulks (transfers.expire_due, same command):
    record it, and complete each bulk none of whose transfers is still waiting."""
    for bulk_id, transfer_ids in in_bulks.items():
        tx.conn.executemany(
            "UPDATE bulk_transfer_association SET processing_state = 'EXPIRED', error_code = ?, error_description = ? "
            "WHERE transfer_id = ? AND bulk_transfer_id = ? AND processing_state = ?",
            [(expired.code, expired.description, transfer_id, bulk_id, WAITING) for transfer_id in transfer_ids])
        b = _bulk(tx, bulk_id)
        assert b is not None
        if API_STATE[b["state"]] in FINISHED:
            continue
        still_waiting = tx.conn.execute(
            "SELECT 1 FROM bulk_transfer_association WHERE bulk_transfer_id = ? AND processing_state = ? LIMIT 1",
            (bulk_id, WAITING)).fetchone()
        if still_waiting:  # a bulk larger than one sweep: the rest expire in the next command
            if b["state"] != "EXPIRING":
                _record_states(tx, bulk_id, ("EXPIRING", None))
                _event(tx, bulk_id, "EXPIRING", b["payer_fsp"], b["payee_fsp"])
            continue
        steps = [("COMPLETED", "expired")] if b["state"] == "EXPIRING" else [("EXPIRING", None), ("COMPLETED", "expired")]
        _complete(tx, bulk_id, *steps, version=b["api_version"], traceparent=b["traceparent"])


# ------------------------------------------------------------------------------------ shared steps


def _complete(tx: Tx, bulk_id: str, *steps: tuple[str, str | None], version: str, traceparent: str | None) -> None:
    """Every transfer of the bulk has its outcome: COMPLETED, and payer and payee get the results."""
    _record_states(tx, bulk_id, *steps)
    b = _bulk(tx, bulk_id)
    assert b is not None
    body = _state_body(tx, b)
    for to in (b["payer_fsp"], b["payee_fsp"]):
        outbox.hub_message(tx, to, "PUT", f"/bulkTransfers/{bulk_id}", body, version, traceparent)
    _event(tx, bulk_id, "COMPLETED", b["payer_fsp"], b["payee_fsp"])


def _from_its_payee(tx: Tx, msg: Inbound, bulk_id: str) -> sqlite3.Row | None:
    """The bulk a fulfil or reject is about, if it exists and `msg` comes from its payee;
    otherwise the sender gets an error and nothing changes."""
    b = _bulk(tx, bulk_id)
    error_path = f"/bulkTransfers/{bulk_id}/error"
    if b is None:
        outbox.reply_error(tx, msg, error_path, FspiopError("3210", f"bulk transfer {bulk_id} is not known"))
    elif msg.source != b["payee_fsp"]:
        outbox.reply_error(tx, msg, error_path, FspiopError("3100", "FSPIOP-Source header should match Payee FSP"))
    else:
        return b
    return None


def _waiting(tx: Tx, bulk_id: str) -> list[sqlite3.Row]:
    """The bulk's transfers still waiting for their outcome (reserved), in the bulk's order, each
    with the columns the transfer steps read and its association_id."""
    rows = tx.conn.execute(
        f"SELECT a.id AS association_id, {transfers.TRANSFER_COLUMNS} FROM bulk_transfer_association a "
        "JOIN transfer t ON t.id = a.transfer_id JOIN transfer_fspiop f ON f.transfer_id = t.id "
        "WHERE a.bulk_transfer_id = ? AND a.processing_state = ? ORDER BY a.id",
        (bulk_id, WAITING)).fetchall()
    for t in rows:
        assert t["state"] == "RESERVED", f"transfer {t['id']} of bulk {bulk_id} is {t['state']}, yet waiting"
    return rows


def _record_states(tx: Tx, bulk_id: str, *steps: tuple[str, str | None],
                   error: tuple[str, str] | None = None) -> None:
    """Move a bulk through `steps` ((state, reason) pairs), each appended to its history; a final
    state stamps completed_date, an `error` is recorded as the bulk's."""
    state = steps[-1][0]
    if API_STATE[state] in FINISHED:
        tx.conn.execute("UPDATE bulk_transfer SET state = ?, completed_date = ? WHERE id = ?", (state, tx.now, bulk_id))
    else:
        tx.conn.execute("UPDATE bulk_transfer SET state = ? WHERE id = ?", (state, bulk_id))
    if error is not None:
        tx.conn.execute("UPDATE bulk_transfer SET error_code = ?, error_description = ? WHERE id = ?",
                        (*error, bulk_id))
    _history(tx, bulk_id, *steps)


def _history(tx: Tx, bulk_id: str, *steps: tuple[str, str | None]) -> None:
    tx.conn.executemany(
        "INSERT INTO bulk_transfer_state_change (bulk_transfer_id, state, reason, created_date) VALUES (?, ?, ?, ?)",
        [(bulk_id, state, reason, tx.now) for state, reason in steps],
    )


def _send_state(tx: Tx, b: sqlite3.Row, to: str, version: str, traceparent: str | None) -> None:
    outbox.hub_message(tx, to, "PUT", f"/bulkTransfers/{b['id']}", _state_body(tx, b), version, traceparent)


def _state_body(tx: Tx, b: sqlite3.Row) -> dict[str, Any]:
    """What GET /bulkTransfers/{ID} answers, and what payer and payee get at the end: the API
    state, when it ended, and the result of every individual transfer that has one (a fulfilment
    for a committed transfer, errorInformation for the others), in the bulk's order."""
    state = API_STATE[b["state"]]
    body: dict[str, Any] = {"bulkTransferState": state}
    if b["completed_date"] and state in FINISHED:
        body["completedTimestamp"] = b["completed_date"]
    results = []
    for row in tx.conn.execute(
        "SELECT a.transfer_id, a.processing_state, a.error_code, a.error_description, f.fulfilment "
        "FROM bulk_transfer_association a LEFT JOIN transfer_fspiop f "
        "ON f.transfer_id = a.transfer_id AND a.processing_state = 'COMPLETED' "
        "WHERE a.bulk_transfer_id = ? ORDER BY a.id", (b["id"],)):
        if row["processing_state"] == "COMPLETED":
            results.append({"transferId": row["transfer_id"], "fulfilment": row["fulfilment"]})
        elif row["error_code"] is not None:
            results.append({"transferId": row["transfer_id"], "errorInformation": {
                "errorCode": row["error_code"], "errorDescription": row["error_description"]}})
    if results:
        body["individualTransferResults"] = results
    return body


def _bulk(tx: Tx, bulk_id: str) -> sqlite3.Row | None:
    return tx.conn.execute("SELECT * FROM bulk_transfer WHERE id = ?", (bulk_id,)).fetchone()


def _participant_active(tx: Tx, name: str) -> bool | None:
    """Whether `name` is active; None if there is no such participant."""
    def load() -> bool | None:
        row = tx.conn.execute("SELECT is_active FROM participant WHERE name = ?", (name,)).fetchone()
        return None if row is None else bool(row["is_active"])
    return tx.cached(("participant active", name), load)


def _event(tx: Tx, bulk_id: str, state: str, payer: str, payee: str, **fields: Any) -> None:
    """bulkTransfer.<state>, with how many of its transfers are in each bulkProcessingState."""
    counts = {row["processing_state"]: row["n"] for row in tx.conn.execute(
        "SELECT processing_state, COUNT(*) AS n FROM bulk_transfer_association WHERE bulk_transfer_id = ? "
        "GROUP BY processing_state", (bulk_id,))}
    tx.emit(subjects.bulk_transfer(bulk_id, state), {
        "type": f"bulkTransfer.{state}", "bulkTransferId": bulk_id, "state": state,
        "bulkTransferState": API_STATE[state], "payerFsp": payer, "payeeFsp": payee,
        "individualTransfers": sum(counts.values()), "processingStates": counts, **fields,
    })
