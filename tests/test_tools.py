"""The standard gRPC tools work fully against the stack, through Envoy and direct:
grpcurl (list, describe every kind of symbol, call), buf curl (reflection v1) and
grpc-health-probe, all pinned in the Makefile.

Calls are read as JSON; grpcurl's `list` and `describe` and grpc-health-probe print only
text (names, one a line; a protobuf rendering; one status line), so those are read as text."""

from __future__ import annotations

import json
import subprocess

import pytest

from grpctest_devtools.repo import command

SERVICES = [
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpctest.Grpctest",
]
# symbol -> the first line grpcurl prints when it describes it
SYMBOLS = {
    "grpctest.Grpctest": "grpctest.Grpctest is a service:",
    "grpctest.Grpctest.GetServerResponse": "grpctest.Grpctest.GetServerResponse is a method:",
    "grpctest.MessageResponse": "grpctest.MessageResponse is a message:",
    "grpctest.MessageResponse.replica": "grpctest.MessageResponse.replica is a field:",
    "grpc.health.v1.HealthCheckResponse.ServingStatus": (
        "grpc.health.v1.HealthCheckResponse.ServingStatus is an enum:"
    ),
    "grpc.health.v1.Health.List": "grpc.health.v1.Health.List is a method:",
    "grpc.reflection.v1.ServerReflection": "grpc.reflection.v1.ServerReflection is a service:",
}


@pytest.fixture(params=["envoy", "replica"])
def target(request, stack) -> str:
    return stack.target if request.param == "envoy" else stack.replica_target(0)


def run(*argv: str) -> str:
    """Runs a tool; returns what it printed (grpc-health-probe prints on stderr)."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def grpcurl(*args: str) -> str:
    return run(command("grpcurl"), "-plaintext", *args)


def test_grpcurl_lists_every_service_served(target: str) -> None:
    assert grpcurl(target, "list").split() == SERVICES


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_grpcurl_describes_every_kind_of_symbol(target: str, symbol: str) -> None:
    assert grpcurl(target, "describe", symbol).splitlines()[0] == SYMBOLS[symbol]


def test_grpcurl_describes_every_method_of_every_service(target: str) -> None:
    for service in SERVICES:
        described = grpcurl(target, "describe", service)
        for line in described.splitlines():
            if line.strip().startswith("rpc "):
                method = line.split()[1]
                assert "is a method:" in grpcurl(target, "describe", f"{service}.{method}")


def test_grpcurl_call_through_envoy(stack) -> None:
    reply = json.loads(
        grpcurl(
            "-d", '{"message": "from grpcurl"}', stack.target, "grpctest.Grpctest/GetServerResponse"
        )
    )
    assert reply["message"] == 'Hello I am up and running received "from grpcurl" message from you'
    assert reply["received"] is True
    assert reply["replica"] in {r.name for r in stack.replicas}


def test_health_list_names_every_service(target: str) -> None:
    reply = json.loads(grpcurl(target, "grpc.health.v1.Health/List"))
    assert reply == {
        "statuses": {"": {"status": "SERVING"}, "grpctest.Grpctest": {"status": "SERVING"}}
    }


def test_buf_curl_calls_through_reflection_v1(target: str) -> None:
    reply = json.loads(
        run(
            command("buf"), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
            "--reflect-protocol", "grpc-v1", "--data", '{"message": "from buf curl"}',
            f"http://{target}/grpctest.Grpctest/GetServerResponse",
        )
    )  # fmt: skip
    assert reply["message"] == 'Hello I am up and running received "from buf curl" message from you'


@pytest.mark.parametrize("service", ["", "grpctest.Grpctest"])
def test_grpc_health_probe(target: str, service: str) -> None:
    out = run(command("grpc-health-probe"), "-addr", target, "-service", service)
    assert out.strip() == "status: SERVING"  # (its one line of text: it has no other form)


def test_grpc_health_probe_fails_for_an_unknown_service(target: str) -> None:
    probe = [command("grpc-health-probe"), "-addr", target, "-service", "no.such.Service"]
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    assert result.returncode == 3, result.stderr  # the probe's "the health RPC failed"
    # (The probe reports only as text: which status the RPC failed with.)
    assert "rpc error: code = NotFound" in result.stderr, result.stderr
