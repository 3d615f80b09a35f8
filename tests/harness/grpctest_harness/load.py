"""Concurrent client load for the fault tests: many callers over many connections.

Two callers, so that both gRPC stacks are exercised while replicas fail:

    with PythonLoad(target, callers=64, connections=8) as py, GhzLoad(target) as go:
        py.wait_calling(); go.wait_calling()     # the load is on, known (no sleep)
        fault = Window(Moment.now(), ...)        # ...inject a fault, then note its end...
        py.wait_answered_after(fault.end)
    py.report(fault), go.report(fault)           # calls sent, failed, answered before
                                                 # and after the fault, p99

Every load has that shape (the Load protocol), so a drill can run any of them: faults.py's
drills take a list of loads, and another kind (proxyless clients, streams) is one more
class with these methods. A load runs until it is stopped; one that stops by itself
before then (died, or hit its last-resort bound) fails its report. PythonLoad runs
grpc.aio in a background thread; GhzLoad runs ghz (grpc-go, pinned in the Makefile),
whose exit status is checked; GoLoad runs grpctest-load (bench/load: grpc-go dialled as
go-client dials, for the ways ghz cannot take: xds:/// with go-client's keepalive, ipv4:
lists). Every call has a deadline. The same loads on every way to the replicas:

    with contextlib.ExitStack() as running:
        loads = [running.enter_context(load) for load in path_loads(paths, 64, 8)]
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
from typing import Protocol, Self

import grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_bench import ghz
from grpctest_bench.ghz import percentile
from grpctest_common.channels import Connection
from grpctest_devtools.clients import CallPath
from grpctest_devtools.processes import DIE_WITH_PARENT
from grpctest_devtools.repo import command
from grpctest_devtools.waiting import wait_until
from grpctest_harness.channels import OWN_CONNECTION, open_aio_channel

# What a grpc-go caller (ghz, grpctest-load) reads per reply (HTTP/2 headers, the
# message, trailers), measured with ghz: about 115 bytes. Neither keeps a count it tells
# while it runs; the kernel counts the bytes it reads.
REPLY_BYTES = 115
# A load's last-resort bound: it runs until its test stops it (a rollout may take long);
# this only ends one whose test never did. Stopping by itself fails the load's report.
MAX_SECONDS = 3600


@dataclass(frozen=True)
class Moment:
    """One instant on both clocks: monotonic (this process's calls) and the epoch (ghz's
    per-call timestamps)."""

    monotonic: float
    epoch: float

    @classmethod
    def now(cls) -> Moment:
        return cls(time.monotonic(), time.time())


@dataclass(frozen=True)
class Window:
    """A fault, from when it was injected to when it was over."""

    start: Moment
    end: Moment


# No fault: every call counts as during it (a report of a load that had no fault).
WHOLE_RUN = Window(Moment(0.0, 0.0), Moment(float("inf"), float("inf")))


@dataclass
class LoadReport:
    """What one caller saw: calls, failures by "STATUS: detail", p99 latency during the
    fault, and the calls answered that were made before the fault began (the load was
    on when it came) and after it was over (a load that died, or had not started, shows
    0 there)."""

    caller: str
    sent: int
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    p99_ms: float = 0.0
    ok_before: int = 0
    ok_after: int = 0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    def __str__(self) -> str:
        return (
            f"{self.caller}: {self.sent} sent, {self.failed} failed, p99 {self.p99_ms:.0f} ms, "
            f"{self.ok_before} answered made before the fault, {self.ok_after} after it"
        )


class Load(Protocol):
    """What a drill needs of a load: run it, know it is calling, report on a fault."""

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def wait_calling(self, timeout: float = 60) -> None:
        """Returns once the load is known to be calling (raises if it is not)."""

    def wait_answered_after(self, moment: Moment, timeout: float = 60) -> None:
        """Returns once calls started after `moment` were answered, where the load can
        tell (otherwise at once: its report shows it)."""

    def report(self, fault: Window) -> LoadReport: ...


def assert_ran_through(reports: list[LoadReport]) -> None:
    """No call failed, and every load had calls answered that it made before the fault
    (it was on when the fault came) and after it (a load that died, or never ran, is no
    pass)."""
    assert [dict(r.failures) for r in reports] == [{}] * len(reports), [str(r) for r in reports]
    assert all(r.ok_before > 0 and r.ok_after > 0 for r in reports), [str(r) for r in reports]


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
    """One finished call: when it started and ended, who answered or what failed."""

    started: float
    ended: float
    replica: str = ""
    failure: str = ""


class PythonLoad:
    """grpc.aio callers calling back to back, each over one of `connections` channels.

    Every channel has its own subchannel pool, so each is its own HTTP/2 connection.
    """

    def __init__(
        self,
        target: str | Connection,
        *,
        callers: int = 64,
        connections: int = 8,
        deadline: float = 5.0,
        max_seconds: float = MAX_SECONDS,
        env: Mapping[str, str] | None = None,
        caller: str = "python",
    ) -> None:
        """`target`: an address (plaintext), or a Connection (TLS, credentials); `env`:
        what this process's environment needs for the target (an xds:/// target's
        bootstrap), set while the load runs; `caller`: how its report names it."""
        self._environment = environment(env or {})
        self.caller = caller
        self.connection = target if isinstance(target, Connection) else Connection(target)
        self.target = self.connection.target
        self.callers = callers
        self.connections = connections
        self.deadline = deadline
        self.max_seconds = max_seconds
        self.calls: list[Call] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)
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
                failure = f"{err.code().name}: {err.details()}"
                self.calls.append(Call(start, time.monotonic(), failure=failure))
            else:
                self.calls.append(Call(start, time.monotonic(), replica=reply.replica))

    def __enter__(self) -> Self:
        self._environment.__enter__()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stops the callers; raises if they died early or do not stop."""
        stopped_by_itself = not self._thread.is_alive()
        self._stop.set()
        self._thread.join(self.deadline + 30)
        self._environment.__exit__(None, None, None)
        if self._thread.is_alive():
            raise RuntimeError(f"the Python load on {self.target} did not stop")
        if self.error is not None:
            raise RuntimeError(f"the Python load on {self.target} died") from self.error
        if stopped_by_itself:
            raise RuntimeError(f"the Python load on {self.target} stopped before it was told")

    def _answered_after(self, moment: float) -> int:
        return sum(1 for c in list(self.calls) if c.started >= moment and not c.failure)

    def _wait_answered(self, since: float, timeout: float, what: str) -> None:
        """Until as many calls as there are callers, started after `since`, were answered."""

        def answered() -> bool:
            if not self._thread.is_alive():
                raise RuntimeError(f"the Python load on {self.target} died") from self.error
            return self._answered_after(since) >= self.callers

        wait_until(answered, timeout, f"{self.callers} calls of the Python load answered {what}")

    def wait_calling(self, timeout: float = 60) -> None:
        self._wait_answered(0.0, timeout, "(it is calling)")

    def wait_answered_after(self, moment: Moment, timeout: float = 60) -> None:
        self._wait_answered(moment.monotonic, timeout, "after the fault")

    def replicas_since(self, since: float) -> collections.Counter[str]:
        """Calls answered per replica among the calls that started after `since`."""
        calls = list(self.calls)
        return collections.Counter(c.replica for c in calls if c.started >= since and c.replica)

    def report(self, fault: Window = WHOLE_RUN) -> LoadReport:
        """Every call sent; failures; p99 of the calls that ended during the fault; the
        calls answered that started before it began, and after it was over."""
        calls = list(self.calls)
        start, end = fault.start.monotonic, fault.end.monotonic
        during = [(c.ended - c.started) * 1000 for c in calls if start <= c.ended <= end]
        return LoadReport(
            self.caller,
            len(calls),
            collections.Counter(c.failure for c in calls if c.failure),
            percentile(during, 0.99),
            ok_before=sum(1 for c in calls if c.started < start and not c.failure),
            ok_after=sum(1 for c in calls if c.started >= end and not c.failure),
        )


