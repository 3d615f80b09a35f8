"""The stack on a real multi-node Docker Swarm built on this machine.

A manager (the running engine) and a worker (a second engine in its own network
namespace) run deploy/swarm/stack.yml: the replicas spread over both nodes, Envoy
(on the manager) balances over all of them; then scaling, a rolling update under
concurrent load, and the loss of the worker node under load, with no call lost.
Everything is torn down afterwards: the stack, the swarm, the worker engine, its
namespace and veth pair.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from grpctest_devtools.clients import JSON_OUTPUT, calls_per_replica, run_client
from grpctest_devtools.ports import free_port, port_in_use
from grpctest_devtools.repo import REPO
from grpctest_devtools.waiting import wait_until
from grpctest_harness.docker_engine import sh
from grpctest_harness.faults import default_loads, under_load
from grpctest_harness.load import assert_ran_through
from grpctest_harness.swarm import WORKER_HOSTNAME, LocalSwarm

STACK = "grpctest"
SERVERS = f"{STACK}_py-server"
# go-1, the stack's one go-server replica, answers beside the py-server replicas.
GO_REPLICAS = 1
NETWORK = f"{STACK}_default"
# deploy/swarm/stack.yml's host-port variables, each a port free now (no clash with a
# `make run` or a compose stack on the default ones).
PORTS = {name: free_port() for name in ("PORT_PROXY", "PORT_PROXY_TLS")}
TARGET = f"localhost:{PORTS['PORT_PROXY']}"

pytestmark = [pytest.mark.containers, pytest.mark.timeout(1800)]


def answering_replicas(count: int = 30) -> set[str]:
    """The replicas that answer `count` calls through Envoy's published port."""
    result = run_client("go-client", TARGET, "--count", str(count), "--timeout", "5", *JSON_OUTPUT)
    return set(calls_per_replica(result.stdout)) if result.returncode == 0 else set()


def wait_balanced(replicas: int, timeout: float = 90) -> float:
    """Until Envoy sends calls to `replicas` py-server replicas and go-1; returns the
    seconds it took."""
    replicas += GO_REPLICAS
    return wait_until(lambda: len(answering_replicas(6 * replicas)) == replicas, timeout,
                      f"Envoy to balance over {replicas} replicas")  # fmt: skip


@pytest.fixture(scope="module")
def swarm(images, figures) -> Iterator[LocalSwarm]:
    start = time.monotonic()
    local_swarm = LocalSwarm()
    with local_swarm:
        local_swarm.load_images(
            "grpctest/py-server:dev",
            "grpctest/go-server:dev",
            "grpctest/control-plane:dev",
            "grpctest/go-client:dev",
        )
        try:
            sh(
                "docker",
                "stack",
                "deploy",
                "--compose-file",
                str(REPO / "deploy/swarm/stack.yml"),
                STACK,
                env={**os.environ, **{name: str(port) for name, port in PORTS.items()}},
            )
            wait_until(lambda: len(local_swarm.running(SERVERS)) == 3, 120, "3 running replicas")
            wait_balanced(3)
            figures["swarm: seconds to a two-node swarm with the stack balanced"] = round(
                time.monotonic() - start, 1
            )
            yield local_swarm
        finally:
            sh("docker", "stack", "rm", STACK)
            networks = ["docker", "network", "ls", "--quiet", "--filter", f"name={NETWORK}"]
            wait_until(lambda: not sh(*networks).stdout.strip(), 60, "the stack's network to go")
    assert local_swarm.leftovers() == [], "the swarm's tear-down left these behind"


def test_replicas_spread_over_both_nodes(swarm) -> None:
    nodes = swarm.running(SERVERS)
    assert len(nodes) == 3
    assert WORKER_HOSTNAME in nodes
    assert len(set(nodes)) == 2, nodes


def test_a_client_job_reaches_every_replica_through_envoy(swarm, figures) -> None:
    # A task just started on the worker waits a few seconds before the overlay carries its
    # first connection (the swarm's gossip spreads the new endpoint; measured: over 5 s,
    # under 20 s), so the job's calls get a deadline that covers it.
    output = swarm.run_job("grpctest-client", NETWORK, "grpctest/go-client:dev",
                           "--target", "envoy:8080", "--count", "30", "--timeout", "20",
                           *JSON_OUTPUT)  # fmt: skip
    per_replica = calls_per_replica(output)
    figures["swarm: client job, calls per replica"] = per_replica
    assert sum(per_replica.values()) == 30, output
    assert len(per_replica) == 3 + GO_REPLICAS, output
    assert "go-1" in per_replica, output


def test_envoys_admin_is_not_published(swarm) -> None:
    spec = sh("docker", "service", "inspect", f"{STACK}_envoy",
              "--format", "{{json .Endpoint.Ports}}").stdout  # fmt: skip
    assert '"TargetPort":9901' not in spec
    assert f'"PublishedPort":{PORTS["PORT_PROXY"]}' in spec
    assert not port_in_use(9901)


def test_a_rolling_update_under_load_loses_no_call(swarm, figures) -> None:
    wait_balanced(3)

    def update() -> None:  # returns once the update has converged (however long)
        sh("docker", "service", "update", "--force", "--quiet", SERVERS, timeout=600)

    fault, loads = under_load(default_loads(TARGET), update)
    figures["swarm: rolling update of 3 replicas under load"] = (
        f"{'; '.join(map(str, loads))}; {fault.end.monotonic - fault.start.monotonic:.0f} s"
    )
    assert_ran_through(loads)


def test_scaling_to_5_puts_5_in_rotation(swarm, figures) -> None:
    start = time.monotonic()
    sh("docker", "service", "scale", "--detach", f"{SERVERS}=5")
    wait_until(lambda: len(swarm.running(SERVERS)) == 5, 120, "5 running replicas")
    balanced = time.monotonic() - start + wait_balanced(5)
    figures["swarm: seconds from scale 5 to 5 replicas answering"] = round(balanced, 1)


def _all_on_manager(swarm: LocalSwarm) -> bool:
    nodes = swarm.running(SERVERS)
    return len(nodes) == 5 and WORKER_HOSTNAME not in nodes


def test_losing_the_worker_node_under_load_loses_no_call(swarm, figures) -> None:
    wait_until(lambda: WORKER_HOSTNAME in swarm.running(SERVERS), 60, "a replica on the worker")
    on_worker = swarm.running(SERVERS).count(WORKER_HOSTNAME)

    def lose_the_worker() -> None:  # returns once the swarm has all 5 on the manager
        swarm.stop_worker_engine()
        wait_until(lambda: _all_on_manager(swarm),
                   300, "the swarm to run all 5 replicas again, on the manager")  # fmt: skip

    fault, loads = under_load(default_loads(TARGET), lose_the_worker)
    figures["swarm: worker node lost under load"] = (
        f"{'; '.join(map(str, loads))}; {fault.end.monotonic - fault.start.monotonic:.0f} s "
        f"until 5 replicas again ({on_worker} replicas were on the worker)"
    )
    # No call failed, and the loads were answered before the node's loss and after the
    # swarm had recovered (a dead load is no pass).
    assert_ran_through(loads)
    # go-1 too, wherever the swarm runs it now.
    wait_balanced(5, timeout=60)
