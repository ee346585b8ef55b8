"""Make the screenshots of docs/wallet.md and docs/workshop.md from a real hub.

Why a script: the pictures in the docs must show the page as it is. Run it after changing the
page, from a checkout with the test extras installed and Chromium present:

    .venv/bin/python docs/images/screenshots.py

It starts a demo hub in a temporary directory (every port picked by the kernel), drives the
page in headless Chromium as a trainer would (a payment from Amara to Kwame, a QR code on the
till, a participant joining) and writes the PNG files next to itself.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

HERE = Path(__file__).resolve().parent
PORT_FLAGS = ("--fspiop-port", "--admin-port", "--settlement-port", "--als-admin-port", "--sim-port", "--wallet-port")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
READY_S = 30


def start_hub(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    command = [sys.executable, "-m", "miniloop", "up", "--headless", "--data-dir", str(data_dir)]
    for flag in PORT_FLAGS:
        command += [flag, "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MINILOOP_")}
    hub = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + READY_S
    while not (data_dir / "hub.json").exists():
        if hub.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the hub did not start")
        time.sleep(0.1)
    return hub, json.loads((data_dir / "hub.json").read_text())["urls"]["wallet"]


def by_id(scope, name: str):
    return scope.locator(f"[data-testid={name}]")


def main() -> None:
    chromium = os.environ.get("MINILOOP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as tmp:
        hub, wallet = start_hub(Path(tmp) / "data")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium, args=ARGS)
                room = browser.new_page(viewport={"width": 1600, "height": 1000}, base_url=wallet)
                room.goto("/")
                amara = room.locator('[data-testid=phone][data-dfsp=greenwallet][data-customer="27710000001"]')
                by_id(amara, "tab-send").click()
                by_id(amara, "send-to").fill("27720000001")
                by_id(amara, "send-amount").fill("25")
                by_id(amara, "send-next").click()
                by_id(amara, "accept-party").click()
                expect(by_id(amara, "confirm")).to_be_visible()
                amara.screenshot(path=HERE / "phone-quote.png")
                by_id(amara, "confirm").click()
                expect(by_id(amara, "result")).to_have_attribute("data-state", "COMMITTED")
                expect(room.locator("[data-testid=sequence] [data-testid=arrow]")).to_have_count(12)
                expect(room.locator('[data-testid=position][data-participant=greenwallet]')).to_have_attribute(
                    "data-position", "25")
                by_id(room, "hub").screenshot(path=HERE / "hub-sequence.png")
                till = room.locator('[data-testid=till][data-dfsp=merchantbank][data-customer="27730000001"]')
                by_id(till, "till-amount").fill("12.50")
                by_id(till, "till-ref").fill("TABLE-4")
                by_id(till, "till-qr").click()
                expect(by_id(till, "qr-code")).to_be_visible()
                till.screenshot(path=HERE / "till-qr.png")
                room.screenshot(path=HERE / "room.png")
                phone = browser.new_page(viewport={"width": 390, "height": 780}, base_url=wallet,
                                         device_scale_factor=2)
                phone.goto("/join")
                by_id(phone, "join-name").fill("Nomsa")
                by_id(phone, "join-submit").click()
                expect(phone.locator("[data-testid=phone]")).to_be_visible()
                phone.screenshot(path=HERE / "join.png")
                browser.close()
        finally:
            hub.terminate()
            hub.wait(30)
    print(f"screenshots written to {HERE}")


if __name__ == "__main__":
    main()
