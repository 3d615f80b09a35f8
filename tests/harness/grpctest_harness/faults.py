"""Fault drills: kill, stop, freeze or restart replicas (or the control plane) under
concurrent load, and measure.

A drill runs its loads (by default a Python caller and a Go caller, ghz, through Envoy:
default_loads; the same pair on other ways to the replicas beside Envoy's, each_path: the
Go one there is grpctest-load; any load.Load can be added, e.g. stream_load.StreamLoad),
waits until every load is
calling and the replicas to be hurt have calls, injects one fault, waits until Envoy has
taken the hurt replicas out of rotation and back in and the loads were answered after
it, and reports per load the calls sent and failed, answered before and after the fault,
and the p99 latency, plus how long the replicas took to leave and to rejoin. The same
drills run on the local stack and on the compose topology; only the way a replica is
signalled and restarted differs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from grpctest_devtools.clients import CallPath, proxyless, through_envoy
from grpctest_devtools.envoy import EnvoyAdmin
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.waiting import wait_until
from grpctest_harness.compose import ComposeProject, ExitWatch, address, inspect
from grpctest_harness.docker_engine import sh
from grpctest_harness.load import (
    GhzLoad,
    Load,
    LoadReport,
    Moment,
    PythonLoad,
    Window,
    path_loads,
)

# Calls in flight per client (Python, Go), over this many connections each. A drill on
# several paths (Envoy, proxyless) splits them evenly between the paths (each_path): the
# replicas carry the load they carry in a drill through Envoy alone, and each path sees
# the same fault under it. (Both paths at 64 each doubled the load on the replicas, and
# through Envoy, whose per-try timeout is 1 s, calls then failed DEADLINE_EXCEEDED on a
# busy 2-core machine: that measured the machine, not the fault.)
CALLERS = 64
CONNECTIONS = 8
# The go-server replica's index among a drill's replicas: after the 3 py-server replicas,
# locally (go-1, the fourth replica) and in compose (ComposeReplicas lists both services).
GO_REPLICA = 3


class Replicas(Protocol):
    """How a drill reaches the replicas of one topology."""

    def host(self, index: int) -> str:
        """The replica's address as Envoy's /clusters shows it (ip:port)."""

    def name(self, index: int) -> str:
        """The replica's name, as its replies give it."""

    def signal(self, index: int, sig: signal.Signals) -> None: ...

    def wait_exited(self, index: int, timeout: float) -> int:
        """Waits until the replica's process has exited; returns its exit code."""

    def restart(self, index: int) -> None:
        """Brings an exited replica back (a supervisor's or restart policy's job)."""

    def add(self) -> int:
        """Starts one more replica and waits until it serves; returns its index."""


class ControlPlane(Protocol):
    """How a drill reaches the control plane of one topology."""

    def kill(self) -> None:
        """SIGKILL; returns once it has exited (and stays down)."""

    def start(self) -> None:
        """Starts it again."""


def default_loads(target: str) -> list[Load]:
    """Both gRPC stacks: 64 grpc.aio callers and 64 ghz workers, 8 connections each."""
    return [
        PythonLoad(target, callers=CALLERS, connections=CONNECTIONS),
        GhzLoad(target, concurrency=CALLERS, connections=CONNECTIONS),
    ]


def each_path(paths: Sequence[CallPath]) -> Callable[[str], Sequence[Load]]:
    """A drill's loads on every path at once (Drill's `loads`): a Python and a Go load
    on each, CALLERS per client split between the paths."""
    return lambda _target: path_loads(paths, CALLERS, CONNECTIONS)


def local_paths(stack: LocalStack) -> list[CallPath]:
    """The local stack's ways to its replicas that a drill loads at once: through Envoy
    and proxyless over xDS."""
    return [through_envoy(stack.target), proxyless(stack.xds_bootstrap)]


