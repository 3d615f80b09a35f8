"""The images the test cluster runs, built on a Docker engine of its own.

The machine's default engine (socket, data root, docker0, its iptables chains) may be
in use by the container tests at the same time, so this engine has its own of each:
socket and exec root under a temporary folder, data root in a cache folder (base-image
stand-ins and build layers are reused by the next run), its own bridge and cgroup
parent, and no iptables or forwarding management (it would flush the default engine's
chains); the masquerading rules and the forwarding its builds need to reach the package
registries are set here, marked, and removed again.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from grpctest_devtools.repo import REPO
from grpctest_harness import cluster_cleanup
from grpctest_harness.base_images import ensure_base_images
from grpctest_harness.cluster import PAUSE_IMAGE, restore_sysctls, set_sysctls
from grpctest_harness.docker_engine import DockerEngine, sh

BRIDGE = "grpctest-dkr0"
SUBNET = "10.245.0.0/24"
GATEWAY = "10.245.0.1/24"
CGROUP_PARENT = "grpctest-docker"
# The project's images the manifests name, by their Dockerfiles.
PROJECT_IMAGES = {
    "grpctest/py-server:dev": "py-server/Dockerfile",
    "grpctest/go-server:dev": "go-server/Dockerfile",
    "grpctest/control-plane:dev": "control-plane/Dockerfile",
    "grpctest/py-client:dev": "py-client/Dockerfile",
    "grpctest/go-client:dev": "go-client/Dockerfile",
}
# The public images the manifests and the Dockerfiles need (stand-ins where offline).
BASE_IMAGES = [
    "envoyproxy/envoy:v1.40.0",
    "python:3.11-slim-bookworm",
    "golang:1.26-bookworm",
    "gcr.io/distroless/static-debian12:nonroot",
]


def _rules(action: str) -> list[list[str]]:
    mark = cluster_cleanup.RULE_MARK
    return [
        ["-t", "nat", action, "POSTROUTING", "-s", SUBNET, "!", "-o", BRIDGE, *mark,
         "-j", "MASQUERADE"],
        ["-t", "filter", action, "FORWARD", "-i", BRIDGE, *mark, "-j", "ACCEPT"],
        ["-t", "filter", action, "FORWARD", "-o", BRIDGE, "-m", "conntrack",
         "--ctstate", "RELATED,ESTABLISHED", *mark, "-j", "ACCEPT"],
    ]  # fmt: skip


@contextlib.contextmanager
def private_engine(workdir: Path, data_root: Path) -> Iterator[None]:
    """A running engine of its own; DOCKER_HOST names it inside the block."""
    socket = workdir / "docker.sock"
    argv = [
        "dockerd", "--host", f"unix://{socket}", "--data-root", str(data_root),
        "--exec-root", str(workdir / "exec"), "--pidfile", str(workdir / "docker.pid"),
        "--bridge", BRIDGE, "--iptables=false", "--ip-masq=false", "--ip-forward=false",
        "--cgroup-parent", f"/{CGROUP_PARENT}", "--userland-proxy=false",
    ]  # fmt: skip
    previous = os.environ.get("DOCKER_HOST")
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    # Forwarding for the builds' masqueraded traffic: set here (not by dockerd, which
    # would leave it on), and put back.
    sysctls = set_sysctls({"net/ipv4/ip_forward": "1"})
    try:
        sh("ip", "addr", "add", GATEWAY, "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for rule in _rules("-A"):
            sh("iptables", *rule)
        os.environ["DOCKER_HOST"] = f"unix://{socket}"
        with DockerEngine(workdir / "dockerd.log", argv):
            yield
    finally:
        _restore_env(previous)
        for rule in _rules("-D"):
            subprocess.run(["iptables", *rule], capture_output=True, timeout=30)
        cluster_cleanup.delete_bridge(BRIDGE)
        restore_sysctls(sysctls)
        cluster_cleanup.unmount(data_root)
        cluster_cleanup.remove_cgroups(CGROUP_PARENT)


def _restore_env(previous: str | None) -> None:
    if previous is None:
        os.environ.pop("DOCKER_HOST", None)
    else:
        os.environ["DOCKER_HOST"] = previous


def build_images(workdir: Path, data_root: Path, tar: Path) -> dict[str, str]:
    """Builds every image the manifests run (and the pods' sandbox image) and saves them
    into one `docker save` archive; returns how each base image was obtained."""
    with private_engine(workdir, data_root):
        how = ensure_base_images(workdir, [*BASE_IMAGES, PAUSE_IMAGE])
        for name, dockerfile in PROJECT_IMAGES.items():
            sh("docker", "build", "--force-rm", "-t", name, "-f", dockerfile, ".",
               cwd=REPO, env={**os.environ, "DOCKER_BUILDKIT": "0"})  # fmt: skip
        sh("docker", "save", "-o", str(tar), *PROJECT_IMAGES, BASE_IMAGES[0], PAUSE_IMAGE)
    return how
