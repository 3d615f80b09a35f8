"""h2load (nghttp2), the one load generator of every scenario, and what one run measured.

gRPC is driven as what it is on the wire: HTTP/2 POSTs with `content-type:
application/grpc`, `te: trailers` and a body of the 5-byte gRPC frame prefix plus the
serialized request. REST is driven over HTTP/1.1 with the JSON a REST client sends.
h2load sees HTTP status only, not grpc-status: the harness checks every gRPC target
with a real gRPC stub before measuring.

Each run measures after a warm-up; the CPU time of every role (h2load itself, Envoy,
the servers) is read at the warm-up's end and again at the run's end, so CPU per call
covers exactly the calls counted.
"""

from __future__ import annotations

import re
import resource
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from grpctest_bench.cpu import Usage, machine_busy_seconds, usage_by_role

LOAD_ROLE = "load"
# Rough requests/s of REST with a new connection per request, to size its count-based run.
NEW_CONNECTION_RATE = 1500


@dataclass(frozen=True)
class Load:
    """What h2load sends, and how many requests it keeps in flight."""

    url: str
    body: bytes
    headers: tuple[str, ...] = ()
    # HTTP/2 (gRPC): `in_flight` streams over `connections` connections; HTTP/1.1:
    # one request in flight per connection.
    http2: bool = True
    in_flight: int = 32
    connections: int = 4
    # HTTP/1.1 only: a new connection for every request.
    new_connection: bool = False


@dataclass
class Measurement:
    """What one or more runs of a scenario measured (runs add up)."""

    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    traffic_bytes: int = 0
    latencies_us: list[int] = field(default_factory=list)
    # CPU seconds per role over the measured calls; and per server process.
    cpu: dict[str, float] = field(default_factory=dict)
    server_process_cpu: dict[int, float] = field(default_factory=dict)
    # CPU seconds per role of its busiest thread among those that can use one core at
    # most (cpu.Usage.serial_threads): what caps the role's throughput.
    busiest_thread_cpu: dict[str, float] = field(default_factory=dict)
    # read/write system calls per role (cpu.Usage.read_write_calls).
    read_write_calls: dict[str, int] = field(default_factory=dict)
    # The whole machine over the same time: wall seconds, and CPU seconds busy.
    wall_seconds: float = 0.0
    machine_busy_seconds: float = 0.0

    def add(self, other: Measurement) -> None:
        self.requests += other.requests
        self.seconds += other.seconds
        self.errors += other.errors
        self.traffic_bytes += other.traffic_bytes
        self.latencies_us += other.latencies_us
        self.wall_seconds += other.wall_seconds
        self.machine_busy_seconds += other.machine_busy_seconds
        for role, seconds in other.cpu.items():
            self.cpu[role] = self.cpu.get(role, 0.0) + seconds
        for role, calls in other.read_write_calls.items():
            self.read_write_calls[role] = self.read_write_calls.get(role, 0) + calls
        for role, seconds in other.busiest_thread_cpu.items():
            self.busiest_thread_cpu[role] = self.busiest_thread_cpu.get(role, 0.0) + seconds
        for pid, seconds in other.server_process_cpu.items():
            self.server_process_cpu[pid] = self.server_process_cpu.get(pid, 0.0) + seconds


def grpc_frame(payload: bytes) -> bytes:
    """A gRPC message on the wire: not compressed, 4-byte big-endian length, the bytes."""
    return struct.pack(">BI", 0, len(payload)) + payload


def version() -> str:
    out = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout
    return out.strip().splitlines()[0] if out else "h2load"


class Snapshot:
    """What every role (and h2load, while it runs) has used, and how busy the whole
    machine has been, at one moment."""

    def __init__(self, roles: Mapping[str, Callable[[], list[int]]], load_pid: int | None) -> None:
        self.time = time.monotonic()
        self.machine = machine_busy_seconds()
        pids = {role: pids() for role, pids in roles.items()}
        # A role with no running process would measure 0 CPU per call: say so instead.
        if stopped := [role for role, running in pids.items() if not running]:
            raise RuntimeError(f"no running process of {', '.join(stopped)} to measure")
        if load_pid is not None:
            pids[LOAD_ROLE] = [load_pid]
        self.usage = usage_by_role(pids)