def under_load(
    loads: Sequence[Load], inject: Callable[[], None], on_load: Callable[[], None] = lambda: None
) -> tuple[Window, list[LoadReport]]:
    """Runs `inject` once every load is calling and `on_load` (a wait for the calls to
    be where the fault will hit) has returned; stops the loads once they were answered
    after it. The fault's window and each load's report."""
    with contextlib.ExitStack() as running:
        for load in loads:
            running.enter_context(load)
            load.wait_calling()
        on_load()
        start = Moment.now()
        inject()
        end = Moment.now()
        for load in loads:
            load.wait_answered_after(end)
    fault = Window(start, end)
    return fault, [load.report(fault) for load in loads]


@dataclass
class FaultReport:
    """What a drill measured: each load's calls, the seconds the hurt replicas took to
    leave and rejoin Envoy's rotation, and whatever else the drill observed (seen)."""

    fault: str
    # The replicas hurt (by name), and whether they went away (exited) or only froze.
    victims: list[str] = field(default_factory=list)
    went_away: bool = True
    loads: list[LoadReport] = field(default_factory=list)
    out_seconds: float | None = None
    back_seconds: float | None = None
    seen: dict[str, object] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        """Every failed call, as "caller: count x STATUS: detail"."""
        return [
            f"{load.caller}: {n} x {failure}"
            for load in self.loads
            for failure, n in load.failures.items()
        ]

    def row(self) -> str:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        callers = " / ".join(load.caller for load in self.loads)
        calls = " / ".join(f"{load.sent} / {load.failed}" for load in self.loads)
        around = " / ".join(f"{load.ok_before} / {load.ok_after}" for load in self.loads)
        p99 = " / ".join(f"{load.p99_ms:.0f}" for load in self.loads)
        rotation = f"{seconds(self.out_seconds)} / {seconds(self.back_seconds)}"
        seen = "".join(f"; {what} {value}" for what, value in self.seen.items())
        return (
            f"calls sent / failed ({callers}) {calls}; answered, made before / after the fault "
            f"{around}; p99 ms {p99}; s out of / back into rotation {rotation}{seen}"
        )


