"""Playwright driving Debian's Chromium (/usr/bin/chromium): no browser download.

``browser`` is one Chromium per test process; ``signed_in`` opens a fresh
context (own cookies) and signs in through the real login form.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("TOUCHMODEL_CHROMIUM", "/usr/bin/chromium"))
# The machine's network is closed: Chromium must not try to phone home.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield b
        finally:
            b.close()


def signed_in(browser: object, base_url: str, token: str) -> object:
    """A new page in its own context, signed in with ``token`` through /login."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto("/login")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")
    return page
