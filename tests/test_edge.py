"""What is not gRPC stays at the edge: Envoy answers it itself, no replica sees it.
(The web page at / and REST/JSON under /v1/ are the non-gRPC traffic that passes on
purpose: tests/test_web.py, tests/test_rest.py.)"""

from __future__ import annotations

import httpx
import pytest

from grpctest_devtools.localstack import LocalStack

UPSTREAM_REQUESTS = "cluster.py_server.upstream_rq_total"

# (HTTP version, method, path, headers, body, HTTP status Envoy answers with)
NOT_GRPC = [
    ("1.1", "GET", "/index.php", {}, None, 404),
    ("1.1", "GET", "/api", {}, None, 404),
    ("1.1", "GET", "/version", {}, None, 404),
    ("1.1", "GET", "/openapi/v2", {}, None, 404),
    ("2", "GET", "/favicon.ico", {}, None, 404),
    ("1.1", "POST", "/", {}, b"x", 404),
    ("2", "DELETE", "/grpctest.Grpctest/GetServerResponse", {}, None, 404),
    ("1.1", "POST", "/v2/messages", {"content-type": "application/json"}, b'{"message":"hi"}', 404),
]  # fmt: skip
GRPC_FRAME = b"\x00\x00\x00\x00\x04\x0a\x02hi"


def upstream_requests(stack: LocalStack) -> int:
    return stack.admin.stats(UPSTREAM_REQUESTS).get(UPSTREAM_REQUESTS, 0)


def request(stack: LocalStack, version: str, method: str, path: str, **kwargs) -> httpx.Response:
    http2 = version == "2"
    with httpx.Client(http1=not http2, http2=http2, timeout=5) as client:
        reply = client.request(method, f"http://{stack.target}{path}", **kwargs)
    assert reply.http_version == f"HTTP/{version}"
    return reply


@pytest.mark.parametrize(("version", "method", "path", "headers", "body", "status"), NOT_GRPC)
def test_envoy_answers_what_is_not_grpc_itself(
    stack, version: str, method: str, path: str, headers: dict, body: bytes | None, status: int
) -> None:
    before = upstream_requests(stack)
    reply = request(stack, version, method, path, headers=headers, content=body)
    assert reply.status_code == status, reply.text
    assert "this port serves gRPC" in reply.text
    assert upstream_requests(stack) == before, "a replica was asked"


@pytest.mark.parametrize("version", ["1.1", "2"])
def test_grpc_without_http2_trailers_gets_a_grpc_error_from_envoy(stack, version: str) -> None:
    """gRPC's content type, but over HTTP/1.1 or without `te: trailers`: not a gRPC call
    either. The caller speaks gRPC, so the answer is a gRPC status."""
    before = upstream_requests(stack)
    path = "/grpctest.Grpctest/GetServerResponse"
    headers = {"content-type": "application/grpc"}
    reply = request(stack, version, "POST", path, headers=headers, content=GRPC_FRAME)
    assert reply.headers["grpc-status"] == "13"  # INTERNAL, from HTTP 400
    assert reply.headers["grpc-message"] == "a gRPC call needs HTTP/2 and the header 'te: trailers'"
    assert upstream_requests(stack) == before, "a replica was asked"


def test_the_web_page_is_served_by_envoy_itself(stack) -> None:
    before = upstream_requests(stack)
    for path, kind in (("/", "text/html"), ("/app.js", "text/javascript")):
        reply = request(stack, "1.1", "GET", path)
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith(kind)
    assert upstream_requests(stack) == before, "a replica was asked"
