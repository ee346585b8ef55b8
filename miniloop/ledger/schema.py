"""The ledger's schema, as an ordered list of migrations.

`PRAGMA user_version` records how many migrations a database has had. Opening a data directory
applies the missing ones in one transaction each, so a fresh directory and one written by an older
miniloop both come up; a database written by a newer miniloop is refused rather than guessed at.

The tables follow central-ledger's data model where users can see it (participant,
participantCurrency = an account, participantPosition and its append-only change history,
participantLimit, participantEndpoint, settlementModel, settlementWindow, transfer and its state
changes), with snake_case names. Every amount is an INTEGER count of 1/10,000 units (see
miniloop.money). Every time is ISO 8601 UTC text with milliseconds.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: participants, their accounts and positions, limits, endpoints, settlement models, windows
    """
    CREATE TABLE currency (
        code TEXT PRIMARY KEY,
        created_date TEXT NOT NULL
    );
    CREATE TABLE ledger_account_type (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        description TEXT,
        is_active INTEGER NOT NULL DEFAULT 1,
        is_settleable INTEGER NOT NULL DEFAULT 0,
        created_date TEXT NOT NULL
    );
    INSERT INTO ledger_account_type (id, name, description, is_active, is_settleable, created_date) VALUES
        (1, 'POSITION', 'Typical accounts from which a DFSP provisions transfers', 1, 1, '1970-01-01T00:00:00.000Z'),
        (2, 'SETTLEMENT', 'Reflects the individual DFSP Settlement Accounts as held at the Settlement Bank', 1, 0, '1970-01-01T00:00:00.000Z'),
        (3, 'HUB_RECONCILIATION', 'The Hub counterparty of funds moved in and out of DFSP settlement accounts', 1, 0, '1970-01-01T00:00:00.000Z'),
        (4, 'HUB_MULTILATERAL_SETTLEMENT', 'The Hub counterparty of multilateral net settlement', 1, 0, '1970-01-01T00:00:00.000Z'),
        (5, 'INTERCHANGE_FEE', NULL, 1, 1, '1970-01-01T00:00:00.000Z'),
        (6, 'INTERCHANGE_FEE_SETTLEMENT', NULL, 1, 0, '1970-01-01T00:00:00.000Z');

    CREATE TABLE participant (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        is_active INTEGER NOT NULL DEFAULT 1,
        is_proxy INTEGER NOT NULL DEFAULT 0,
        created_date TEXT NOT NULL,
        created_by TEXT NOT NULL DEFAULT 'miniloop'
    );
    INSERT INTO participant (id, name, is_active, is_proxy, created_date, created_by)
        VALUES (1, 'Hub', 1, 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), 'seeds');

    -- central-ledger calls an account a participantCurrency
    CREATE TABLE account (
        id INTEGER PRIMARY KEY,
        participant_id INTEGER NOT NULL REFERENCES participant(id),
        currency TEXT NOT NULL,
        ledger_account_type_id INTEGER NOT NULL REFERENCES ledger_account_type(id),
        is_active INTEGER NOT NULL DEFAULT 0,
        created_date TEXT NOT NULL,
        UNIQUE (participant_id, currency, ledger_account_type_id)
    );
    CREATE TABLE position (
        account_id INTEGER PRIMARY KEY REFERENCES account(id),
        value INTEGER NOT NULL DEFAULT 0,
        reserved_value INTEGER NOT NULL DEFAULT 0,
        changed_date TEXT NOT NULL
    );
    -- append-only: one row per change, with the value after it
    CREATE TABLE position_change (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES account(id),
        transfer_id TEXT,
        change INTEGER NOT NULL,
        value INTEGER NOT NULL,
        reserved_value INTEGER NOT NULL DEFAULT 0,
        created_date TEXT NOT NULL
    );
    CREATE INDEX position_change_account ON position_change(account_id, id);
    CREATE INDEX position_change_transfer ON position_change(transfer_id);

    CREATE TABLE participant_limit (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL UNIQUE REFERENCES account(id),
        limit_type TEXT NOT NULL DEFAULT 'NET_DEBIT_CAP',
        value INTEGER NOT NULL,
        threshold_alarm_percentage INTEGER NOT NULL DEFAULT 10,
        changed_date TEXT NOT NULL
    );
    CREATE TABLE participant_endpoint (
        participant_id INTEGER NOT NULL REFERENCES participant(id),
        endpoint_type TEXT NOT NULL,
        value TEXT NOT NULL,
        changed_date TEXT NOT NULL,
        PRIMARY KEY (participant_id, endpoint_type)
    );

    CREATE TABLE settlement_model (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        settlement_granularity TEXT NOT NULL,
        settlement_interchange TEXT NOT NULL,
        settlement_delay TEXT NOT NULL,
        currency TEXT,
        require_liquidity_check INTEGER NOT NULL,
        ledger_account_type_id INTEGER NOT NULL REFERENCES ledger_account_type(id),
        settlement_account_type_id INTEGER NOT NULL REFERENCES ledger_account_type(id),
        auto_position_reset INTEGER NOT NULL,
        is_active INTEGER NOT NULL DEFAULT 1,
        created_date TEXT NOT NULL
    );

    CREATE TABLE settlement_window (
        id INTEGER PRIMARY KEY,
        state TEXT NOT NULL,
        reason TEXT,
        created_date TEXT NOT NULL,
        changed_date TEXT NOT NULL
    );
    CREATE UNIQUE INDEX one_open_window ON settlement_window(state) WHERE state = 'OPEN';
    CREATE TABLE settlement_window_state_change (
        id INTEGER PRIMARY KEY,
        settlement_window_id INTEGER NOT NULL REFERENCES settlement_window(id),
        state TEXT NOT NULL,
        reason TEXT,
        created_date TEXT NOT NULL
    );
    INSERT INTO settlement_window (id, state, reason, created_date, changed_date)
        VALUES (1, 'OPEN', 'initial window', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
                strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
    INSERT INTO settlement_window_state_change (settlement_window_id, state, reason, created_date)
        VALUES (1, 'OPEN', 'initial window', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
    """,
    # 2: transfers (funds in and out now; FSPIOP transfers build on the same tables)
    """
    CREATE TABLE transfer (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,               -- FUNDS_IN, FUNDS_OUT, FSPIOP, SETTLEMENT
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        state TEXT NOT NULL,              -- central-ledger's internal state
        external_reference TEXT,
        reason TEXT,
        expires_at TEXT,
        settlement_window_id INTEGER REFERENCES settlement_window(id),
        created_date TEXT NOT NULL,
        completed_date TEXT
    );
    CREATE INDEX transfer_state ON transfer(state);
    -- the accounts a transfer moves money between; amount > 0 is a debit, < 0 a credit
    CREATE TABLE transfer_participant (
        id INTEGER PRIMARY KEY,
        transfer_id TEXT NOT NULL REFERENCES transfer(id),
        account_id INTEGER NOT NULL REFERENCES account(id),
        role TEXT NOT NULL,
        ledger_entry_type TEXT NOT NULL,
        amount INTEGER NOT NULL
    );
    CREATE INDEX transfer_participant_transfer ON transfer_participant(transfer_id);
    -- append-only history of every state a transfer went through
    CREATE TABLE transfer_state_change (
        id INTEGER PRIMARY KEY,
        transfer_id TEXT NOT NULL REFERENCES transfer(id),
        state TEXT NOT NULL,
        reason TEXT,
        created_date TEXT NOT NULL
    );
    CREATE INDEX transfer_state_change_transfer ON transfer_state_change(transfer_id, id);
    """,
    # 3: account lookup: the oracles registered through the ALS admin API and the built-in oracle
    """
    CREATE TABLE oracle (
        id INTEGER PRIMARY KEY,
        oracle_id_type TEXT NOT NULL,
        endpoint_value TEXT NOT NULL,
        endpoint_type TEXT NOT NULL DEFAULT 'URL',
        currency TEXT,
        is_default INTEGER NOT NULL DEFAULT 0,
        is_active INTEGER NOT NULL DEFAULT 1,
        created_date TEXT NOT NULL
    );
    CREATE TABLE party (
        party_id_type TEXT NOT NULL,
        party_identifier TEXT NOT NULL,
        party_sub_id TEXT NOT NULL DEFAULT '',
        currency TEXT NOT NULL DEFAULT '',
        fsp_id TEXT NOT NULL,
        created_date TEXT NOT NULL,
        PRIMARY KEY (party_id_type, party_identifier, party_sub_id, currency)
    );
    """,
    # 4: FSPIOP: transfers' contract details, quotes, and the outbox of messages owed to DFSPs
    """
    CREATE TABLE transfer_fspiop (
        transfer_id TEXT PRIMARY KEY REFERENCES transfer(id),
        payer_fsp TEXT NOT NULL,
        payee_fsp TEXT NOT NULL,
        payer_account_id INTEGER REFERENCES account(id),
        payee_account_id INTEGER REFERENCES account(id),
        ilp_condition TEXT NOT NULL,
        ilp_packet TEXT NOT NULL,
        expiration TEXT NOT NULL,         -- as the payer sent it; transfer.expires_at is it in UTC
        api_version TEXT NOT NULL,        -- the Content-Type version of the prepare
        traceparent TEXT,                 -- the prepare's, so the hub's later messages join its trace
        prepare_hash TEXT NOT NULL,
        fulfil_hash TEXT,
        fulfilment TEXT,
        error_hash TEXT,
        error_code TEXT,
        error_description TEXT
    );
    CREATE INDEX transfer_expiring ON transfer(expires_at) WHERE state IN ('RECEIVED_PREPARE', 'RESERVED');
    CREATE TABLE quote (
        id TEXT PRIMARY KEY,
        transaction_id TEXT NOT NULL,
        payer_fsp TEXT NOT NULL,
        payee_fsp TEXT NOT NULL,
        amount_type TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        state TEXT NOT NULL,              -- RECEIVED, ANSWERED, REJECTED
        transfer_amount INTEGER,
        ilp_condition TEXT,
        expiration TEXT,
        error_code TEXT,
        created_date TEXT NOT NULL,
        changed_date TEXT NOT NULL
    );
    -- messages the hub owes to DFSPs: written in the same transaction as the change that causes
    -- them, deleted once delivered, re-sent after a restart
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        participant TEXT NOT NULL,
        method TEXT NOT NULL,
        url TEXT NOT NULL,
        headers TEXT NOT NULL,            -- JSON object
        body BLOB,
        on_failure TEXT,                  -- JSON: the error owed to the sender if delivery fails
        created_date TEXT NOT NULL
    );
    -- what a hub remembers about itself between runs (e.g. the built-in oracle's URL)
    CREATE TABLE hub_setting (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 5: settlement: what each closed window holds, settlements, and their accounts' progress
    """
    -- one row per (window, ledger account type, currency) settled by a NET model, made at close
    CREATE TABLE settlement_window_content (
        id INTEGER PRIMARY KEY,
        settlement_window_id INTEGER NOT NULL REFERENCES settlement_window(id),
        ledger_account_type_id INTEGER NOT NULL REFERENCES ledger_account_type(id),
        currency TEXT NOT NULL,
        settlement_model_id INTEGER NOT NULL REFERENCES settlement_model(id),
        state TEXT NOT NULL,              -- CLOSED, PENDING_SETTLEMENT, SETTLED, ABORTED
        settlement_id INTEGER REFERENCES settlement(id),
        created_date TEXT NOT NULL,
        changed_date TEXT NOT NULL,
        UNIQUE (settlement_window_id, ledger_account_type_id, currency)
    );
    -- per content and account: the sum of the position changes its committed transfers made,
    -- split into what it paid (PAYER_DFSP, > 0) and what it received (PAYEE_DFSP, < 0)
    CREATE TABLE settlement_content_aggregation (
        id INTEGER PRIMARY KEY,
        settlement_window_content_id INTEGER NOT NULL REFERENCES settlement_window_content(id),
        account_id INTEGER NOT NULL REFERENCES account(id),
        role TEXT NOT NULL,
        amount INTEGER NOT NULL,
        state TEXT NOT NULL,
        settlement_id INTEGER REFERENCES settlement(id),
        UNIQUE (settlement_window_content_id, account_id, role)
    );
    CREATE TABLE settlement (
        id INTEGER PRIMARY KEY,
        settlement_model_id INTEGER NOT NULL REFERENCES settlement_model(id),
        state TEXT NOT NULL,
        reason TEXT,
        created_date TEXT NOT NULL,
        changed_date TEXT NOT NULL
    );
    CREATE TABLE settlement_state_change (
        id INTEGER PRIMARY KEY,
        settlement_id INTEGER NOT NULL REFERENCES settlement(id),
        state TEXT NOT NULL,
        reason TEXT,
        created_date TEXT NOT NULL
    );
    CREATE TABLE settlement_settlement_window (
        settlement_id INTEGER NOT NULL REFERENCES settlement(id),
        settlement_window_id INTEGER NOT NULL REFERENCES settlement_window(id),
        created_date TEXT NOT NULL,
        PRIMARY KEY (settlement_id, settlement_window_id)
    );
    -- central-settlement's settlementParticipantCurrency: one account's net amount in a settlement
    -- (> 0: a net sender, it owes; < 0: a net recipient) and how far the settlement bank got
    CREATE TABLE settlement_account (
        id INTEGER PRIMARY KEY,
        settlement_id INTEGER NOT NULL REFERENCES settlement(id),
        account_id INTEGER NOT NULL REFERENCES account(id),
        net_amount INTEGER NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        external_reference TEXT,
        settlement_transfer_id TEXT,
        created_date TEXT NOT NULL,
        changed_date TEXT NOT NULL,
        UNIQUE (settlement_id, account_id)
    );
    CREATE TABLE settlement_account_state_change (
        id INTEGER PRIMARY KEY,
        settlement_account_id INTEGER NOT NULL REFERENCES settlement_account(id),
        state TEXT NOT NULL,
        reason TEXT,
        external_reference TEXT,
        created_date TEXT NOT NULL
    );
    CREATE INDEX transfer_window ON transfer(settlement_window_id) WHERE settlement_window_id IS NOT NULL;
    """,
    # 6: bulk transfers: the bulk, its history, and the individual transfers it carried (each one
    # an ordinary FSPIOP transfer, linked to its bulk by transfer_fspiop.bulk_transfer_id)
    """
    CREATE TABLE bulk_transfer (
        id TEXT PRIMARY KEY,
        bulk_quote_id TEXT NOT NULL,
        payer_fsp TEXT NOT NULL,
        payee_fsp TEXT NOT NULL,
        expiration TEXT NOT NULL,         -- as the payer sent it; expires_at is it in UTC
        expires_at TEXT NOT NULL,
        state TEXT NOT NULL,              -- central-ledger's internal bulkTransferState
        api_version TEXT NOT NULL,        -- the Content-Type version of the POST
        traceparent TEXT,
        prepare_hash TEXT NOT NULL,
        fulfil_hash TEXT,                 -- the payee's PUT /bulkTransfers/{ID}
        error_hash TEXT,                  -- the payee's PUT /bulkTransfers/{ID}/error
        error_code TEXT,
        error_description TEXT,
        created_date TEXT NOT NULL,
        completed_date TEXT
    );
    CREATE TABLE bulk_transfer_state_change (
        id INTEGER PRIMARY KEY,
        bulk_transfer_id TEXT NOT NULL REFERENCES bulk_transfer(id),
        state TEXT NOT NULL,
        reason TEXT,
        created_date TEXT NOT NULL
    );
    CREATE INDEX bulk_transfer_state_change_bulk ON bulk_transfer_state_change(bulk_transfer_id, id);
    -- central-ledger's bulkTransferAssociation: one row per individual transfer, in the bulk's
    -- order, with its bulkProcessingState and the error it ended with. transfer_id is no
    -- reference: a duplicate's id names a transfer of someone else.
    CREATE TABLE bulk_transfer_association (
        id INTEGER PRIMARY KEY,
        bulk_transfer_id TEXT NOT NULL REFERENCES bulk_transfer(id),
        transfer_id TEXT NOT NULL,
        processing_state TEXT NOT NULL,
        error_code TEXT,
        error_description TEXT
    );
    CREATE INDEX bulk_transfer_association_bulk ON bulk_transfer_association(bulk_transfer_id, processing_state);
    CREATE INDEX bulk_transfer_association_transfer ON bulk_transfer_association(transfer_id);
    ALTER TABLE transfer_fspiop ADD COLUMN bulk_transfer_id TEXT REFERENCES bulk_transfer(id);
    """,
    # 7: the hub-hosted auth-service (participant centralAuth, miniloop.services.auth_service): the
    # consents registered with it and their credentials, and the verifications it answered.
    # A consent is never deleted: a revoked one keeps its row, status REVOKED and revoked_date.
    """
    CREATE TABLE consent (
        id TEXT PRIMARY KEY,              -- consentId
        participant TEXT NOT NULL,        -- the DFSP that registered it (FSPIOP-Source of POST /consents)
        consent_request_id TEXT,
        scopes TEXT NOT NULL,             -- JSON: [{"address", "actions"}], as registered
        status TEXT NOT NULL,             -- ISSUED, REVOKED
        credential_type TEXT NOT NULL,    -- GENERIC, FIDO
        credential_id BLOB,               -- FIDO: the WebAuthn credential id
        public_key BLOB NOT NULL,         -- GENERIC: DER SubjectPublicKeyInfo; FIDO: the COSE_Key (CBOR)
        counter INTEGER NOT NULL DEFAULT 0,  -- FIDO: the authenticator's signature counter
        challenge TEXT NOT NULL,          -- the derived challenge the credential signed
        request_hash TEXT NOT NULL,       -- of the POST /consents body: a resend from a conflict
        created_date TEXT NOT NULL,
        revoked_date TEXT
    );
    CREATE INDEX consent_participant ON consent(participant);
    CREATE TABLE consent_verification (
        id TEXT PRIMARY KEY,              -- verificationRequestId
        consent_id TEXT NOT NULL,
        participant TEXT NOT NULL,        -- the DFSP that asked
        signed_payload_type TEXT NOT NULL,
        error_code TEXT,                  -- NULL: VERIFIED
        reason TEXT,
        request_hash TEXT NOT NULL,
        created_date TEXT NOT NULL
    );
    CREATE INDEX consent_verification_consent ON consent_verification(consent_id);
    """,
    # 8: JWS (FSPIOP-Signature): the public key a DFSP registered through the Admin API
    # (PUT /participants/{name}/jwsKey), SubjectPublicKeyInfo PEM; NULL: none, its requests are
    # not checked even with --verify-signatures (docs/reliability.md, "Security")
    """
    ALTER TABLE participant ADD COLUMN jws_public_key TEXT;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
