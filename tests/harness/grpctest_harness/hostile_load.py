"""One attack on the local stack while honest callers call, and what it did to them.

    trial = run_trial(stack, ATTACKS["unread-streams"], size=10)
    trial.honest.unary_failed, trial.honest.p99_ms, trial.memory["envoy"].peak
    trial.counters        # Envoy's counters of the defences, how far each moved

The honest callers call through Envoy on both listeners (:8080 plaintext, :8443 TLS
with the development client certificate): unary calls back to back over connections
opened beforehand, and server streams and chats that run through the whole attack. The
attack runs in a process of its own (grpctest_harness.attacks). While it runs, a new
honest client connects and calls; memory (each process's RSS, Envoy's heap) and the
number of replicas Envoy considers healthy are sampled. After it, the trial waits for
the attacker's connections to be gone and Envoy's memory to come back down, and
measures again.

`python -m grpctest_harness.hostile_load` (`make hostile-load`) runs every attack at
the issue's sizes and at ten times them and prints the table.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_bench.ghz import percentile
from grpctest_common.channels import Connection, open_channel
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.processes import DIE_WITH_PARENT, signals_raise_interrupt
from grpctest_devtools.repo import CERTS
from grpctest_devtools.waiting import wait_until
from grpctest_harness.attacks import AttackReport
from grpctest_harness.channels import OWN_CONNECTION
from grpctest_harness.load import PythonLoad
from grpctest_harness.stream_load import StreamLoad

INGRESS = "http.grpc_ingress."


@dataclass(frozen=True)
class Attack:
    """An attack of grpctest_harness.attacks: its name there, what its size counts, how
    long it lasts, and Envoy's counters of what meets it ({what: stat name}, with
    `{listener}` for the attacked listener's stats prefix): `defences` act on every run
    of it, `also` may (a limit only the larger sizes reach)."""

    name: str
    size_means: str
    hold: float
    defences: dict[str, str] = field(default_factory=dict)
    also: dict[str, str] = field(default_factory=dict)


PRE_CONNECTION_TIMEOUT = "{listener}downstream_pre_cx_timeout"
HEADER_LIST_TOO_LARGE = "http2.header_list_size_too_large"
CONNECTION_LIMIT = {"refused over the connection limit": "{listener}downstream_global_cx_overflow"}
ATTACKS = {
    attack.name: attack
    for attack in [
        Attack("none", "(no attack)", 12),
        Attack(
            "idle-connections",
            "TCP connections sending nothing, held 12 s",
            12,
            {"closed for sending nothing (listener_filters_timeout)": PRE_CONNECTION_TIMEOUT},
            CONNECTION_LIMIT,
        ),
        Attack(
            "slowloris",
            "connections sending a request's headers a byte every 2 s",
            12,
            {
                "request headers timed out (request_headers_timeout)": INGRESS
                + "downstream_rq_header_timeout"
            },
        ),
        Attack(
            "rapid-reset",
            "streams opened and reset at once, on 4 connections",
            5,
            {
                "connections closed for premature resets": INGRESS
                + "downstream_rq_too_many_premature_resets"
            },
        ),
        Attack(
            "continuation-flood",
            "MiB of CONTINUATION frames without END_HEADERS",
            5,
            {"header blocks over the limit (max_request_headers_kb)": HEADER_LIST_TOO_LARGE},
        ),
        Attack(
            "unread-streams",
            "connections x 100 server streams of 100,000 replies, never read",
            25,
            {
                "streams over the stream budget (circuit breaker)": (
                    "cluster.grpctest.upstream_rq_active_overflow"
                ),
                "streams with nothing moving reset (idle_timeout)": INGRESS
                + "downstream_rq_idle_timeout",
            },
            {
                "unread streams reset for their memory (overload manager)": (
                    "envoy.overload_actions.reset_high_memory_stream.count"
                ),
                **CONNECTION_LIMIT,
            },
        ),
    ]
}

# What else a trial reports from Envoy: the replicas' health, and its last resorts.
ALWAYS = {
    "health checks failed": "cluster.grpctest.health_check.failure",
    "replicas ejected (outlier detection)": (
        "cluster.grpctest.outlier_detection.ejections_enforced_total"
    ),
    "new connections shed (90 % of the heap)": (
        "overload.envoy.load_shed_points.tcp_listener_accept.shed_load_count"
    ),
    "requests refused, Envoy overloaded (95 % of the heap)": (
        INGRESS + "downstream_rq_overload_close"
    ),
}


@dataclass(frozen=True)
class Honest:
    """The honest callers, per listener: `callers` unary callers over `connections`
    connections opened beforehand (deadline `deadline` s), and `streams` server streams
    and `chats` chats on a connection of their own, one reply every 20 ms for the whole
    trial. The issue's: 8 callers over 4 connections, 5 s deadline."""

    callers: int = 8
    connections: int = 4
    streams: int = 2
    chats: int = 1
    deadline: float = 5.0


