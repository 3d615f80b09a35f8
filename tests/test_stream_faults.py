"""Streams that survive a replica's fault: at concurrency on the local stack, through
Envoy and proxyless over xDS at once, 12 server streams and 6 chats split between them
(beside the unary fault drill's loads) while one replica, a py-server's or the
go-server's, is SIGTERMed, SIGKILLed or SIGSTOPped; and both clients as a user runs
them, through a kill and a shutdown.

A stream on a replica that shuts down ends with UNAVAILABLE saying how far it got; one
on a replica that dies is reset by Envoy (the caller sees INTERNAL) or, proxyless, ends
with the connection (UNAVAILABLE); one on a frozen replica pauses behind Envoy, and
proxyless ends once the client's keepalive ping goes unanswered. The clients resume the
broken ones on another replica, after the last reply they got: no reply may be lost or
repeated, no unary call may fail, and every stream on a replica that went away must
have resumed.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
from typing import Any

import pytest

from grpctest_devtools.clients import CLIENTS, JSON_OUTPUT, client_argv
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.processes import DIE_WITH_PARENT
from grpctest_harness.faults import GO_REPLICA, Drill, LocalReplicas, local_paths
from grpctest_harness.stream_load import (
    STREAM_FAULTS,
    assert_no_reply_lost,
    rows,
    stream_drill,
)

# The fresh stack's replicas drain 3 s and then give open calls 10 s (conftest): a
# SIGTERMed replica cuts its streams within this many seconds of the signal.
CUT_WITHIN = 3 + 10


@pytest.mark.parametrize("fault", STREAM_FAULTS)
def test_streams_and_chats_lose_no_reply_through_replica_faults(
    fresh_stack, figures, fault: str
) -> None:
    paths = local_paths(fresh_stack)
    drill = Drill(fresh_stack.target, fresh_stack.admin, LocalReplicas(fresh_stack), paths=paths)
    reports, report = stream_drill(drill, fault)
    figures[f"local streams, {report.fault}"] = f"{rows(reports)}; {report.row()}"
    assert_no_reply_lost(reports, report)


class ClientRun:
    """One client process with --output json, read as it runs: its replies (stdout)
    and its resumes (stderr, as JSON objects) as they come, and any other line on
    stderr (its error: the clients write `error: STATUS: details` as text by design)."""

    def __init__(self, client: str, argv: list[str]) -> None:
        self.client, self.argv = client, argv
        self.process = subprocess.Popen(
            [*DIE_WITH_PARENT, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.replies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.other: list[str] = []
        self.failure: dict[str, Any] | None = None
        self._first: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            record = json.loads(line)
            if "error" in record:  # the last object of a failed run
                self.failure = record["error"]
            elif "summary" not in record:
                self.replies.append(record)
                if len(self.replies) == 1:
                    self._first.put(record)
        self._first.put(None)  # (the end: no first reply if none came)

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            if line.startswith("{"):
                self.resumes.append(json.loads(line)["resumed"])
            else:
                self.other.append(line)

    def first_reply(self, timeout: float = 60) -> dict[str, Any]:
        """Waits for the first reply (the replica serving this process's stream)."""
        try:
            first = self._first.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no reply within {timeout:.0f} s: {self.argv}") from None
        assert first is not None, f"ended without a reply: {self.argv}: {self.other}"
        return first

    def wait(self, timeout: float) -> int:
        """Waits for the process to exit (killed if it does not) and for its output."""
        try:
            code = self.process.wait(timeout)
        finally:
            self.kill()
        for reader in self._readers:
            reader.join(30)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def sequences(self) -> list[int]:
        return [reply["sequence"] for reply in self.replies]


def start_clients(stack: LocalStack, *flags: str) -> list[ClientRun]:
    """Each client: 3 server streams and 3 chats, each a process of its own."""
    modes = ["server-stream"] * 3 + ["chat"] * 3
    return [
        ClientRun(client, client_argv(client, stack.target, "--mode", mode, *flags, *JSON_OUTPUT))
        for client in CLIENTS
        for mode in modes
    ]


def py_victim(stack: LocalStack, serving: dict[str, set[str]], go: str) -> str:
    """The py-server replica to hurt beside the go-server replica `go`: one serving the
    clients `go` does not serve (`serving`: replica -> clients with a process on it),
    so that both clients have a process on a hurt replica; the busiest such one."""
    missing = set(CLIENTS) - serving.get(go, set())
    py_replicas = [r.name for r in stack.replicas if r.name != go]
    fits = [r for r in py_replicas if serving.get(r) and missing <= serving[r]]
    assert fits, f"no py-server replica serves {missing}: {serving}"
    return max(fits, key=lambda r: len(serving[r]))


@pytest.mark.parametrize(
    "go_signal", [signal.SIGTERM, signal.SIGKILL], ids=["go terminated", "go killed"]
)
def test_both_clients_resume_through_a_kill_and_a_shutdown(
    fresh_stack, figures, go_signal: signal.Signals
) -> None:
    """12 clients as a user runs them (each client: 3 server streams, 3 chats of 5,000
    replies, 4 ms apart, --output json). Once each has its first reply, the go-server
    replica gets `go_signal` and a py-server replica the other of SIGTERM and SIGKILL:
    every process exits 0 having printed every reply once, in order, and every process
    on a signalled replica resumed (each client has one there)."""
    count, interval = 5000, 0.004
    runs = start_clients(fresh_stack, "--count", str(count), "--interval", str(interval),
                         "--timeout", "120")  # fmt: skip
    try:
        on = {run: run.first_reply()["replica"] for run in runs}
        serving: dict[str, set[str]] = {}
        for run, replica in on.items():
            serving.setdefault(replica, set()).add(run.client)
        go = fresh_stack.replicas[GO_REPLICA].name
        signals = {go: go_signal, py_victim(fresh_stack, serving, go): (
            signal.SIGKILL if go_signal == signal.SIGTERM else signal.SIGTERM)}  # fmt: skip
        # A shut-down replica cuts a stream only if it is still open then.
        for run, replica in on.items():
            left = (count - run.sequences()[-1]) * interval
            if signals.get(replica) == signal.SIGTERM:
                assert left > CUT_WITHIN, f"{run.argv} would end before the cut ({left:.1f} s)"
        for replica, sig in signals.items():
            fresh_stack.replica(replica).signal(sig)
        codes = {run: run.wait(150) for run in runs}
    finally:
        for run in runs:
            run.kill()
    for run in runs:
        assert (codes[run], run.other) == (0, []), (run.argv, run.other)
        assert run.sequences() == list(range(1, count + 1)), run.argv
        if on[run] in signals:
            assert run.resumes, (run.argv, on[run], signals[on[run]])
    resumed = {c: sum(bool(r.resumes) for r in runs if r.client == c) for c in CLIENTS}
    hurt = ", ".join(f"{sig.name} {replica}" for replica, sig in signals.items())
    figures[f"clients resumed (of 6 processes each; {hurt})"] = resumed
    assert all(resumed.values()), resumed


@pytest.mark.parametrize("client", CLIENTS)
def test_without_resumes_a_killed_replica_ends_the_stream_with_envoys_reset(
    fresh_stack, client: str
) -> None:
    """--resume-attempts 0: the stream ends where the replica died, with the status
    Envoy's reset gives (INTERNAL) and exit code 1, as before resuming existed."""
    argv = client_argv(
        client, fresh_stack.target, "--mode", "server-stream", "--count", "3000",
        "--interval", "0.004", "--timeout", "60", "--resume-attempts", "0", *JSON_OUTPUT,
    )  # fmt: skip
    run = ClientRun(client, argv)
    try:
        fresh_stack.replica(run.first_reply()["replica"]).signal(signal.SIGKILL)
        code = run.wait(60)
    finally:
        run.kill()
    assert code == 1, run.other
    # (The error line is text: `error: STATUS: details`, the clients' one way to fail.)
    assert [line.split(": ", 2)[:2] for line in run.other] == [["error", "INTERNAL"]], run.other
    assert run.failure is not None
    assert run.failure["code"] == "INTERNAL", run.failure
    assert run.resumes == []
    assert run.sequences() == list(range(1, len(run.sequences()) + 1))
