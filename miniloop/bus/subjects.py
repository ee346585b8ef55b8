"""The NATS subjects miniloop publishes on, in one place.

Every state change the hub makes is published after it is committed to the ledger, on

    ml.event.<entity>.<key>.<what happened>

so that `nats sub 'ml.event.>'` shows everything, `ml.event.participant.greenbank.>` one DFSP,
and `ml.event.transfer.*.COMMITTED` every commit. Keys are names and ids that are valid subject
tokens (participant names are alphanumeric; ids are UUIDs or numbers). Party identifiers may hold
dots (e-mail addresses), so party events put the identifier in the body, not the subject.

The body of every event is JSON: {"type": "<entity>.<what>", "at": "<ISO time>", ...fields}.
docs/events.md lists them.
"""

from __future__ import annotations

PREFIX = "ml.event"
ALL = f"{PREFIX}.>"
STREAM = "MINILOOP_EVENTS"  # the JetStream stream that keeps recent events for late readers


def participant(name: str, what: str) -> str:
    return f"{PREFIX}.participant.{name}.{what}"


def transfer(transfer_id: str, state: str) -> str:
    return f"{PREFIX}.transfer.{transfer_id}.{state}"


def bulk_transfer(bulk_transfer_id: str, state: str) -> str:
    return f"{PREFIX}.bulkTransfer.{bulk_transfer_id}.{state}"


def quote(quote_id: str, what: str) -> str:
    return f"{PREFIX}.quote.{quote_id}.{what}"


def transaction_request(transaction_request_id: str, what: str) -> str:
    return f"{PREFIX}.transactionRequest.{transaction_request_id}.{what}"


def authorization(transaction_request_id: str, what: str) -> str:
    return f"{PREFIX}.authorization.{transaction_request_id}.{what}"


def transaction(transaction_id: str, what: str) -> str:
    return f"{PREFIX}.transaction.{transaction_id}.{what}"


def bulk_quote(bulk_quote_id: str, what: str) -> str:
    return f"{PREFIX}.bulkQuote.{bulk_quote_id}.{what}"


def consent_request(consent_request_id: str, what: str) -> str:
    """Third-party API: a PISP's request for a consent (account linking)."""
    return f"{PREFIX}.consentRequest.{consent_request_id}.{what}"


def consent(consent_id: str, what: str) -> str:
    return f"{PREFIX}.consent.{consent_id}.{what}"


def accounts(dfsp: str, what: str) -> str:
    """A PISP asking a DFSP for a user's accounts; keyed by the DFSP (a user id may hold dots)."""
    return f"{PREFIX}.accounts.{dfsp}.{what}"


def thirdparty_transaction(transaction_request_id: str, what: str) -> str:
    return f"{PREFIX}.thirdpartyTransaction.{transaction_request_id}.{what}"


def thirdparty_authorization(authorization_request_id: str, what: str) -> str:
    return f"{PREFIX}.thirdpartyAuthorization.{authorization_request_id}.{what}"


def thirdparty_verification(verification_request_id: str, what: str) -> str:
    return f"{PREFIX}.thirdpartyVerification.{verification_request_id}.{what}"


def service(service_type: str, what: str) -> str:
    """GET /services/{ServiceType}, answered by the hub."""
    return f"{PREFIX}.service.{service_type}.{what}"


def lookup(party_id_type: str, what: str) -> str:
    return f"{PREFIX}.lookup.{party_id_type}.{what}"


def callback(participant: str, what: str) -> str:
    return f"{PREFIX}.callback.{participant}.{what}"


def settlement_window(window_id: int, state: str) -> str:
    return f"{PREFIX}.settlementWindow.{window_id}.{state}"


def settlement(settlement_id: int, state: str) -> str:
    return f"{PREFIX}.settlement.{settlement_id}.{state}"


def settlement_model(name: str, what: str) -> str:
    return f"{PREFIX}.settlementModel.{name}.{what}"


def oracle(oracle_id: int, what: str) -> str:
    return f"{PREFIX}.oracle.{oracle_id}.{what}"


def party(party_id_type: str, what: str) -> str:
    return f"{PREFIX}.party.{party_id_type}.{what}"


def request(source: str, what: str) -> str:
    """A request the hub answered itself, keyed by its FSPIOP-Source (`unknown` when unusable)."""
    return f"{PREFIX}.request.{source}.{what}"


def hub(what: str) -> str:
    return f"{PREFIX}.hub.{what}"