@dataclass
class Memory:
    """One process's resident memory (MB): before the attack, its peak, after it."""

    idle: float = 0.0
    peak: float = 0.0
    final: float = 0.0


@dataclass
class HonestReport:
    """What the honest callers saw: calls that ended while the attack ran (its process
    started to its end; a failure at any time of the trial), and the streams."""

    unary_ok: int = 0
    unary_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    p99_ms: float = 0.0
    streams_ok: int = 0
    stream_failures: list[str] = field(default_factory=list)
    # Seconds from a new client's first try to its first answer during the attack, or
    # the status it failed with.
    new_client: float | str = "not tried"

    @property
    def unary_failed(self) -> int:
        return sum(self.unary_failures.values())


@dataclass
class Trial:
    """One attack at one size, and everything measured around it."""

    attack: str
    size: float
    report: AttackReport
    honest: HonestReport
    # "envoy", "replica-1", ..., "go-1", and "envoy heap" (Envoy's heap in use).
    memory: dict[str, Memory]
    # The lowest number of replicas Envoy routed to during the attack, of how many.
    healthy_min: int
    replicas: int
    # {what: how far Envoy's counter moved}, the attack's defences and ALWAYS.
    counters: dict[str, int]


class _Sampler:
    """Samples memory and the replicas' health in a thread, keeping each peak."""

    def __init__(self, stack: LocalStack, memory: dict[str, Memory], interval: float = 0.5):
        self.stack, self.memory, self.interval = stack, memory, interval
        self.healthy_min = len(stack.replicas)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, mb in _memory_now(self.stack).items():
                self.memory[name].peak = max(self.memory[name].peak, mb)
            with contextlib.suppress(OSError):
                healthy = self.stack.admin.stats("cluster.grpctest.membership_healthy")
                self.healthy_min = min(self.healthy_min, *healthy.values())
            self._stop.wait(self.interval)

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _memory_now(stack: LocalStack) -> dict[str, float]:
    with contextlib.suppress(OSError):
        return {**stack.resident_mb(), "envoy heap": stack.admin.heap_mb()}
    return stack.resident_mb()


def listeners(stack: LocalStack) -> list[Connection]:
    """The honest callers' way in: Envoy's plaintext listener, and its TLS listener with
    the development CA and client certificate (certs/, `make certs`)."""
    tls = Connection(
        stack.tls_target,
        tls=True,
        ca_pem=(CERTS / "ca.crt").read_bytes(),
        cert_pem=(CERTS / "client.crt").read_bytes(),
        key_pem=(CERTS / "client.key").read_bytes(),
    )
    return [Connection(stack.target), tls]


def new_client_seconds(connection: Connection, deadline: float = 20) -> float | str:
    """A client that has never connected: the seconds from its first try until its
    first call is answered (it keeps trying to connect, at most a second apart), or the
    status it failed with."""
    options = [
        OWN_CONNECTION,
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
    ]
    start = time.monotonic()
    with open_channel(connection, options) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        try:
            stub.GetServerResponse(
                grpctest_pb2.Message(message="new"), timeout=deadline, wait_for_ready=True
            )
        except grpc.RpcError as err:
            return f"{err.code().name}: {err.details()}"
    return round(time.monotonic() - start, 2)


@contextlib.contextmanager
def _honest_callers(
    stack: LocalStack, honest: Honest, seconds: float
) -> Iterator[tuple[list[PythonLoad], list[StreamLoad]]]:
    """The honest callers on both listeners, calling for about `seconds`."""
    interval = 0.02
    unary = [
        PythonLoad(
            c, callers=honest.callers, connections=honest.connections, deadline=honest.deadline
        )
        for c in listeners(stack)
    ]
    streams = [
        StreamLoad(
            c,
            streams=honest.streams,
            chats=honest.chats,
            connections=1,
            count=int(seconds / interval),
            interval=interval,
            timeout=seconds * 3 + 60,
        )
        for c in listeners(stack)
    ]
    with contextlib.ExitStack() as running:
        for caller in unary:
            running.enter_context(caller)
        for stream in streams:
            running.enter_context(stream).wait_calling()
        yield unary, streams


