"""What is not gRPC stays at the edge: Envoy answers it itself, no replica sees it.
(The web page at / and REST/JSON under /v1/ are the non-gRPC traffic that passes on
purpose: tests/test_web.py, tests/test_rest.py.)"""

from __future__ import annotations

import ssl

import httpx
import pytest

from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.repo import CERTS

UPSTREAM_REQUESTS = "cluster.grpctest.upstream_rq_total"

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


# -- paths as a replica would act on them; bodies no replica would accept ----------------

SECURE_METHOD = "grpctest.Grpctest/GetServerResponse"
# Spellings of a path that starts with the open health prefix but means the service,
# and the gRPC status Envoy answers: UNAUTHENTICATED (16) where the normalized path is
# the service's, which needs credentials; INTERNAL (13, from HTTP 400) for an escaped
# slash, refused as it is.
TRAVERSALS = [
    (f"/grpc.health.v1.Health/../{SECURE_METHOD}", "16"),
    (f"/grpc.health.v1.Health/%2e%2e/{SECURE_METHOD}", "16"),
    (f"/grpc.health.v1.Health/%2E%2E/{SECURE_METHOD}", "16"),
    (f"//grpc.health.v1.Health/..//{SECURE_METHOD}", "16"),
    (f"/grpc.health.v1.Health/..%2f{SECURE_METHOD}", "13"),
    (f"/grpc.health.v1.Health%2F..%2F{SECURE_METHOD}", "13"),
    (f"/grpc.health.v1.Health/..%5c{SECURE_METHOD}", "13"),
]


def grpc_over_tls(stack: LocalStack, path: str, frame: bytes) -> httpx.Response:
    """A raw gRPC call (HTTP/2, no credentials) on :8443 with the path exactly as given."""
    context = ssl.create_default_context(cafile=CERTS / "ca.crt")
    headers = {"content-type": "application/grpc", "te": "trailers"}
    with httpx.Client(http1=False, http2=True, verify=context, timeout=10) as client:
        url = httpx.URL(f"https://{stack.tls_target}").copy_with(raw_path=path.encode())
        return client.post(url, headers=headers, content=frame)


@pytest.mark.parametrize(("path", "status"), TRAVERSALS)
def test_a_traversal_path_on_the_tls_listener_never_reaches_a_replica(
    stack, path: str, status: str
) -> None:
    """Envoy normalizes the path before its token rules and RBAC look at it, so the open
    health prefix does not let a call for the service through."""
    before = upstream_requests(stack)
    reply = grpc_over_tls(stack, path, GRPC_FRAME)
    assert reply.headers.get("grpc-status") == status, (reply.headers, reply.text)
    assert upstream_requests(stack) == before, "a replica was asked"


def test_the_normalized_health_path_still_answers(stack) -> None:
    """Normalizing refuses nothing real: a health check with a harmless '/./' passes."""
    check = b"\x00\x00\x00\x00\x00"  # an empty HealthCheckRequest: the server as a whole
    reply = grpc_over_tls(stack, "/grpc.health.v1.Health/./Check", check)
    assert reply.content == b"\x00\x00\x00\x00\x02\x08\x01", reply.headers  # SERVING


OVER_LIMIT = 3 * 1024 * 1024
TOO_LARGE = "request body larger than the replicas accept (1 MiB per message)"


def test_an_oversized_rest_body_is_refused_at_the_edge(stack) -> None:
    before = upstream_requests(stack)
    with httpx.Client(timeout=30) as client:
        reply = client.post(f"http://{stack.target}/v1/message", json={"message": "x" * OVER_LIMIT})
    assert reply.status_code == 413, reply.text
    assert reply.text == f"{TOO_LARGE}: Payload Too Large\n"
    assert upstream_requests(stack) == before, "a replica was asked"


def grpc_web(stack: LocalStack, size: int) -> httpx.Response:
    """A gRPC-Web call (HTTP/1.1, as a browser makes it) of a message of `size` bytes."""
    message = b"\x0a" + _varint(size) + b"x" * size
    frame = b"\x00" + len(message).to_bytes(4, "big") + message
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1"}
    path = "/grpctest.Grpctest/GetServerResponse"
    return request(stack, "1.1", "POST", path, headers=headers, content=frame)


def test_an_oversized_grpc_web_body_is_resource_exhausted_at_the_edge(stack) -> None:
    before = upstream_requests(stack)
    reply = grpc_web(stack, OVER_LIMIT)
    assert (reply.headers["grpc-status"], reply.headers["grpc-message"]) == ("8", TOO_LARGE)
    assert reply.content == b""
    assert upstream_requests(stack) == before, "a replica was asked"


def test_a_grpc_web_body_within_the_limit_is_answered(stack) -> None:
    reply = grpc_web(stack, 1_000_000)
    assert reply.status_code == 200
    assert b"grpc-status:0" in reply.content  # the trailers, in the body (gRPC-Web)
    assert b"received" in reply.content


def _varint(n: int) -> bytes:
    """n as a protobuf varint (a field's length)."""
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])
