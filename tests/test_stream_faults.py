"""Streams that survive a replica's fault: at concurrency on the local stack, through
Envoy and proxyless over xDS at once, 12 server streams and 6 chats on each (plus the
unary fault drill's load) while one replica is SIGTERMed, SIGKILLed or SIGSTOPped; and
both clients as a user runs them, both ways.

A stream on a replica that shuts down ends with UNAVAILABLE saying how far it got; one
on a replica that dies is reset by Envoy (the caller sees INTERNAL) or, proxyless, ends
with the connection (UNAVAILABLE); one on a frozen replica pauses behind Envoy, and
proxyless ends once the client's keepalive ping goes unanswered. The clients resume the
broken ones on another replica, after the last reply they got: no reply may be lost or
repeated, and no unary call may fail.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest

from grpctest_devtools.clients import CLIENTS, client_argv
from grpctest_harness.faults import Drill, LocalReplicas, local_paths
from grpctest_harness.stream_load import (
    STREAM_FAULTS,
    assert_no_reply_lost,
    rows,
    stream_drill,
)

_REPLY_LINE = re.compile(r"^\[(\d+)/(\d+)\] (\S+): ")
_RESUMED_LINE = re.compile(r"^resumed after (\d+) on ((?:replica|go)-\d+)$")


@pytest.mark.parametrize("fault", STREAM_FAULTS)
def test_streams_and_chats_lose_no_reply_through_replica_faults(
    fresh_stack, figures, fault: str
) -> None:
    paths = local_paths(fresh_stack)
    drill = Drill(fresh_stack.target, fresh_stack.admin, LocalReplicas(fresh_stack), paths=paths)
    reports, unary = stream_drill(drill, fault)
    figures[f"local streams, {unary.fault}"] = f"{rows(reports)}; unary: {unary.row()}"
    assert_no_reply_lost(reports, unary)


def sequences(stdout: str) -> list[int]:
    """The position of every reply a client printed ("[558/3000] replica-3: ...")."""
    return [int(m[1]) for m in map(_REPLY_LINE.match, stdout.splitlines()) if m]


def test_both_clients_resume_through_a_kill_and_a_shutdown(fresh_stack, figures) -> None:
    """12 clients as a user runs them (each client: 3 server streams, 3 chats of 3,000
    replies), one replica SIGKILLed at 3 s and another SIGTERMed at 6 s: every process
    exits 0 having printed every reply once, in order, and says where it resumed."""
    count, flags = 3000, ["--count", "3000", "--interval", "0.004", "--timeout", "120"]
    argvs = [
        client_argv(client, fresh_stack.target, "--mode", mode, *flags)
        for client in CLIENTS
        for mode in ["server-stream"] * 3 + ["chat"] * 3
    ]
    processes = [
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv in argvs
    ]
    killed = fresh_stack.replicas[2]
    try:
        time.sleep(3)
        killed.signal(signal.SIGKILL)
        time.sleep(3)
        fresh_stack.replicas[1].signal(signal.SIGTERM)
        outputs = [process.communicate(timeout=150) for process in processes]
    finally:
        for process in processes:
            process.kill()
    resumed = on_killed = 0
    for argv, process, (out, err) in zip(argvs, processes, outputs, strict=True):
        assert process.returncode == 0, (argv, err)
        assert sequences(out) == list(range(1, count + 1)), (argv, err)
        resumes = [m for m in map(_RESUMED_LINE.match, err.splitlines()) if m]
        assert len(resumes) == len(err.splitlines()), err  # nothing else on stderr
        # A stream the killed replica was serving cannot have ended without a resume
        # (the SIGTERMed replica's may still finish within its grace period).
        first = _REPLY_LINE.match(out)
        assert first is not None, out[:200]
        if first[3] == killed.name:
            on_killed += 1
            assert resumes, (argv, err)
        resumed += bool(resumes)
    figures["clients resumed (of 12 processes, SIGKILL + SIGTERM)"] = (
        f"{resumed}, of them {on_killed} whose replica was killed"
    )
    assert on_killed >= 1  # the drill hit some of them


@pytest.mark.parametrize("client", CLIENTS)
def test_without_resumes_a_killed_replica_ends_the_stream_with_envoys_reset(
    fresh_stack, client: str
) -> None:
    """--resume-attempts 0: the stream ends where the replica died, with the status
    Envoy's reset gives (INTERNAL) and exit code 1, as before resuming existed."""
    argv = client_argv(
        client, fresh_stack.target, "--mode", "server-stream", "--count", "3000",
        "--interval", "0.004", "--timeout", "60", "--resume-attempts", "0",
    )  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = _REPLY_LINE.match(process.stdout.readline())
        assert first is not None
        fresh_stack.replica(first[3]).signal(signal.SIGKILL)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1, err
    assert err.startswith("error: INTERNAL: "), err
    assert "resumed" not in err
    assert sequences(out) == list(range(2, len(sequences(out)) + 2))  # the first was read
