"""One module per Mojaloop service. Services check their inputs, apply rules, write through the
ledger's one writer and announce what changed; they never build an HTTP response."""
