"""Every scenario of `make bench`: what is loaded, with what, and what it is compared with.

All targets are started at once (and stopped again on the way out), so that the rounds
can interleave every scenario.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grpctest import grpctest_pb2
from grpctest_bench import envoy_variants, targets
from grpctest_bench.h2load import Load, grpc_frame
from grpctest_bench.targets import Target
from grpctest_common import tracing
from grpctest_devtools.observability import Jaeger
from grpctest_devtools.ports import free_port
from grpctest_devtools.repo import CERTS, command
from grpctest_server.servicer import REPLY_TEMPLATE

GRPC_PATH = "/grpctest.Grpctest/GetServerResponse"
STREAM_PATH = "/grpctest.Grpctest/StreamServerResponses"
# The REST path of the same operation (the proto's google.api.http rule), served by
# Envoy's transcoder and by the FastAPI twin alike.
REST_PATH = "/v1/message"
SMALL_MESSAGE = "Hello Server you there?"
LARGE_MESSAGE = "x" * 10 * 1024
STREAM_REPLIES = 100
GRPC_HEADERS = ("content-type: application/grpc", "te: trailers")
REST_HEADERS = ("content-type: application/json",)
# A sampled W3C trace context: every call continues this trace.
TRACEPARENT = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
# Replicas x worker processes per replica, through Envoy: the scaling curve.
SCALING = [(replicas, workers) for workers in (1, 2) for replicas in (1, 2, 3, 5)]

FLOORS = "Floors and baselines"
ENVOY = "Through Envoy: replicas x processes"
REST = "gRPC vs REST, streaming, payload size"
SETTINGS = "What a production setting costs"
LEVERS = "Levers"
LATENCY = "Latency, one call in flight"
MIXED = "A mixed rotation: 3 Python replicas and 1 Go replica behind one Envoy"


def scaling_name(replicas: int, workers: int) -> str:
    return f"envoy_{replicas}r_{workers}w"


# What the comparisons use: 3 replicas of 2 processes each, as in `make run --workers 2`.
MAIN = scaling_name(3, 2)


@dataclass(frozen=True)
class Scenario:
    name: str
    group: str
    target: Target
    load: Load
    note: str = ""
    # Messages each call carries back (a server stream's replies).
    messages_per_call: int = 1
    # The scenario this one is measured against (settings and levers).
    baseline: str | None = None


def grpc_body(message: str = SMALL_MESSAGE) -> bytes:
    return grpc_frame(grpctest_pb2.Message(message=message).SerializeToString())


def unary(target: Target, message: str = SMALL_MESSAGE, in_flight: int = 32) -> Load:
    return Load(
        target.url(GRPC_PATH),
        grpc_body(message),
        GRPC_HEADERS,
        in_flight=in_flight,
        connections=min(4, in_flight),
    )


def rest(target: Target, message: str = SMALL_MESSAGE, new_connection: bool = False) -> Load:
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return Load(
        target.url(REST_PATH), body, REST_HEADERS, http2=False, new_connection=new_connection
    )


def stream(target: Target) -> Load:
    request = grpctest_pb2.StreamRequest(message=SMALL_MESSAGE, count=STREAM_REPLIES)
    return Load(target.url(STREAM_PATH), grpc_frame(request.SerializeToString()), GRPC_HEADERS)


def floor_reply() -> bytes:
    """What Envoy answers itself with in its floor: py-server's reply, framed."""
    reply = grpctest_pb2.MessageResponse(
        message=REPLY_TEMPLATE.format(SMALL_MESSAGE), received=True, replica="envoy"
    )
    return grpc_frame(reply.SerializeToString())


