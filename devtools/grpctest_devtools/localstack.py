"""A local stack: py-server (and go-server) replicas and Envoy as plain processes on loopback.

    with LocalStack(ports=[...], envoy_port=..., ...) as stack:   # started and healthy
        stack.target            # Envoy, what clients call
        stack.replicas[1].signal(signal.SIGTERM)

`make demo`, `make run`, the end-to-end tests and the benchmark all use it. Envoy's
config is derived from envoy/envoy.yaml (see envoy_config). Every process started here
is stopped again: on success, on failure, on Ctrl-C and on SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from grpctest_devtools import envoy_config
from grpctest_devtools.envoy import EnvoyAdmin, envoy_process
from grpctest_devtools.ports import LOOPBACK, free_port, port_in_use
from grpctest_devtools.processes import Process
from grpctest_devtools.repo import CERTS, command
from grpctest_devtools.waiting import wait_until
from grpctest_server.healthcheck import check_health
from grpctest_server.servicer import SERVICE_NAME

log = logging.getLogger(__name__)


class LocalStack:
    """N py-server replicas (replica-1..N) and M go-server replicas (go-1..M) on
    127.0.0.1, in one upstream cluster of the Envoy in front of them."""

    def __init__(
        self,
        *,
        replicas: int = 3,
        go_replicas: int = 0,
        base_port: int = 50051,
        envoy_port: int = 8080,
        admin_port: int = 9901,
        tls_port: int = 8443,
        log_dir: Path | None = None,
        server_args: Sequence[str] = (),
        envoy_args: Sequence[str] = ("--log-level", "warn"),
        ports: Sequence[int] | None = None,
        metrics_ports: Sequence[int] = (),
        upstream_tls: bool = False,
        otlp_port: int = 4317,
        server_command: Sequence[str] = (),
        server_env: Mapping[str, str] | None = None,
        envoy_edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """`metrics_ports`: each replica's Prometheus port (none: no metrics);
        `upstream_tls`: the hop from Envoy to the replicas is TLS too; `otlp_port`: where
        Envoy sends spans (the replicas follow OTEL_EXPORTER_OTLP_ENDPOINT);
        `server_command`: another server as the replicas (the benchmark's baselines),
        given `--port` and `--replica` like py-server; default grpctest-server;
        `server_env`: environment variables for the replicas (e.g. tracing's);
        `envoy_edit`: changes the derived Envoy config in place (the benchmark's levers);
        `go_replicas`: how many of the replicas (the last ones) are go-server, given the
        same settings."""
        self.ports = (
            list(ports) if ports else [base_port + i for i in range(replicas + go_replicas)]
        )
        self.envoy_port = envoy_port
        self.admin_port = admin_port
        self.tls_port = tls_port
        self.metrics_ports = list(metrics_ports)
        self.upstream_tls = upstream_tls
        self.server_command = list(server_command) or [command("grpctest-server")]
        self.admin = EnvoyAdmin(admin_port)
        self._workdir = tempfile.TemporaryDirectory(prefix="grpctest-")
        self.go_replicas = go_replicas
        self.replicas = self._replica_processes(log_dir, server_args, server_env)
        config = self._envoy_config(otlp_port, envoy_edit)
        self.envoy = envoy_process(config, envoy_args, self._log_path(log_dir, "envoy"))
        self._stopping = False

    def _envoy_config(
        self, otlp_port: int, envoy_edit: Callable[[dict[str, Any]], None] | None
    ) -> Path:
        """Writes Envoy's config, derived from envoy/envoy.yaml for these ports."""
        local_ports = envoy_config.LocalPorts(
            self.ports, self.envoy_port, self.admin_port, self.tls_port, otlp_port, self.go_replicas
        )
        edits = [envoy_config.upstream_tls(CERTS)] if self.upstream_tls else []
        return envoy_config.write_local_config(
            Path(self._workdir.name) / "envoy.yaml",
            local_ports,
            CERTS,
            [*edits, *([envoy_edit] if envoy_edit else [])],
        )

    def _replica_processes(
        self,
        log_dir: Path | None,
        server_args: Sequence[str],
        server_env: Mapping[str, str] | None,
    ) -> list[Process]:
        """The replicas, not yet started: replica-1..N, then go-1..M."""
        python = len(self.ports) - self.go_replicas
        names = [f"replica-{i}" for i in range(1, python + 1)]
        names += [f"go-{i}" for i in range(1, self.go_replicas + 1)]
        return [
            Process(
                name,
                self._server_argv(index, name, index >= python, server_args),
                self._log_path(log_dir, name),
                server_env,
            )
            for index, name in enumerate(names)
        ]

    @classmethod
    def on_free_ports(cls, replicas: int = 3, go_replicas: int = 0, **kwargs: Any) -> LocalStack:
        """A stack whose replicas, Envoy, admin and TLS listener each take a free port
        (tests, the benchmark: several stacks may run at once)."""
        return cls(
            ports=[free_port() for _ in range(replicas + go_replicas)],
            go_replicas=go_replicas,
            envoy_port=free_port(),
            admin_port=free_port(),
            tls_port=free_port(),
            **kwargs,
        )

    def _server_argv(
        self, index: int, name: str, go: bool, server_args: Sequence[str]
    ) -> list[str]:
        server = [command("go-server")] if go else self.server_command
        argv = [*server, "--port", str(self.ports[index]), "--replica", name, *server_args]
        if self.metrics_ports:
            argv += ["--metrics-port", str(self.metrics_ports[index])]
        if self.upstream_tls:
            argv += ["--tls-cert", str(CERTS / "replica.crt")]
            argv += ["--tls-key", str(CERTS / "replica.key")]
        return argv

    @staticmethod
    def _log_path(log_dir: Path | None, name: str) -> Path | None:
        return log_dir / f"{name}.log" if log_dir else None

    @property
    def target(self) -> str:
        """Envoy's gRPC listener: what clients call."""
        return f"{LOOPBACK}:{self.envoy_port}"

    @property
    def tls_target(self) -> str:
        """Envoy's TLS listener, by the name its certificate carries."""
        return f"localhost:{self.tls_port}"

    def replica_target(self, index: int) -> str:
        return f"{LOOPBACK}:{self.ports[index]}"

    def replica(self, name: str) -> Process:
        """The replica that answers as `name` (the `replica` of its replies)."""
        return next(replica for replica in self.replicas if replica.name == name)

    @property
    def processes(self) -> list[Process]:
        return [*self.replicas, self.envoy]

    def pids(self) -> dict[str, list[int]]:
        """The running processes by role: {"envoy": [pid], "replicas": [pid, ...]}."""
        return {
            "envoy": [p.pid for p in [self.envoy] if p.running and p.pid],
            "replicas": [p.pid for p in self.replicas if p.running and p.pid],
        }

    def resident_mb(self) -> dict[str, float]:
        """Each process's resident memory (MB) by name: envoy, replica-1, ..., go-1."""
        return {process.name: process.resident_mb() for process in self.processes}

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        ports = [*self.ports, *self.metrics_ports, self.envoy_port, self.admin_port, self.tls_port]
        taken = [p for p in ports if port_in_use(p)]
        if taken:
            raise RuntimeError(
                f"port(s) already in use on {LOOPBACK}: {taken}; "
                "stop whatever listens there (e.g. another `make run`)"
            )
        # Envoy's TLS listener needs the development certificate (`make certs`).
        subprocess.run(
            [str(CERTS / "generate.sh"), str(CERTS)], check=True, stdout=subprocess.DEVNULL
        )
        for process in self.processes:
            process.start()
        log.info(
            "started %s replicas on ports %s and Envoy on %s (admin %s)",
            len(self.replicas),
            self.ports,
            self.envoy_port,
            self.admin_port,
        )

    def stop(self) -> None:
        """Stops Envoy, then the replicas; safe to call more than once."""
        self._stopping = True
        self.envoy.stop(timeout=10)
        for replica in self.replicas:
            replica.signal(signal.SIGTERM)  # all drain at once, not one after another
        for replica in self.replicas:
            replica.stop(timeout=30)
        self._workdir.cleanup()

    def __enter__(self) -> LocalStack:
        try:
            self.start()
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- health ----------------------------------------------------------------------

    def healthy_hosts(self) -> set[str]:
        """The replicas (ip:port) Envoy currently routes to."""
        return self.admin.healthy_hosts()

    def wait_healthy(self, timeout: float = 60) -> float:
        """Waits until every replica answers SERVING and Envoy routes to all of them."""
        expected = {self.replica_target(i) for i in range(len(self.ports))}
        ca_pem = (CERTS / "ca.crt").read_bytes() if self.upstream_tls else None
        wait_until(
            lambda: (
                self.check_alive()
                and all(check_health(t, SERVICE_NAME, 1, ca_pem) == "SERVING" for t in expected)
            ),
            timeout,
            "replicas to be SERVING",
        )
        return wait_until(
            lambda: self.check_alive() and self.healthy_hosts() == expected,
            timeout,
            "Envoy to see every replica healthy",
        )

    def check_alive(self) -> bool:
        """Raises with the log's last lines if a process has exited; else True."""
        return all(process.check_alive() for process in self.processes)

    # -- supervision (make run) --------------------------------------------------------

    def restart_exited(self) -> None:
        """Restarts any replica or Envoy that died, as compose's restart policy would."""
        for process in self.processes:
            if not self._stopping and process.returncode is not None:
                process.restart()
