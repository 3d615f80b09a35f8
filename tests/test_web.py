"""The web page over gRPC-Web, in a real headless Chromium, served by Envoy at / (the
same origin as the API): it loads, unary calls succeed and rotate over every replica,
a server stream renders as it arrives, and bad input shows its gRPC status."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page

from grpctest_devtools import browser

UPSTREAM = "cluster.grpctest.upstream_rq_total"


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    with browser.chromium() as running:
        yield running


@pytest.fixture
def page(chromium, stack) -> Iterator[Page]:
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"http://{stack.target}/")
    yield page
    context.close()
    assert errors == [], errors


def test_page_loads_from_envoy(page) -> None:
    assert page.title() == "grpctest: gRPC from the browser"
    assert page.is_visible("#send")


def test_unary_calls_succeed_and_rotate_over_every_replica(page, stack) -> None:
    answered = [browser.send(page) for _ in range(6)]
    assert all(status.startswith("OK: replica-") for status in answered), answered
    rows = browser.replies(page)
    assert [row[1] for row in rows] == ["unary"] * 6
    assert {row[2] for row in rows} == {r.name for r in stack.replicas}
    # The page's tally (what it shows: "replica-1: 2"), one per replica, adding up; how
    # the calls spread is Envoy's round robin per worker, not the page's to promise.
    spans = page.eval_on_selector_all("#replicas span", "spans => spans.map(s => s.textContent)")
    tally = {name: int(n) for name, n in (span.split(": ") for span in spans)}
    assert set(tally) == {r.name for r in stack.replicas}, spans
    assert sum(tally.values()) == 6, spans


def test_a_server_stream_renders_as_it_arrives(page) -> None:
    page.fill("#count", "20")
    page.fill("#interval", "100")
    page.click("#stream")
    # Part-way through, some replies are on the page and more are to come.
    page.wait_for_function("document.querySelectorAll('#replies tr').length >= 5")
    assert len(browser.replies(page)) < 20
    page.wait_for_function("/^(OK|error)/.test(document.querySelector('#status').textContent)")
    assert browser.status(page) == "OK: stream complete, 20 of 20 replies"
    rows = browser.replies(page)
    assert [row[1] for row in reversed(rows)] == [f"stream {i}/20" for i in range(1, 21)]
    assert len({row[2] for row in rows}) == 1  # one stream, one replica


def test_a_server_stream_resumes_on_another_replica_when_its_replica_dies(
    chromium, fresh_stack
) -> None:
    """SIGKILL the replica a stream comes from: Envoy can only cut the stream (over the
    page's HTTP/1.1, fetch sees a network error), the page asks another replica for the
    rest (resume_after) and shows every reply once, in order."""
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://{fresh_stack.target}/")
        page.fill("#count", "300")
        page.fill("#interval", "20")
        page.click("#stream")
        page.wait_for_function("document.querySelectorAll('#replies tr').length >= 50")
        serving = browser.replies(page)[0][2]
        fresh_stack.replica(serving).signal(signal.SIGKILL)
        page.wait_for_function(
            "/^(OK|error)/.test(document.querySelector('#status').textContent)", timeout=30_000
        )
        status = browser.status(page)
        rows = browser.replies(page)
    finally:
        context.close()
    assert re.fullmatch(
        r"OK: stream complete, 300 of 300 replies; resumed after \d+ on (replica|go)-\d", status
    ), status
    assert [row[1] for row in reversed(rows)] == [f"stream {i}/300" for i in range(1, 301)]
    assert serving not in status


def test_bad_input_shows_the_grpc_status(page) -> None:
    assert browser.send(page, "") == "error: INVALID_ARGUMENT: message must not be empty"
    page.fill("#message", "x")
    assert browser.stream(page, count=0, interval_ms=0) == (
        "error: INVALID_ARGUMENT: count must be between 1 and 100000, got 0"
    )


def test_another_origin_may_call_after_a_cors_preflight(stack) -> None:
    """A page on another local origin (e.g. a dev server on :5173) may call over
    gRPC-Web: Envoy answers the preflight and exposes the gRPC status trailers."""
    before = stack.admin.stats(UPSTREAM).get(UPSTREAM, 0)
    preflight = httpx.options(
        f"http://{stack.target}/grpctest.Grpctest/GetServerResponse",
        headers={
            "origin": "http://localhost:5173",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web",
        },
        timeout=5,
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "x-grpc-web" in preflight.headers["access-control-allow-headers"]
    refused = httpx.options(
        f"http://{stack.target}/grpctest.Grpctest/GetServerResponse",
        headers={"origin": "https://elsewhere.example", "access-control-request-method": "POST"},
        timeout=5,
    )
    assert "access-control-allow-origin" not in refused.headers
    assert stack.admin.stats(UPSTREAM).get(UPSTREAM, 0) == before, "a preflight was forwarded"
