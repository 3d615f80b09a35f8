"""Concurrent client load for the fault tests: many callers over many connections.

Two callers, so that both gRPC stacks are exercised while replicas fail:

    with PythonLoad(target, callers=64, connections=8) as py, GhzLoad(target) as go:
        ...inject a fault...
    py.report(), go.report()     # calls sent, failed (status: detail), p99

PythonLoad runs grpc.aio in a background thread; GhzLoad runs ghz (grpc-go, pinned in
the Makefile). Every call has a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import json
import re
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_bench import ghz
from grpctest_bench.ghz import percentile
from grpctest_common.channels import Connection
from grpctest_devtools.processes import DIE_WITH_PARENT
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
        target: str,
        *,
        callers: int = 64,
        connections: int = 8,
        deadline: float = 5.0,
        max_seconds: float = 180,
    ) -> None:
        self.target = target
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
        connection = Connection(self.target)
        channels = [open_aio_channel(connection, [OWN_CONNECTION]) for _ in range(self.connections)]
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
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stops the callers; raises if they died early or do not stop."""
        self._stop.set()
        self._thread.join(self.deadline + 30)
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
        return LoadReport("python", len(self.calls), failures, percentile(window, 0.99), ok)


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
            if self.running:
                self._process.send_signal(signal.SIGINT)
            try:
                _, err = self._process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.communicate()
                raise RuntimeError("ghz did not stop within 60 s of SIGINT; killed") from None
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


def _epoch(timestamp: str) -> float:
    """An RFC 3339 timestamp as ghz writes it (nanoseconds, an offset) in epoch seconds."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", timestamp).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(trimmed).timestamp()
