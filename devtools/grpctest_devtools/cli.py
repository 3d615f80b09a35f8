"""`grpctest-local`: the local run, py-server and go-server replicas and Envoy with no
container engine.

grpctest-local demo         # start, wait for health, call with both clients, stop
grpctest-local run          # start and supervise in the foreground until Ctrl-C
grpctest-local screenshot   # start on free ports, use the web page in Chromium, save a picture
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from grpctest_common import tracing
from grpctest_common.settings import BOOLEAN, PATH, TEXT, WHOLE_NUMBER, Setting, Table
from grpctest_devtools.clients import CLIENTS, JSON_OUTPUT, calls_per_replica, run_client
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.observability import Jaeger, Prometheus
from grpctest_devtools.processes import signals_raise_interrupt
from grpctest_devtools.repo import REPO


def _stack(
    args: argparse.Namespace,
    *,
    log_dir: Path | None = None,
    server_args: Sequence[str] = (),
    metrics_ports: Sequence[int] = (),
) -> LocalStack:
    return LocalStack(
        replicas=args.replicas,
        go_replicas=args.go_replicas,
        base_port=args.base_port,
        envoy_port=args.envoy_port,
        admin_port=args.admin_port,
        tls_port=args.tls_port,
        log_dir=log_dir,
        server_args=server_args,
        metrics_ports=metrics_ports,
    )


def _print_client_run(name: str, target: str, flags: list[str], calls: int) -> tuple[int, str]:
    """Runs one client, prints its output (shortened); returns its exit code and stdout.

    The demo reads which replicas answered, so it asks for the client's data (JSON)."""
    print(f"$ {CLIENTS[name]} --target {target} --count {calls} {' '.join(JSON_OUTPUT)}")
    result = run_client(name, target, *flags, *JSON_OUTPUT)
    lines = result.stdout.splitlines()
    shown = [*lines[:3], "  ...", *lines[calls:]] if len(lines) > 6 else lines
    print("\n".join(shown), result.stderr, sep="\n", end="")
    return result.returncode, result.stdout


def demo(args: argparse.Namespace) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="grpctest-demo-logs-"))
    flags = ["--count", str(args.calls), "--message", args.message]
    failed = []
    with _stack(args, log_dir=log_dir, server_args=["--drain-seconds", "0"]) as stack:
        print(
            f"stack up: {_replica_count(args)} behind Envoy at {stack.target} (logs in {log_dir})\n"
        )
        expected = {replica.name for replica in stack.replicas}
        for name in CLIENTS:
            code, output = _print_client_run(name, stack.target, flags, args.calls)
            seen = set(calls_per_replica(output))
            if code != 0 or seen != expected:
                failed.append(f"{name}: exit {code}, replicas seen {sorted(seen)}")
        print(
            f"Envoy's view ({stack.target}, admin 127.0.0.1:{stack.admin_port}/clusters): "
            f"{len(stack.healthy_hosts())} healthy hosts"
        )
    if failed:
        print("demo FAILED: " + "; ".join(failed), file=sys.stderr)
        return 1
    print(f"demo OK: every one of the {_replica_count(args)} answered both clients")
    return 0


def _replica_count(args: argparse.Namespace) -> str:
    """How many replicas of each language, e.g. "4 replicas (3 Python, 1 Go)"."""
    return (
        f"{args.replicas + args.go_replicas} replicas "
        f"({args.replicas} Python, {args.go_replicas} Go)"
    )


PROMETHEUS_PORT = 9090
JAEGER_PORTS = {"otlp_port": 4317, "ui_port": 16686, "grpc_port": 16685}


def run(args: argparse.Namespace) -> int:
    """The stack in the foreground; with --observe, Prometheus and Jaeger next to it."""
    metrics_ports = [args.metrics_base_port + i for i in range(args.replicas + args.go_replicas)]
    with contextlib.ExitStack() as running:
        if args.observe:
            jaeger = running.enter_context(Jaeger(**JAEGER_PORTS))
            # The replicas (started next) send their spans to Jaeger.
            os.environ[tracing.ENDPOINT] = jaeger.otlp_endpoint
        stack = running.enter_context(_stack(args, metrics_ports=metrics_ports))
        if args.observe:
            running.enter_context(Prometheus(stack, PROMETHEUS_PORT, scrape_seconds=5))
        print(_where_to_look(stack, args.observe), flush=True)
        while True:
            time.sleep(0.5)
            stack.restart_exited()