class _Targets:
    """Starts targets into one ExitStack: all are stopped when it closes."""

    def __init__(self, stack: ExitStack, workdir: Path) -> None:
        self._stack = stack
        self.workdir = workdir
        self.python = sys.executable
        self.py_server = [command("grpctest-server"), "--log-level", "WARNING"]
        self.go_server = [command("go-server"), "--log-level", "WARNING"]
        self.by_name: dict[str, Target] = {}

    def start(self, target: AbstractContextManager[Target]) -> Target:
        started = self._stack.enter_context(target)
        self.by_name[started.name] = started
        return started

    def module(self, name: str, module: str, *args: str, **kwargs: Any) -> Target:
        argv = [self.python, "-m", f"grpctest_bench.{module}", *args]
        return self.start(targets.server(name, argv, self.workdir, **kwargs))

    def stack(self, name: str, replicas: int = 3, workers: int = 2, **kwargs: Any) -> Target:
        if "server_command" not in kwargs:
            kwargs["server_args"] = self.py_server[1:]
        return self.start(
            targets.envoy_stack(name, self.workdir, replicas=replicas, workers=workers, **kwargs)
        )


@contextmanager
def started(workdir: Path, server_workers: int, rest_workers: int) -> Iterator[list[Scenario]]:
    """Starts every target; yields the scenarios; stops everything on the way out."""
    with ExitStack() as stack:
        run = _Targets(stack, workdir)
        jaeger = stack.enter_context(Jaeger(free_port(), free_port(), free_port()))
        yield [
            *_floors(run, server_workers),
            *_scaling(run),
            *_rest(run, rest_workers),
            *_settings(run, jaeger),
            *_checks(run),
            *_metrics(run),
            *_levers(run),
            *_latency(run),
            *_mixed(run),
        ]


def _floors(run: _Targets, server_workers: int) -> list[Scenario]:
    article = run.module("article", "article_server")
    floor = run.module("floor", "floor_server")
    server_1 = run.start(targets.server("server_1w", run.py_server, run.workdir))
    server_argv = [*run.py_server, "--workers", str(server_workers)]
    server_n = run.start(targets.server("server", server_argv, run.workdir))
    go = run.start(targets.server("go", run.go_server, run.workdir))
    answer = envoy_variants.answer_itself(floor_reply())
    envoy_floor = run.start(targets.envoy_alone("envoy_floor", run.workdir, answer))
    envoy_go = run.stack("envoy_go", replicas=1, workers=1, server_command=run.go_server)
    rows = [
        ("article_sync_direct", article, "the article's design: sync grpc.server, 10 threads"),
        ("python_floor_direct", floor,
         "the least grpc.aio does: a bare generated servicer, 1 process"),
        ("server_direct_1w", server_1, "py-server, 1 process"),
        ("server_direct", server_n, f"py-server, {server_workers} processes"),
        ("go_direct", go, "the same contract in grpc-go: the runtime's ceiling"),
        ("envoy_answers_itself", envoy_floor,
         "Envoy's floor: every filter, no upstream (direct_response)"),
        ("envoy_go", envoy_go, "Envoy in front of grpc-go: the proxy's own cost"),
    ]  # fmt: skip
    return [Scenario(name, FLOORS, target, unary(target), note) for name, target, note in rows]


def _scaling(run: _Targets) -> list[Scenario]:
    scenarios = []
    for replicas, workers in SCALING:
        name = scaling_name(replicas, workers)
        target = run.stack(name, replicas, workers)
        note = f"{replicas} replicas x {workers} processes"
        scenarios.append(Scenario(name, ENVOY, target, unary(target), note))
    return scenarios


