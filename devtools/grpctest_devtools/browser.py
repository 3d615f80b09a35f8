"""A real, headless Chromium (Debian's) driven by Playwright, and the web page's steps.

Playwright downloads no browser here: it drives /usr/bin/chromium (`make web-tools`
installs Debian's package, pinned). The flags keep Chromium from reaching out to the
network on its own, which a closed network refuses, many times over.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",  # as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed again afterwards."""
    if shutil.which(CHROMIUM) is None:
        raise FileNotFoundError(f"{CHROMIUM} not found: run `make web-tools`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def status(page: Page) -> str:
    return page.inner_text("#status")


def send(page: Page, message: str | None = None) -> str:
    """Clicks Send (with `message`, if given) and returns the status line it ends with."""
    if message is not None:
        page.fill("#message", message)
    page.evaluate("document.querySelector('#status').textContent = ''")
    page.click("#send")
    page.wait_for_function("/^(OK|error)/.test(document.querySelector('#status').textContent)")
    return status(page)


def stream(page: Page, count: int, interval_ms: int) -> str:
    """Clicks Stream and returns the status line once the stream has ended."""
    page.fill("#count", str(count))
    page.fill("#interval", str(interval_ms))
    page.evaluate("document.querySelector('#status').textContent = ''")
    page.click("#stream")
    page.wait_for_function(
        "/^(OK|error)/.test(document.querySelector('#status').textContent)",
        timeout=10_000 + count * interval_ms,
    )
    return status(page)


def replies(page: Page) -> list[list[str]]:
    """The replies table, newest first: [number, call, replica, reply] per row."""
    rows: list[list[str]] = page.eval_on_selector_all(
        "#replies tr", "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )
    return rows