def run(
    name: str,
    load: Load,
    roles: Mapping[str, Callable[[], list[int]]],
    *,
    seconds: float,
    warmup: float,
    workdir: Path,
) -> Measurement:
    """One measured h2load run after its warm-up."""
    body = workdir / f"{name}.body"
    body.write_bytes(load.body)
    argv = ["h2load", "-d", str(body)]
    for header in load.headers:
        argv += ["-H", header]
    if load.http2:
        argv += ["-c", str(load.connections), "-m", str(load.in_flight // load.connections)]
    else:
        argv += ["--h1", "-c", str(load.in_flight), "-m", "1"]
    log_file = workdir / f"{name}.log"
    if load.new_connection:
        # h2load's timing mode (-D) stalls when the server closes each connection, so
        # this one runs by request count: a warm-up run, then about `seconds` worth.
        argv += ["-H", "connection: close"]
        _h2load([*argv, "-n", str(max(100, int(NEW_CONNECTION_RATE * warmup)))], load.url)
        measured = [*argv, "-n", str(max(200, int(NEW_CONNECTION_RATE * seconds)))]
        return _measure(measured, load, roles, log_file, warmup=0.0)
    timed = [*argv, "-D", f"{seconds * 1000:.0f}ms", f"--warm-up-time={warmup * 1000:.0f}ms"]
    return _measure(timed, load, roles, log_file, warmup=warmup)


Roles = Mapping[str, Callable[[], list[int]]]


def _measure(
    argv: list[str], load: Load, roles: Roles, log_file: Path, warmup: float
) -> Measurement:
    start, end, load_cpu, out = _run_measured(argv, load, roles, log_file, warmup)
    totals = _Totals.of(out)
    # h2load's log covers the measurement window only (not the warm-up).
    latencies = [int(line.split("\t")[2]) for line in log_file.read_text().splitlines() if line]
    begin = start.usage
    cpu, busiest, read_write = role_deltas(begin, end.usage, roles)
    return Measurement(
        requests=totals.requests,
        seconds=totals.requests / totals.rate if totals.rate else 0.0,
        errors=totals.errors,
        # h2load's traffic count is wrong when the server closes every connection.
        traffic_bytes=0 if load.new_connection else totals.traffic_bytes,
        latencies_us=latencies,
        cpu={LOAD_ROLE: load_cpu, **cpu},
        busiest_thread_cpu={LOAD_ROLE: load_cpu, **busiest},  # h2load: one thread
        read_write_calls=read_write,
        server_process_cpu=server_process_deltas(begin, end.usage),
        wall_seconds=end.time - start.time,
        machine_busy_seconds=end.machine - start.machine,
    )


def _run_measured(
    argv: list[str], load: Load, roles: Roles, log_file: Path, warmup: float
) -> tuple[Snapshot, Snapshot, float, str]:
    """Runs h2load: the snapshots at the end of its warm-up and at its end, its own CPU
    seconds after the warm-up, and its output."""
    children_before = children_cpu()
    process = subprocess.Popen(
        [*argv, "--log-file", str(log_file), load.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # The moment the warm-up ends, on a timer: h2load's output only comes at its end.
    start: list[Snapshot | RuntimeError] = []

    def snapshot() -> None:
        try:
            start.append(Snapshot(roles, process.pid))
        except RuntimeError as err:  # raised again below, in this thread
            start.append(err)

    timer = threading.Timer(warmup, snapshot)
    timer.start()
    try:
        out, _ = process.communicate(timeout=(warmup + 60) * 5)
    finally:
        timer.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"h2load failed ({process.returncode}): {out}")
    end = Snapshot(roles, None)
    if not start:
        raise RuntimeError(f"h2load ended before its warm-up did:\n{out}")
    first = start[0]
    if isinstance(first, RuntimeError):
        raise first
    # h2load's own CPU: all of it (it has exited) minus what it had used at the start.
    load_cpu = children_cpu() - children_before - first.usage[LOAD_ROLE].cpu_seconds
    return first, end, load_cpu, out


@dataclass(frozen=True)
class _Totals:
    """What h2load's summary says: calls that succeeded, those that did not, the rate
    of the measured calls, the bytes on the wire."""

    requests: int
    errors: int
    rate: float
    traffic_bytes: int

    @classmethod
    def of(cls, out: str) -> _Totals:
        done = re.search(
            r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
            r"(\d+) failed, (\d+) errored, (\d+) timeout",
            out,
        )
        codes = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
        traffic = re.search(r"traffic: .*?\((\d+)\) total", out)
        # "finished in" counts the warm-up too; the rate is over the measured calls only.
        rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
        if not (done and codes and traffic and rate):
            raise RuntimeError(f"unexpected h2load output:\n{out}")
        # (errors, not "done - 2xx": h2load's 2xx counter can be off by one at the edge
        # of the measurement window)
        errors = sum(int(n) for n in (*done.groups()[2:], *codes.groups()))
        return cls(int(done[2]), errors, float(rate[1]), int(traffic[1]))


def role_deltas(
    begin: Mapping[str, Usage], end: Mapping[str, Usage], roles: Roles
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """Per role, over the measurement: CPU seconds, the busiest thread's CPU seconds,
    read/write system calls."""
    cpu = {role: end[role].cpu_seconds - begin[role].cpu_seconds for role in roles}
    busiest = {
        role: max(
            (
                seconds - begin[role].serial_threads.get(thread, 0.0)
                for thread, seconds in end[role].serial_threads.items()
            ),
            default=0.0,
        )
        for role in roles
    }
    read_write = {role: end[role].read_write_calls - begin[role].read_write_calls for role in roles}
    return cpu, busiest, read_write


def server_process_deltas(begin: Mapping[str, Usage], end: Mapping[str, Usage]) -> dict[int, float]:
    """CPU seconds of each server process over the measurement."""
    before, after = begin.get("server", Usage()), end.get("server", Usage())
    return {
        pid: seconds - before.cpu_by_process.get(pid, 0.0)
        for pid, seconds in after.cpu_by_process.items()
    }


def children_cpu() -> float:
    """CPU seconds of every child process this one has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _h2load(argv: list[str], url: str) -> None:
    result = subprocess.run([*argv, url], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"h2load failed ({result.returncode}): {result.stderr or result.stdout}")
