"""A real multi-node Docker Swarm on one machine, for the swarm tests.

The running engine is the manager. A second engine, the worker, runs in a network
namespace of its own, joined to the host by a veth pair (an address on each end), as
a second machine would be on a LAN. Everything is torn down again: the swarm on both
engines, the worker engine, its namespace, the veth pair and the worker's data.

(`ip netns exec` would remount /sys, and dockerd then finds no devices cgroup; the
worker engine is started with nsenter into the namespace instead.)
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from grpctest_devtools.processes import Process
from grpctest_devtools.waiting import wait_until
from grpctest_harness.docker_engine import sh

log = logging.getLogger(__name__)

NETNS = "grpctest-swarm-worker"
HOST_VETH, WORKER_VETH = "gts-host", "gts-worker"
MANAGER_ADDRESS, WORKER_ADDRESS = "192.168.213.1", "192.168.213.2"
WORKER_BRIDGE = "172.31.213.1/24"
WORKER_HOSTNAME = "grpctest-worker"


class LocalSwarm:
    """`with LocalSwarm():` a manager (this machine's engine) and one worker engine."""

    def __init__(self) -> None:
        self._workdir = Path(tempfile.mkdtemp(prefix="grpctest-swarm-"))
        self.worker_socket = f"unix://{self._workdir / 'docker.sock'}"
        self._worker: Process | None = None
        # `swarm init` creates this network on the manager and `swarm leave` keeps it.
        self._had_gwbridge = _network_exists("docker_gwbridge")
        # Whether this harness put the manager's engine in a swarm (only then does the
        # teardown take it out again: an engine already in a swarm is left alone).
        self._manager_joined = False

    # -- docker on either node ------------------------------------------------------------

    def worker(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return sh("docker", "-H", self.worker_socket, *args, timeout=timeout)

    def nodes(self) -> dict[str, str]:
        """Each node's hostname -> its state (Ready, Down, ...)."""
        rows = sh("docker", "node", "ls", "--format", "{{json .}}").stdout.splitlines()
        return {row["Hostname"]: row["Status"] for row in map(json.loads, rows)}

    def tasks(self, service: str, *filters: str) -> list[tuple[str, str]]:
        """The service's tasks (those matching the `docker service ps` filters given):
        (node, current state) each."""
        options = [f"--filter={f}" for f in filters]
        rows = sh("docker", "service", "ps", service, *options,
                  "--format", "{{.Node}}\t{{.CurrentState}}").stdout.splitlines()  # fmt: skip
        return [(node, state) for node, state in (row.split("\t", 1) for row in rows)]

    def running(self, service: str) -> list[str]:
        """The nodes of the service's running tasks (one entry per task)."""
        tasks = self.tasks(service, "desired-state=running")
        return [node for node, state in tasks if state.startswith("Running")]

    def run_job(self, name: str, network: str, image: str, *args: str, timeout: float = 120) -> str:
        """Runs `image args` once as a swarm job on the network; returns its output."""
        sh("docker", "service", "create", "--quiet", "--detach", "--name", name,
           "--mode", "replicated-job", "--restart-condition", "none",
           "--network", network, image, *args)  # fmt: skip

        def finished() -> bool:
            states = [state for _, state in self.tasks(name)]
            return bool(states) and all(s.startswith(("Complete", "Failed")) for s in states)

        logs: list[str] = []

        def has_output() -> bool:
            result = sh("docker", "service", "logs", "--raw", name)
            logs.append(result.stdout + result.stderr)
            return bool(logs[-1])

        try:
            wait_until(finished, timeout, f"the job {name} to finish")
            # A task that ran on the worker: its log reaches the manager's `service logs`
            # a moment after the task finished (read at once, it can still be empty).
            wait_until(has_output, 30, f"the job {name}'s output (tasks: {self.tasks(name)})")
            return logs[-1]
        finally:
            sh("docker", "service", "rm", name)

    def load_images(self, *images: str) -> None:
        """Copies images from the manager's engine to the worker's (no registry here)."""
        sh("bash", "-c", f"docker save {' '.join(images)} | docker -H {self.worker_socket} load",
           timeout=600)  # fmt: skip

    # -- set up -----------------------------------------------------------------------------

    def __enter__(self) -> LocalSwarm:
        try:
            self._network()
            self._start_worker_engine()
            self._form_swarm()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _network(self) -> None:
        sh("ip", "netns", "add", NETNS)
        sh("ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", WORKER_VETH)
        sh("ip", "link", "set", WORKER_VETH, "netns", NETNS)
        sh("ip", "addr", "add", f"{MANAGER_ADDRESS}/24", "dev", HOST_VETH)
        sh("ip", "link", "set", HOST_VETH, "up")
        for args in (["addr", "add", f"{WORKER_ADDRESS}/24", "dev", WORKER_VETH],
                     ["link", "set", WORKER_VETH, "up"], ["link", "set", "lo", "up"]):  # fmt: skip
            sh("ip", "netns", "exec", NETNS, "ip", *args)

    def _start_worker_engine(self) -> None:
        root = self._workdir
        dockerd = ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
                   "--pidfile", str(root / "docker.pid"), "-H", self.worker_socket,
                   "--bip", WORKER_BRIDGE]  # fmt: skip
        self._worker = Process(
            "dockerd (worker)",
            # Its own network, and its own hostname (a node's name in the swarm).
            ["nsenter", f"--net=/var/run/netns/{NETNS}", "unshare", "--uts", "--",
             "sh", "-c", f'hostname {WORKER_HOSTNAME} && exec "$@"', "sh", *dockerd],
            root / "dockerd.log",
        )  # fmt: skip
        self._worker.start()

        def answers() -> bool:
            if self._worker is not None:
                self._worker.check_alive()
            result = subprocess.run(
                ["docker", "-H", self.worker_socket, "info"], capture_output=True, timeout=30
            )
            return result.returncode == 0

        wait_until(answers, 60, "the worker's Docker engine", 0.5)

    def _form_swarm(self) -> None:
        if (state := _swarm_state()) != "inactive":
            raise RuntimeError(
                f"this machine's Docker engine is in a swarm already (state {state!r}): "
                "the swarm tests need an engine they can make a manager and leave again"
            )
        # From here on any swarm state of the engine is this run's (it was inactive):
        # leave it on tear-down also when `init` fails half-way (it can leave the
        # engine in state 'error', which every later run would refuse).
        self._manager_joined = True
        sh("docker", "swarm", "init", "--advertise-addr", MANAGER_ADDRESS,
           "--listen-addr", f"{MANAGER_ADDRESS}:2377")  # fmt: skip
        token = sh("docker", "swarm", "join-token", "--quiet", "worker").stdout.strip()
        self.worker("swarm", "join", "--token", token, "--advertise-addr", WORKER_ADDRESS,
                    f"{MANAGER_ADDRESS}:2377")  # fmt: skip
        wait_until(lambda: list(self.nodes().values()) == ["Ready", "Ready"], 60,
                   "both nodes to be Ready")  # fmt: skip

    # -- the fault: a worker node lost --------------------------------------------------------

    def stop_worker_engine(self) -> None:
        """The worker goes away (its engine stops, and its containers with it)."""
        if self._worker is not None:
            self._worker.stop(timeout=60)

    # -- tear down -----------------------------------------------------------------------------

    def __exit__(self, *exc: object) -> None:
        """Undoes what was done, each step also when another failed or hung (a command
        that does not finish in time is killed)."""
        if self._worker is not None and self._worker.running:
            _try("docker", "-H", self.worker_socket, "swarm", "leave", "--force")
        self.stop_worker_engine()
        if self._manager_joined:
            _try("docker", "swarm", "leave", "--force")
            self._manager_joined = False
        if not self._had_gwbridge and _network_exists("docker_gwbridge"):
            _try("docker", "network", "rm", "docker_gwbridge")
        _try("ip", "link", "del", HOST_VETH)
        _try("ip", "netns", "del", NETNS)
        # The worker's containers are gone with its engine; their mounts may linger.
        _try("umount", "-R", str(self._workdir / "exec"))
        shutil.rmtree(self._workdir, ignore_errors=True)

    def leftovers(self) -> list[str]:
        """What the tear-down left behind (empty once it is complete): the manager still
        in a swarm, the veth pair, the namespace, the worker's folder."""
        found = (
            [f"manager swarm state {state!r}"] if (state := _swarm_state()) != "inactive" else []
        )
        links = _try("ip", "-o", "link", "show")
        found += [f"link {HOST_VETH}"] if f" {HOST_VETH}@" in links else []
        namespaces = _try("ip", "netns", "list")
        found += [f"netns {NETNS}"] if NETNS in namespaces.split() else []
        return found + ([str(self._workdir)] if self._workdir.exists() else [])


def _try(*argv: str, timeout: float = 60) -> str:
    """Runs a command of the teardown; its stdout, or "" if it failed or did not end in
    time (then it is killed, and logged: the teardown goes on)."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log.warning("%s did not finish within %s s; killed", " ".join(argv), timeout)
        return ""
    return result.stdout if result.returncode == 0 else ""


def _swarm_state() -> str:
    """This machine's engine in a swarm: "inactive", "active", "pending", ..."""
    return _try("docker", "info", "--format", "{{.Swarm.LocalNodeState}}").strip()


def _network_exists(name: str) -> bool:
    inspect = ["docker", "network", "inspect", name]
    return subprocess.run(inspect, capture_output=True, timeout=30).returncode == 0
