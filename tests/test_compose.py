"""The container topology end to end on a real Docker engine, with Compose v2.

Builds every project image, brings docker-compose.yml up (3 py-server replicas and 1
go-server replica behind Envoy, their endpoints from the control plane) with `up --wait`,
on host ports of its own (the compose file's PORT_* variables, set to ports free at the
start: no clash with a `make run` or another stack on the default ones), and checks what a
user does: grpcurl through Envoy, the client containers three ways (through Envoy,
proxyless over xDS, client-side over DNS), scaling to 5 (a client over DNS finds the new
replicas once its connections age out); then the replica fault drills and the control
plane's own faults at realistic concurrency, through Envoy and proxyless from this host at
once, with no call lost. Tears everything down and stops the engine if it started one.

Slow (minutes on a fresh machine: base image stand-ins and image builds); run alone
with `make test-containers`. With CI=true it runs and fails loudly; it never skips.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from grpctest_devtools import browser
from grpctest_devtools.clients import CallPath, calls_per_replica, proxyless, through_envoy
from grpctest_devtools.control_plane import write_bootstrap
from grpctest_devtools.envoy import EnvoyAdmin
from grpctest_devtools.observability import PrometheusAPI
from grpctest_devtools.ports import free_port
from grpctest_devtools.repo import CERTS, command
from grpctest_devtools.waiting import wait_until
from grpctest_harness.compose import ComposeProject, address, inspect
from grpctest_harness.docker_engine import sh
from grpctest_harness.faults import (
    CONTROL_PLANE_DRILLS,
    DRILLS,
    ComposeControlPlane,
    ComposeReplicas,
    Drill,
)
from grpctest_harness.load import assert_ran_through
from grpctest_harness.stream_load import (
    STREAM_FAULTS,
    assert_no_reply_lost,
    rows,
    stream_drill,
)

# docker-compose.yml's host-port variables, each a port free now.
PORTS = {
    name: free_port() for name in ("PORT_PROXY", "PORT_PROXY_TLS", "PORT_ADMIN", "PORT_PROMETHEUS")
}
COMPOSE = ComposeProject("grpctest-e2e", env={name: str(port) for name, port in PORTS.items()})
TARGET = f"localhost:{PORTS['PORT_PROXY']}"
TLS_TARGET = f"localhost:{PORTS['PORT_PROXY_TLS']}"
ADMIN = EnvoyAdmin(PORTS["PORT_ADMIN"])
IMAGES = {"py-server": "grpctest/py-server:dev", "go-server": "grpctest/go-server:dev",
          "control-plane": "grpctest/control-plane:dev",
          "py-client": "grpctest/py-client:dev", "go-client": "grpctest/go-client:dev",
          "certs": "grpctest/certs:dev"}  # fmt: skip
# 3 py-server replicas and 1 go-server replica (go-1), all in Envoy's one cluster.
REPLICAS = 4

pytestmark = [pytest.mark.containers, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def topology(images, engine_workdir: Path, figures) -> Iterator[None]:
    try:
        start = time.monotonic()
        COMPOSE("up", "--detach", "--wait")  # until every replica's HEALTHCHECK passes
        figures["seconds for `up --wait`"] = round(time.monotonic() - start, 1)
        wait_until(
            lambda: len(ADMIN.healthy_hosts()) == REPLICAS,
            60,
            "Envoy to see 3 healthy py-server replicas and the go-server replica",
        )
        yield
    finally:
        # Logs help when something failed; then leave no container or network behind,
        # also when reading the logs failed or timed out.
        try:
            logs = subprocess.run(
                ["docker", "compose", "-p", COMPOSE.name, "logs", "--tail", "30"],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            (engine_workdir / "compose.log").write_text(logs.stdout + logs.stderr)
        finally:
            COMPOSE("--profile", "clients", "down", "--volumes", "--remove-orphans",
                    "--timeout", "30")  # fmt: skip
        leftovers = COMPOSE.leftovers()
    assert leftovers == [], "compose down left containers or networks behind"


def test_images_are_small_and_run_as_non_root(topology, figures) -> None:
    sizes = {}
    for name, image in IMAGES.items():
        info = json.loads(sh("docker", "image", "inspect", image).stdout)[0]
        sizes[name] = round(info["Size"] / 1e6, 1)
        if name != "certs":  # the run-once cert job writes into a host folder as root
            assert info["Config"]["User"] not in ("", "0", "root"), f"{image} runs as root"
    figures["image sizes MB"] = sizes
    # grpc-go's xDS client (proxyless: xds:///, CSDS) and the Envoy API types it carries
    # are about 14 MB of go-client's binary (29 MB, statically linked).
    assert sizes["go-client"] <= 35, sizes
    assert sizes["go-server"] <= 40, sizes
    assert sizes["control-plane"] <= 80, sizes


def test_server_containers_are_healthy_by_their_grpc_healthcheck(topology) -> None:
    """The replicas' HEALTHCHECK asks grpctest.Grpctest, the control plane's its own
    Health service (SERVING once its first version is out)."""
    ids = [*COMPOSE.containers("py-server"), *COMPOSE.containers("go-server"),
           *COMPOSE.containers("control-plane")]  # fmt: skip
    assert len(ids) == REPLICAS + 1
    states = [inspect(i)["State"] for i in ids]
    assert [s["Health"]["Status"] for s in states] == ["healthy"] * (REPLICAS + 1)
    assert all("SERVING" in s["Health"]["Log"][-1]["Output"] for s in states)


def test_envoy_gets_every_replica_from_the_control_plane(topology) -> None:
    """Envoy's endpoints come over xDS (its ADS stream is up), and the control plane's
    log says which version it pushed to it."""
    assert ADMIN.stats("control_plane.")["control_plane.connected_state"] == 1
    logs = COMPOSE("logs", "control-plane").stdout.splitlines()
    pushes = [line for line in logs if "msg=pushed" in line and "group=grpctest-envoy" in line]
    assert pushes, logs[-20:]


def test_ps_shows_the_run_once_certs_job_and_the_services(topology) -> None:
    rows = [
        json.loads(line) for line in COMPOSE("ps", "--all", "--format", "json").stdout.splitlines()
    ]
    states = {(row["Service"], row["State"]) for row in rows}
    assert ("certs", "exited") in states
    assert ("envoy", "running") in states
    running = [row for row in rows if (row["Service"], row["State"]) == ("py-server", "running")]
    assert len(running) == 3, rows  # deploy.replicas


def test_grpcurl_list_and_describe_through_envoy(topology) -> None:
    grpcurl = command("grpcurl")
    listing = sh(grpcurl, "-plaintext", TARGET, "list").stdout.split()
    assert {"grpctest.Grpctest", "grpc.health.v1.Health"} <= set(listing)
    # (grpcurl's list and describe print only text.)
    described = sh(grpcurl, "-plaintext", TARGET, "describe", "grpctest.Grpctest.GetServerResponse")
    assert "grpctest.Grpctest.GetServerResponse is a method:" in described.stdout


def test_grpcurl_over_tls_with_the_generated_ca_and_token(topology) -> None:
    token = (CERTS / "token.jwt").read_text().strip()
    listing = sh(command("grpcurl"), "-cacert", str(CERTS / "ca.crt"),
                 "-H", f"authorization: Bearer {token}", TLS_TARGET, "list")  # fmt: skip
    assert "grpctest.Grpctest" in listing.stdout.split()
    grpcurl = [command("grpcurl"), "-cacert", str(CERTS / "ca.crt"), TLS_TARGET, "list"]
    refused = subprocess.run(grpcurl, capture_output=True, text=True, timeout=30)
    # (grpcurl's `list` reports a failed listing only as text, with exit status 1.)
    assert refused.returncode == 1, refused.stderr
    assert "code = Unauthenticated" in refused.stderr, refused.stderr


def test_envoy_admin_is_published_on_loopback_only(topology) -> None:
    (envoy,) = COMPOSE.containers("envoy")
    ports = inspect(envoy)["NetworkSettings"]["Ports"]
    assert {b["HostIp"] for b in ports["9901/tcp"]} == {"127.0.0.1"}
    # ... on the host port its variable names (PORT_ADMIN).
    assert {b["HostPort"] for b in ports["9901/tcp"]} == {str(PORTS["PORT_ADMIN"])}


# The clients' targets, as docker-compose.yml's comment gives them: through Envoy (the
# services' own), proxyless over xDS, over DNS.
TARGETS = {"envoy": "envoy:8080", "xds": "xds:///grpctest", "dns": "dns:///replicas:50051"}


@pytest.mark.parametrize("way", TARGETS)
@pytest.mark.parametrize("client", ["go-client", "py-client"])
def test_client_container_reaches_every_replica(topology, figures, client: str, way: str) -> None:
    result = COMPOSE("run", "--rm", "--env", "GRPCTEST_OUTPUT=json",
                     "--env", f"GRPCTEST_TARGET={TARGETS[way]}", client)  # fmt: skip
    per_replica = calls_per_replica(result.stdout)
    figures[f"{client} container, {way}: calls per replica"] = per_replica
    assert len(per_replica) == REPLICAS, result.stdout
    assert "go-1" in per_replica, result.stdout  # both languages answered
    assert sum(per_replica.values()) == 30


def test_rest_json_through_envoy(topology) -> None:
    reply = httpx.post(f"http://{TARGET}/v1/message", json={"message": "rest"}, timeout=10)
    assert reply.status_code == 200, reply.text
    assert reply.json()["message"] == 'Hello I am up and running received "rest" message from you'


def test_the_web_page_calls_over_grpc_web_in_a_real_browser(topology) -> None:
    with browser.chromium() as chromium:
        page = chromium.new_page()
        page.goto(f"http://{TARGET}/")
        # Envoy's view of the rotation (/rotation, from its admin inside the container):
        # every replica, found by DNS as py-server or go-server.
        browser.wait_for_rotation(page, REPLICAS)
        answered = {browser.send(page) for _ in range(2 * REPLICAS)}
        assert (
            browser.stream(page, count=5, interval_ms=10) == "OK: stream complete, 5 of 5 replies"
        )
        kinds = sorted(bar["kind"] for bar in browser.rotation(page))
    assert len(answered) == REPLICAS, answered  # "OK: <replica> answered", one per replica
    assert kinds == ["go", "python", "python", "python"]


def test_prometheus_scrapes_envoy_and_every_replica(topology, figures) -> None:
    prometheus = PrometheusAPI(f"http://127.0.0.1:{PORTS['PORT_PROMETHEUS']}")
    # Where no registry is reachable the image is a stand-in with Debian's Prometheus,
    # older than the compose file's tag: say which version really ran.
    figures["prometheus version that ran"] = prometheus.version()
    wait_until(lambda: prometheus.value('sum(up{job="py-server"})') == 3, 60,
               "Prometheus to scrape the 3 replicas")  # fmt: skip
    assert prometheus.value('up{job="envoy"}') == 1
    wait_until(
        lambda: prometheus.value('up{job="go-server"}') == 1, 60, "Prometheus to scrape go-1"
    )
    handled = 'grpc_server_handled_total{grpc_service="grpctest.Grpctest"}'
    envoy = 'envoy_cluster_upstream_rq_total{envoy_cluster_name="grpctest"}'

    def counts_after(moment: float) -> tuple[float, float] | None:
        """(replicas, Envoy) calls counted, once Prometheus has scraped every series of
        both after `moment` (else one side may be fresh and the other not yet)."""
        stamps = [prometheus.value(f"min(timestamp({series}))") for series in (handled, envoy)]
        if any(stamp is None or stamp <= moment for stamp in stamps):
            return None
        replicas, edge = prometheus.value(f"sum({handled})"), prometheus.value(envoy)
        return None if replicas is None or edge is None else (replicas, edge)

    def calls_counted_after_30_more() -> tuple[float, float]:
        assert COMPOSE("run", "--rm", "go-client").returncode == 0  # 30 calls
        done, seen = time.time(), []

        def scraped() -> bool:
            seen.append(counts_after(done))
            return seen[-1] is not None

        wait_until(scraped, 30, "Prometheus to scrape Envoy and the replicas after the calls")
        counted = seen[-1]
        assert counted is not None
        return counted

    # (A replica's counters exist once it has handled a call: first 30 calls, then 30 more.)
    before = calls_counted_after_30_more()
    after = calls_counted_after_30_more()
    assert after == (before[0] + 30, before[1] + 30), f"(replicas, Envoy): {before}, then {after}"


def test_server_and_envoy_run_on_read_only_root_filesystems(topology) -> None:
    for service in ("py-server", "go-server", "control-plane", "envoy", "prometheus"):
        container = COMPOSE.containers(service)[0]
        assert inspect(container)["HostConfig"]["ReadonlyRootfs"] is True, service


# -- replica faults at realistic concurrency ------------------------------------------------


@pytest.fixture
def paths(topology, tmp_path: Path) -> list[CallPath]:
    """Through Envoy, and proxyless over xDS from this host: the bootstrap names the
    control plane's container (its address now: a restarted container may get another),
    and this host reaches the replicas' addresses it sends."""
    (control_plane,) = COMPOSE.containers("control-plane")
    bootstrap = tmp_path / "xds-bootstrap.json"
    write_bootstrap(bootstrap, f"{address(inspect(control_plane))}:18000")
    return [through_envoy(TARGET), proxyless(bootstrap)]


