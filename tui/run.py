"""Running the dashboard: attached to a hub by URL, or in the foreground of `miniloop up`.

Why here and not in the CLI: both ways open the same HubClient and the same App, and both must
leave the terminal as they found it. While the dashboard owns the terminal, log lines would
scribble over it, so `quiet_logging` sends them to a file in the data directory instead.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

from tui.client import HubClient


def can_show() -> bool:
    """True when stdin and stdout are a terminal: otherwise (a pipe, CI, Docker) run headless."""
    return sys.stdin.isatty() and sys.stdout.isatty()


async def run_dashboard(wallet_url: str, *, owns_hub: bool, stop: asyncio.Event | None = None,
                        admin_token: str | None = None) -> None:
    """Attach to the hub whose wallet port is `wallet_url` and show the dashboard until it quits,
    or until `stop` is set (SIGTERM, the hub failing): then it closes as if quit, terminal restored.

    Raises tui.client.HubUnreachable when nothing answers there.
    """
    from tui.app import Dashboard  # Textual is imported only when a dashboard is shown

    client = await HubClient.attach(wallet_url, admin_token=admin_token)
    app = Dashboard(client, owns_hub=owns_hub)

    async def exit_when_stopped() -> None:
        if stop is not None:
            await stop.wait()
            app.exit()

    watcher = asyncio.ensure_future(exit_when_stopped())
    try:
        await app.run_async()
    finally:
        watcher.cancel()
        await client.close()


@contextmanager
def quiet_logging(log_file: Path) -> Iterator[None]:
    """Send log records to `log_file` instead of the terminal while the dashboard shows."""
    root = logging.getLogger()
    terminal = [h for h in root.handlers if isinstance(h, logging.StreamHandler)
                and not isinstance(h, logging.FileHandler)]
    for handler in terminal:
        root.removeHandler(handler)
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    try:
        yield
    finally:
        root.removeHandler(to_file)
        to_file.close()
        for handler in terminal:
            root.addHandler(handler)