def _attack_process(stack: LocalStack, attack: Attack, size: float) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "grpctest_harness.attacks", attack.name]
    argv += ["--port", str(stack.envoy_port), "--size", str(size), "--hold", str(attack.hold)]
    return subprocess.Popen([*DIE_WITH_PARENT, *argv], stdout=subprocess.PIPE, text=True)


def _events(process: subprocess.Popen[str]) -> Iterator[dict]:
    assert process.stdout is not None
    for line in process.stdout:
        yield json.loads(line)


def _run_attack(
    stack: LocalStack, attack: Attack, size: float, on_ready: threading.Thread
) -> tuple[AttackReport, float, float]:
    """Runs the attack to its end; starts `on_ready` once its connections are open.
    Returns its report and when it started and ended (monotonic)."""
    started, report = time.monotonic(), None
    process = _attack_process(stack, attack, size)
    try:
        for event in _events(process):
            if event["event"] == "ready":
                on_ready.start()
            elif event["event"] == "done":
                report = AttackReport.from_json(event["report"])
        process.wait(attack.hold + 60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if report is None or process.returncode != 0:
        raise RuntimeError(f"the attack {attack.name} failed (exit {process.returncode})")
    return report, started, time.monotonic()


def _counters(stack: LocalStack, attack: Attack) -> dict[str, str]:
    prefix = f"listener.127.0.0.1_{stack.envoy_port}."
    names = {**attack.defences, **attack.also, **ALWAYS}
    return {what: stat.format(listener=prefix) for what, stat in names.items()}


def _slowest(results: Sequence[float | str]) -> float | str:
    """A failure if any listener's new client failed, else the longest wait."""
    if len(results) < 2:
        return "no answer within 30 s"
    failures = [r for r in results if isinstance(r, str)]
    return failures[0] if failures else max(r for r in results if not isinstance(r, str))


def _settle(stack: LocalStack, memory: dict[str, Memory]) -> None:
    """Waits (at most 60 s) for the attacker's connections to be gone (the honest
    callers have stopped too) and Envoy's heap to be back near its idle size; then takes
    each process's memory as its final."""
    active = f"listener.127.0.0.1_{stack.envoy_port}.downstream_cx_active"
    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: stack.admin.stats(active).get(active, 0) == 0,
            30,
            "the attacker's connections to be gone",
            interval=0.5,
        )
        idle_heap = memory["envoy heap"].idle
        wait_until(
            lambda: stack.admin.heap_mb() <= idle_heap * 1.5 + 8,
            30,
            "Envoy's heap to come back down",
            interval=0.5,
        )
    for name, mb in _memory_now(stack).items():
        memory[name].final = mb


def run_trial(stack: LocalStack, attack: Attack, size: float, honest: Honest = Honest()) -> Trial:
    """`attack` at `size` against the stack, with honest callers calling throughout."""
    memory = {name: Memory(idle=mb, peak=mb) for name, mb in _memory_now(stack).items()}
    stats = _counters(stack, attack)
    before = stack.admin.stats()
    new_clients: list[float | str] = []
    probe = threading.Thread(
        target=lambda: new_clients.extend(map(new_client_seconds, listeners(stack))), daemon=True
    )
    with (
        _Sampler(stack, memory) as sampler,
        _honest_callers(stack, honest, attack.hold + 15) as (
            unary,
            streams,
        ),
    ):
        report, started, ended = _run_attack(stack, attack, size, probe)
        probe.join(30)
    after = stack.admin.stats()
    honest_report = _honest_report(unary, streams, started, ended)
    honest_report.new_client = _slowest(new_clients)
    _settle(stack, memory)
    return Trial(
        attack=attack.name,
        size=size,
        report=report,
        honest=honest_report,
        memory=memory,
        healthy_min=sampler.healthy_min,
        replicas=len(stack.replicas),
        counters={what: after.get(s, 0) - before.get(s, 0) for what, s in stats.items()},
    )


