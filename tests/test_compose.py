"""The container topology end to end on a real Docker engine.

Builds every project image, brings docker-compose.yml up (3 py-server replicas behind
Envoy on localhost:8080), and checks what a user does: grpcurl through Envoy, the
client containers, scaling to 5, and stopping a replica under load without a failed
call. Then tears everything down and stops the engine if it started one.

Slow (minutes on a fresh machine: base image stand-ins and image builds); run alone
with `make test-compose`. With CI=true it runs and fails loudly; it never skips.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from grpctest_devtools.base_images import ensure_base_images
from grpctest_devtools.clients import calls_per_replica
from grpctest_devtools.docker_engine import DockerEngine, sh
from grpctest_devtools.envoy import EnvoyAdmin
from grpctest_devtools.load import Load
from grpctest_devtools.ports import port_in_use
from grpctest_devtools.repo import CERTS, REPO, command
from grpctest_devtools.waiting import wait_until

PROJECT = "grpctest-e2e"
TARGET = "localhost:8080"
ADMIN = EnvoyAdmin(9901)
IMAGES = {
    "py-server": "grpctest/py-server:dev",
    "py-client": "grpctest/py-client:dev",
    "go-client": "grpctest/go-client:dev",
    "certs": "grpctest/certs:dev",
}

pytestmark = pytest.mark.timeout(2400)


@functools.cache
def compose_command() -> tuple[str, ...]:
    """`docker compose` (v2) where installed, else Debian's docker-compose (v1.29)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    pytest.fail(
        "neither `docker compose` nor docker-compose is installed: "
        "run `make test-compose`, which installs them"
    )