class Drill:
    """One fault drill against the replicas behind the Envoy at `target`, under the
    loads `loads(target)` makes (default_loads: both gRPC stacks through Envoy; with
    `paths`, each_path's on them)."""

    def __init__(
        self,
        target: str,
        admin: EnvoyAdmin,
        replicas: Replicas,
        loads: Callable[[str], Sequence[Load]] | None = None,
        *,
        paths: Sequence[CallPath] = (),
    ) -> None:
        """`paths`: the ways to the replicas it loads (each_path), when not only Envoy."""
        self.target = target
        self.admin = admin
        self.replicas = replicas
        self.paths = list(paths) or [through_envoy(target)]
        self.loads = loads or (each_path(paths) if paths else default_loads)

    def wait_rotation(
        self, indexes: Sequence[int], in_rotation: bool, timeout: float = 30
    ) -> float:
        hosts = {self.replicas.host(i) for i in indexes}
        word = "join" if in_rotation else "leave"

        def done() -> bool:
            healthy = self.admin.healthy_hosts()
            return hosts <= healthy if in_rotation else not hosts & healthy

        return wait_until(done, timeout, f"{sorted(hosts)} to {word} Envoy's rotation")

    def _wait_calls_on(self, indexes: Sequence[int]) -> None:
        """Until Envoy has sent more calls to each of these replicas (the load is on
        them: the fault will hit calls)."""
        hosts = {self.replicas.host(i) for i in indexes}
        before = self.admin.requests_per_host()

        def calls_on_each() -> bool:
            now = self.admin.requests_per_host()
            return all(now.get(h, 0) > before.get(h, 0) for h in hosts)

        wait_until(calls_on_each, 30, f"calls on {sorted(hosts)}")

    def run(
        self,
        fault: str,
        indexes: Sequence[int],
        inject: Callable[[FaultReport], None],
        went_away: bool = True,
    ) -> FaultReport:
        """Runs `inject` (which fills in the rotation figures) under the loads, once
        the replicas `indexes` have calls."""
        victims = [self.replicas.name(i) for i in indexes]
        report = FaultReport(fault, victims, went_away)
        _, report.loads = under_load(
            self.loads(self.target), lambda: inject(report), lambda: self._wait_calls_on(indexes)
        )
        return report

    # -- the faults ----------------------------------------------------------------------

    def terminate(self, index: int = 1, what: str = "one replica") -> FaultReport:
        """SIGTERM: the replica drains (NOT_SERVING), exits 0, and is started again."""

        def inject(report: FaultReport) -> None:
            self.replicas.signal(index, signal.SIGTERM)
            report.out_seconds = self.wait_rotation([index], in_rotation=False)
            if (code := self.replicas.wait_exited(index, 30)) != 0:
                raise AssertionError(f"replica {index} exited with {code} after SIGTERM")
            report.back_seconds = self._restart([index])

        return self.run(f"SIGTERM {what}", [index], inject)

    def kill(self, indexes: Sequence[int] = (2,), what: str = "one replica") -> FaultReport:
        """SIGKILL (a crash): calls on it are reset and retried elsewhere; it is restarted."""

        def inject(report: FaultReport) -> None:
            for index in indexes:
                self.replicas.signal(index, signal.SIGKILL)
            report.out_seconds = self._seconds_until_out(indexes)
            for index in indexes:
                self.replicas.wait_exited(index, 30)
            report.back_seconds = self._restart(indexes)

        many = f"SIGKILL {len(indexes)} of 3 replicas at once"
        return self.run(f"SIGKILL {what}" if len(indexes) == 1 else many, indexes, inject)

    def freeze(self, index: int = 0) -> FaultReport:
        """SIGSTOP (a hung process): its calls time out per try and are hedged elsewhere;
        its health checks time out; SIGCONT brings it back once Envoy has noticed."""

        def inject(report: FaultReport) -> None:
            self.replicas.signal(index, signal.SIGSTOP)
            try:
                report.out_seconds = self.wait_rotation([index], in_rotation=False)
            finally:  # never leave a replica frozen, also when the drill fails
                start = time.monotonic()
                self.replicas.signal(index, signal.SIGCONT)
            report.back_seconds = time.monotonic() - start + self.wait_rotation([index], True)

        return self.run("SIGSTOP one replica", [index], inject, went_away=False)

    def rolling_restart(self, count: int = 3) -> FaultReport:
        """Every replica, one after another: SIGTERM, drain, exit, start, back in rotation."""

        def inject(report: FaultReport) -> None:
            outs, backs = [], []
            for index in range(count):
                self.replicas.signal(index, signal.SIGTERM)
                outs.append(self.wait_rotation([index], in_rotation=False))
                if (code := self.replicas.wait_exited(index, 30)) != 0:
                    raise AssertionError(f"replica {index} exited with {code} after SIGTERM")
                backs.append(self._restart([index]))
            report.out_seconds, report.back_seconds = max(outs), max(backs)

        return self.run(f"rolling restart of {count} replicas", range(count), inject)

    # -- the control plane's faults ---------------------------------------------------------

    def control_plane_killed(self, control_plane: ControlPlane, down: float = 5) -> FaultReport:
        """SIGKILL of the control plane, down for `down` seconds under load: Envoy keeps
        every replica it had in rotation; then it is started again and Envoy is back on
        it (back_seconds: from its start until Envoy has its stream again)."""

        def inject(report: FaultReport) -> None:
            hosts = self.admin.healthy_hosts()
            self._control_plane_down(control_plane)
            time.sleep(down)  # calls go on meanwhile: the drill's point
            report.seen["replicas Envoy kept routing to"] = (
                f"{len(self.admin.healthy_hosts() & hosts)} of {len(hosts)}"
            )
            report.back_seconds = self._control_plane_up(control_plane)

        return self.run("control plane killed", [], inject)

    def control_plane_restarted(self, control_plane: ControlPlane) -> FaultReport:
        """The control plane killed, one more replica started (and serving) meanwhile, the
        control plane started again: it resyncs Envoy, and the new replica joins Envoy's
        rotation (back_seconds: from the control plane's start)."""

        def inject(report: FaultReport) -> None:
            self._control_plane_down(control_plane)
            added = self.replicas.add()
            start = time.monotonic()
            self._control_plane_up(control_plane)
            self.wait_rotation([added], in_rotation=True)
            report.back_seconds = time.monotonic() - start

        return self.run("control plane restarted, a replica added meanwhile", [], inject)

    def replica_killed_without_control_plane(
        self, control_plane: ControlPlane, index: int = 2
    ) -> FaultReport:
        """The control plane down, then a replica SIGKILLed: Envoy's own outlier detection
        and health checks take it out, its retries save the calls; restarted, it rejoins
        on Envoy's health checks alone; then the control plane comes back."""

        def inject(report: FaultReport) -> None:
            self._control_plane_down(control_plane)
            self.replicas.signal(index, signal.SIGKILL)
            report.out_seconds = self._seconds_until_out([index])
            self.replicas.wait_exited(index, 30)
            report.back_seconds = self._restart([index])
            self._control_plane_up(control_plane)

        return self.run("replica SIGKILLed while the control plane is down", [index], inject)

    def _control_plane_down(self, control_plane: ControlPlane) -> None:
        control_plane.kill()
        wait_until(lambda: not self._envoy_connected(), 30, "Envoy to lose the control plane")

    def _control_plane_up(self, control_plane: ControlPlane) -> float:
        """Starts the control plane; returns the seconds until Envoy is connected again."""
        start = time.monotonic()
        control_plane.start()
        wait_until(self._envoy_connected, 30, "Envoy to reconnect to the control plane")
        return time.monotonic() - start

    def _envoy_connected(self) -> bool:
        """Whether Envoy has its ADS stream to the control plane."""
        return self.admin.stats("control_plane.").get("control_plane.connected_state") == 1

    def _restart(self, indexes: Sequence[int]) -> float:
        """Restarts the replicas; returns the seconds until all are back in rotation."""
        start = time.monotonic()
        for index in indexes:
            self.replicas.restart(index)
        self.wait_rotation(indexes, in_rotation=True)
        return time.monotonic() - start

    def _seconds_until_out(self, indexes: Sequence[int]) -> float | None:
        """Seconds until the replicas left rotation; None if a restart policy had them
        back before Envoy's health checks noticed they were gone."""
        try:
            return self.wait_rotation(indexes, in_rotation=False, timeout=5)
        except TimeoutError:
            return None


