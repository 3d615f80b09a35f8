"""The whole local stack end to end: 3 real replicas behind a real Envoy, both real
clients, real health checks, and the commands a user types (demo, run + Ctrl-C)."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_devtools.clients import (
    CLIENTS,
    JSON_OUTPUT,
    calls_per_replica,
    failure,
    records,
    replies,
    run_client,
)
from grpctest_devtools.envoy import EnvoyAdmin
from grpctest_devtools.ports import free_port, free_port_block, port_in_use
from grpctest_devtools.repo import command
from grpctest_devtools.waiting import wait_until
from grpctest_server.healthcheck import check_health
from grpctest_server.servicer import SERVICE_NAME

REPLICAS = 3
ALL_REPLICAS = {f"replica-{i}" for i in range(1, REPLICAS + 1)}


def assert_clean_failure(result: subprocess.CompletedProcess[str], status: str) -> None:
    assert result.returncode == 1, result
    assert result.stderr.startswith(f"error: {status}: "), result.stderr
    assert "Traceback" not in result.stderr
    assert "panic" not in result.stderr


# -- calls through Envoy ------------------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_calls_through_envoy_reach_every_replica(stack, client: str) -> None:
    result = run_client(client, stack.target, "--count", "30", "--message", "e2e", *JSON_OUTPUT)
    assert result.returncode == 0, result.stderr
    per_replica = calls_per_replica(result.stdout)
    assert set(per_replica) == ALL_REPLICAS
    assert sum(per_replica.values()) == 30
    answers = {(r["message"], r["received"]) for r in replies(result.stdout)}
    assert answers == {('Hello I am up and running received "e2e" message from you', True)}
    assert len(replies(result.stdout)) == 30


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("flags", "violations"),
    [
        (["--message", ""], [("message", "required")]),
        (["--mode", "server-stream", "--count", "100001", "--message", ""],
         [("message", "required"), ("count", "uint32.gte_lte")]),
        (["--mode", "chat", "--count", "3", "--message", ""], [("message", "required")]),
    ],
)  # fmt: skip
def test_a_broken_rule_is_reported_with_its_field_and_rule(
    stack, client: str, flags: list[str], violations: list[tuple[str, str]]
) -> None:
    """INVALID_ARGUMENT, the broken rules as data (--output json) and as one line for
    people: "field: description [rule id]" for each, as the servers' BadRequest says."""
    result = run_client(client, stack.target, *flags, *JSON_OUTPUT)
    assert_clean_failure(result, "INVALID_ARGUMENT")
    failed = failure(result.stdout)
    assert failed is not None, result.stdout
    assert failed["code"] == "INVALID_ARGUMENT"
    assert [(v["field"], v["reason"]) for v in failed["field_violations"]] == violations
    line = "; ".join(
        f"{v['field']}: {v['description']} [{v['reason']}]" for v in failed["field_violations"]
    )
    assert result.stderr.splitlines()[0] == f"error: INVALID_ARGUMENT: {line}"


@pytest.mark.parametrize("client", CLIENTS)
def test_unreachable_target_is_unavailable(client: str) -> None:
    result = run_client(client, f"127.0.0.1:{free_port()}", "--timeout", "3")
    assert_clean_failure(result, "UNAVAILABLE")


@pytest.mark.parametrize("client", CLIENTS)
def test_bad_count_is_a_cli_error(client: str) -> None:
    result = run_client(client, "127.0.0.1:1", "--count", "0")
    assert result.returncode == 2  # a usage error, as for any bad flag
    assert "count must be at least 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert "panic" not in result.stderr


def test_oversized_message_is_resource_exhausted_through_envoy(stack) -> None:
    with grpc.insecure_channel(stack.target) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetServerResponse(
                grpctest_pb2.Message(message="x" * (2 * 1024 * 1024)), timeout=10
            )
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in (err.value.details() or "")
        assert stub.GetServerResponse(grpctest_pb2.Message(message="ok"), timeout=5).received


# -- health -------------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["", "grpctest.Grpctest"])
def test_health_through_envoy_and_direct(stack, service: str) -> None:
    assert check_health(stack.target, service) == "SERVING"
    for i in range(REPLICAS):
        assert check_health(stack.replica_target(i), service) == "SERVING"
    assert check_health(stack.target, "no.such.Service") == "NOT_FOUND"


