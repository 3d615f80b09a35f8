"""Long streams through Envoy (and proxyless) while replicas fail: every reply once, in order.

    with StreamLoad(target, streams=12, chats=6, connections=6) as load:
        load.wait_started()
        ...inject a fault...
    load.report()    # started, completed, resumed; replies lost, duplicated; p99 resume

    streams, unary = stream_drill(drill, "sigkill")   # the same on each of the drill's
                                                      # paths, around a fault drill

Each stream and chat runs in a thread of its own through the Python client's library
(grpctest_client.calls), which resumes a broken one on another replica. Every reply's
sequence is recorded, so lost and repeated replies are counted here, independently of
the client's own check.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import grpc

from grpctest_bench.ghz import percentile
from grpctest_client.calls import Resume, chat, stream_server_responses
from grpctest_client.resume import Messages, OutOfSequenceError
from grpctest_common.channels import Connection, open_channel
from grpctest_harness.channels import OWN_CONNECTION
from grpctest_harness.faults import DRILLS, Drill, FaultReport
from grpctest_harness.load import environment


@dataclass
class Exchange:
    """One stream or chat: the sequences it received, its resumes, how it ended."""

    kind: str
    sequences: list[int] = field(default_factory=list)
    # Seconds the caller waited at each resume: from the last reply before the break
    # to the first reply after it.
    resume_seconds: list[float] = field(default_factory=list)
    error: str = ""
    done: bool = False
    last_reply: float = 0.0

    def lost(self, count: int) -> int:
        return count - len(set(self.sequences) & set(range(1, count + 1)))

    def duplicated(self) -> int:
        return len(self.sequences) - len(set(self.sequences))

    def on_resume(self, _after: int, _replica: str) -> None:
        self.resume_seconds.append(time.monotonic() - self.last_reply)


@dataclass
class StreamReport:
    """What the streams and chats of one drill saw on one path ("envoy", "xds")."""

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
        self.count, self.interval, self.timeout, self.path = count, interval, timeout, path
        self._environment = environment(env or {})
        connection = target if isinstance(target, Connection) else Connection(target)
        self._channels = [open_channel(connection, [OWN_CONNECTION]) for _ in range(connections)]
        kinds = ["stream"] * streams + ["chat"] * chats
        self.exchanges = [Exchange(kind) for kind in kinds]
        self._threads = [
            threading.Thread(target=self._run, args=(e, self._channels[i % connections]))
            for i, e in enumerate(self.exchanges)
        ]

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
                exchange.last_reply = time.monotonic()
                exchange.sequences.append(reply.sequence)
        except grpc.RpcError as err:
            exchange.error = f"{err.code().name}: {err.details()}"
        except OutOfSequenceError as err:
            exchange.error = f"{err.code}: {err}"
        exchange.done = True

    def wait_started(self, timeout: float = 30) -> None:
        """Waits until every stream and chat has had its first reply."""
        deadline = time.monotonic() + timeout
        while not all(e.sequences or e.done for e in self.exchanges):
            if time.monotonic() > deadline:
                raise TimeoutError("streams did not start")
            time.sleep(0.05)

    def __enter__(self) -> StreamLoad:
        self._environment.__enter__()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for thread in self._threads:
            thread.join(self.timeout + 10)
        for channel in self._channels:
            channel.close()
        self._environment.__exit__(None, None, None)

    def report(self) -> StreamReport:
        return StreamReport(self.count, self.exchanges, self.path)


# The faults of one replica a stream drill goes through (names of faults.DRILLS).
STREAM_FAULTS = ["sigterm", "sigkill", "sigstop"]


def stream_drill(drill: Drill, fault: str) -> tuple[list[StreamReport], FaultReport]:
    """The fault drill `fault` (faults.DRILLS: its unary load included) while 12 server
    streams and 6 chats of 5,000 replies, one every 4 ms, run over 6 connections, split
    evenly between the drill's paths (as its unary load is): long enough to outlast a
    replica's drain and grace period."""
    paths = drill.paths
    share = len(paths)
    with contextlib.ExitStack() as running:
        loads = [
            running.enter_context(
                StreamLoad(path.target, streams=12 // share, chats=6 // share,
                           connections=6 // share, path=path.name, env=path.environment)
            )
            for path in paths
        ]  # fmt: skip
        for load in loads:
            load.wait_started()
        unary = DRILLS[fault](drill)
    return [load.report() for load in loads], unary


def rows(reports: list[StreamReport]) -> str:
    """Every path's row, in one line."""
    return "; ".join(report.row() for report in reports)


def assert_no_reply_lost(reports: list[StreamReport], unary: FaultReport) -> None:
    """On every path, every stream and chat completed, each reply once; no unary call
    failed; where a replica went away (not only froze), streams were resumed."""
    rows_ = rows(reports)
    for report in reports:
        assert report.failures == [], rows_
        assert (report.lost, report.duplicated) == (0, 0), rows_
    assert unary.failures == [], unary.row()
    # Where a replica went away (a frozen one's streams only wait for it, behind Envoy),
    # the streams it served were resumed: on some path (each path's few streams may all
    # have been elsewhere).
    if "SIGSTOP" not in unary.fault:
        assert any(report.resumes for report in reports), rows_
