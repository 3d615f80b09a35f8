"""REST/JSON from the same contract: Envoy's gRPC-JSON transcoder in front of the same
replicas, called with a real HTTP client (httpx, HTTP/1.1 as curl would)."""

from __future__ import annotations

import json

import httpx
import pytest

REPLY = 'Hello I am up and running received "{}" message from you'


@pytest.fixture
def http(stack):
    with httpx.Client(base_url=f"http://{stack.target}", timeout=10) as client:
        yield client


def test_post_a_message_and_get_the_reply_as_json(stack, http) -> None:
    replicas = set()
    for _ in range(6):
        reply = http.post("/v1/message", json={"message": "hi"})
        assert reply.status_code == 200, reply.text
        assert reply.headers["content-type"] == "application/json"
        body = reply.json()
        assert body == {
            "message": REPLY.format("hi"),
            "received": True,
            "replica": body["replica"],
            "sequence": 0,
        }
        replicas.add(body["replica"])
    assert replicas == {r.name for r in stack.replicas}  # balanced like gRPC calls


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "detail"),
    [
        ("/v1/message", {"message": ""}, 400, 3, "message must not be empty"),
        ("/v1/message:stream", {"message": "x", "count": 0}, 400, 3,
         "count must be between 1 and 100000, got 0"),
        ("/v1/message:stream", {"message": "x", "count": 1, "interval": "11s"}, 400, 3,
         "interval must be between 0 and 10 s, got 11 s"),
    ],
)  # fmt: skip
def test_grpc_errors_come_back_as_http_status_and_json(
    http, path: str, body: dict, status: int, code: int, detail: str
) -> None:
    reply = http.post(path, json=body)
    assert reply.status_code == status
    assert reply.json() == {"code": code, "message": detail, "details": []}


def test_malformed_json_is_a_400_with_the_reason(http) -> None:
    reply = http.post(
        "/v1/message", content=b'{"message": ', headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400
    assert reply.text  # the transcoder's parse error, readable


def test_the_stream_arrives_as_newline_delimited_json(http) -> None:
    with http.stream(
        "POST", "/v1/message:stream", json={"message": "s", "count": 50, "interval": "0.01s"}
    ) as reply:
        assert reply.status_code == 200
        lines = [json.loads(line) for line in reply.iter_lines() if line]
    assert [line["sequence"] for line in lines] == list(range(1, 51))
    assert {line["message"] for line in lines} == {REPLY.format("s")}


def test_get_on_a_post_route_is_not_found(http) -> None:
    reply = http.get("/v1/message")
    assert reply.status_code == 404
