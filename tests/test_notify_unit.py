"""The notifier (miniloop.notify) against a real SQLite ledger: a message is never skipped.

Why a unit test: the race it pins down needs an exact interleaving. Delivered messages are
deleted from the outbox in batches; SQLite then reuses their row ids for new messages, and the
writer hands a new message to the notifier as soon as its batch commits. If the notifier still
counted the old id as known at that moment, it skipped the new message: a callback owed for a
request the hub had answered 202 was never sent (seen as a lost callback under load).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from miniloop.ledger import Ledger, Tx
from miniloop.notify import Notifier
from miniloop.services import outbox


def _insert(tx: Tx, url: str) -> outbox.Delivery:
    row = tx.conn.execute(
        "INSERT INTO outbox (participant, method, url, headers, body, created_date) "
        "VALUES ('dfsp', 'PUT', ?, ?, NULL, ?) RETURNING *", (url, json.dumps({}), tx.now)).fetchone()
    return outbox.row_to_delivery(row)


def test_a_new_message_reusing_a_delivered_ones_id_is_still_sent(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        ledger = await Ledger.open(tmp_path)
        notifier = Notifier(ledger, lambda events: None)
        sent: list[str] = []

        async def attempt(message: outbox.Delivery) -> int:
            sent.append(message.url)
            return 200

        notifier._attempt = attempt  # type: ignore[method-assign]  # no HTTP: the bookkeeping is the subject
        await notifier.start()
        try:
            first = await ledger.write(_insert, "http://x/first")
            notifier.deliver([first])
            for _ in range(200):  # bounded: delivered and recorded as done
                if first.id in notifier._done:
                    break
                await asyncio.sleep(0.005)

            # the writer commits the delete of `first` and, in the same batch, a new message that
            # SQLite gives the freed id; it is handed over before the flush resumes
            original_write = ledger.write

            async def write(fn: Any, *args: Any) -> Any:
                result = await original_write(fn, *args)
                if fn is outbox.delivered:
                    reused = await original_write(_insert, "http://x/second")
                    assert reused.id == first.id  # the premise: the id came back
                    notifier.deliver([reused])
                return result

            ledger.write = write  # type: ignore[method-assign]
            await notifier._flush()
            ledger.write = original_write  # type: ignore[method-assign]
            for _ in range(200):
                if "http://x/second" in sent:
                    break
                await asyncio.sleep(0.005)
            return sent
        finally:
            await notifier.stop()
            await ledger.close()

    sent = asyncio.run(scenario())
    assert sent == ["http://x/first", "http://x/second"]
