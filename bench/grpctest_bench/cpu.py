"""What processes and their descendants have used so far, read from /proc.

The benchmark splits each call's cost by role (load generator, Envoy, servers): every
role is a few processes plus whatever they started (a server's worker processes).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


@dataclass
class Usage:
    """What a role's processes (and all their descendants) have used so far."""

    # CPU seconds by process.
    cpu_by_process: dict[int, float] = field(default_factory=dict)
    # CPU seconds of the threads that each can use one core at most and that every call
    # passes: Envoy's worker threads ("wrk:worker_N") where a process has them, else each
    # process's main thread (a Python process's event loop, which holds the GIL; h2load's
    # only thread). Keyed by (pid, thread id).
    serial_threads: dict[tuple[int, int], float] = field(default_factory=dict)
    # read and write system calls (readv and writev too, not recvmsg/sendmsg:
    # /proc/<pid>/io syscr + syscw). Envoy moves every byte with readv/writev, so for
    # Envoy this counts its socket reads and writes.
    read_write_calls: int = 0

    @property
    def cpu_seconds(self) -> float:
        return sum(self.cpu_by_process.values())


def usage_by_role(roles: Mapping[str, Iterable[int]]) -> dict[str, Usage]:
    """Each role's usage so far, from one pass over the process table."""
    parents = _parents()
    return {role: _usage(_tree(pids, parents)) for role, pids in roles.items()}


def machine_busy_seconds() -> float:
    """CPU seconds all cores have been busy since boot: everything but idle and I/O wait
    (/proc/stat), whoever used them, kernel interrupt work included."""
    fields = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / TICKS_PER_SECOND


def _stat(path: Path) -> list[str]:
    # The fields after "(comm)": [0] state, [1] ppid, ..., [11] utime, [12] stime.
    return path.read_text().rsplit(")", 1)[1].split()


def _cpu(stat: list[str]) -> float:
    return (int(stat[11]) + int(stat[12])) / TICKS_PER_SECOND


def _parents() -> dict[int, int]:
    """Every running process's parent."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):  # exited meanwhile
                parents[int(entry.name)] = int(_stat(entry / "stat")[1])
    return parents


def _tree(pids: Iterable[int], parents: Mapping[int, int]) -> set[int]:
    """These processes and all their descendants."""
    tree = frontier = set(pids)
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - tree
        tree = tree | frontier
    return tree


def _usage(pids: Iterable[int]) -> Usage:
    usage = Usage()
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):  # exited meanwhile
            proc = Path(f"/proc/{pid}")
            cpu = _cpu(_stat(proc / "stat"))
            tasks = {int(task.name): task for task in (proc / "task").iterdir()}
            workers = [
                tid for tid, task in tasks.items() if (task / "comm").read_text().startswith("wrk:")
            ]
            threads = {(pid, tid): _cpu(_stat(tasks[tid] / "stat")) for tid in workers or [pid]}
            io = dict(line.split(": ") for line in (proc / "io").read_text().splitlines())
            calls = int(io["syscr"]) + int(io["syscw"])
            usage.cpu_by_process[pid] = cpu
            usage.serial_threads.update(threads)
            usage.read_write_calls += calls
    return usage