class _ProcessLoad:
    """What GhzLoad and GoLoad share: a grpc-go load generator in a process of its own,
    known to be calling by the bytes it reads (the kernel's count: neither keeps one it
    would tell while it runs), stopped with SIGINT (its calls in flight then finish)."""

    name = "load"

    # Whether it runs until told to stop (one that stops by itself then fails).
    until_stopped = True

    def __init__(self, concurrency: int, connections: int) -> None:
        self.concurrency, self.connections = concurrency, connections
        self._process: subprocess.Popen[str] | None = None
        self.result: dict | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait_calling(self, timeout: float = 60) -> None:
        """Until it holds all its connections and has read about one reply per caller
        since (what it read before is its start)."""

        def connected() -> bool:
            return _established_connections(self._pid()) >= self.connections

        wait_until(connected, timeout, f"{self.name}'s {self.connections} connections")
        self._wait_read(self.concurrency, timeout, "(it is calling)")

    def wait_answered_after(self, moment: Moment, timeout: float = 60) -> None:
        """Until it has read, since now, more replies than it can have had calls in
        flight (one per caller; four times that): some were to calls made after now."""
        self._wait_read(4 * self.concurrency, timeout, "after the fault")

    def _pid(self) -> int:
        if self._process is None or not self.running:
            raise RuntimeError(f"{self.name} is not running")
        return self._process.pid

    def _wait_read(self, replies: int, timeout: float, what: str) -> None:
        """Until it has read `replies` replies' worth of bytes more than now."""
        until = _bytes_read(self._pid()) + replies * REPLY_BYTES
        wait_until(
            lambda: _bytes_read(self._pid()) >= until,
            timeout,
            f"{replies} replies to {self.name} {what}",
        )

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> dict:
        """Stops it (if it still runs) and returns its JSON report; raises if it failed
        (its exit status), stopped by itself while it should run until told, or does
        not stop."""
        process = self._process
        if self.result is None and process is not None:
            stopped_by_itself = process.poll() is not None
            if not stopped_by_itself:
                process.send_signal(signal.SIGINT)
            out, err = _communicate(process, 60, self.name)
            out = self._report_text(out)
            if process.returncode != 0 or not out:
                raise RuntimeError(f"{self.name} failed ({process.returncode}): {err[-2000:]}")
            if stopped_by_itself and self.until_stopped:
                raise RuntimeError(f"{self.name} stopped before it was told")
            self.result = json.loads(out)
        return self.result or {}

    def _report_text(self, stdout: str) -> str:
        """Its JSON report: what it wrote on stdout (unless it writes it elsewhere)."""
        return stdout


