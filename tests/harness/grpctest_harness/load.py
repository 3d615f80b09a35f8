"""Concurrent client load for the fault tests: many callers over many connections.

Two callers, so that both gRPC stacks are exercised while replicas fail:

    with PythonLoad(target, callers=64, connections=8) as py, GhzLoad(target) as go:
        ...inject a fault...
    py.report(), go.report()     # calls sent, failed (status: detail), p99

    with contextlib.ExitStack() as running:     # the same on every way to the replicas
        loads = [running.enter_context(load) for load in path_loads(paths, 64, 8)]

PythonLoad runs grpc.aio in a background thread; GhzLoad runs ghz (grpc-go, pinned in
the Makefile); GoLoad runs grpctest-load (bench/load: grpc-go dialled as go-client
dials, for the ways ghz cannot take: xds:/// with go-client's keepalive, ipv4: lists).
Every call has a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_bench import ghz
from grpctest_bench.ghz import percentile
from grpctest_common.channels import Connection
from grpctest_devtools.clients import CallPath
from grpctest_devtools.processes import DIE_WITH_PARENT
from grpctest_devtools.repo import command
from grpctest_harness.channels import OWN_CONNECTION, open_aio_channel


@dataclass
class LoadReport:
    """What one caller saw: calls, failures by "STATUS: detail", latency percentiles, and
    the calls answered after the fault began (0 if the load had stopped by then)."""

    caller: str
    sent: int
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    p99_ms: float = 0.0
    ok_since_fault: int = 0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def __str__(self) -> str:
        return (
            f"{self.caller}: {self.sent} sent, {self.failed} failed, p99 {self.p99_ms:.0f} ms, "
            f"{self.ok_since_fault} answered since the fault began"
        )


@dataclass(frozen=True)
class FaultWindow:
    """When a drill's fault began (monotonic and wall-clock seconds) and ended."""

    start: float
    start_epoch: float
    end: float = float("inf")

    @classmethod
    def now(cls) -> FaultWindow:
        return cls(time.monotonic(), time.time())

    def ended(self) -> FaultWindow:
        return FaultWindow(self.start, self.start_epoch, time.monotonic())


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """This process's environment with `variables` set, restored afterwards: gRPC reads
    the xDS bootstrap from it when a channel first resolves an xds:/// target. Enter and
    leave it on one thread, nested (last in, first out), around whatever uses it."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True)
class Call:
    """One finished call: when it ended, how long it took, who answered or what failed."""

    ended: float
    seconds: float
    replica: str = ""
    failure: str = ""


class PythonLoad:
    """grpc.aio callers calling back to back, each over one of `connections` channels.

    Every channel has its own subchannel pool, so each is its own HTTP/2 connection.
    Bounded: it stops by itself after max_seconds.
    """

    def __init__(
        self,
        target: str | Connection,
        *,
        callers: int = 64,
        connections: int = 8,
        deadline: float = 5.0,
        max_seconds: float = 180,
        env: Mapping[str, str] | None = None,
        caller: str = "python",
    ) -> None:
        """`target`: an address (plaintext), or a Connection (TLS, credentials); `env`:
        what this process's environment needs for the target (an xds:/// target's
        bootstrap), set while the load runs; `caller`: how its report names it."""
        self.connection = target if isinstance(target, Connection) else Connection(target)
        self.target = self.connection.target
        self.callers = callers
        self.connections = connections
        self.deadline = deadline
        self.max_seconds = max_seconds
        self.caller = caller
        self.calls: list[Call] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._environment = environment(env or {})
        self.error: BaseException | None = None

    def _main(self) -> None:
        """The thread: runs the callers; whatever ends it early is kept for __exit__."""
        try:
            asyncio.run(self._run())
        except BaseException as err:
            self.error = err

    async def _run(self) -> None:
        channels = [
            open_aio_channel(self.connection, [OWN_CONNECTION]) for _ in range(self.connections)
        ]
        try:
            stubs = [grpctest_pb2_grpc.GrpctestStub(channel) for channel in channels]
            until = time.monotonic() + self.max_seconds
            await asyncio.gather(
                *(self._caller(stubs[i % len(stubs)], until) for i in range(self.callers))
            )
        finally:
            await asyncio.gather(*(channel.close() for channel in channels))

    async def _caller(self, stub: grpctest_pb2_grpc.GrpctestAsyncStub, until: float) -> None:
        request = grpctest_pb2.Message(message="load")
        while not self._stop.is_set() and time.monotonic() < until:
            start = time.monotonic()
            try:
                reply = await stub.GetServerResponse(request, timeout=self.deadline)
            except grpc.aio.AioRpcError as err:
                end = time.monotonic()
                failure = f"{err.code().name}: {err.details()}"
                self.calls.append(Call(end, end - start, failure=failure))
            else:
                end = time.monotonic()
                self.calls.append(Call(end, end - start, replica=reply.replica))

    def __enter__(self) -> PythonLoad:
        self._environment.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stops the callers; raises if they died early or do not stop."""
        self._stop.set()
        self._thread.join(self.deadline + 30)
        self._environment.__exit__(None, None, None)
        if self._thread.is_alive():
            raise RuntimeError(f"the Python load on {self.target} did not stop")
        if self.error is not None:
            raise RuntimeError(f"the Python load on {self.target} died") from self.error

    def replicas_since(self, since: float) -> collections.Counter[str]:
        """Calls answered per replica among the calls that ended after `since`."""
        return collections.Counter(c.replica for c in self.calls if c.ended >= since and c.replica)

    def report(self, since: float = 0.0, until: float = float("inf")) -> LoadReport:
        """Every call sent; failures; p99 of the calls that ended between since and until;
        the calls answered that ended after since."""
        window = [c.seconds * 1000 for c in self.calls if since <= c.ended <= until]
        failures = collections.Counter(c.failure for c in self.calls if c.failure)
        ok = sum(1 for c in self.calls if c.ended >= since and not c.failure)
        return LoadReport(self.caller, len(self.calls), failures, percentile(window, 0.99), ok)

    def fault_report(self, window: FaultWindow) -> LoadReport:
        """report() around a drill's fault: p99 over the fault, answered since it began."""
        return self.report(window.start, window.end)


