"""Make the screenshots of docs/dashboard.md (docs/images/tui-*.svg) from a real demo hub.

Why a script: the pictures in the docs must show the dashboard as it is. Run it after changing
a screen, from a checkout with miniloop installed:

    .venv/bin/python docs/images/tui_screenshots.py

It starts a demo hub in a temporary directory (every port picked by the kernel), makes a few
payments through the simulators (and one past a lowered Net Debit Cap, refused), opens the
dashboard at 80×24 with Textual's pilot and saves each screen as an SVG next to itself.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from screenshots import start_hub  # noqa: E402  (the web page's script, beside this one)
from tui.app import Dashboard  # noqa: E402
from tui.client import HubClient  # noqa: E402

SIZE = (80, 24)
PAYMENTS = [("greenwallet", "27710000001", "27720000001", "25"), ("bluewallet", "27720000002", "27730000001", "40"),
            ("merchantbank", "27730000001", "27710000002", "12.50"), ("greenwallet", "27710000003", "27730000002", "8")]


async def until(pilot, predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("the dashboard did not show what was expected")
        await pilot.pause(0.05)


async def shoot(wallet: str) -> None:
    client = await HubClient.attach(wallet)
    app = Dashboard(client)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.state.connected and app.state.hub_view["participants"])
        for payer, sender, receiver, amount in PAYMENTS:
            await client.sim("POST", f"/{payer}/send", {"from": sender, "to": {"id": receiver}, "amount": amount},
                             slow=True)
        limit = {"currency": "USD", "limit": {"type": "NET_DEBIT_CAP", "value": 10, "alarmPercentage": 10}}
        await client.admin("PUT", "/participants/bluewallet/limits", limit)
        await client.sim("POST", "/bluewallet/send", {"from": "27720000001", "to": {"id": "27710000001"},
                                                      "amount": "75"}, slow=True)
        limit["limit"]["value"] = 50000
        await client.admin("PUT", "/participants/bluewallet/limits", limit)
        await until(pilot, lambda: len(app.state.errors) >= 1 and len(app.state.transfers) >= 5)
        await pilot.pause(1.5)
        app.save_screenshot(str(HERE / "tui-overview.svg"))
        await pilot.press("t")
        await pilot.pause(0.6)
        app.save_screenshot(str(HERE / "tui-transfers.svg"))
        await pilot.press("down", "enter")
        await pilot.pause(0.5)
        await pilot.press(*["down"] * 9)
        await pilot.pause(0.3)
        app.save_screenshot(str(HERE / "tui-detail.svg"))
        await pilot.press("escape", "question_mark")
        await pilot.pause(0.3)
        app.save_screenshot(str(HERE / "tui-help.svg"))
        await pilot.press("escape", "o", "d")
        await pilot.pause(0.5)
        app.save_screenshot(str(HERE / "tui-overview-light.svg"))
        await pilot.press("d", "p")
        await pilot.pause(0.5)
        app.save_screenshot(str(HERE / "tui-participants.svg"))
        await pilot.press("s")
        await pilot.pause(0.5)
        for key in ("c", "e", "a"):  # close the window, settle it, take the first step
            await pilot.press(key)
            await pilot.pause(0.3)
            await pilot.press("y")
            await pilot.pause(1.0)
        app.save_screenshot(str(HERE / "tui-settlement.svg"))
        await pilot.press("r")
        await until(pilot, lambda: app.screen.query("#scenarios").first().row_count > 0)
        await pilot.press("x")
        await pilot.pause(0.3)
        await pilot.press("y")
        await until(pilot, lambda: getattr(app.screen, "result", None) is not None, timeout=60)
        await pilot.pause(0.5)
        app.save_screenshot(str(HERE / "tui-scenarios.svg"))
        await pilot.press("f")
        await pilot.pause(0.8)
        await pilot.press("3")  # the first DFSP goes silent, for the picture
        await pilot.pause(0.8)
        app.save_screenshot(str(HERE / "tui-faults.svg"))
        await pilot.press("1")
        await pilot.pause(0.5)
        await pilot.press("j")
        await pilot.pause(0.8)
        app.save_screenshot(str(HERE / "tui-join.svg"))
    await client.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hub, wallet = start_hub(Path(tmp) / "data")
        try:
            asyncio.run(shoot(wallet))
        finally:
            hub.terminate()
            hub.wait(30)
    print("written:", ", ".join(sorted(p.name for p in HERE.glob("tui-*.svg"))))


if __name__ == "__main__":
    main()