class LocalReplicas:
    """The replicas of a LocalStack: processes signalled directly, restarted as
    `make run`'s supervisor does."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    def host(self, index: int) -> str:
        return self.stack.replica_target(index)

    def name(self, index: int) -> str:
        return self.stack.replicas[index].name

    def signal(self, index: int, sig: signal.Signals) -> None:
        self.stack.replicas[index].signal(sig)

    def wait_exited(self, index: int, timeout: float) -> int:
        return self.stack.replicas[index].wait(timeout)

    def restart(self, index: int) -> None:
        self.stack.replicas[index].restart()

    def add(self) -> int:
        self.stack.add_replica()
        return len(self.stack.replicas) - 1


class LocalControlPlane:
    """The control plane of a LocalStack: a process, killed and started directly."""

    def __init__(self, stack: LocalStack) -> None:
        self.process = stack.control_plane

    def kill(self) -> None:
        self.process.signal(signal.SIGKILL)
        self.process.wait(30)

    def start(self) -> None:
        self.process.start()


class ComposeReplicas:
    """The server containers of the compose services (py-server's, then go-server's):
    their processes signalled from the host, brought back by their restart policy
    (`restart: unless-stopped`)."""

    def __init__(
        self, project: ComposeProject, services: Sequence[str] = ("py-server", "go-server")
    ) -> None:
        self.project = project
        self.containers = [c for service in services for c in project.containers(service)]
        self._exits: dict[int, ExitWatch] = {}

    def add(self, service: str = "py-server") -> int:
        """One more container of the service (`up --scale`), started; its index."""
        running = self.project.containers(service)
        scale = f"{service}={len(running) + 1}"
        self.project(
            "up", "--detach", "--wait", "--no-deps", "--no-recreate", "--scale", scale, service
        )
        self.containers += sorted(set(self.project.containers(service)) - set(running))
        return len(self.containers) - 1

    def host(self, index: int) -> str:
        return f"{address(inspect(self.containers[index]))}:50051"

    def name(self, index: int) -> str:
        """GRPCTEST_REPLICA if the service sets it, else the hostname (the servers'
        default)."""
        config = inspect(self.containers[index])["Config"]
        named = [e.split("=", 1)[1] for e in config["Env"] if e.startswith("GRPCTEST_REPLICA=")]
        return named[0] if named else config["Hostname"]

    def signal(self, index: int, sig: signal.Signals) -> None:
        """Signals the server process itself, as a crash or the kernel would (`docker
        kill` would count as a manual stop, which the restart policy respects). A
        signal that ends it is watched for its exit code."""
        state = inspect(self.containers[index])
        if sig in (signal.SIGTERM, signal.SIGKILL) and index not in self._exits:
            self._exits[index] = ExitWatch(self.containers[index])
        os.kill(state["State"]["Pid"], sig)

    def wait_exited(self, index: int, timeout: float) -> int:
        """Waits until the container's process has exited (the restart policy may have
        started it again already); returns that exit code, as Docker's die event gave it."""
        return self._exits.pop(index).exit_code(timeout)

    def restart(self, index: int) -> None:
        """The restart policy does it; waits until the container runs again, with its
        address (while Docker restarts it, it reports Running and Restarting, and no
        address yet)."""
        container = self.containers[index]

        def running() -> bool:
            state = inspect(container)
            return (
                state["State"]["Running"]
                and not state["State"]["Restarting"]
                and bool(address(state))
            )

        wait_until(running, 60, f"{container} to restart")