@pytest.mark.parametrize("fault", DRILLS)
def test_no_call_fails_through_replica_faults(topology, paths, figures, fault: str) -> None:
    wait_until(
        lambda: len(ADMIN.healthy_hosts()) == REPLICAS, 60, "every replica healthy to start from"
    )
    report = DRILLS[fault](Drill(TARGET, ADMIN, ComposeReplicas(COMPOSE), paths=paths))
    figures[f"compose {report.fault}"] = report.row()
    # No call failed, and each load was answered before the fault and after it (a load
    # that died is no pass).
    assert_ran_through(report.loads)
    assert report.back_seconds is not None, report.row()  # (how fast: a figure)
    retry_overflow = "cluster.grpctest.upstream_rq_retry_overflow"
    assert ADMIN.stats(retry_overflow).get(retry_overflow, 0) == 0


@pytest.mark.parametrize("fault", STREAM_FAULTS)
def test_streams_and_chats_lose_no_reply_through_replica_faults(
    topology, paths, figures, fault: str
) -> None:
    """The local stream drill (tests/test_stream_faults.py) against the containers."""
    wait_until(
        lambda: len(ADMIN.healthy_hosts()) == REPLICAS, 60, "every replica healthy to start from"
    )
    drill = Drill(TARGET, ADMIN, ComposeReplicas(COMPOSE), paths=paths)
    reports, report = stream_drill(drill, fault)
    figures[f"compose streams, {report.fault}"] = f"{rows(reports)}; {report.row()}"
    assert_no_reply_lost(reports, report)


