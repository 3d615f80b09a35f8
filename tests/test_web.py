"""The web page over gRPC-Web, in a real headless Chromium, served by Envoy at / (the
same origin as the API): it loads, unary calls succeed and rotate over every replica,
its picture of the rotation shows every replica (Python and Go told apart), calls
landing, and a stopped replica leaving and coming back; a server stream renders as it
arrives, and bad input shows its gRPC status."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page

from grpctest_devtools import browser
from grpctest_devtools.waiting import wait_until

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
    browser.wait_for_rotation(page, len(stack.replicas))
    answered = [browser.send(page) for _ in range(6)]
    assert all(status.startswith("OK: replica-") for status in answered), answered
    rows = browser.replies(page)
    assert [row[1] for row in rows] == ["unary"] * 6
    assert {row[2] for row in rows} == {r.name for r in stack.replicas}
    # Each call landed on the bar of the replica that answered it.
    bars = browser.rotation(page)
    assert {bar["replica"] for bar in bars} == {r.name for r in stack.replicas}
    assert sum(browser.calls_on(bar) for bar in bars) == 6


def test_the_picture_shows_every_replica_python_and_go(chromium, fresh_stack, tmp_path) -> None:
    """What `make screenshot` saves as docs/web-page.png (the same steps): one bar per
    replica in Envoy's rotation, named by its replies, the Go replica told apart."""
    picture = tmp_path / "web-page.png"
    page = browser.picture(chromium, fresh_stack, picture)
    try:
        bars = browser.rotation(page)
    finally:
        page.close()
    assert picture.read_bytes().startswith(b"\x89PNG")
    kinds = {bar["replica"]: bar["kind"] for bar in bars}
    assert kinds == {"replica-1": "python", "replica-2": "python", "replica-3": "python",
                     "go-1": "go"}  # fmt: skip
    assert {bar["health"] for bar in bars} == {"in"}
    assert {bar["host"] for bar in bars} == fresh_stack.healthy_hosts()


def test_a_stopped_replica_leaves_the_rotation_and_comes_back(
    chromium, fresh_stack, tmp_path
) -> None:
    """SIGTERM a replica: its bar goes out of rotation (Envoy's health check) and the
    calls the page keeps making meanwhile land elsewhere; started again, it is back in
    and calls land on it again."""
    page = browser.picture(chromium, fresh_stack, tmp_path / "before.png")
    try:
        stopped = fresh_stack.replica("replica-2")
        stopped.signal(signal.SIGTERM)
        browser.wait_for_rotation(page, len(fresh_stack.replicas) - 1)
        before = _calls_by_replica(page)
        browser.keep_calling(page, every_ms=50)
        wait_until(
            lambda: sum(_calls_by_replica(page).values()) >= sum(before.values()) + 8,
            30,
            "8 more calls to land",
        )
        assert _calls_by_replica(page)["replica-2"] == before["replica-2"]
        stopped.wait(timeout=30)  # drained and exited
        stopped.restart()
        browser.wait_for_rotation(page, len(fresh_stack.replicas))
        wait_until(
            lambda: _calls_by_replica(page)["replica-2"] > before["replica-2"],
            30,
            "calls to land on replica-2 again",
        )
    finally:
        page.close()


def _calls_by_replica(page: Page) -> dict[str, int]:
    return {bar["replica"]: browser.calls_on(bar) for bar in browser.rotation(page)}


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


def test_bad_input_shows_the_field_and_the_rule(page) -> None:
    """The status and the google.rpc.BadRequest detail (grpc-status-details-bin), as the
    clients print them: "field: description [rule id]"."""
    shown = browser.send(page, "")
    assert re.fullmatch(r"error: INVALID_ARGUMENT: message: .+ \[required\]", shown), shown
    page.fill("#message", "x")
    shown = browser.stream(page, count=0, interval_ms=0)
    assert re.fullmatch(r"error: INVALID_ARGUMENT: count: .+ \[uint32\.gte_lte\]", shown), shown


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


def test_the_rotation_is_the_one_admin_view_the_listener_gives(stack) -> None:
    """GET /rotation is Envoy's read-only /clusters view (what the page draws); nothing
    else of the admin API reaches :8080: not another method, path or query string."""
    rotation = httpx.get(f"http://{stack.target}/rotation", timeout=5)
    assert rotation.status_code == 200
    (cluster,) = [c for c in rotation.json()["cluster_statuses"] if c["name"] == "grpctest"]
    assert len(cluster["host_statuses"]) == len(stack.replicas)
    for method, path in [
        ("POST", "/rotation"),
        ("GET", "/rotation?format=text"),
        ("GET", "/rotation/../quitquitquit"),
        ("GET", "/clusters"),
        ("GET", "/stats"),
        ("POST", "/healthcheck/fail"),
    ]:
        answer = httpx.request(method, f"http://{stack.target}{path}", timeout=5)
        assert answer.status_code == 404, (method, path, answer.text[:80])
    assert stack.admin.get("/ready").strip() == "LIVE"  # and Envoy still serves
