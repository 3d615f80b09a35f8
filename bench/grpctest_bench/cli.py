"""`grpctest-bench` (`make bench`): every layer's cost beside its floor, in one run.

Every scenario (bench/grpctest_bench/scenarios.py) is driven by the same load
generator, h2load, on loopback, after a warm-up. Scenarios run in rounds, interleaved,
so that drifting machine load hits all of them alike; results are the sum over rounds,
and every goal is a ratio between scenarios of the same run.

    grpctest-bench                      # full run (about 10 minutes; `make bench`)
    grpctest-bench --smoke --out DIR    # two minutes; what `make test-heavy` runs

Writes DIR/latest.json, latest.md, latest.png and scaling.png (DIR: bench/results). The
JSON schema is in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from grpctest import grpctest_pb2, grpctest_pb2_grpc
from grpctest_bench import h2load, report, scenarios
from grpctest_bench.h2load import Measurement
from grpctest_bench.scenarios import Scenario
from grpctest_common.channels import Connection, open_channel
from grpctest_common.settings import BOOLEAN, PATH, SECONDS, WHOLE_NUMBER, Setting, Table
from grpctest_devtools.processes import signals_raise_interrupt
from grpctest_devtools.repo import CERTS, REPO
from grpctest_server.servicer import REPLY_TEMPLATE

RESULTS = REPO / "bench" / "results"
CALL_TIMEOUT = 10


def check(scenario: Scenario) -> None:
    """One real call the way the scenario's load makes it, answered OK: h2load sees
    HTTP statuses only (a refused gRPC call is HTTP 200 with grpc-status)."""
    load, target = scenario.load, scenario.target
    if not load.http2:
        request = urllib.request.Request(
            load.url, data=load.body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT) as reply:
            if not json.loads(reply.read())["received"]:
                raise RuntimeError(f"{scenario.name}: reply not received")
        return
    if target.grpc_target is None:
        return  # Envoy answering itself: no gRPC status to check
    metadata = tuple(
        (name, value)
        for name, value in (h.split(": ", 1) for h in load.headers)
        if name.startswith(("auth", "trace"))
    )
    if load.url.startswith("https://"):
        ca_pem = (CERTS / "ca.crt").read_bytes()
        connection = Connection(f"localhost:{target.tls_port}", tls=True, ca_pem=ca_pem)
    else:
        connection = Connection(target.grpc_target)
    with open_channel(connection) as channel:
        stub = grpctest_pb2_grpc.GrpctestStub(channel)
        if load.url.endswith(scenarios.STREAM_PATH):
            replies = list(
                stub.StreamServerResponses(
                    grpctest_pb2.StreamRequest(message=scenarios.SMALL_MESSAGE, count=3),
                    timeout=CALL_TIMEOUT,
                    metadata=metadata,
                )
            )
            ok = len(replies) == 3
        else:
            # What h2load sends, without the 5-byte gRPC frame prefix.
            message = grpctest_pb2.Message.FromString(load.body[5:])
            ok = stub.GetServerResponse(message, timeout=CALL_TIMEOUT, metadata=metadata).received
    if not ok:
        raise RuntimeError(f"{scenario.name}: the check call was not answered")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Starts every scenario's target, checks each with one call, measures them in
    interleaved rounds, and returns the report (bench/README.md's schema)."""
    workdir = Path(tempfile.mkdtemp(prefix="grpctest-bench-"))
    try:
        with scenarios.started(workdir, args.server_workers, args.rest_workers) as all_scenarios:
            for scenario in all_scenarios:
                check(scenario)
            results = _rounds(args, all_scenarios, workdir)
            summaries = [report.summarize(s, results[s.name]) for s in all_scenarios]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(args, summaries)


def _rounds(
    args: argparse.Namespace, all_scenarios: list[Scenario], workdir: Path
) -> dict[str, Measurement]:
    """Every scenario once per round, the rounds one after another, summed by scenario."""
    results = {s.name: Measurement() for s in all_scenarios}
    for round_ in range(args.rounds):
        for scenario in all_scenarios:
            print(f"round {round_ + 1}/{args.rounds}: {scenario.name}", file=sys.stderr, flush=True)
            measured = h2load.run(
                scenario.name,
                scenario.load,
                scenario.target.roles,
                seconds=args.seconds,
                warmup=args.warmup,
                workdir=workdir,
            )
            results[scenario.name].add(measured)
    return results


def _report(args: argparse.Namespace, summaries: list[report.Summary]) -> dict[str, Any]:
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
            "in_flight": 32,
            "load_generator": h2load.version(),
            "server_workers": args.server_workers,
            "rest_workers": args.rest_workers,
        },
        "scenarios": summaries,
        "comparisons": report.comparisons(summaries),
        "mixed_rotation": report.mixed_rotation(summaries),
        "payload_bytes": payload_bytes(),
        "goals": report.goals(summaries),
    }


def payload_bytes() -> dict[str, int]:
    """Request + response body bytes of one call, protobuf vs JSON (no framing, no headers)."""
    request = grpctest_pb2.Message(message=scenarios.SMALL_MESSAGE)
    reply = grpctest_pb2.MessageResponse(
        message=REPLY_TEMPLATE.format(scenarios.SMALL_MESSAGE), received=True, replica="replica-1"
    )
    proto = len(request.SerializeToString()) + len(reply.SerializeToString())
    rest = len(json.dumps({"message": request.message}, separators=(",", ":")))
    as_json = {"message": reply.message, "received": reply.received, "replica": reply.replica}
    rest += len(json.dumps(as_json, separators=(",", ":")))
    return {"protobuf": proto, "json": rest}


# The benchmark's knobs (no environment variables: it runs from `make bench`).
SETTINGS = Table(
    Setting("--out", PATH, RESULTS, "where the results go", env=None, shown="bench/results"),
    Setting("--seconds", SECONDS, 4.0, "measured seconds per round", env=None, shown="4"),
    Setting("--warmup", SECONDS, 1.0, "warm-up seconds per round", env=None, shown="1"),
    Setting("--rounds", WHOLE_NUMBER, 3, "rounds, every scenario once in each", env=None),
    Setting(
        "--server-workers",
        WHOLE_NUMBER,
        2,
        "processes of the py-server measured alone (server_direct)",
        env=None,
    ),
    Setting("--rest-workers", WHOLE_NUMBER, 2, "uvicorn processes of the REST server", env=None),
    Setting(
        "--smoke",
        BOOLEAN,
        False,
        "a short run that only proves the harness works (for make test-heavy)",
        env=None,
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = SETTINGS.parser("grpctest-bench", "Run the grpctest benchmark.")
    args = SETTINGS.parse(parser, argv)
    if args.smoke:
        args.seconds, args.warmup, args.rounds = 0.5, 0.2, 1
    if shutil.which("h2load") is None:
        parser.exit(1, "grpctest-bench: error: h2load not found: `make bench` installs it\n")
    try:
        with signals_raise_interrupt():  # Ctrl-C / SIGTERM: every server stops too
            result = run(args)
    except KeyboardInterrupt:
        print("interrupted: every server stopped", file=sys.stderr)
        return 130
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    report.write_markdown(result, args.out / "latest.md")
    report.write_chart(result, args.out / "latest.png")
    report.write_scaling_chart(result, args.out / "scaling.png")
    print((args.out / "latest.md").read_text())
    return 0