class ComposeControlPlane:
    """The control plane's container: killed with `docker kill` (a manual stop, which
    its restart policy respects: it stays down), started again with `docker start`."""

    def __init__(self, project: ComposeProject) -> None:
        (self.container,) = project.containers("control-plane")

    def kill(self) -> None:
        sh("docker", "kill", self.container)
        wait_until(lambda: not inspect(self.container)["State"]["Running"], 30,
                   "the control plane to stop")  # fmt: skip

    def start(self) -> None:
        sh("docker", "start", self.container)


# The control plane's own faults, by name.
CONTROL_PLANE_DRILLS: dict[str, Callable[[Drill, ControlPlane], FaultReport]] = {
    "control-plane-killed": lambda drill, cp: drill.control_plane_killed(cp),
    "control-plane-restarted": lambda drill, cp: drill.control_plane_restarted(cp),
    "replica-killed-without-control-plane": (
        lambda drill, cp: drill.replica_killed_without_control_plane(cp)
    ),
}

# Every drill, by name: the replica each one hurts is the same locally and in compose.
# The go-server replica goes through the drain and the crash too.
DRILLS: dict[str, Callable[[Drill], FaultReport]] = {
    "sigterm": lambda drill: drill.terminate(1),
    "sigkill": lambda drill: drill.kill([2]),
    "sigstop": lambda drill: drill.freeze(0),
    "rolling-restart": lambda drill: drill.rolling_restart(3),
    "two-of-three-killed": lambda drill: drill.kill([0, 1]),
    "sigterm-go": lambda drill: drill.terminate(GO_REPLICA, "the Go replica"),
    "sigkill-go": lambda drill: drill.kill([GO_REPLICA], "the Go replica"),
}