class GhzLoad(_ProcessLoad):
    """ghz (grpc-go) calling with `concurrency` workers over `connections` connections:
    `total` calls, or until stopped (SIGINT; calls in flight then finish, none is cut)."""

    name = "ghz"

    def __init__(
        self,
        target: str,
        *,
        concurrency: int = 64,
        connections: int = 8,
        deadline: float = 5.0,
        total: int | None = None,
        max_seconds: float = MAX_SECONDS,
    ) -> None:
        # ghz ignores --total when --duration is given.
        amount = ["--total", str(total)] if total else ["--duration", f"{max_seconds}s"]
        super().__init__(concurrency, connections)
        self.until_stopped = total is None
        self.argv = ghz.argv(
            target,
            concurrency=concurrency,
            connections=connections,
            deadline=deadline,
            amount=amount,
        )
        self._output = tempfile.NamedTemporaryFile(prefix="ghz-", suffix=".json")  # noqa: SIM115

    def __enter__(self) -> Self:
        # The report (one entry per call) goes to a file: a pipe nobody reads while ghz
        # runs would fill up and stall it.
        # (setpriv: ghz dies with this process, like every other child of the harness)
        self._process = subprocess.Popen(
            [*DIE_WITH_PARENT, *self.argv, "--output", self._output.name],
            stderr=subprocess.PIPE,
            text=True,
        )
        return self

    def _report_text(self, stdout: str) -> str:
        """ghz writes its report to the file it was given."""
        with self._output:
            return Path(self._output.name).read_text()

    def report(self, fault: Window = WHOLE_RUN) -> LoadReport:
        """ghz's figures; the calls answered that started before the fault began, and
        after it was over, by ghz's per-call timestamps (when a call ended, in epoch
        time) less their latencies."""
        result = self.stop()
        failures, p99 = ghz.failures(result), ghz.p99_ms(result)
        before = after = 0
        for call in result.get("details") or []:
            if call.get("status") == "OK":
                started = _epoch(call["timestamp"]) - call["latency"] / 1e9
                before += started < fault.start.epoch
                after += started >= fault.end.epoch
        sent = int(result.get("count", 0))
        return LoadReport("go (ghz)", sent, failures, p99, before, after)


