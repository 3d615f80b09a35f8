"""Replica faults at realistic concurrency on the local stack: no call may fail.

Each drill runs 64 Python callers over 8 connections and ghz (Go) with 64 more over 8
connections through Envoy and, at the same time, the same two loads proxyless over xDS
(xds:///grpctest: the Python callers and grpctest-load, grpc-go, balancing every call
themselves as the control plane tells them); injects one fault into the replicas, and
waits until Envoy has them out of rotation and back. Envoy's own stats show how it
coped: retries that never overflowed their budget, replicas ejected by outlier
detection.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from grpctest_devtools.ports import free_port, port_in_use
from grpctest_devtools.processes import Process
from grpctest_devtools.repo import command
from grpctest_devtools.waiting import wait_until
from grpctest_harness.faults import DRILLS, Drill, LocalReplicas, local_paths
from grpctest_harness.load import assert_ran_through


@pytest.mark.parametrize("fault", DRILLS)
def test_no_call_fails_through_replica_faults(fresh_stack, figures, fault: str) -> None:
    before = fresh_stack.admin.stats("cluster.grpctest.")
    paths = local_paths(fresh_stack)
    drill = Drill(fresh_stack.target, fresh_stack.admin, LocalReplicas(fresh_stack), paths=paths)
    report = DRILLS[fault](drill)
    stats = fresh_stack.admin.stats("cluster.grpctest.")
    figures[f"local {report.fault}"] = report.row()
    # No call failed, and each load was answered before the fault and after it (a load
    # that died is no pass).
    assert_ran_through(report.loads)
    # Envoy took the replica out of rotation (locally nothing restarts it before), and
    # it came back (how fast is a figure, not a pass: the drill waits up to 30 s).
    assert report.out_seconds is not None, report.row()
    assert report.back_seconds is not None, report.row()
    assert stats.get("cluster.grpctest.upstream_rq_retry_overflow", 0) == 0, stats
    if fault in ("sigkill", "sigstop", "two-of-three-killed", "sigkill-go"):
        # Outlier detection took the replica out before the active health checks did.
        ejected = "cluster.grpctest.outlier_detection.ejections_enforced_total"
        assert stats.get(ejected, 0) > before.get(ejected, 0), stats


def test_the_workers_of_a_killed_replica_stop_with_it(tmp_path: Path) -> None:
    """SIGKILL of a --workers 2 replica's parent: its workers drain and exit instead of
    serving on as orphans on the port they share (SO_REUSEPORT), where a restarted
    replica would share it with them."""
    port = free_port()
    server = Process("workers", [command("grpctest-server"), "--workers", "2",
                                 "--port", str(port), "--drain-seconds", "1"],
                     tmp_path / "workers.log")  # fmt: skip
    server.start()
    try:
        wait_until(lambda: server.check_alive() and port_in_use(port), 30, "the workers to serve")
        assert server.pid is not None
        workers = children(server.pid)
        assert len(workers) >= 2, workers  # two workers (and multiprocessing's tracker)
        server.signal(signal.SIGKILL)
        wait_until(lambda: not port_in_use(port), 30, "the orphaned workers to stop serving")
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), 30,
                   "the orphaned workers to exit")  # fmt: skip
    finally:
        server.stop(timeout=5)
    # Why they stopped is only in their log (their exit status goes to whoever adopted
    # them, not to this test): the server's own words, read as text for that reason.
    assert "the parent process exited; draining" in (tmp_path / "workers.log").read_text()


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux: /proc/PID/task/*/children)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]
