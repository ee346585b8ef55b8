"""A headless Chromium for the wallet page's tests, driven by Playwright's sync API.

Playwright drives the system's Chromium (Debian's `chromium` package) rather than a browser it
downloads: tests never fetch anything from the internet. MINILOOP_CHROMIUM picks another binary.
A machine without Chromium fails the tests that need it with a message that says how to install
it; they are never skipped, so a missing browser cannot hide a broken page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
DEFAULT_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str:
    """The Chromium binary to drive; fails the test (never skips) when there is none."""
    chosen = os.environ.get("MINILOOP_CHROMIUM") or shutil.which("chromium") or DEFAULT_CHROMIUM
    if not Path(chosen).is_file():
        pytest.fail(f"no Chromium at {chosen}: the wallet page's tests drive a real browser. Install it "
                    "(`apt-get install chromium`) or point MINILOOP_CHROMIUM at a Chromium binary", pytrace=False)
    return chosen


@contextmanager
def chromium() -> Iterator[object]:
    """A launched headless Chromium (a playwright Browser), closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `pip install -e '.[test]'`", pytrace=False)
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
