"""The xDS control plane on the local stack: it takes a replica out of Envoy's rotation
the moment the replica says NOT_SERVING or dies (before Envoy's own health checks could),
puts it back as soon as it serves, fills an Envoy that started before it, gives
proxyless clients the same replicas, and its own faults under load lose no call.

Each drill runs 64 Python callers and 64 Go callers, split between Envoy's way and the
proxyless one (faults.each_path).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from grpctest_devtools.control_plane import BOOTSTRAP_VARIABLE, XDS_TARGET
from grpctest_devtools.envoy import EnvoyAdmin
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.waiting import wait_until
from grpctest_harness.faults import (
    CONTROL_PLANE_DRILLS,
    Drill,
    LocalControlPlane,
    LocalReplicas,
    local_paths,
)
from grpctest_harness.load import assert_ran_through


def wait_out_of_rotation(stack: LocalStack, index: int) -> tuple[float, dict[str, Any]]:
    """Waits until Envoy stops routing to the replica; returns the seconds it took and
    the replica's health flags at that moment (who took it out)."""
    host = stack.replica_target(index)
    flags: dict[str, Any] = {}

    def out() -> bool:
        flags.update(stack.admin.health()[host])
        return not EnvoyAdmin.routable(flags)

    return wait_until(out, 30, f"{host} to leave Envoy's rotation", interval=0.02), flags


def test_a_not_serving_replica_leaves_at_once_and_a_restarted_one_rejoins(
    fresh_stack, figures
) -> None:
    """SIGTERM: the replica reports NOT_SERVING (and keeps answering for its drain, 3 s);
    the control plane's Watch stream hears it and marks it unhealthy at once, before
    Envoy's own checks (1 s apart, 2 failures) have failed it."""
    replica = fresh_stack.replicas[1]
    replica.signal(signal.SIGTERM)
    seconds, flags = wait_out_of_rotation(fresh_stack, 1)
    figures["local: a NOT_SERVING replica out of Envoy's rotation (s)"] = round(seconds, 2)
    assert flags["eds_health_status"] == "UNHEALTHY", flags
    assert not flags.get("failed_active_health_check"), flags
    assert replica.wait(30) == 0
    replica.start()
    target = fresh_stack.replica_target(1)
    wait_until(lambda: fresh_stack.serving(1), 60, "it to serve")
    back = wait_until(lambda: target in fresh_stack.healthy_hosts(), 30, "it to rejoin", 0.02)
    figures["local: a restarted replica in Envoy's rotation after it said SERVING (s)"] = round(
        back, 2
    )


def test_a_killed_replica_leaves_at_once(fresh_stack, figures) -> None:
    """SIGKILL: the replica's Watch stream breaks, and the control plane marks it
    unhealthy before Envoy's own checks have failed it."""
    fresh_stack.replicas[3].signal(signal.SIGKILL)  # go-1
    seconds, flags = wait_out_of_rotation(fresh_stack, 3)
    figures["local: a SIGKILLed replica out of Envoy's rotation (s)"] = round(seconds, 2)
    assert flags["eds_health_status"] == "UNHEALTHY", flags
    assert not flags.get("failed_active_health_check"), flags


def test_envoy_started_before_the_control_plane_gets_the_replicas(fresh_stack, figures) -> None:
    """Envoy without a control plane opens its listeners after its initial fetch timeout
    (with no endpoints), and takes the replicas as soon as the control plane is there."""
    fresh_stack.envoy.stop(timeout=10)
    LocalControlPlane(fresh_stack).kill()
    fresh_stack.envoy.start()
    ready = wait_until(
        lambda: fresh_stack.admin.get("/ready").strip() == "LIVE", 60, "Envoy to be ready"
    )
    assert fresh_stack.healthy_hosts() == set()
    start = time.monotonic()
    fresh_stack.control_plane.start()
    fresh_stack.wait_healthy()
    figures["local: Envoy ready without a control plane (s)"] = round(ready, 1)
    figures["local: every replica in rotation after a late control plane's start (s)"] = round(
        time.monotonic() - start, 1
    )


def test_proxyless_clients_reach_every_replica_with_the_stacks_bootstrap(fresh_stack) -> None:
    """stack.xds_bootstrap: a grpcio channel to xds:///grpctest gets the listener,
    cluster and endpoints from the control plane and calls every replica in turn."""
    script = (
        "import grpc; from grpctest import grpctest_pb2 as pb, grpctest_pb2_grpc as rpc\n"
        f"stub = rpc.GrpctestStub(grpc.insecure_channel({XDS_TARGET!r}))\n"
        "for _ in range(16): print(stub.GetServerResponse(pb.Message(message='x'), "
        "timeout=10, wait_for_ready=True).replica)\n"
    )
    env = {**os.environ, BOOTSTRAP_VARIABLE: str(fresh_stack.xds_bootstrap)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {replica.name for replica in fresh_stack.replicas}


@pytest.mark.parametrize("fault", CONTROL_PLANE_DRILLS)
def test_no_call_fails_through_control_plane_faults(fresh_stack, figures, fault: str) -> None:
    # Through Envoy and proxyless at once: both keep serving on what they were sent.
    paths = local_paths(fresh_stack)
    drill = Drill(fresh_stack.target, fresh_stack.admin, LocalReplicas(fresh_stack), paths=paths)
    report = CONTROL_PLANE_DRILLS[fault](drill, LocalControlPlane(fresh_stack))
    figures[f"local {report.fault}"] = report.row()
    # No call failed, and each load was answered before the fault and after it.
    assert_ran_through(report.loads)
    assert report.back_seconds is not None, report.row()
    if fault == "control-plane-killed":
        replicas = len(fresh_stack.replicas)
        assert report.seen["replicas Envoy kept routing to"] == f"{replicas} of {replicas}"
    # Whatever happened, the control plane is back and Envoy routes to every replica.
    fresh_stack.wait_healthy()