# -- the control plane's own faults (after the replicas': one adds a py-server replica) -----


@pytest.mark.parametrize("fault", CONTROL_PLANE_DRILLS)
def test_no_call_fails_through_control_plane_faults(topology, paths, figures, fault: str) -> None:
    """Envoy and the proxyless clients keep serving on what they were sent."""
    replicas = ComposeReplicas(COMPOSE)  # every py-server and go-server container
    wait_until(lambda: len(ADMIN.healthy_hosts()) == len(replicas.containers), 60,
               "every replica healthy to start from")  # fmt: skip
    report = CONTROL_PLANE_DRILLS[fault](
        Drill(TARGET, ADMIN, replicas, paths=paths), ComposeControlPlane(COMPOSE)
    )
    figures[f"compose {report.fault}"] = report.row()
    # (On a failure, what the control plane published meanwhile.)
    logs = COMPOSE("logs", "--tail", "40", "control-plane").stdout if report.failures else ""
    assert report.failures == [], f"{report.row()}\n{logs}"
    assert_ran_through(report.loads)
    wait_until(lambda: len(ADMIN.healthy_hosts()) == len(replicas.containers), 60,
               "every replica back in Envoy's rotation")  # fmt: skip


# -- scaling (last: it leaves 5 py-server replicas) ------------------------------------------


