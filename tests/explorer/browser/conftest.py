"""Headless Chromium for the browser tests, and a small static server for verify.js pages.

Chromium is Debian's (``TEELOG_TEST_CHROMIUM`` or ``/usr/bin/chromium``), driven by Playwright;
no browser is ever downloaded. Tests skip with the reason when the binary is missing.

Every test here is marked ``browser``. Helpers are in browser_support.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest
from browser_support import StaticServer

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The Chromium binary to use, or None when there is none on this machine."""
    candidate = os.environ.get("TEELOG_TEST_CHROMIUM") or "/usr/bin/chromium"
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which(candidate) if os.sep not in candidate else None


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in the main
# thread while it is alive, and tests elsewhere in the suite call asyncio.run().
@pytest.fixture(scope="module")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip("no Chromium binary: set TEELOG_TEST_CHROMIUM or install Debian's chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.js_errors = errors  # uncaught exceptions, for assertions
    yield pg
    context.close()


@pytest.fixture(scope="session")
def static_server() -> Iterator[StaticServer]:
    server = StaticServer()
    yield server
    server.close()