def _rest(run: _Targets, rest_workers: int) -> list[Scenario]:
    rest_server = run.module(
        "rest",
        "rest_server",
        "--workers",
        str(rest_workers),
        ready=lambda port: targets.http_ready(port, "/healthz"),
        grpc=False,
    )
    upstream = envoy_variants.rest_upstream("/healthz", "/v1/")
    behind_envoy = run.start(
        targets.envoy_alone("envoy_rest", run.workdir, upstream, upstream=rest_server)
    )
    server_n, main = run.by_name["server"], run.by_name[MAIN]
    return [
        Scenario("rest_keepalive", REST, rest_server, rest(rest_server),
                 f"FastAPI on uvicorn, {rest_workers} processes, keep-alive"),
        Scenario("rest_new_connection", REST, rest_server,
                 rest(rest_server, new_connection=True), "the same, a new connection per request"),
        Scenario("rest_behind_envoy", REST, behind_envoy, rest(behind_envoy),
                 "FastAPI behind Envoy: REST paying the same proxy as gRPC"),
        Scenario("rest_transcoded", REST, main, rest(main),
                 f"REST/JSON through Envoy's transcoder to {MAIN}", baseline=MAIN),
        Scenario(f"stream_{MAIN}", REST, main, stream(main),
                 f"server streams of {STREAM_REPLIES} replies", STREAM_REPLIES, baseline=MAIN),
        Scenario("server_direct_10KiB", REST, server_n, unary(server_n, LARGE_MESSAGE)),
        Scenario(f"{MAIN}_10KiB", REST, main, unary(main, LARGE_MESSAGE), baseline=MAIN),
        Scenario("rest_keepalive_10KiB", REST, rest_server, rest(rest_server, LARGE_MESSAGE),
                 baseline="rest_keepalive"),
    ]  # fmt: skip


def _settings(run: _Targets, jaeger: Jaeger) -> list[Scenario]:
    tls = run.by_name[MAIN]  # every stack has the TLS listener
    token = (CERTS / "token.jwt").read_text().strip()
    tls_load = Load(
        tls.url(GRPC_PATH, tls=True), grpc_body(), (*GRPC_HEADERS, f"authorization: Bearer {token}")
    )
    traced = run.stack(
        f"{MAIN}_traced",
        server_env={tracing.ENDPOINT: jaeger.otlp_endpoint},
        otlp_port=jaeger.otlp_port,
    )
    traced.roles["collector"] = lambda: [pid for pid in [jaeger.process.pid] if pid]
    traced_load = Load(traced.url(GRPC_PATH), grpc_body(), (*GRPC_HEADERS, TRACEPARENT))
    return [
        Scenario(
            f"{MAIN}_tls_jwt",
            SETTINGS,
            tls,
            tls_load,
            "the TLS listener: TLS, a JWT checked, RBAC",
            baseline=MAIN,
        ),
        Scenario(
            f"{MAIN}_traced",
            SETTINGS,
            traced,
            traced_load,
            "every call traced: Envoy and the replicas export to Jaeger",
            baseline=MAIN,
        ),
    ]


def _checks(run: _Targets) -> list[Scenario]:
    """The check of every request against the contract (protovalidate): each server, one
    process, without it (the server measured against is the real one, with it)."""
    py_unchecked = run.module("server_1w_unchecked", "unchecked_server", *run.py_server[1:])
    go_unchecked = run.start(
        targets.server("go_unchecked", [command("go-server-unchecked"), *run.go_server[1:]],
                       run.workdir)
    )  # fmt: skip
    rows = [
        ("server_direct_1w_unchecked", py_unchecked, "server_direct_1w",
         "py-server, 1 process, without its check of requests: the check's CPU per call is "
         "what server_direct_1w costs more"),
        ("go_direct_unchecked", go_unchecked, "go_direct",
         "go-server without its check of requests: the check's CPU per call is what "
         "go_direct costs more"),
    ]  # fmt: skip
    return [
        Scenario(name, SETTINGS, target, unary(target), note, baseline=baseline)
        for name, target, baseline, note in rows
    ]