def test_scale_to_5_then_run_a_client_keeps_5_replicas(topology, figures) -> None:
    """Envoy and a client over DNS (started before) find the new replicas: the client once
    its connections reach their --max-connection-age (30 s) and it resolves again."""
    before = set(COMPOSE.containers("py-server"))
    # About 60 s of calls, 100 ms apart: past the age of the connections it opens now.
    over_dns = subprocess.Popen(
        ["docker", "compose", "--project-name", COMPOSE.name, "--file", str(COMPOSE.file),
         "run", "--rm", "--env", "GRPCTEST_COUNT=600", "--env", "GRPCTEST_INTERVAL=100ms",
         "--env", "GRPCTEST_OUTPUT=json", "--env", f"GRPCTEST_TARGET={TARGETS['dns']}",
         "go-client"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    start = time.monotonic()
    COMPOSE("up", "--detach", "--wait", "--no-recreate", "--scale", "py-server=5")
    # 5 py-server replicas, and go-1 still beside them.
    wait_until(lambda: len(ADMIN.healthy_hosts()) == 6, 120, "Envoy to see 6 healthy replicas")
    figures["seconds from --scale 5 to 5 healthy replicas in Envoy"] = round(
        time.monotonic() - start, 1
    )
    result = COMPOSE(
        "run", "--rm", "--env", "GRPCTEST_COUNT=60", "--env", "GRPCTEST_OUTPUT=json", "go-client"
    )
    assert len(calls_per_replica(result.stdout)) == 6, result.stdout
    # Running a client changed nothing else: still 5 replicas (Compose v2 would reset
    # them to deploy.replicas if the client depended on the servers).
    assert len(COMPOSE.containers("py-server")) == 5
    added = {container[:12] for container in set(COMPOSE.containers("py-server")) - before}
    out, err = over_dns.communicate(timeout=300)
    assert over_dns.returncode == 0, err
    per_replica = calls_per_replica(out)
    figures[f"compose: a client over DNS, calls per replica ({len(added)} added meanwhile)"] = (
        per_replica
    )
    # (The control plane's drill before this one may have added a replica already.)
    assert len(added) == 5 - len(before) >= 1, (before, added)
    assert added <= set(per_replica), (added, per_replica)
