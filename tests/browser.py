"""Debian's Chromium driven by Playwright (the system executable: nothing is downloaded).

The flags are the ones a closed network needs: no background networking, component updates or
sync (each would try to reach the internet and fail noisily), and no sandbox (we run as root).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def browser_page() -> Iterator[Any]:
    """A fresh headless page; the browser is closed at the end, whatever happened."""
    exe = shutil.which("chromium") or CHROMIUM
    if not shutil.which(exe):
        raise AssertionError("chromium is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, args=FLAGS, headless=True)
        try:
            # bypass_csp: our pages forbid eval, which Playwright uses for wait_for_function.
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
            page.set_default_timeout(10_000)
            yield page
        finally:
            browser.close()
