"""A local stack: py-server (and go-server) replicas, the xDS control plane and Envoy as
plain processes on loopback.

    with LocalStack(ports=[...], envoy_port=..., ...) as stack:   # started and healthy
        stack.target            # Envoy, what clients call
        stack.xds_bootstrap     # for proxyless clients: GRPC_XDS_BOOTSTRAP, xds:///grpctest
        stack.replicas[1].signal(signal.SIGTERM)

`make demo`, `make run`, the end-to-end tests and the benchmark all use it. The control
plane (bin/control-plane) checks the replicas' health and pushes their endpoints to
Envoy, whose config is derived from envoy/envoy.yaml (see envoy_config), and to
proxyless clients, whose bootstrap is derived from control-plane/xds-bootstrap.json
(see control_plane). Every process started here is stopped again: on success, on
failure, on Ctrl-C and on SIGTERM.
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
from grpctest_devtools.control_plane import control_plane_argv, write_bootstrap
from grpctest_devtools.envoy import EnvoyAdmin, envoy_process
from grpctest_devtools.ports import LOOPBACK, free_port, port_in_use
from grpctest_devtools.processes import Process
from grpctest_devtools.repo import CERTS, command
from grpctest_devtools.waiting import wait_until
from grpctest_server.healthcheck import check_health
from grpctest_server.servicer import SERVICE_NAME

log = logging.getLogger(__name__)


def _service(replica: Process) -> str:
    """The compose service a replica of the stack stands in for."""
    return envoy_config.GO_SERVER if is_go_replica(replica) else envoy_config.PY_SERVER


def is_go_replica(replica: Process) -> bool:
    """Whether a replica of the stack is a go-server (go-1..M) rather than a py-server."""
    return replica.name.startswith("go-")


class LocalStack:
    """N py-server replicas (replica-1..N) and M go-server replicas (go-1..M) on
    127.0.0.1, published by the control plane to the Envoy in front of them (one
    upstream cluster) and to proxyless clients."""

    def __init__(
        self,
        *,
        replicas: int = 3,
        go_replicas: int = 0,
        base_port: int = 50051,
        envoy_port: int = 8080,
        admin_port: int = 9901,
        tls_port: int = 8443,
        control_plane_port: int = 18000,
        log_dir: Path | None = None,
        server_args: Sequence[str] = (),
        envoy_args: Sequence[str] = ("--log-level", "warn"),
        ports: Sequence[int] | None = None,
        metrics_ports: Sequence[int] = (),
        control_plane_metrics_port: int = 0,
        upstream_tls: bool = False,
        otlp_port: int = 4317,
        server_command: Sequence[str] = (),
        server_env: Mapping[str, str] | None = None,
        envoy_edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """`metrics_ports`: each replica's Prometheus port (none: no metrics);
        `control_plane_metrics_port`: the control plane's (0: none);
        `upstream_tls`: the hop from Envoy to the replicas is TLS too; `otlp_port`: where
        Envoy sends spans (the replicas follow OTEL_EXPORTER_OTLP_ENDPOINT);
        `server_command`: another server as the replicas (the benchmark's baselines),
        given `--port` and `--replica` like py-server; default grpctest-server;
        `server_env`: environment variables for the replicas (e.g. tracing's);
        `envoy_edit`: changes the derived Envoy config in place (the benchmark's levers);
        `go_replicas`: how many of the replicas (the last ones) are go-server, given the
        same settings; `control_plane_port`: the control plane's ADS port (xds_address)."""
        self.ports = (
            list(ports) if ports else [base_port + i for i in range(replicas + go_replicas)]
        )
        self.envoy_port = envoy_port
        self.admin_port = admin_port
        self.tls_port = tls_port
        self.control_plane_port = control_plane_port
        self.metrics_ports = list(metrics_ports)
        self.control_plane_metrics_port = control_plane_metrics_port
        self.upstream_tls = upstream_tls
        self.server_command = list(server_command) or [command("grpctest-server")]
        self.admin = EnvoyAdmin(admin_port)
        self._workdir = tempfile.TemporaryDirectory(prefix="grpctest-")
        self.go_replicas = go_replicas
        self._log_dir, self._server_args, self._server_env = log_dir, server_args, server_env
        self.replicas = self._replica_processes()
        self.control_plane = Process(
            "control-plane", self._control_plane_argv(), self._log_path(log_dir, "control-plane")
        )
        self.xds_bootstrap = write_bootstrap(
            Path(self._workdir.name) / "xds-bootstrap.json", self.xds_address
        )
        config = self._envoy_config(otlp_port, envoy_edit)
        self.envoy = envoy_process(config, envoy_args, self._log_path(log_dir, "envoy"))
        self._stopping = False

    def _envoy_config(
        self, otlp_port: int, envoy_edit: Callable[[dict[str, Any]], None] | None
    ) -> Path:
        """Writes Envoy's config, derived from envoy/envoy.yaml for these ports."""
        local_ports = envoy_config.LocalPorts(
            self.envoy_port, self.admin_port, self.tls_port, self.control_plane_port, otlp_port
        )
        edits = [envoy_config.upstream_tls(CERTS)] if self.upstream_tls else []
        return envoy_config.write_local_config(
            Path(self._workdir.name) / "envoy.yaml",
            local_ports,
            CERTS,
            [*edits, *([envoy_edit] if envoy_edit else [])],
        )

    def _replica_processes(self) -> list[Process]:
        """The replicas, not yet started: replica-1..N, then go-1..M."""
        python = len(self.ports) - self.go_replicas
        names = [f"replica-{i}" for i in range(1, python + 1)]
        names += [f"go-{i}" for i in range(1, self.go_replicas + 1)]
        return [self._replica(index, name, index >= python) for index, name in enumerate(names)]

    def _replica(self, index: int, name: str, go: bool) -> Process:
        argv = self._server_argv(index, name, go, self._server_args)
        return Process(name, argv, self._log_path(self._log_dir, name), self._server_env)

    def _control_plane_argv(self) -> list[str]:
        """The control plane, publishing every replica, each named for the compose service
        it stands in for (py-server or go-server: the endpoint's hostname, as the control
        plane names a replica it finds by DNS); over TLS if the replicas serve it."""
        targets = [
            f"{_service(replica)}={self.replica_target(i)}"
            for i, replica in enumerate(self.replicas)
        ]
        args = ["--metrics-port", str(self.control_plane_metrics_port)]
        if self.upstream_tls:
            args += ["--tls-ca", str(CERTS / "ca.crt"), "--tls-server-name", "py-server"]
        return control_plane_argv(self.control_plane_port, targets, args)

    def add_replica(self, timeout: float = 60) -> Process:
        """Starts one more py-server replica on a free port, after the others, and waits
        until it serves. The control plane reads its list when it starts: it publishes
        the new replica from its next start on."""
        self.ports.append(free_port())
        if self.metrics_ports:
            self.metrics_ports.append(free_port())
        python = sum(not is_go_replica(replica) for replica in self.replicas)
        replica = self._replica(len(self.ports) - 1, f"replica-{python + 1}", go=False)
        self.replicas.append(replica)
        self.control_plane.argv = self._control_plane_argv()
        replica.start()
        index = len(self.ports) - 1
        wait_until(
            lambda: replica.check_alive() and self.serving(index),
            timeout,
            f"{replica.name} to serve",
        )
        return replica

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
            control_plane_port=free_port(),
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

    @property
    def xds_address(self) -> str:
        """The control plane's ADS server (what xds_bootstrap names)."""
        return f"{LOOPBACK}:{self.control_plane_port}"

    def replica_target(self, index: int) -> str:
        return f"{LOOPBACK}:{self.ports[index]}"

    def replica(self, name: str) -> Process:
        """The replica that answers as `name` (the `replica` of its replies)."""
        return next(replica for replica in self.replicas if replica.name == name)

    @property
    def processes(self) -> list[Process]:
        return [*self.replicas, self.control_plane, self.envoy]

    def pids(self) -> dict[str, list[int]]:
        """The running processes by role: {"envoy": [pid], "control_plane": [pid],
        "replicas": [pid, ...]}."""
        return {
            "envoy": [p.pid for p in [self.envoy] if p.running and p.pid],
            "control_plane": [p.pid for p in [self.control_plane] if p.running and p.pid],
            "replicas": [p.pid for p in self.replicas if p.running and p.pid],
        }

    def resident_mb(self) -> dict[str, float]:
        """Each process's resident memory (MB) by name: envoy, replica-1, ..., go-1."""
        return {process.name: process.resident_mb() for process in self.processes}

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        ports = [
            *self.ports,
            *self.metrics_ports,
            *[p for p in [self.control_plane_metrics_port] if p],
            self.envoy_port,
            self.admin_port,
            self.tls_port,
            self.control_plane_port,
        ]
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
            "started %s replicas on ports %s, the control plane on %s and Envoy on %s (admin %s)",
            len(self.replicas),
            self.ports,
            self.control_plane_port,
            self.envoy_port,
            self.admin_port,
        )

    def stop(self) -> None:
        """Stops Envoy, the control plane, then the replicas; safe to call more than once."""
        self._stopping = True
        self.envoy.stop(timeout=10)
        self.control_plane.stop(timeout=10)
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

    def serving(self, index: int) -> bool:
        """Whether the replica answers SERVING for the service (over TLS if it serves it)."""
        ca_pem = (CERTS / "ca.crt").read_bytes() if self.upstream_tls else None
        return check_health(self.replica_target(index), SERVICE_NAME, 1, ca_pem) == "SERVING"

    def wait_healthy(self, timeout: float = 60) -> float:
        """Waits until every replica answers SERVING and Envoy routes to all of them."""
        expected = {self.replica_target(i) for i in range(len(self.ports))}
        wait_until(
            lambda: self.check_alive() and all(map(self.serving, range(len(self.ports)))),
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
        """Restarts any replica, the control plane or Envoy if it died, as compose's
        restart policy would."""
        for process in self.processes:
            if not self._stopping and process.returncode is not None:
                process.restart()
