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
    ("path", "body", "violations"),
    [
        ("/v1/message", {"message": ""}, [("message", "required")]),
        ("/v1/message:stream", {"message": "x", "count": 0}, [("count", "uint32.gte_lte")]),
        ("/v1/message:stream", {"message": "x", "count": 1, "interval": "11s"},
         [("interval", "duration.gte_lte")]),
        ("/v1/message:stream", {"message": "x", "count": 2, "resumeAfter": 2},
         [("", "resume_after_below_count")]),
    ],
)  # fmt: skip
def test_a_broken_rule_is_a_400_with_the_violations_as_json(
    http, path: str, body: dict, violations: list[tuple[str, str]]
) -> None:
    """INVALID_ARGUMENT becomes HTTP 400 with the google.rpc.Status as JSON, its
    google.rpc.BadRequest detail included: which field broke which rule."""
    reply = http.post(path, json=body)
    assert reply.status_code == 400
    status = reply.json()
    assert status["code"] == 3
    [detail] = status["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    found = [(v.get("field", ""), v["reason"]) for v in detail["fieldViolations"]]
    assert found == violations
    assert all(v["description"] for v in detail["fieldViolations"])


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
