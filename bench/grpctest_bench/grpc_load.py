"""grpctest-load (bench/load: grpc-go, dialled as go-client dials), the load of the
scenarios that compare the ways to the replicas: h2load speaks HTTP/2 to one address,
so it can go through Envoy but cannot balance over the replicas itself.

One run: grpctest-load calls for the warm-up, says "measuring" on stderr (every role's
CPU is read then), calls for the measured seconds and prints its report (calls, failures,
latencies). Its own CPU over the measured calls is what it used in all, less what it had
used when the measurement began.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from grpctest_bench.h2load import (
    LOAD_ROLE,
    Measurement,
    Snapshot,
    children_cpu,
    role_deltas,
    server_process_deltas,
)
from grpctest_devtools.repo import command

Roles = Mapping[str, Callable[[], list[int]]]


@dataclass(frozen=True)
class GrpcLoad:
    """Where grpctest-load calls (a target as go-client takes it, and the environment it
    needs: the xDS bootstrap), with how many calls in flight over how many client
    connections."""

    target: str
    environment: Mapping[str, str] = field(default_factory=dict)
    in_flight: int = 32
    connections: int = 1


def version() -> str:
    return "grpctest-load (bench/load: grpc-go, go-client's dial options)"


def run(
    name: str,
    load: GrpcLoad,
    roles: Roles,
    *,
    seconds: float,
    warmup: float,
    workdir: Path,
) -> Measurement:
    """One measured run after its warm-up."""
    argv = [command("grpctest-load"), "--target", load.target,
            "--concurrency", str(load.in_flight), "--connections", str(load.connections),
            "--warmup", f"{warmup}s", "--duration", f"{seconds}s"]  # fmt: skip
    before = children_cpu()
    with (workdir / f"{name}.log").open("w") as log:
        process = subprocess.Popen(
            argv,
            env={**os.environ, **load.environment},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            start = _at_measuring(process, roles, log)
            out, err = process.communicate(timeout=(warmup + seconds + 60) * 5)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        log.write(err)
    if process.returncode != 0:
        raise RuntimeError(f"grpctest-load failed ({process.returncode}): {err[-2000:]}")
    end = Snapshot(roles, None)
    load_cpu = children_cpu() - before - start.usage[LOAD_ROLE].cpu_seconds
    return _measurement(json.loads(out), start, end, roles, load_cpu)


def _at_measuring(process: subprocess.Popen[str], roles: Roles, log: IO[str]) -> Snapshot:
    """Every role's (and grpctest-load's) usage once it says the warm-up is over."""
    assert process.stderr is not None
    for line in process.stderr:
        if line.strip() == "measuring":
            return Snapshot(roles, process.pid)
        log.write(line)
    raise RuntimeError("grpctest-load ended before its warm-up did")


def _measurement(
    report: dict, start: Snapshot, end: Snapshot, roles: Roles, load_cpu: float
) -> Measurement:
    cpu, busiest, read_write = role_deltas(start.usage, end.usage, roles)
    return Measurement(
        requests=len(report["latencies_us"]),
        seconds=report["seconds"],
        errors=sum(report["failures"].values()),
        latencies_us=report["latencies_us"],
        # (grpctest-load's goroutines run on every core: no one thread of it caps it)
        cpu={LOAD_ROLE: load_cpu, **cpu},
        busiest_thread_cpu=busiest,
        read_write_calls=read_write,
        server_process_cpu=server_process_deltas(start.usage, end.usage),
        wall_seconds=end.time - start.time,
        machine_busy_seconds=end.machine - start.machine,
    )
