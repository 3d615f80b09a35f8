"""Balancing without a proxy, on the local stack (docs/load-balancing.md): both clients
proxyless over xDS (xds:///grpctest, the control plane's bootstrap) and balanced by the
client over the replicas' list reach every replica; what a client received from the
control plane can be dumped with grpcurl from go-client's admin port (CSDS), and either
client's channels (channelz); the servers' connection age and keepalive rules let long
and quiet calls live.

The same clients under replica faults, beside Envoy: tests/test_faults.py and
tests/test_stream_faults.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from grpctest_devtools.clients import (
    CLIENTS,
    JSON_OUTPUT,
    CallPath,
    calls_per_replica,
    client_argv,
    client_side,
    proxyless,
    replies,
    run_client,
)
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.ports import free_port, port_in_use
from grpctest_devtools.repo import REPO, command
from grpctest_devtools.waiting import wait_until

REPLICAS = {"replica-1", "replica-2", "replica-3", "go-1"}
CSDS = "envoy.service.status.v3.ClientStatusDiscoveryService/FetchClientStatus"
CHANNELZ = "grpc.channelz.v1.Channelz/GetTopChannels"


@pytest.fixture(scope="module")
def mixed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """3 py-server replicas and 1 go-server replica, the control plane and Envoy."""
    log_dir = tmp_path_factory.mktemp("logs")
    with LocalStack.on_free_ports(go_replicas=1, log_dir=log_dir) as running:
        yield running


def ways(stack: LocalStack) -> dict[str, CallPath]:
    """The two ways without Envoy to the stack's replicas."""
    replicas = [stack.replica_target(i) for i in range(len(stack.replicas))]
    return {"xds": proxyless(stack.xds_bootstrap), "client-side": client_side(replicas)}


@pytest.mark.parametrize("way", ["xds", "client-side"])
@pytest.mark.parametrize("client", CLIENTS)
def test_both_clients_balance_over_every_replica_without_envoy(
    mixed_stack, figures, client: str, way: str
) -> None:
    path = ways(mixed_stack)[way]
    result = run_client(client, path.target, "--count", "40", *JSON_OUTPUT, env=path.environment)
    assert result.returncode == 0, result.stderr
    per_replica = calls_per_replica(result.stdout)
    figures[f"{client} {way}: calls per replica of 40"] = per_replica
    assert set(per_replica) == REPLICAS, per_replica
    assert len(replies(result.stdout)) == 40


def test_both_clients_use_the_same_client_side_policy() -> None:
    """One service config for client-side balancing, kept once per language."""
    python = REPO / "py-common" / "grpctest_common" / "service_config.json"
    go = REPO / "go-common" / "balancing" / "service_config.json"
    assert json.loads(python.read_text()) == json.loads(go.read_text())


# -- CSDS: what a proxyless client received, with grpcurl -----------------------------------


@contextlib.contextmanager
def admin_port_of_a_streaming_client(stack: LocalStack, client: str) -> Iterator[int]:
    """A client streaming proxyless with --admin-port; the port, once it serves."""
    path, port = proxyless(stack.xds_bootstrap), free_port()
    flags = ["--mode", "server-stream", "--count", "40", "--interval", "250ms", "--timeout", "30"]
    argv = client_argv(client, path.target, *flags, "--admin-port", str(port))
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, **path.environment})  # fmt: skip
    try:
        wait_until(lambda: port_in_use(port), 30, "the client's admin port")
        yield port
    finally:
        process.kill()
        process.wait(30)


def test_grpcurl_dumps_what_a_proxyless_client_received(mixed_stack) -> None:
    """While go-client streams (proxyless), grpcurl asks its admin port (CSDS) for its xDS
    resources: the listener, route and cluster `grpctest`, and every replica's address.
    (grpctest-client serves channelz only: grpctest_client/admin.py says why.)"""
    with admin_port_of_a_streaming_client(mixed_stack, "go-client") as port:
        dump = wait_until_value(lambda: _resources(_csds(port)), "the client's xDS resources")
    names = {(kind.rsplit(".", 1)[-1], name) for kind, name, _ in dump}
    assert {("Listener", "grpctest"), ("Cluster", "grpctest")} <= names, names
    assert ("ClusterLoadAssignment", "grpctest") in names, names
    (endpoints,) = [config for kind, _, config in dump if kind.endswith("ClusterLoadAssignment")]
    replicas = {mixed_stack.replica_target(i) for i in range(len(mixed_stack.replicas))}
    assert set(_addresses(endpoints)) == replicas


