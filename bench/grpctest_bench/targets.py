"""What the benchmark loads: servers alone, and Envoy in front of them, started here
and stopped again.

Each target names its processes by role ("server", "envoy"; "go_server" for the Go
replicas of a mixed rotation) so that every call's CPU can be split by role.
"""

from __future__ import annotations

import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from grpctest_devtools import envoy_config
from grpctest_devtools.envoy import EnvoyAdmin, envoy_process
from grpctest_devtools.envoy_config import Edit
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.ports import free_port
from grpctest_devtools.processes import Process
from grpctest_devtools.repo import CERTS
from grpctest_devtools.waiting import wait_until
from grpctest_server.healthcheck import check_health

Pids = Callable[[], list[int]]


@dataclass
class Target:
    """A running server or proxy: where to send load, and its processes by role."""

    name: str
    port: int
    roles: dict[str, Pids]
    # host:port for a real gRPC call before measuring (None: not gRPC).
    grpc_target: str | None = None
    tls_port: int | None = None
    # Behind Envoy: the calls it has sent to the replicas of each language so far.
    calls_by_language: Callable[[], dict[str, int]] | None = None

    def url(self, path: str, *, tls: bool = False) -> str:
        if tls:
            return f"https://127.0.0.1:{self.tls_port}{path}"
        return f"http://127.0.0.1:{self.port}{path}"


def grpc_ready(port: int) -> Callable[[], bool]:
    return lambda: check_health(f"127.0.0.1:{port}", "", 1) == "SERVING"


def http_ready(port: int, path: str) -> Callable[[], bool]:
    def ready() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1) as reply:
            return reply.status == 200

    return ready


def _pids(*processes: Process) -> Pids:
    return lambda: [p.pid for p in processes if p.pid is not None and p.running]


@contextmanager
def server(
    name: str,
    argv: Sequence[str],
    workdir: Path,
    *,
    ready: Callable[[int], Callable[[], bool]] = grpc_ready,
    grpc: bool = True,
) -> Iterator[Target]:
    """One server alone, on a free port (`argv` gets `--port N`)."""
    port = free_port()
    process = Process(name, [*argv, "--port", str(port)], workdir / f"{name}.log")
    process.start()
    try:
        wait_until(lambda: process.check_alive() and ready(port)(), 60, f"{name} to be ready")
        yield Target(
            name,
            port,
            roles={"server": _pids(process)},
            grpc_target=f"127.0.0.1:{port}" if grpc else None,
        )
    finally:
        process.stop(timeout=15)


@contextmanager
def envoy_stack(
    name: str,
    workdir: Path,
    *,
    replicas: int,
    workers: int = 1,
    server_command: Sequence[str] = (),
    server_args: Sequence[str] = (),
    server_env: Mapping[str, str] | None = None,
    envoy_edit: Edit | None = None,
    envoy_concurrency: int = 1,
    metrics: bool = False,
    otlp_port: int = 4317,
    go_replicas: int = 0,
) -> Iterator[Target]:
    """Envoy (config derived from envoy/envoy.yaml) in front of `replicas` servers, each
    with `workers` processes; py-server unless `server_command` says otherwise; and
    `go_replicas` go-server replicas in the same rotation."""
    log_dir = workdir / name
    log_dir.mkdir()
    if workers > 1:
        server_args = [*server_args, "--workers", str(workers)]
    # (Worker i of a replica serves its metrics on the replica's port + i.)
    metrics_ports = [free_port() for _ in range(replicas + go_replicas)] if metrics else []
    with LocalStack.on_free_ports(
        replicas,
        go_replicas,
        log_dir=log_dir,
        server_command=server_command,
        server_args=server_args,
        server_env=server_env,
        envoy_args=["--log-level", "error", "--concurrency", str(envoy_concurrency)],
        envoy_edit=envoy_edit,
        metrics_ports=metrics_ports,
        otlp_port=otlp_port,
    ) as stack:
        yield Target(
            name,
            stack.envoy_port,
            roles={
                "envoy": lambda: stack.pids()["envoy"],
                "server": lambda: _replica_pids(stack, go=False),
                **({"go_server": lambda: _replica_pids(stack, go=True)} if go_replicas else {}),
            },
            grpc_target=stack.target,
            tls_port=stack.tls_port,
            calls_by_language=lambda: _calls_by_language(stack),
        )


def _is_go(replica: Process) -> bool:
    return replica.name.startswith("go-")


def _replica_pids(stack: LocalStack, *, go: bool) -> list[int]:
    return [r.pid for r in stack.replicas if r.running and r.pid and _is_go(r) == go]


def _calls_by_language(stack: LocalStack) -> dict[str, int]:
    per_host = stack.admin.requests_per_host()
    calls = {"python": 0, "go": 0}
    for index, replica in enumerate(stack.replicas):
        calls["go" if _is_go(replica) else "python"] += per_host.get(stack.replica_target(index), 0)
    return calls


@contextmanager
def envoy_alone(
    name: str,
    workdir: Path,
    edit: Edit,
    *,
    upstream: Target | None = None,
) -> Iterator[Target]:
    """Envoy with an edited config in front of `upstream` (a REST server, health-checked
    as the edit says), or of nothing (an edit that answers everything itself)."""
    ports = envoy_config.LocalPorts(
        upstreams=[upstream.port if upstream else free_port()],
        grpc=free_port(),
        admin=free_port(),
        tls=free_port(),
    )
    with tempfile.TemporaryDirectory(prefix="grpctest-bench-envoy-") as folder:
        config = envoy_config.write_local_config(Path(folder) / "envoy.yaml", ports, CERTS, [edit])
        envoy = envoy_process(
            config, ["--log-level", "error", "--concurrency", "1"], workdir / f"{name}-envoy.log"
        )
        envoy.start()
        admin = EnvoyAdmin(ports.admin)
        try:
            wait_until(
                lambda: envoy.check_alive() and _envoy_ready(admin, upstream is not None),
                60,
                f"{name}: Envoy to be ready",
            )
            roles = {"envoy": _pids(envoy)}
            if upstream:
                roles["server"] = upstream.roles["server"]
            yield Target(name, ports.grpc, roles=roles)
        finally:
            envoy.stop(timeout=10)


def _envoy_ready(admin: EnvoyAdmin, has_upstream: bool) -> bool:
    # (wait_until takes an OSError, Envoy's admin not listening yet, as "not yet".)
    ready = admin.get("/ready").strip() == "LIVE"
    return ready and (not has_upstream or len(admin.healthy_hosts()) == 1)