class GoLoad(_ProcessLoad):
    """grpctest-load (grpc-go, dialled as go-client dials: go-common/balancing) with
    `concurrency` callers over `connections` client connections, until stopped (SIGINT;
    calls in flight then finish, none is cut)."""

    name = "grpctest-load"

    def __init__(
        self,
        target: str,
        *,
        concurrency: int = 64,
        connections: int = 8,
        deadline: float = 5.0,
        max_seconds: float = MAX_SECONDS,
        env: Mapping[str, str] | None = None,
        caller: str = "go",
    ) -> None:
        super().__init__(concurrency, connections)
        self.argv = [
            command("grpctest-load"), "--target", target, "--message", "load",
            "--concurrency", str(concurrency), "--connections", str(connections),
            "--timeout", f"{deadline}s", "--max", f"{max_seconds}s",
        ]  # fmt: skip
        self.env = {**os.environ, **(env or {})}
        self.caller = caller

    def __enter__(self) -> Self:
        # (Its report comes at the end, in one piece: a few MB at most.)
        self._process = subprocess.Popen(
            [*DIE_WITH_PARENT, *self.argv], env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        return self

    def report(self, fault: Window = WHOLE_RUN) -> LoadReport:
        """Its figures; the calls answered that started before the fault began, and after
        it was over (when each ended less its latency: the two lists are in step)."""
        result = self.stop()
        start_ms = result["start_unix_ms"]
        answered = zip(result["answered_ms"], result["latencies_us"], strict=True)
        started = [
            (start_ms + ended_ms - latency_us / 1000) / 1000 for ended_ms, latency_us in answered
        ]
        before = sum(1 for t in started if t < fault.start.epoch)
        after = sum(1 for t in started if t >= fault.end.epoch)
        p99 = percentile(result["latencies_us"], 0.99) / 1000
        failures = collections.Counter(result["failures"])
        return LoadReport(self.caller, result["calls"], failures, p99, before, after)


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


def _communicate(process: subprocess.Popen[str], timeout: float, name: str) -> tuple[str, str]:
    """Waits for the process to exit (it was told to); its stdout and stderr. Killed if
    it does not."""
    try:
        out, err = process.communicate(timeout=timeout)
        return out or "", err or ""
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(f"{name} did not stop within {timeout:.0f} s; killed") from None


def _established_connections(pid: int) -> int:
    """The process's established TCP connections (Linux: its socket descriptors in
    /proc/PID/fd, found in the TCP tables of its network namespace)."""
    fds = Path(f"/proc/{pid}/fd")
    sockets = set()
    for fd in fds.iterdir():
        try:
            target = fd.readlink().name
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
    established = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            established += fields[3] == "01" and fields[9] in sockets  # 01: ESTABLISHED
    return established


def _bytes_read(pid: int) -> int:
    """The bytes the process has read so far (Linux: /proc/PID/io, rchar)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/io has no rchar")


def _epoch(timestamp: str) -> float:
    """An RFC 3339 timestamp as ghz writes it (nanoseconds, an offset) in epoch seconds."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", timestamp).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(trimmed).timestamp()