@pytest.mark.parametrize("client", CLIENTS)
def test_grpcurl_lists_a_proxyless_clients_channels(mixed_stack, client: str) -> None:
    """Channelz on the admin port of either client: its channel to xds:///grpctest, with
    calls started on it."""
    with admin_port_of_a_streaming_client(mixed_stack, client) as port:
        channels = wait_until_value(
            lambda: [c for c in _channelz(port).get("channel", []) if _started(c)],
            "a channel with calls started",
        )
    targets = {_field(_field(c, "data"), "target") for c in channels}
    assert "xds:///grpctest" in targets, targets


def _channelz(port: int) -> dict[str, Any]:
    result = subprocess.run(
        [command("grpcurl"), "-plaintext", f"127.0.0.1:{port}", CHANNELZ],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _started(channel: dict[str, Any]) -> bool:
    return int(_field(_field(channel, "data"), "calls_started") or 0) > 0


def _csds(port: int) -> dict[str, Any]:
    result = subprocess.run([command("grpcurl"), "-plaintext", f"127.0.0.1:{port}", CSDS],
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _key(name: str) -> str:
    """A JSON field as grpcurl prints it, camelCase or snake_case, in one spelling."""
    return name.replace("_", "").lower()


def _field(message: dict[str, Any], name: str) -> Any:
    return next((value for key, value in message.items() if _key(key) == _key(name)), None)


def _resources(dump: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(type URL, name, resource) of every xDS resource in a CSDS dump that the client
    has received (an empty list until it has them all)."""
    found = [
        (_field(config, "type_url"), _field(config, "name"), _field(config, "xds_config"))
        for client in dump.get("config", [])
        for config in _field(client, "generic_xds_configs") or []
    ]
    return found if found and all(resource for _, _, resource in found) else []


def _addresses(value: Any) -> Iterator[str]:
    """Every socket address (ip:port) anywhere in a resource."""
    if isinstance(value, dict):
        socket_address = _field(value, "socket_address")
        if socket_address:
            yield f"{_field(socket_address, 'address')}:{_field(socket_address, 'port_value')}"
        for nested in value.values():
            yield from _addresses(nested)
    elif isinstance(value, list):
        for nested in value:
            yield from _addresses(nested)


def wait_until_value(read: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """What `read` returns once it is not empty."""
    seen: list[Any] = []

    def read_it() -> bool:
        seen.append(read())
        return bool(seen[-1])

    wait_until(read_it, timeout, what)
    return seen[-1]


# -- connections: their age, and keepalive pings on quiet calls ------------------------------


@pytest.fixture(scope="module")
def short_lived_connections(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Replicas that close every connection after 1 s and give its calls 2 s more."""
    args = ["--max-connection-age", "1", "--max-connection-age-grace", "2"]
    with LocalStack.on_free_ports(
        replicas=2, go_replicas=1, log_dir=tmp_path_factory.mktemp("logs"), server_args=args
    ) as running:
        yield running


@pytest.mark.parametrize("client", CLIENTS)
def test_a_stream_cut_by_its_connections_age_goes_on_elsewhere(
    short_lived_connections, client: str
) -> None:
    """A stream that outlasts --max-connection-age and its grace ends UNAVAILABLE and
    the client resumes it: every reply once, in order, exit 0."""
    stack = short_lived_connections
    replicas = [stack.replica_target(i) for i in range(len(stack.replicas))]
    flags = ["--mode", "server-stream", "--count", "400", "--interval", "20ms", "--timeout", "60"]
    result = run_client(client, client_side(replicas).target, *flags, *JSON_OUTPUT)
    assert result.returncode == 0, result.stderr
    assert [r["sequence"] for r in replies(result.stdout)] == list(range(1, 401))
    # With --output json each resume is a JSON object on stderr, nothing else is there.
    resumes = [json.loads(line)["resumed"] for line in result.stderr.splitlines()]
    assert resumes, "the stream outlasted its connection's age and grace: resumed"


@pytest.mark.parametrize("server", ["replica-1", "go-1"])
def test_a_quiet_call_pinged_every_second_is_not_cut(mixed_stack, server: str) -> None:
    """The Python client pings every second while a call is open; a stream quiet for 5 s
    at a time (three pings and more between replies) is not ended with GOAWAY
    too_many_pings by either server: no resume needed."""
    index = [replica.name for replica in mixed_stack.replicas].index(server)
    target = f"ipv4:{mixed_stack.replica_target(index)}"
    flags = ["--mode", "server-stream", "--count", "3", "--interval", "5s", "--timeout", "30"]
    result = run_client("py-client", target, *flags, *JSON_OUTPUT)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert [r["replica"] for r in replies(result.stdout)] == [server] * 3
