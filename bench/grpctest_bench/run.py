"""`make bench`: gRPC vs REST, Envoy's cost, replica scaling — measured in one run.

Every scenario is driven by the same load generator, h2load (nghttp2), with the same
number of requests in flight, on loopback, after a warm-up. Scenarios run in rounds,
interleaved, so that drifting machine load hits all of them alike; results are the
sum over rounds. Goals are checked as ratios between scenarios of the same run.

h2load sees HTTP status only, not grpc-status, so every gRPC target is also called
with the real gRPC stub before measuring and must answer OK.

    grpctest-bench                      # full run (a few minutes; `make bench`)
    grpctest-bench --smoke --out DIR    # seconds; what `make test` runs

Writes DIR/latest.json, DIR/latest.md and DIR/latest.png (DIR: bench/results).
The JSON schema is documented in bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from matplotlib.figure import Figure

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.ports import free_port
from grpctest_devtools.processes import Process, signals_raise_interrupt
from grpctest_devtools.repo import REPO, command
from grpctest_devtools.waiting import wait_until
from grpctest_server.healthcheck import check_health
from grpctest_server.servicer import REPLY_TEMPLATE

RESULTS = REPO / "bench" / "results"

GRPC_PATH = "/grpctest.Grpctest/GetServerResponse"
REST_PATH = "/v1/messages"
SMALL_MESSAGE = "Hello Server you there?"
LARGE_MESSAGE = "x" * 10 * 1024
# Requests in flight, the same for every throughput scenario: gRPC multiplexes them
# over a few HTTP/2 connections, REST over HTTP/1.1 needs one connection per request.
IN_FLIGHT = 32
GRPC_CONNECTIONS = 4
# Rough requests/s of REST with a new connection per request, to size its count-based run.
NEW_CONNECTION_RATE = 1500


@dataclass
class Result:
    name: str
    requests: int = 0
    seconds: float = 0.0
    errors: int = 0
    cpu_seconds: float = 0.0
    traffic_bytes: int = 0
    latencies_us: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies_us)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] / 1000, 3) if lat else 0.0

        return {
            "name": self.name,
            "rps": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "errors": self.errors,
            "cpu_ms_per_1k": round(self.cpu_seconds * 1e6 / self.requests, 1)
            if self.requests
            else 0.0,
            "requests": self.requests,
            # None where h2load cannot count it (its traffic counter is wrong when the
            # server closes every connection).
            "bytes_per_call": (
                round(self.traffic_bytes / self.requests, 1)
                if self.requests and self.traffic_bytes
                else None
            ),
        }


@dataclass
class Scenario:
    name: str
    url: str
    body: bytes
    grpc: bool
    server_pids: Callable[[], list[int]]
    concurrency: int = IN_FLIGHT
    new_connection: bool = False


# -- targets ------------------------------------------------------------


def grpc_frame(message: str) -> bytes:
    """The gRPC wire body: 1-byte compressed flag, 4-byte big-endian length, protobuf."""
    payload = grpctest_pb2.Message(message=message).SerializeToString()
    return struct.pack(">BI", 0, len(payload)) + payload


def rest_body(message: str) -> bytes:
    return json.dumps({"message": message}, separators=(",", ":")).encode()


def _proc_stat(pid: int) -> list[str]:
    # Fields after "(comm)": [0] state, [1] ppid, ..., [11] utime, [12] stime.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pids: list[int]) -> float:
    """CPU time used so far by these processes and all their descendants (e.g. workers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):  # exited meanwhile
                parents[int(entry.name)] = int(_proc_stat(int(entry.name))[1])
    tree, frontier = set(pids), set(pids)
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - tree
        tree |= frontier
    total = 0
    for pid in tree:
        try:
            fields = _proc_stat(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def check_grpc_ok(target: str, message: str) -> None:
    with grpc.insecure_channel(target) as channel:
        reply = grpctest_pb2_grpc.GrpctestStub(channel).GetServerResponse(
            grpctest_pb2.Message(message=message), timeout=10
        )
    if not reply.received:
        raise RuntimeError(f"{target}: reply not received")


def grpc_ready(port: int) -> Callable[[], bool]:
    return lambda: check_health(f"127.0.0.1:{port}", "", 1) == "SERVING"


def http_ready(port: int) -> Callable[[], bool]:
    def ready() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return reply.status == 200

    return ready


@contextmanager
def single_process(
    name: str, argv: list[str], ready: Callable[[], bool], log_dir: Path
) -> Iterator[Process]:
    process = Process(name, argv, log_dir / f"{name}.log")
    process.start()
    try:
        wait_until(ready, 60, f"{name} to be ready")
        yield process
    finally:
        process.stop(timeout=15)


# -- load ------------------------------------------------------------


def h2load(scenario: Scenario, seconds: float, warmup: float, workdir: Path) -> Result:
    """One measured h2load run (after its warm-up); returns what it measured."""
    body = workdir / f"{scenario.name}.body"
    body.write_bytes(scenario.body)
    argv = ["h2load", "-d", str(body)]
    if scenario.grpc:
        connections = min(GRPC_CONNECTIONS, scenario.concurrency)
        argv += [
            "-c",
            str(connections),
            "-m",
            str(scenario.concurrency // connections),
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
        ]
    else:
        argv += [
            "--h1",
            "-c",
            str(scenario.concurrency),
            "-m",
            "1",
            "-H",
            "content-type: application/json",
        ]
    if scenario.new_connection:
        # h2load's timing mode (-D) stalls when the server closes each connection, so
        # this one runs by request count: a warm-up run, then about `seconds` worth.
        argv += ["-H", "connection: close"]
        _h2load_output(
            [*argv, "-n", str(max(100, int(NEW_CONNECTION_RATE * warmup)))], scenario.url, warmup
        )
        measured = [*argv, "-n", str(max(200, int(NEW_CONNECTION_RATE * seconds)))]
    else:
        measured = [*argv, "-D", f"{seconds * 1000:.0f}ms", f"--warm-up-time={warmup * 1000:.0f}ms"]
    log_file = workdir / f"{scenario.name}.log"
    pids = scenario.server_pids()
    cpu_before = cpu_seconds(pids)
    out = _h2load_output([*measured, "--log-file", str(log_file)], scenario.url, seconds + warmup)
    cpu = cpu_seconds(pids) - cpu_before
    done = re.search(
        r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored, (\d+) timeout",
        out,
    )
    codes = re.search(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    traffic = re.search(r"traffic: .*?\((\d+)\) total", out)
    finished = re.search(r"finished in ([\d.]+)(ms|s),", out)
    if not (done and codes and traffic and finished):
        raise RuntimeError(f"unexpected h2load output for {scenario.name}:\n{out}")
    # h2load's log covers the measurement window only (not the warm-up).
    latencies = [int(line.split("\t")[2]) for line in log_file.read_text().splitlines() if line]
    requests = int(done[2])
    return Result(
        scenario.name,
        requests=requests,
        seconds=float(finished[1]) / (1000 if finished[2] == "ms" else 1),
        # (not "done - 2xx": h2load's 2xx counter can be off by one at the
        # edge of the measurement window)
        errors=sum(int(n) for n in (*done.groups()[2:], *codes.groups())),
        cpu_seconds=cpu,
        traffic_bytes=0 if scenario.new_connection else int(traffic[1]),
        latencies_us=latencies,
    )


def _h2load_output(argv: list[str], url: str, expected_seconds: float) -> str:
    result = subprocess.run(
        [*argv, url], capture_output=True, text=True, timeout=expected_seconds * 5 + 60
    )
    if result.returncode != 0:
        raise RuntimeError(f"h2load failed ({result.returncode}): {result.stderr or result.stdout}")
    return result.stdout


def merge(into: Result, more: Result) -> None:
    into.requests += more.requests
    into.seconds += more.seconds
    into.errors += more.errors
    into.cpu_seconds += more.cpu_seconds
    into.traffic_bytes += more.traffic_bytes
    into.latencies_us += more.latencies_us


# -- the run ------------------------------------------------------------


def pids_of(*processes: Process) -> Callable[[], list[int]]:
    return lambda: [p.pid for p in processes if p.pid is not None]


def stack_pids(stack: LocalStack) -> Callable[[], list[int]]:
    return lambda: [pid for pids in stack.pids().values() for pid in pids]


def run(args: argparse.Namespace) -> dict[str, object]:
    python = sys.executable
    workdir = Path(tempfile.mkdtemp(prefix="grpctest-bench-"))
    server_args = ["--log-level", "WARNING", "--workers", str(args.server_workers)]
    envoy_args = ["--log-level", "error", "--concurrency", str(args.envoy_concurrency)]
    with ExitStack() as stack:
        ports = {name: free_port() for name in ("article", "server", "rest")}
        article = stack.enter_context(
            single_process(
                "article_server",
                [python, "-m", "grpctest_bench.article_server", "--port", str(ports["article"])],
                grpc_ready(ports["article"]),
                workdir,
            )
        )
        server = stack.enter_context(
            single_process(
                "py_server",
                [command("grpctest-server"), "--port", str(ports["server"]), *server_args],
                grpc_ready(ports["server"]),
                workdir,
            )
        )
        rest = stack.enter_context(
            single_process(
                "rest_server",
                [
                    python,
                    "-m",
                    "grpctest_bench.rest_server",
                    "--port",
                    str(ports["rest"]),
                    "--workers",
                    str(args.rest_workers),
                ],
                http_ready(ports["rest"]),
                workdir,
            )
        )
        envoy_1 = stack.enter_context(
            LocalStack.on_free_ports(
                1, log_dir=workdir, server_args=server_args, envoy_args=envoy_args
            )
        )
        envoy_3 = stack.enter_context(
            LocalStack.on_free_ports(
                3, log_dir=workdir, server_args=server_args, envoy_args=envoy_args
            )
        )

        def grpc_url(port: int) -> str:
            return f"http://127.0.0.1:{port}{GRPC_PATH}"

        rest_url = f"http://127.0.0.1:{ports['rest']}{REST_PATH}"
        small, large = grpc_frame(SMALL_MESSAGE), grpc_frame(LARGE_MESSAGE)
        scenarios = [
            Scenario(
                "article_sync_direct", grpc_url(ports["article"]), small, True, pids_of(article)
            ),
            Scenario("server_direct", grpc_url(ports["server"]), small, True, pids_of(server)),
            Scenario(
                "envoy_1_replica", grpc_url(envoy_1.envoy_port), small, True, stack_pids(envoy_1)
            ),
            Scenario(
                "envoy_3_replicas", grpc_url(envoy_3.envoy_port), small, True, stack_pids(envoy_3)
            ),
            Scenario("rest_keepalive", rest_url, rest_body(SMALL_MESSAGE), False, pids_of(rest)),
            Scenario(
                "rest_new_connection",
                rest_url,
                rest_body(SMALL_MESSAGE),
                False,
                pids_of(rest),
                new_connection=True,
            ),
            Scenario(
                "server_direct_10KiB", grpc_url(ports["server"]), large, True, pids_of(server)
            ),
            Scenario(
                "envoy_3_replicas_10KiB",
                grpc_url(envoy_3.envoy_port),
                large,
                True,
                stack_pids(envoy_3),
            ),
            Scenario(
                "rest_keepalive_10KiB", rest_url, rest_body(LARGE_MESSAGE), False, pids_of(rest)
            ),
            Scenario(
                "latency_c1_direct",
                grpc_url(ports["server"]),
                small,
                True,
                pids_of(server),
                concurrency=1,
            ),
            Scenario(
                "latency_c1_envoy",
                grpc_url(envoy_1.envoy_port),
                small,
                True,
                stack_pids(envoy_1),
                concurrency=1,
            ),
        ]

        for target in (
            f"127.0.0.1:{ports['article']}",
            f"127.0.0.1:{ports['server']}",
            envoy_1.target,
            envoy_3.target,
        ):
            for message in (SMALL_MESSAGE, LARGE_MESSAGE):
                check_grpc_ok(target, message)

        results = {s.name: Result(s.name) for s in scenarios}
        for round_ in range(args.rounds):
            for scenario in scenarios:
                print(
                    f"round {round_ + 1}/{args.rounds}: {scenario.name}",
                    file=sys.stderr,
                    flush=True,
                )
                merge(results[scenario.name], h2load(scenario, args.seconds, args.warmup, workdir))
    shutil.rmtree(workdir, ignore_errors=True)

    summaries = [results[s.name].summary() for s in scenarios]
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "seconds_per_round": args.seconds,
            "warmup_seconds": args.warmup,
            "rounds": args.rounds,
            "in_flight": IN_FLIGHT,
            "grpc_connections": GRPC_CONNECTIONS,
            "load_generator": h2load_version(),
            "server_workers": args.server_workers,
            "rest_workers": args.rest_workers,
            "envoy_concurrency": args.envoy_concurrency,
        },
        "scenarios": summaries,
        "payload_bytes": payload_bytes(),
        "goals": goals({s["name"]: s for s in summaries}),
    }


def h2load_version() -> str:
    out = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout
    return out.strip().splitlines()[0] if out else "h2load"


def payload_bytes() -> dict[str, int]:
    """Request + response body bytes of one call, protobuf vs JSON (no framing, no headers)."""
    reply = {
        "message": REPLY_TEMPLATE.format(SMALL_MESSAGE),
        "received": True,
        "replica": "replica-1",
    }
    proto = len(grpctest_pb2.Message(message=SMALL_MESSAGE).SerializeToString()) + len(
        grpctest_pb2.MessageResponse(**reply).SerializeToString()
    )
    json_ = len(rest_body(SMALL_MESSAGE)) + len(json.dumps(reply, separators=(",", ":")))
    return {"protobuf": proto, "json": json_}


def goals(s: dict[str, dict]) -> list[dict[str, object]]:
    def ratio(a: str, b: str) -> float:
        return round(s[a]["rps"] / s[b]["rps"], 2) if s[b]["rps"] else 0.0

    added_p50 = round(s["latency_c1_envoy"]["p50_ms"] - s["latency_c1_direct"]["p50_ms"], 3)
    wire = round(s["server_direct"]["bytes_per_call"] / s["rest_keepalive"]["bytes_per_call"], 2)
    checks = [
        (
            "server_direct / article_sync_direct rps",
            ratio("server_direct", "article_sync_direct"),
            ">=",
            1.5,
        ),
        (
            "envoy_3_replicas / server_direct rps",
            ratio("envoy_3_replicas", "server_direct"),
            ">=",
            0.9,
        ),
        ("Envoy added p50 latency at concurrency 1 (ms)", added_p50, "<=", 0.15),
        (
            "envoy_3_replicas / rest_keepalive rps",
            ratio("envoy_3_replicas", "rest_keepalive"),
            ">=",
            1.0,
        ),
        (
            "envoy_3_replicas / rest_new_connection rps",
            ratio("envoy_3_replicas", "rest_new_connection"),
            ">=",
            1.5,
        ),
        ("gRPC / REST wire bytes per call (h2load traffic)", wire, "<=", 0.5),
    ]
    return [
        {
            "goal": name,
            "value": value,
            "target": f"{op} {target}",
            "met": value >= target if op == ">=" else value <= target,
        }
        for name, value, op, target in checks
    ]


# -- reports ------------------------------------------------------------


def write_markdown(report: dict, path: Path) -> None:
    columns = ["scenario", "req/s", "p50 ms", "p90 ms", "p99 ms", "errors"]
    columns += ["server CPU ms / 1k calls", "bytes / call"]
    rows = ["| " + " | ".join(columns) + " |", "| --- |" + " ---: |" * (len(columns) - 1)]
    rows += [
        f"| {s['name']} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p90_ms']:.2f} | "
        f"{s['p99_ms']:.2f} | {s['errors']} | {s['cpu_ms_per_1k']:.0f} | "
        f"{'n/a' if s['bytes_per_call'] is None else round(s['bytes_per_call'])} |"
        for s in report["scenarios"]
    ]
    goal_rows = ["| goal | measured | target | met |", "| --- | ---: | --- | --- |"]
    goal_rows += [
        f"| {g['goal']} | {g['value']} | {g['target']} | {'yes' if g['met'] else 'no'} |"
        for g in report["goals"]
    ]
    settings = report["settings"]
    pb = report["payload_bytes"]
    path.write_text(
        "\n".join(
            [
                f"# grpctest benchmark ({report['generated_at']})",
                "",
                f"{report['machine']['cpus']} CPUs, Python {report['machine']['python']}; "
                f"{settings['load_generator']}; {settings['rounds']} interleaved rounds of "
                f"{settings['seconds_per_round']} s after {settings['warmup_seconds']} s warm-up; "
                f"{settings['in_flight']} requests in flight (latency_c1_*: 1).",
                "",
                *rows,
                "",
                "## Goals (ratios from this run)",
                "",
                *goal_rows,
                "",
                f"Payload bytes per call (request + response bodies): protobuf {pb['protobuf']}, "
                f"JSON {pb['json']} ({pb['protobuf'] / pb['json']:.2f}x).",
                "",
            ]
        )
    )


def write_chart(report: dict, path: Path) -> None:
    scenarios = [s for s in report["scenarios"] if not s["name"].startswith("latency_")]
    names = [s["name"] for s in scenarios]
    fig = Figure(figsize=(13, 5.5))
    ax_rps, ax_lat = fig.subplots(1, 2)
    colours = [
        "tab:red" if n.startswith("rest") else "tab:gray" if n.startswith("article") else "tab:blue"
        for n in names
    ]
    ax_rps.barh(names, [s["rps"] for s in scenarios], color=colours)
    ax_rps.set_xlabel("requests / s (higher is better)")
    ax_rps.invert_yaxis()
    ax_lat.barh(names, [s["p99_ms"] for s in scenarios], color="lightgray", label="p99")
    ax_lat.barh(names, [s["p50_ms"] for s in scenarios], color=colours, label="p50")
    ax_lat.set_xlabel(
        f"latency ms at {report['settings']['in_flight']} in flight (lower is better)"
    )
    ax_lat.invert_yaxis()
    ax_lat.set_yticklabels([])
    ax_lat.legend(loc="lower right")
    fig.suptitle(
        "grpctest: gRPC (blue) vs REST (red) vs the article's sync server (gray), "
        f"{report['machine']['cpus']} CPUs, one run"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="grpctest-bench", description="Run the grpctest benchmark."
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--seconds", type=float, default=5, help="measured seconds per round")
    parser.add_argument("--warmup", type=float, default=1, help="warm-up seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--server-workers",
        type=int,
        default=2,
        help="py-server processes per replica (SO_REUSEPORT)",
    )
    parser.add_argument(
        "--rest-workers", type=int, default=2, help="uvicorn worker processes of the REST server"
    )
    parser.add_argument("--envoy-concurrency", type=int, default=1, help="Envoy worker threads")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny run that only proves the harness works (for make test)",
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.warmup, args.rounds = 0.5, 0.2, 1
    if shutil.which("h2load") is None:
        print(
            "error: h2load not found: `make bench` installs Debian's nghttp2-client",
            file=sys.stderr,
        )
        return 1
    try:
        with signals_raise_interrupt():  # Ctrl-C / SIGTERM: every server stops too
            report = run(args)
    except KeyboardInterrupt:
        print("interrupted: every server stopped", file=sys.stderr)
        return 130
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, args.out / "latest.md")
    write_chart(report, args.out / "latest.png")
    print((args.out / "latest.md").read_text())
    return 0
