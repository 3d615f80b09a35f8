"""Long streams through Envoy (and proxyless) while replicas fail: every reply once, in order.

    with StreamLoad(target, streams=12, chats=6, connections=6) as load:
        load.wait_calling()
        ...inject a fault...
    load.streams()   # started, completed, resumed; replies lost, duplicated; p99 resume

    streams, fault = stream_drill(drill, "sigkill")   # a fault drill with the streams added,
                                                      # split between the drill's paths

Each stream and chat runs in a thread of its own through the Python client's library
(grpctest_client.calls), which resumes a broken one on another replica. Every reply's
sequence is recorded, so lost and repeated replies are counted here, independently of
the client's own check. StreamLoad is a load.Load, so a drill runs it beside the unary
loads; it is started last, right before the fault, so that the streams are still open
when it comes (a SIGTERMed replica cuts its streams after its drain and grace, 12 s here).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Self

import grpc

from grpctest import grpctest_pb2
from grpctest_bench.ghz import percentile
from grpctest_client.calls import Resume, chat, stream_server_responses
from grpctest_client.resume import Messages, OutOfSequenceError
from grpctest_common.channels import Connection, open_channel
from grpctest_devtools.waiting import wait_until
from grpctest_harness.channels import OWN_CONNECTION
from grpctest_harness.faults import DRILLS, Drill, FaultReport
from grpctest_harness.load import (
    WHOLE_RUN,
    Load,
    LoadReport,
    Moment,
    Window,
    assert_ran_through,
    environment,
)


@dataclass
class Exchange:
    """One stream or chat: the sequences it received, its resumes, how it ended."""

    kind: str
    sequences: list[int] = field(default_factory=list)
    # The replica of its first reply (the one a fault may hit).
    replica: str = ""
    # Seconds the caller waited at each resume: from the last reply before the break
    # to the first reply after it.
    resume_seconds: list[float] = field(default_factory=list)
    error: str = ""
    done: bool = False
    first_reply: float = 0.0
    last_reply: float = 0.0

    def lost(self, count: int) -> int:
        return count - len(set(self.sequences) & set(range(1, count + 1)))

    def duplicated(self) -> int:
        return len(self.sequences) - len(set(self.sequences))

    def on_resume(self, _after: int, _replica: str) -> None:
        self.resume_seconds.append(time.monotonic() - self.last_reply)

    def received(self, reply: grpctest_pb2.MessageResponse) -> None:
        self.last_reply = time.monotonic()
        if not self.replica:
            self.replica, self.first_reply = reply.replica, self.last_reply
        self.sequences.append(reply.sequence)


@dataclass
class StreamReport:
    """What the streams and chats of one drill saw."""

    count: int
    exchanges: list[Exchange]
    path: str = "envoy"

    def of(self, kind: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.kind == kind]

    @property
    def failures(self) -> list[str]:
        return [f"{e.kind}: {e.error}" for e in self.exchanges if e.error or not e.done]

    @property
    def lost(self) -> int:
        return sum(e.lost(self.count) for e in self.exchanges)

    @property
    def duplicated(self) -> int:
        return sum(e.duplicated() for e in self.exchanges)

    @property
    def resumes(self) -> list[float]:
        return [s for e in self.exchanges for s in e.resume_seconds]

    def row(self) -> str:
        def counts(kind: str) -> str:
            exchanges = self.of(kind)
            completed = sum(e.done and not e.error for e in exchanges)
            resumed = sum(bool(e.resume_seconds) for e in exchanges)
            figures = f"{len(exchanges)} / {completed} / {resumed}"
            return f"{kind}s started / completed / resumed {figures}"

        p99 = f"{percentile(self.resumes, 0.99):.2f} s" if self.resumes else "-"
        return (
            f"{self.path}: {counts('stream')}; {counts('chat')}; resumes {len(self.resumes)}, "
            f"p99 time to resume {p99}; replies lost {self.lost}, "
            f"duplicated {self.duplicated}"
        )


class StreamLoad:
    """`streams` server streams and `chats` chats of `count` replies each, one every
    `interval` seconds, spread over `connections` channels (HTTP/2 connections)."""

    def __init__(
        self,
        target: str | Connection,
        *,
        streams: int = 12,
        chats: int = 6,
        connections: int = 6,
        count: int = 5000,
        interval: float = 0.004,
        timeout: float = 120,
        path: str = "envoy",
        env: Mapping[str, str] | None = None,
    ) -> None:
        """`target`: an address (plaintext), or a Connection (TLS, credentials); `path`:
        how the report names the way to the replicas; `env`: what this process's
        environment needs for the target (an xds:/// target's bootstrap), set while the
        streams run."""
        self.connections = connections
        self.connection = target if isinstance(target, Connection) else Connection(target)
        self.count, self.interval, self.timeout, self.path = count, interval, timeout, path
        self._environment = environment(env or {})
        kinds = ["stream"] * streams + ["chat"] * chats
        self.exchanges = [Exchange(kind) for kind in kinds]
        self._channels: list[grpc.Channel] = []
        self._threads: list[threading.Thread] = []

    def _replies(self, exchange: Exchange, channel: grpc.Channel) -> Iterator:
        resume = Resume(attempts=5, on_resume=exchange.on_resume)
        if exchange.kind == "stream":
            return stream_server_responses(
                channel, "drill", self.count, self.interval, self.timeout, resume=resume
            )
        messages = Messages("drill", self.count, self.interval)
        return chat(channel, messages, self.timeout, resume=resume)

    def _run(self, exchange: Exchange, channel: grpc.Channel) -> None:
        try:
            for reply in self._replies(exchange, channel):
                exchange.received(reply)
        except grpc.RpcError as err:
            exchange.error = f"{err.code().name}: {err.details()}"
        except OutOfSequenceError as err:
            exchange.error = f"{err.code}: {err}"
        exchange.done = True

    def wait_calling(self, timeout: float = 60) -> None:
        """Waits until every stream and chat has had its first reply (or ended)."""

        def started() -> bool:
            return all(e.sequences or e.done for e in self.exchanges)

        wait_until(started, timeout, "every stream and chat's first reply", 0.05)

    def wait_answered_after(self, moment: Moment, timeout: float = 60) -> None:
        """The streams go on until complete (__exit__ waits for them)."""

    def __enter__(self) -> Self:
        self._environment.__enter__()
        connection = self.connection
        self._channels = [
            open_channel(connection, [OWN_CONNECTION]) for _ in range(self.connections)
        ]
        self._threads = [
            threading.Thread(target=self._run, args=(e, self._channels[i % self.connections]))
            for i, e in enumerate(self.exchanges)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Waits for every stream and chat to end (each has the deadline `timeout`)."""
        until = time.monotonic() + self.timeout + 10
        try:
            for thread in self._threads:
                thread.join(max(0.0, until - time.monotonic()))
            if any(thread.is_alive() for thread in self._threads):
                raise RuntimeError("streams outlived their deadline")
        finally:
            for channel in self._channels:
                channel.close()
            self._environment.__exit__(None, None, None)

    def streams(self) -> StreamReport:
        return StreamReport(self.count, self.exchanges, self.path)

    def report(self, fault: Window = WHOLE_RUN) -> LoadReport:
        """The streams as a load: one "call" each; made before the fault: those with a
        reply before it began; answered after it: those that got all their replies."""
        streams = self.streams()
        failures = collections.Counter(f.split(": ", 1)[1] for f in streams.failures)
        p99 = percentile(streams.resumes, 0.99) * 1000
        began = fault.start.monotonic
        before = sum(1 for e in self.exchanges if e.sequences and e.first_reply < began)
        complete = sum(1 for e in self.exchanges if not (e.error or e.lost(self.count)))
        return LoadReport("streams", len(self.exchanges), failures, p99, before, complete)


# The faults of one replica a stream drill goes through (names of faults.DRILLS): a
# py-server replica's and the go-server replica's.
STREAM_FAULTS = ["sigterm", "sigkill", "sigstop", "sigterm-go", "sigkill-go"]


# How long a stream drill's streams last at least (their replies are paced): started
# right before the fault, they are still open when it cuts them. A SIGTERMed replica
# cuts its streams only after its drain and grace (13 s in every topology here); a
# killed one at once.
STREAM_SECONDS = {"sigterm": 20.0, "sigterm-go": 20.0}
STREAM_SECONDS_OTHERWISE = 8.0


def stream_drill(drill: Drill, fault: str) -> tuple[list[StreamReport], FaultReport]:
    """The fault drill `fault` (faults.DRILLS) with 12 server streams and 6 chats over
    6 connections, one reply every 4 ms for STREAM_SECONDS, beside its unary loads;
    split evenly between the drill's paths (as its unary load is)."""
    interval = 0.004
    count = round(STREAM_SECONDS.get(fault, STREAM_SECONDS_OTHERWISE) / interval)
    share = len(drill.paths)
    streams = [
        StreamLoad(path.target, streams=12 // share, chats=6 // share,
                   connections=6 // share, count=count, interval=interval,
                   path=path.name, env=path.environment)
        for path in drill.paths
    ]  # fmt: skip

    def loads(target: str) -> list[Load]:
        return [*drill.loads(target), *streams]

    report = DRILLS[fault](
        Drill(drill.target, drill.admin, drill.replicas, loads, paths=drill.paths)
    )
    return [load.streams() for load in streams], report


def rows(reports: list[StreamReport]) -> str:
    """Every path's row, in one line."""
    return "; ".join(report.row() for report in reports)


def assert_no_reply_lost(reports: list[StreamReport], fault: FaultReport) -> None:
    """On every path, every stream and chat completed, each reply once; every load ran
    through the fault with no call failed; the fault hit streams, and where it took the
    replica away (not only froze it), every stream and chat on it resumed."""
    for report in reports:
        assert report.failures == [], rows(reports)
        assert (report.lost, report.duplicated) == (0, 0), rows(reports)
    assert_ran_through(fault.loads)
    hit = [e for report in reports for e in report.exchanges if e.replica in fault.victims]
    assert hit, f"no stream or chat on {fault.victims}: {rows(reports)}"
    if fault.went_away:
        assert all(e.resume_seconds for e in hit), (
            f"not resumed, on {fault.victims}: {[e.kind for e in hit if not e.resume_seconds]}"
        )
