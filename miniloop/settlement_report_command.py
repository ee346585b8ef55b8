"""`miniloop settlement report`: a settlement window's net positions, as a table (and CSV).

Reads the ledger file read-only, as `miniloop ledger check` does (miniloop.ledger.check), in one
read transaction: it may run while the hub runs, and never writes. The numbers are those of
GET /v2/settlementWindows/{id}/positions (miniloop.services.settlement_report).
"""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
from pathlib import Path
from typing import TextIO

from miniloop import config
from miniloop.errors import MiniloopError
from miniloop.ledger.check import _open
from miniloop.ledger.store import DB_FILE
from miniloop.money import format_amount
from miniloop.services.settlement_report import WindowNotFound, WindowPositions, default_window, window_positions

CSV_HEADER = ("window", "participant", "currency", "sent", "received", "net", "transfers")


def report(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    data_dir = config.load({"data_dir": args.data_dir}, args.config).data_dir
    db_path = data_dir / DB_FILE
    if not db_path.is_file():
        raise MiniloopError(f"no ledger in {data_dir} ({DB_FILE} is not there): give the hub's --data-dir")
    found = read(db_path, args.window)
    if args.csv is not None:
        write_csv(found, args.csv)
    out.write(render(found))
    return 0


def read(db_path: Path, window_id: int | None) -> WindowPositions:
    """The report of `window_id`, or of the default window (settlement_report.default_window)."""
    conn = _open(db_path)
    try:
        conn.execute("BEGIN")  # one snapshot
        if window_id is None:
            window_id = default_window(conn)
            if window_id is None:
                raise MiniloopError(f"the ledger {db_path} has no settlement window")
        try:
            return window_positions(conn, window_id)
        except WindowNotFound:
            first, last = conn.execute("SELECT MIN(id), MAX(id) FROM settlement_window").fetchone()
            known = f"windows {first} to {last}" if first != last else f"window {first}"
            raise MiniloopError(f"there is no settlement window {window_id} in {db_path} ({known})") from None
    except sqlite3.DatabaseError as exc:
        raise MiniloopError(f"cannot read the ledger {db_path}: {exc}") from None
    finally:
        conn.close()


def write_csv(found: WindowPositions, path: Path) -> None:
    """The per-participant rows; amounts as decimal text ("12.5"), like the table."""
    try:
        with open(path, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(CSV_HEADER)
            for p in found.positions:
                writer.writerow((found.window_id, p.participant, p.currency, format_amount(p.sent),
                                 format_amount(p.received), format_amount(p.net), p.transfers))
    except OSError as exc:
        raise MiniloopError(f"cannot write the CSV file {path}: {exc.strerror or exc}") from None


# ------------------------------------------------------------------------------------ the table


def render(found: WindowPositions) -> str:
    lines = [heading(found), ""]
    if not found.positions:
        lines.append("No committed transfers in this window.")
        return "\n".join(lines) + "\n"
    rows = [(p.participant, p.currency, format_amount(p.sent), format_amount(p.received), format_amount(p.net),
             str(p.transfers), p.verdict) for p in found.positions]
    totals = [("total", t.currency, format_amount(t.sent), format_amount(t.received), format_amount(t.net),
               str(t.transfers), "") for t in found.totals()]
    lines += table(("participant", "currency", "sent", "received", "net", "transfers", ""), rows, totals)
    lines += ["", "Net obligations between participants:"]
    obligations = found.obligations()
    if not obligations:
        lines.append("  none: every pair is even")
    payers = max((len(o.payer) for o in obligations), default=0)
    payees = max((len(o.payee) for o in obligations), default=0)
    amounts = aligned([format_amount(o.amount) for o in obligations])
    width = max((len(a) for a in amounts), default=0)
    for o, amount in zip(obligations, amounts):
        lines.append(f"  {o.payer:<{payers}}  pays  {o.payee:<{payees}}  {amount:>{width}}  {o.currency}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def heading(found: WindowPositions) -> str:
    if found.state == "OPEN":
        return f"Settlement window {found.window_id}: OPEN, opened {found.created_date} (live: transfers so far)"
    closed = f", closed {found.closed_date}" if found.closed_date else ""
    return f"Settlement window {found.window_id}: {found.state}, opened {found.created_date}{closed}"


NUMERIC = (2, 3, 4, 5)  # sent, received, net, transfers


def table(header: tuple[str, ...], rows: list[tuple[str, ...]], totals: list[tuple[str, ...]]) -> list[str]:
    """Text columns left-aligned, numbers aligned on their decimal point; totals under a rule."""
    columns = list(zip(header, *rows, *totals))
    cells = [list(c) for c in columns]
    for i in NUMERIC:
        cells[i] = [cells[i][0], *aligned(cells[i][1:])]
    widths = [max(len(c) for c in column) for column in cells]
    count = 1 + len(rows)

    def line(k: int) -> str:
        return "  ".join(cells[i][k].rjust(widths[i]) if i in NUMERIC else cells[i][k].ljust(widths[i])
                         for i in range(len(cells)))

    out = [line(k) for k in range(count)]
    out.append("  ".join("-" * w for w in widths[:-1]))
    out += [line(k) for k in range(count, count + len(totals))]
    return out


def aligned(numbers: list[str]) -> list[str]:
    """Pad decimal texts on the right so their decimal points line up once right-aligned."""
    decimals = max((len(n) - n.index(".") if "." in n else 0 for n in numbers), default=0)
    return [n + " " * (decimals - (len(n) - n.index(".") if "." in n else 0)) for n in numbers]