class GhzLoad:
    """ghz (grpc-go) calling with `concurrency` workers over `connections` connections:
    `total` calls, or until stopped (SIGINT; calls in flight then finish, none is cut)
    but at most max_seconds."""

    def __init__(
        self,
        target: str,
        *,
        concurrency: int = 64,
        connections: int = 8,
        deadline: float = 5.0,
        total: int | None = None,
        max_seconds: float = 180,
    ) -> None:
        # ghz ignores --total when --duration is given.
        amount = ["--total", str(total)] if total else ["--duration", f"{max_seconds}s"]
        self.argv = ghz.argv(
            target,
            concurrency=concurrency,
            connections=connections,
            deadline=deadline,
            amount=amount,
        )
        self._process: subprocess.Popen[str] | None = None
        self._output = tempfile.NamedTemporaryFile(prefix="ghz-", suffix=".json")  # noqa: SIM115
        self.result: dict | None = None

    def __enter__(self) -> GhzLoad:
        # The report (one entry per call) goes to a file: a pipe nobody reads while ghz
        # runs would fill up and stall it.
        # (setpriv: ghz dies with this process, like every other child of the harness)
        self._process = subprocess.Popen(
            [*DIE_WITH_PARENT, *self.argv, "--output", self._output.name],
            stderr=subprocess.PIPE,
            text=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> dict:
        """Stops ghz (if it still runs) and returns its JSON report."""
        if self.result is None and self._process is not None:
            _, err = _interrupt(self._process, "ghz")
            with self._output:
                out = Path(self._output.name).read_text()
            if not out:
                raise RuntimeError(f"ghz failed ({self._process.returncode}): {err[-2000:]}")
            self.result = json.loads(out)
        return self.result or {}

    def report(self, since_epoch: float = 0.0) -> LoadReport:
        """ghz's figures; answered since the fault: the calls that started at or after
        `since_epoch` (wall-clock seconds, as ghz's per-call timestamps are) and got OK."""
        result = self.stop()
        failures, p99 = ghz.failures(result), ghz.p99_ms(result)
        ok = sum(
            1
            for call in result.get("details") or []
            if call.get("status") == "OK" and _epoch(call["timestamp"]) >= since_epoch
        )
        return LoadReport("go (ghz)", int(result.get("count", 0)), failures, p99, ok)

    def fault_report(self, window: FaultWindow) -> LoadReport:
        """report() around a drill's fault: answered since it began."""
        return self.report(window.start_epoch)


class GoLoad:
    """grpctest-load (grpc-go, dialled as go-client dials: go-common/balancing) with
    `concurrency` callers over `connections` client connections, until stopped (SIGINT;
    calls in flight then finish, none is cut) but at most max_seconds."""

    def __init__(
        self,
        target: str,
        *,
        concurrency: int = 64,
        connections: int = 8,
        deadline: float = 5.0,
        max_seconds: float = 180,
        env: Mapping[str, str] | None = None,
        caller: str = "go",
    ) -> None:
        self.argv = [
            command("grpctest-load"), "--target", target, "--message", "load",
            "--concurrency", str(concurrency), "--connections", str(connections),
            "--timeout", f"{deadline}s", "--max", f"{max_seconds}s",
        ]  # fmt: skip
        self.env = {**os.environ, **(env or {})}
        self.caller = caller
        self._process: subprocess.Popen[str] | None = None
        self.result: dict | None = None

    def __enter__(self) -> GoLoad:
        # (Its report comes at the end, in one piece: a few MB at most.)
        self._process = subprocess.Popen(
            [*DIE_WITH_PARENT, *self.argv],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> dict:
        """Stops grpctest-load (if it still runs) and returns its JSON report."""
        if self.result is None and self._process is not None:
            out, err = _interrupt(self._process, "grpctest-load")
            if self._process.returncode != 0 or not out:
                raise RuntimeError(f"grpctest-load failed ({self._process.returncode}): {err}")
            self.result = json.loads(out)
        return self.result or {}

    def report(self, since_epoch: float = 0.0) -> LoadReport:
        """Its figures; answered since the fault: the calls that ended at or after
        `since_epoch` (wall-clock seconds) and got OK."""
        result = self.stop()
        since_ms = since_epoch * 1000 - result["start_unix_ms"]
        ok = sum(1 for ended in result["answered_ms"] if ended >= since_ms)
        p99 = percentile(result["latencies_us"], 0.99) / 1000
        failures = collections.Counter(result["failures"])
        return LoadReport(self.caller, result["calls"], failures, p99, ok)

    def fault_report(self, window: FaultWindow) -> LoadReport:
        """report() around a drill's fault: answered since it began."""
        return self.report(window.start_epoch)


def path_loads(
    paths: Sequence[CallPath], callers: int, connections: int
) -> list[PythonLoad | GhzLoad | GoLoad]:
    """A Python and a Go load on each path, `callers` callers per client split evenly
    between the paths, each over `connections` connections: ghz through Envoy (as
    ever), grpctest-load where the Go client balances itself."""
    share = max(1, callers // len(paths))
    loads: list[PythonLoad | GhzLoad | GoLoad] = []
    for path in paths:
        if path.name == "envoy":
            loads += [PythonLoad(path.target, callers=share, connections=connections),
                      GhzLoad(path.target, concurrency=share, connections=connections)]  # fmt: skip
            continue
        loads += [
            PythonLoad(path.target, callers=share, connections=connections,
                       env=path.environment, caller=f"python via {path.name}"),
            GoLoad(path.target, concurrency=share, connections=connections,
                   env=path.environment, caller=f"go via {path.name}"),
        ]  # fmt: skip
    return loads


def _interrupt(process: subprocess.Popen[str], name: str) -> tuple[str, str]:
    """Stops a load generator that still runs with SIGINT (its calls in flight finish,
    none is cut); its output."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"{name} did not stop within 60 s of SIGINT; killed") from None


def _epoch(timestamp: str) -> float:
    """An RFC 3339 timestamp as ghz writes it (nanoseconds, an offset) in epoch seconds."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", timestamp).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(trimmed).timestamp()