def compose(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return sh(
        *compose_command(),
        "--project-name",
        PROJECT,
        "--file",
        str(REPO / "docker-compose.yml"),
        *args,
        timeout=timeout,
        cwd=REPO,
    )


def project_resources() -> list[str]:
    label = f"label=com.docker.compose.project={PROJECT}"
    containers = sh("docker", "ps", "-aq", "--filter", label).stdout.split()
    networks = sh("docker", "network", "ls", "-q", "--filter", label).stdout.split()
    return containers + networks


def server_containers() -> list[str]:
    """The running py-server containers."""
    return sh(
        "docker",
        "ps",
        "-q",
        "--filter",
        f"label=com.docker.compose.project={PROJECT}",
        "--filter",
        "label=com.docker.compose.service=py-server",
    ).stdout.split()


def inspect(container: str) -> dict:
    return json.loads(sh("docker", "inspect", container).stdout)[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("containers")


@pytest.fixture(scope="module")
def engine(workdir: Path) -> Iterator[None]:
    """A running Docker engine (started here if none runs, and stopped again)."""
    with DockerEngine(workdir / "dockerd.log"):
        yield


@pytest.fixture(scope="module")
def images(engine, workdir: Path, figures) -> None:
    """Every image the compose file runs: base images (stand-ins where no registry is
    reachable) and the project's own, built."""
    figures["base images"] = ensure_base_images(workdir)
    start = time.monotonic()
    compose("--profile", "clients", "build")
    figures["image build seconds"] = round(time.monotonic() - start, 1)


@pytest.fixture(scope="module")
def topology(images, workdir: Path, figures) -> Iterator[None]:
    busy = [p for p in (8080, 8443, 9901) if port_in_use(p)]
    if busy:
        pytest.fail(
            f"ports {busy} are in use; the compose topology publishes them "
            "(stop `make run` or another stack first)"
        )
    try:
        start = time.monotonic()
        compose("up", "-d")
        wait_until(
            lambda: len(ADMIN.healthy_hosts()) == 3,
            120,
            "Envoy to see 3 healthy py-server replicas",
        )
        figures["seconds from `up -d` to 3 healthy replicas in Envoy"] = round(
            time.monotonic() - start, 1
        )
        yield
    finally:
        # Logs help when something failed; then leave no container or network behind.
        logs = subprocess.run(
            [*compose_command(), "-p", PROJECT, "logs", "--tail", "30"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=120,
        )
        (workdir / "compose.log").write_text(logs.stdout + logs.stderr)
        compose("--profile", "clients", "down", "--volumes", "--remove-orphans", "--timeout", "30")
        leftovers = project_resources()
    assert leftovers == [], "compose down left containers or networks behind"


def test_images_are_small_and_run_as_non_root(topology, figures) -> None:
    sizes = {}
    for name, image in IMAGES.items():
        info = json.loads(sh("docker", "image", "inspect", image).stdout)[0]
        sizes[name] = round(info["Size"] / 1e6, 1)
        if name != "certs":  # the run-once cert job writes into a host folder as root
            assert info["Config"]["User"] not in ("", "0", "root"), f"{image} runs as root"
    figures["image sizes MB"] = sizes
    assert sizes["go-client"] <= 20, sizes


def test_server_containers_are_healthy_by_their_grpc_healthcheck(topology) -> None:
    ids = server_containers()
    assert len(ids) == 3
    states = [inspect(i)["State"] for i in ids]
    assert [s["Health"]["Status"] for s in states] == ["healthy"] * 3
    assert all("SERVING" in s["Health"]["Log"][-1]["Output"] for s in states)


def test_grpcurl_list_and_describe_through_envoy(topology) -> None:
    grpcurl = command("grpcurl")
    listing = sh(grpcurl, "-plaintext", TARGET, "list").stdout.split()
    assert {"grpctest.Grpctest", "grpc.health.v1.Health"} <= set(listing)
    described = sh(grpcurl, "-plaintext", TARGET, "describe", "grpctest.Grpctest").stdout
    assert (
        "rpc GetServerResponse ( .grpctest.Message ) returns ( .grpctest.MessageResponse );"
        in described
    )


def test_grpcurl_over_tls_with_the_generated_ca(topology) -> None:
    listing = sh(
        command("grpcurl"), "-cacert", str(CERTS / "ca.crt"), "localhost:8443", "list"
    ).stdout.split()
    assert "grpctest.Grpctest" in listing


def test_envoy_admin_is_published_on_loopback_only(topology) -> None:
    envoy = compose("ps", "-q", "envoy").stdout.strip()
    ports = inspect(envoy)["NetworkSettings"]["Ports"]
    assert {b["HostIp"] for b in ports["9901/tcp"]} == {"127.0.0.1"}


@pytest.mark.parametrize("client", ["go-client", "py-client"])
def test_client_container_reaches_every_replica(topology, figures, client: str) -> None:
    result = compose("run", "--rm", client)
    per_replica = calls_per_replica(result.stdout)
    figures[f"{client} container: calls per replica"] = per_replica
    assert len(per_replica) == 3, result.stdout
    assert sum(per_replica.values()) == 30


def test_scale_to_5_puts_5_replicas_in_rotation_without_config_edit(topology, figures) -> None:
    start = time.monotonic()
    compose("up", "-d", "--no-recreate", "--scale", "py-server=5")
    wait_until(lambda: len(ADMIN.healthy_hosts()) == 5, 120, "Envoy to see 5 healthy replicas")
    figures["seconds from --scale 5 to 5 healthy replicas in Envoy"] = round(
        time.monotonic() - start, 1
    )
    result = compose("run", "--rm", "-e", "GRPCTEST_COUNT=50", "go-client")
    assert len(calls_per_replica(result.stdout)) == 5, result.stdout


def test_stopping_a_replica_under_load_loses_no_call(topology, figures) -> None:
    before = len(ADMIN.healthy_hosts())
    victim = server_containers()[0]
    with Load(TARGET) as load:
        time.sleep(1)
        sh("docker", "stop", victim)  # SIGTERM: NOT_SERVING, drain, finish, exit
        wait_until(
            lambda: len(ADMIN.healthy_hosts()) == before - 1,
            30,
            "Envoy to drop the stopped replica",
        )
        time.sleep(1)
    figures["stop one replica under load: calls sent / failed"] = (
        f"{load.sent} / {len(load.failures)}"
    )
    exit_code = inspect(victim)["State"]["ExitCode"]
    assert load.failures == [], load.failures[:5]
    assert load.sent > 50
    assert exit_code == 0


def test_killed_replica_loses_no_call_and_its_restart_policy_brings_it_back(
    topology, figures
) -> None:
    before = len(ADMIN.healthy_hosts())
    victim = server_containers()[0]
    pid = inspect(victim)["State"]["Pid"]
    with Load(TARGET) as load:
        time.sleep(1)
        os.kill(pid, signal.SIGKILL)  # a crash, not a `docker stop`: no drain, no goodbye
        # Docker restarts it at once (restart: unless-stopped); often faster than Envoy's
        # two failed health checks, so it need not be seen out of rotation at all.
        back = wait_until(
            lambda: (
                inspect(victim)["RestartCount"] >= 1
                and inspect(victim)["State"]["Pid"] != pid
                and len(ADMIN.healthy_hosts()) == before
            ),
            90,
            "the restarted replica to be healthy in Envoy's rotation",
        )
        time.sleep(3)  # keep the load on while the restarted server warms up
    figures["kill -9 one replica under load: calls sent / failed"] = (
        f"{load.sent} / {len(load.failures)}"
    )
    figures["kill -9: seconds until restarted and healthy in Envoy"] = round(back, 1)
    assert load.failures == [], load.failures[:5]
    assert load.sent > 50
    assert inspect(victim)["RestartCount"] >= 1


def test_server_and_envoy_run_on_read_only_root_filesystems(topology) -> None:
    for service in ("py-server", "envoy"):
        container = compose("ps", "-q", service).stdout.split()[0]
        assert inspect(container)["HostConfig"]["ReadonlyRootfs"] is True, service
