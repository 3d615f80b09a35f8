"""CPU time of processes and their descendants, read from /proc.

The benchmark splits each call's cost by role (load generator, Envoy, servers): every
role is a few processes plus whatever they started (a server's worker processes).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    return _stat_of(Path(f"/proc/{pid}/stat"))


def _stat_of(path: Path) -> list[str]:
    # The fields after "(comm)": [0] state, [1] ppid, ..., [11] utime, [12] stime.
    return path.read_text().rsplit(")", 1)[1].split()


def process_tree(pids: Iterable[int]) -> set[int]:
    """These processes and all their descendants that are still running."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):  # exited meanwhile
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
    tree = frontier = set(pids)
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - tree
        tree = tree | frontier
    return tree


def cpu_by_process(pids: Iterable[int]) -> dict[int, float]:
    """CPU seconds used so far by each of these processes and their descendants."""
    used = {}
    for pid in process_tree(pids):
        with contextlib.suppress(OSError, IndexError):
            fields = _stat(pid)
            used[pid] = (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND
    return used


def cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds used so far by these processes and all their descendants."""
    return sum(cpu_by_process(pids).values())


def serial_thread_seconds(pids: Iterable[int]) -> dict[tuple[int, int], float]:
    """CPU seconds so far of the threads that each can use one core at most and that
    every call passes: Envoy's worker threads ("wrk:worker_N") where a process has them,
    else each process's main thread (a Python process's event loop, which holds the
    GIL; h2load's only thread). Keyed by (pid, thread id)."""
    used = {}
    for pid in process_tree(pids):
        with contextlib.suppress(OSError, IndexError):
            tasks = {int(t.name): t for t in Path(f"/proc/{pid}/task").iterdir()}
            workers = [
                tid for tid, t in tasks.items() if (t / "comm").read_text().startswith("wrk:")
            ]
            for tid in workers or [pid]:
                fields = _stat_of(tasks[tid] / "stat")
                used[(pid, tid)] = (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND
    return used


def read_write_calls(pids: Iterable[int]) -> int:
    """read and write system calls so far (readv and writev too, not recvmsg/sendmsg) of
    these processes and their descendants (/proc/<pid>/io: syscr + syscw). Envoy moves
    every byte with readv/writev, so for Envoy this counts its socket reads and writes."""
    calls = 0
    for pid in process_tree(pids):
        with contextlib.suppress(OSError, ValueError):
            io = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
            calls += int(io["syscr"]) + int(io["syscw"])
    return calls


def machine_busy_seconds() -> float:
    """CPU seconds all cores have been busy since boot: everything but idle and I/O wait
    (/proc/stat), whoever used them, kernel interrupt work included."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / TICKS_PER_SECOND