def test_envoy_sees_every_replica_healthy(stack) -> None:
    assert stack.healthy_hosts() == {stack.replica_target(i) for i in range(REPLICAS)}


# -- the commands a user types -------------------------------------------------------------------


def stack_command(subcommand: str, *extra: str) -> tuple[list[str], list[int]]:
    """`grpctest-local SUBCOMMAND` on free ports; returns it and every port it uses."""
    # 3 py-server replicas and 1 go-server replica (grpctest-local's default).
    base, metrics = free_port_block(REPLICAS + 1), free_port_block(REPLICAS + 1)
    envoy, admin, tls, xds = free_port(), free_port(), free_port(), free_port()
    argv = [command("grpctest-local"), subcommand, "--base-port", str(base),
            "--metrics-base-port", str(metrics), "--envoy-port", str(envoy),
            "--admin-port", str(admin), "--tls-port", str(tls),
            "--control-plane-port", str(xds), *extra]  # fmt: skip
    replicas = [base + i for i in range(REPLICAS + 1)] + [metrics + i for i in range(REPLICAS + 1)]
    return argv, [*replicas, xds, envoy, admin, tls]


def test_demo_calls_every_replica_with_both_clients_every_way_and_stops_everything() -> None:
    """Both languages answer both clients, through Envoy (round robin over 3 Python and
    1 Go replica), proxyless over xDS and balanced by the client over a list."""
    argv, ports = stack_command("demo", "--calls", "12")
    result = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    # Each client's summary (--output json), each way: all 12 calls answered, by every
    # replica. (The demo's last line is its word to its user: it speaks no JSON.)
    summaries = [r["summary"] for r in records(result.stdout) if "summary" in r]
    ways = [s["target"].split(":")[0] for s in summaries]
    assert ways == ["127.0.0.1", "127.0.0.1", "xds", "xds", "ipv4", "ipv4"], summaries
    every_replica = {*ALL_REPLICAS, "go-1"}
    assert [(set(s["per_replica"]), s["replies"]) for s in summaries] == [(every_replica, 12)] * 6
    assert "demo OK: " in result.stdout
    assert not [p for p in ports if port_in_use(p)]


@contextlib.contextmanager
def local_run() -> Iterator[tuple[subprocess.Popen[str], list[int]]]:
    """`grpctest-local run` on free ports, until it says it is ready; killed if the test
    leaves it running. Its own process group, as a terminal's foreground job."""
    argv, ports = stack_command("run")
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:  # all along: a full pipe would stall the run
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        # `ready: ...` is the local run's word to its user (it speaks no JSON).
        deadline = time.monotonic() + 90
        while (line := lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            if line.startswith("ready:"):
                break
        assert line is not None, "the local run exited before it was ready"
        yield proc, ports
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_run_stops_everything_on_ctrl_c() -> None:
    with local_run() as (proc, ports):
        assert all(port_in_use(p) for p in ports)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C goes to the group
        assert proc.wait(60) == 0
    assert not [p for p in ports if port_in_use(p)]


def server_pids(port: int) -> list[int]:
    """The grpctest-server processes serving `port` (Linux's /proc, as the local run)."""
    wanted = f"--port\0{port}\0".encode()
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if wanted in cmdline.read_bytes() and b"grpctest-server" in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
    return pids


def test_run_restarts_a_replica_that_dies() -> None:
    with local_run() as (proc, ports):
        port, admin = ports[1], EnvoyAdmin(ports[-2])  # replica-2; Envoy's admin
        (crashed,) = server_pids(port)
        os.kill(crashed, signal.SIGKILL)

        def restarted() -> bool:
            pids = server_pids(port)
            return bool(pids) and crashed not in pids

        def serving() -> bool:
            return check_health(f"127.0.0.1:{port}", SERVICE_NAME) == "SERVING"

        wait_until(restarted, 30, "the supervisor to start replica-2 again")
        wait_until(serving, 30, "the new replica-2 to serve")
        wait_until(lambda: f"127.0.0.1:{port}" in admin.healthy_hosts(), 30, "it in rotation")
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0
