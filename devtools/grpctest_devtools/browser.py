"""A real, headless Chromium (Debian's) driven by Playwright, and the web page's steps:
calls, streams, the rotation it draws, and the picture `make screenshot` saves.

Playwright downloads no browser here: it drives /usr/bin/chromium (`make web-tools`
installs Debian's package: the release's current build, at least the Makefile's minimum
version). The flags keep Chromium from reaching out to the network on its own, which a
closed network refuses, many times over.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from playwright.sync_api import Browser, Page, sync_playwright

if TYPE_CHECKING:
    from grpctest_devtools.localstack import LocalStack

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


def rotation(page: Page) -> list[dict[str, str]]:
    """The rotation's bars, as the page draws Envoy's view: per replica its `host`
    (address), `kind` (python, go), `health` (in, out), `replica` (the name its replies
    carry, once one of the page's calls landed there) and `calls` (the page's calls it
    answered)."""
    bars: list[dict[str, str]] = page.eval_on_selector_all(
        "#rotation .bar",
        "bars => bars.map(b => ({...b.dataset, calls: b.querySelector('.calls').textContent}))",
    )
    return bars


def wait_for_rotation(page: Page, in_rotation: int, timeout_ms: float = 30_000) -> None:
    """Waits until the page shows `in_rotation` replicas in Envoy's rotation."""
    page.wait_for_function(
        "n => document.querySelectorAll('#rotation .bar[data-health=in]').length === n",
        arg=in_rotation,
        timeout=timeout_ms,
    )


def keep_calling(page: Page, every_ms: int) -> None:
    """Ticks "keep calling": one call after another, `every_ms` apart, until the page closes."""
    page.fill("#every", str(every_ms))
    page.check("#keep-calling")


def calls_on(bar: dict[str, str]) -> int:
    """The page's calls a bar (of rotation()) counts."""
    return int(bar["calls"].split()[0])


def show_the_balancing(page: Page, replicas: int, each: int = 2, most: int = 100) -> None:
    """What the README's picture shows: every replica in rotation, calls until each has
    answered `each` (at most `most` calls), then a short stream."""
    wait_for_rotation(page, replicas)
    for _ in range(most):
        if min(calls_on(bar) for bar in rotation(page)) >= each:
            break
        send(page)
    stream(page, count=12, interval_ms=50)


def picture(browser: Browser, stack: LocalStack, path: Path) -> Page:
    """The page of `stack` showing the balancing (show_the_balancing), saved to `path`
    as `make screenshot` saves docs/web-page.png; returns the page, still open."""
    page = browser.new_page(viewport={"width": 1000, "height": 760})
    page.goto(f"http://{stack.target}/")
    show_the_balancing(page, len(stack.replicas))
    page.screenshot(path=str(path))
    return page