def _where_to_look(stack: LocalStack, observed: bool) -> str:
    metrics = ", ".join(f"http://127.0.0.1:{port}/metrics" for port in stack.metrics_ports)
    lines = [
        f"\nready: {len(stack.replicas)} replicas behind Envoy at {stack.target}; "
        f"TLS on {stack.tls_target} (CA: certs/ca.crt); the web page: http://{stack.target}/",
        f"metrics: Envoy http://127.0.0.1:{stack.admin_port}/stats/prometheus, replicas {metrics}",
    ]
    if observed:
        lines += [
            f"Prometheus: http://127.0.0.1:{PROMETHEUS_PORT}/   "
            f"Jaeger (traces): http://127.0.0.1:{JAEGER_PORTS['ui_port']}/",
            f"trace a call: {tracing.ENDPOINT}=http://127.0.0.1:{JAEGER_PORTS['otlp_port']} "
            f"bin/go-client --target {stack.target}",
        ]
    lines += [
        f"try:  make client   or   bin/grpcurl -plaintext {stack.target} list",
        "Ctrl-C stops everything.\n",
    ]
    return "\n".join(lines)


def screenshot(args: argparse.Namespace) -> int:
    """The web page showing the balancing, as the README shows it. On free ports: a
    picture needs none in particular, and a `make run` may be going."""
    # Playwright is an extra (grpctest-devtools[browser], which `make screenshot` installs):
    # the rest of the local run does without it.
    from grpctest_devtools import browser as browser_steps  # noqa: PLC0415

    stack = LocalStack.on_free_ports(
        args.replicas, args.go_replicas, server_args=["--drain-seconds", "0"]
    )
    with stack, browser_steps.chromium() as browser:
        browser_steps.picture(browser, stack, args.out)
    print(f"saved {args.out}")
    return 0


SETTINGS = Table(
    Setting("--replicas", WHOLE_NUMBER, 3, "py-server replicas"),
    Setting(
        "--go-replicas",
        WHOLE_NUMBER,
        1,
        "go-server replicas beside them, in the same rotation; their ports follow the Python ones'",
    ),
    Setting("--base-port", WHOLE_NUMBER, 50051, "first replica port; the others follow", env=None),
    Setting("--envoy-port", WHOLE_NUMBER, 8080, "Envoy's gRPC listener", env=None),
    Setting("--admin-port", WHOLE_NUMBER, 9901, "Envoy's admin interface", env=None),
    Setting("--tls-port", WHOLE_NUMBER, 8443, "Envoy's TLS listener", env=None),
    Setting(
        "--metrics-base-port",
        WHOLE_NUMBER,
        9464,
        "run: the first replica's /metrics port; the others follow",
        env=None,
    ),
    Setting(
        "--observe",
        BOOLEAN,
        False,
        "run: also Prometheus (:9090, scraping Envoy and the replicas) and Jaeger "
        "(:16686, receiving traces on :4317)",
        env=None,
    ),
    Setting("--calls", WHOLE_NUMBER, 30, "calls per client in demo", env=None),
    Setting("--message", TEXT, "Hello Server you there?", "demo: the clients' message", env=None),
    Setting(
        "--out",
        PATH,
        REPO / "docs" / "web-page.png",
        "screenshot: where to",
        env=None,
        shown="docs/web-page.png",
    ),
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command and the settings (SETTINGS), checked."""
    description = " ".join(__doc__.split("\n\n")[0].split())  # the first paragraph
    parser = SETTINGS.parser("grpctest-local", description)
    parser.add_argument("command", choices=["demo", "run", "screenshot"])
    args = SETTINGS.parse(parser, argv)
    if args.replicas < 1:
        parser.error("--replicas must be at least 1")
    if args.go_replicas < 0:
        parser.error("--go-replicas must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s grpctest-local: %(message)s")
    try:
        with signals_raise_interrupt():
            return {"demo": demo, "run": run, "screenshot": screenshot}[args.command](args)
    except KeyboardInterrupt:
        print("\nstopped: every replica and Envoy shut down", file=sys.stderr)
        return 0 if args.command == "run" else 130
    except (RuntimeError, TimeoutError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
