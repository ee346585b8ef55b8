"""The ledger: SQLite in WAL mode, versioned migrations, one writer with group commit."""

from miniloop.ledger.store import Ledger
from miniloop.ledger.writer import Tx, utc_now

__all__ = ["Ledger", "Tx", "utc_now"]
