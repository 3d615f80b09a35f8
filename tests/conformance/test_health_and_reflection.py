"""The standard services beside grpctest.Grpctest: Health (Check, Watch, List) and
Server Reflection (v1 and v1alpha), also through the real grpcurl."""

from __future__ import annotations

import json
import subprocess

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2

from grpctest_devtools.repo import command
from grpctest_server.healthcheck import check_health

SERVING = health_pb2.HealthCheckResponse.SERVING
SERVICES = {
    "grpctest.Grpctest",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}
REFLECTION = {
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
}


@pytest.mark.parametrize("service", ["", "grpctest.Grpctest"])
def test_health_is_serving(server, service: str) -> None:
    assert check_health(server.target, service) == "SERVING"


def test_health_of_an_unknown_service_is_not_found(server) -> None:
    assert check_health(server.target, "no.such.Service") == "NOT_FOUND"


def test_health_list_names_the_server_and_the_service(server) -> None:
    with grpc.insecure_channel(server.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=5)
    assert {name: s.status for name, s in reply.statuses.items()} == {
        "": SERVING,
        "grpctest.Grpctest": SERVING,
    }


@pytest.mark.parametrize(
    ("service", "first"),
    [
        ("grpctest.Grpctest", SERVING),
        ("no.such.Service", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN),
    ],
)
def test_health_watch_reports_the_current_status_first(server, service: str, first: int) -> None:
    with grpc.insecure_channel(server.target) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
        assert next(watch).status == first
        watch.cancel()


def list_services(target: str, method: str) -> set[str]:
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_stream(
            method,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        (reply,) = call(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    return {s.name for s in reply.list_services_response.service}


@pytest.mark.parametrize("version", REFLECTION)
def test_reflection_lists_every_service(server, version: str) -> None:
    assert list_services(server.target, REFLECTION[version]) == SERVICES


def test_every_method_of_every_listed_service_is_served(server) -> None:
    """A method declared in a served service's proto but not implemented answers
    UNIMPLEMENTED: caught here. Each method gets an empty request (the server may reject
    it, but not as unknown)."""
    pool = descriptor_pool.Default()
    unimplemented = []
    with grpc.insecure_channel(server.target) as channel:
        for service in sorted(SERVICES - {"grpc.reflection.v1.ServerReflection"}):
            for method in pool.FindServiceByName(service).methods:
                call: grpc.StreamStreamMultiCallable[bytes, bytes]
                call = channel.stream_stream(f"/{service}/{method.name}")
                try:
                    for _ in call(iter([b""]), timeout=2):
                        break
                except grpc.RpcError as err:
                    if err.code() == grpc.StatusCode.UNIMPLEMENTED:
                        unimplemented.append(method.full_name)
    assert unimplemented == []


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("grpcurl"), "-plaintext", *args], capture_output=True, text=True, timeout=30
    )


def test_grpcurl_lists_describes_and_calls(server) -> None:
    listing = grpcurl(server.target, "list")
    assert listing.returncode == 0, listing.stderr
    assert set(listing.stdout.split()) == SERVICES
    described = grpcurl(server.target, "describe", "grpctest.Grpctest.GetServerResponse")
    assert described.returncode == 0, described.stderr
    assert (
        "rpc GetServerResponse ( .grpctest.Message ) returns ( .grpctest.MessageResponse )"
        in described.stdout
    )
    message = grpcurl(server.target, "describe", "grpctest.StreamRequest")
    assert "uint32 resume_after = 4;" in message.stdout, message.stdout
    called = grpcurl(
        "-d", '{"message": "grpcurl"}', server.target, "grpctest.Grpctest/GetServerResponse"
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["replica"] == server.replica


def test_reflection_can_be_switched_off(start_server) -> None:
    quiet = start_server(reflection="false")
    with pytest.raises(grpc.RpcError) as err:
        list_services(quiet.target, REFLECTION["v1"])
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert check_health(quiet.target, "grpctest.Grpctest") == "SERVING"