def _metrics(run: _Targets) -> list[Scenario]:
    """The replicas' Prometheus metrics: through Envoy, and on one process alone (their
    own CPU per call, against the same server without them)."""
    metrics = run.stack(f"{MAIN}_metrics", metrics=True)
    metrics_1w = run.start(
        targets.server(
            "server_1w_metrics", [*run.py_server, "--metrics-port", str(free_port())], run.workdir
        )
    )
    return [
        Scenario(
            f"{MAIN}_metrics",
            SETTINGS,
            metrics,
            unary(metrics),
            "the replicas' Prometheus metrics on",
            baseline=MAIN,
        ),
        Scenario(
            "server_direct_1w_metrics",
            SETTINGS,
            metrics_1w,
            unary(metrics_1w),
            "py-server's Prometheus metrics on, 1 process: their CPU per call alone",
            baseline="server_direct_1w",
        ),
    ]


def _levers(run: _Targets) -> list[Scenario]:
    asyncio_argv = [*run.py_server, "--event-loop", "asyncio"]
    asyncio_loop = run.start(targets.server("server_1w_asyncio", asyncio_argv, run.workdir))
    one_connection = envoy_variants.one_connection_per_replica
    one_worker = scaling_name(3, 1)
    trace_all = run.stack(
        "envoy_go_trace_every_call",
        replicas=1,
        workers=1,
        server_command=run.go_server,
        envoy_edit=envoy_variants.trace_every_call,
    )
    # name, target, what it changes, the scenario it is measured against
    rows = [
        ("server_direct_1w_asyncio", asyncio_loop,
         "py-server on asyncio's own event loop instead of uvloop", "server_direct_1w"),
        (f"{MAIN}_concurrency_2", run.stack(f"{MAIN}_concurrency_2", envoy_concurrency=2),
         "Envoy --concurrency 2 (two worker threads)", MAIN),
        (f"{MAIN}_one_connection",
         run.stack(f"{MAIN}_one_connection", envoy_edit=one_connection),
         "no stream limit upstream: one connection per replica", MAIN),
        (f"{one_worker}_one_connection",
         run.stack(f"{one_worker}_one_connection", workers=1, envoy_edit=one_connection),
         "the same with 1 process per replica, where the limit buys nothing", one_worker),
        (f"{MAIN}_default_windows",
         run.stack(f"{MAIN}_default_windows", envoy_edit=envoy_variants.envoy_default_windows),
         "Envoy's default 256 MiB windows upstream", MAIN),
        (f"{MAIN}_no_access_log",
         run.stack(f"{MAIN}_no_access_log", envoy_edit=envoy_variants.without_access_log),
         "no access log", MAIN),
        ("envoy_go_trace_every_call", trace_all,
         "Envoy's default sampling: every call traced", "envoy_go"),
    ]  # fmt: skip
    return [
        Scenario(name, LEVERS, target, unary(target), note, baseline=baseline)
        for name, target, note, baseline in rows
    ]


def _mixed(run: _Targets) -> list[Scenario]:
    """The local run's rotation (3 py-server replicas of 1 process, 1 go-server replica)
    under each balancing policy: what each language costs per call it answers, and which
    policy serves the mix better."""
    mixed = {"replicas": 3, "workers": 1, "go_replicas": 1}
    round_robin = run.stack("mixed_round_robin", **mixed)
    least_request = run.stack(
        "mixed_least_request", **mixed, envoy_edit=envoy_variants.least_request
    )
    return [
        Scenario(
            "mixed_round_robin",
            MIXED,
            round_robin,
            unary(round_robin),
            "round robin (envoy.yaml's): equal shares, the rotation visible",
        ),
        Scenario(
            "mixed_least_request",
            MIXED,
            least_request,
            unary(least_request),
            "least request: more calls to the replica that answers faster",
            baseline="mixed_round_robin",
        ),
    ]


def _latency(run: _Targets) -> list[Scenario]:
    direct, envoy = run.by_name["server_1w"], run.by_name[scaling_name(1, 1)]
    return [
        Scenario(
            "latency_c1_direct", LATENCY, direct, unary(direct, in_flight=1), "py-server, 1 process"
        ),
        Scenario(
            "latency_c1_envoy",
            LATENCY,
            envoy,
            unary(envoy, in_flight=1),
            "the same server behind Envoy",
        ),
    ]