def _honest_report(
    unary: Sequence[PythonLoad], streams: Sequence[StreamLoad], since: float, until: float
) -> HonestReport:
    """The unary calls of the attack's time (failures: all of the trial), the streams."""
    report = HonestReport()
    latencies = []
    for load in unary:
        calls = [c for c in load.calls if since <= c.ended <= until]
        latencies += [(c.ended - c.started) * 1000 for c in calls if not c.failure]
        report.unary_ok += sum(1 for c in calls if not c.failure)
        report.unary_failures.update(c.failure for c in load.calls if c.failure)
    report.p99_ms = round(percentile(latencies, 0.99), 1)
    for stream_load in streams:
        exchanges = stream_load.streams()
        report.stream_failures += exchanges.failures
        report.stream_failures += [
            f"{e.kind}: broken and resumed" for e in exchanges.exchanges if e.resume_seconds
        ]
        report.streams_ok += sum(1 for e in exchanges.exchanges if e.done and not e.error)
    return report


# The issue's sizes (its table), and ten times them: `make hostile-load`.
ISSUE_SIZES = [
    ("none", 0),
    ("idle-connections", 3000),
    ("slowloris", 300),
    ("rapid-reset", 2300),
    ("continuation-flood", 2),
    ("unread-streams", 10),
    ("unread-streams", 60),
]


def row(trial: Trial) -> str:
    """One line of the table: a markdown row."""
    attack = ATTACKS[trial.attack]
    honest = trial.honest
    replicas = {n: m for n, m in trial.memory.items() if n.startswith(("replica", "go"))}
    cells = [
        f"{trial.size:g} {attack.size_means}",
        f"{honest.unary_ok:,} / {honest.unary_failed}",
        f"{honest.p99_ms:.0f} ms",
        f"{honest.streams_ok} / {len(honest.stream_failures)}",
        f"{honest.new_client} s" if not isinstance(honest.new_client, str) else honest.new_client,
        _peak_final(trial.memory["envoy"]) + f" (heap {_peak_final(trial.memory['envoy heap'])})",
        ", ".join(f"{_peak_final(m)}" for m in replicas.values()),
        f"{trial.healthy_min} of {trial.replicas}",
        "; ".join(f"{what}: {n:,}" for what, n in trial.counters.items() if n),
    ]
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| attack from one client | honest calls ok / failed | honest p99 | honest streams ok / failed "
    "| new client answered after | Envoy MB peak / final | replicas MB peak / final "
    "| replicas healthy (min) | what Envoy counted |\n"
    "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"
)


def plain(value: object) -> object:
    """A trial (or any part of one) as JSON's types: dataclasses and Counters as dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _peak_final(memory: Memory) -> str:
    return f"{memory.peak:.0f} / {memory.final:.0f}"


def main(argv: Sequence[str] | None = None) -> None:
    """Every attack at the issue's sizes and at ten times them, each on a fresh stack
    (3 py-server, 1 go-server replica, Envoy), printed as a markdown table; the trials
    as JSON lines into --output if given."""
    parser = argparse.ArgumentParser(prog="python -m grpctest_harness.hostile_load")
    parser.add_argument("--times", type=float, nargs="+", default=[1, 10], help="size factors")
    parser.add_argument("--only", nargs="*", default=[], help="attacks to run (default: all)")
    parser.add_argument("--output", type=Path, help="write each trial as a JSON line here")
    parser.add_argument(
        "--logs", type=Path, help="keep the processes' logs here (one folder per trial)"
    )
    args = parser.parse_args(argv)
    print(HEADER, flush=True)
    for name, size in ISSUE_SIZES:
        if args.only and name not in args.only:
            continue
        for factor in args.times if size else [1]:
            with tempfile.TemporaryDirectory(prefix="hostile-") as temporary:
                logs = args.logs / f"{name}-{size * factor:g}" if args.logs else Path(temporary)
                logs.mkdir(parents=True, exist_ok=True)
                stack = LocalStack.on_free_ports(
                    go_replicas=1, log_dir=logs, server_args=["--log-level", "WARNING"]
                )
                with stack:
                    trial = run_trial(stack, ATTACKS[name], size * factor)
            print(row(trial), flush=True)
            if args.output:
                with args.output.open("a") as out:
                    out.write(json.dumps(plain(trial)) + "\n")


if __name__ == "__main__":
    # SIGTERM as Ctrl-C: every stack and attack started is stopped on the way out.
    with signals_raise_interrupt():
        main()
