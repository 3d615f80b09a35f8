"""`grpctest-server`: run the grpctest server (one process, or several sharing a port).

Every setting is a flag with an environment-variable fallback (GRPCTEST_*); the
defaults suit the local run (`make run`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
from collections.abc import Sequence

import uvloop

from grpctest_common.settings import (
    BOOLEAN,
    PATH,
    SECONDS,
    TEXT,
    WHOLE_NUMBER,
    Setting,
    Table,
    choice,
)
from grpctest_server.lifecycle import Settings, serve

# How each --event-loop runs a coroutine to its end.
EVENT_LOOPS = {"uvloop": uvloop.run, "asyncio": asyncio.run}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


SETTINGS = Table(
    Setting("--host", TEXT, "127.0.0.1", "address to listen on; 0.0.0.0 in containers"),
    Setting("--port", WHOLE_NUMBER, 50051, "port to listen on"),
    Setting(
        "--replica",
        TEXT,
        socket.gethostname,
        "replica name put in every reply",
        shown="the hostname",
    ),
    Setting("--reflection", BOOLEAN, True, "serve gRPC Server Reflection"),
    Setting(
        "--max-message-bytes",
        WHOLE_NUMBER,
        1024 * 1024,
        "largest request accepted; larger ones get RESOURCE_EXHAUSTED",
    ),
    Setting(
        "--max-concurrent-streams",
        WHOLE_NUMBER,
        100,
        "HTTP/2 streams one connection may have open at once",
    ),
    Setting(
        "--max-streams",
        WHOLE_NUMBER,
        64,
        "streams of the service (server streams, chats) open at once, all connections "
        "together; more get RESOURCE_EXHAUSTED (Health and reflection are not counted); "
        "0: no limit",
    ),
    Setting(
        "--drain-seconds",
        SECONDS,
        3.0,
        "after SIGTERM, how long to keep serving while reporting NOT_SERVING so that "
        "Envoy's health checks (1 s interval) take this replica out",
        shown="3",
    ),
    Setting(
        "--grace-seconds",
        SECONDS,
        10.0,
        "how long in-flight calls may take to finish once the server stops",
        shown="10",
    ),
    Setting(
        "--workers",
        WHOLE_NUMBER,
        1,
        "server processes sharing the port through SO_REUSEPORT; Python runs one core per process",
    ),
    Setting(
        "--metrics-port",
        WHOLE_NUMBER,
        0,
        "serve Prometheus metrics at /metrics on this port; 0: none. With --workers N, "
        "worker i uses this port + i",
    ),
    Setting(
        "--tls-cert",
        PATH,
        None,
        "serve TLS with this certificate (PEM), e.g. certs/replica.crt; needs --tls-key",
        shown="plaintext",
    ),
    Setting("--tls-key", PATH, None, "the certificate's private key (PEM)", shown="none"),
    Setting(
        "--event-loop",
        choice(tuple(EVENT_LOOPS)),
        "uvloop",
        "asyncio event loop: uvloop costs about a sixth less CPU per call than asyncio's "
        "own (bench/README.md)",
    ),
    Setting("--log-level", choice(LOG_LEVELS, str.upper), "INFO", "log level"),
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The settings (SETTINGS) from the command line and the environment, checked."""
    parser = SETTINGS.parser("grpctest-server", __doc__.splitlines()[0])
    args = SETTINGS.parse(parser, argv)
    _check_ports(parser, args)
    if args.max_message_bytes <= 0:
        parser.error("--max-message-bytes must be positive")
    if args.max_concurrent_streams <= 0:
        parser.error("--max-concurrent-streams must be positive")
    if args.max_streams < 0:
        parser.error("--max-streams must not be negative (0: no limit)")
    if args.drain_seconds < 0 or args.grace_seconds < 0:
        parser.error("--drain-seconds and --grace-seconds must not be negative")
    _check_tls(parser, args)
    return args


def _check_ports(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The ports in range; several workers share one fixed port."""
    if not 0 <= args.port < 65536:
        parser.error(f"--port must be between 0 (any free port) and 65535, got {args.port}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.workers > 1 and args.port == 0:
        parser.error("--workers > 1 needs a fixed --port (the workers share it)")
    if not 0 <= args.metrics_port < 65536:
        parser.error(f"--metrics-port must be between 0 (none) and 65535, got {args.metrics_port}")


def _check_tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A certificate and its key, both there, or neither."""
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    for flag, path in (("--tls-cert", args.tls_cert), ("--tls-key", args.tls_key)):
        if path is not None and not path.is_file():
            parser.error(f"{flag} {path}: no such file")


def settings_from(args: argparse.Namespace) -> Settings:
    names = {field.name for field in dataclasses.fields(Settings)}
    return Settings(
        reuse_port=args.workers > 1, **{k: v for k, v in vars(args).items() if k in names}
    )


def _serve_forever(settings: Settings, log_level: str, event_loop: str) -> None:
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if (parent := multiprocessing.parent_process()) is not None:
        threading.Thread(target=_drain_when_gone, args=(parent,), daemon=True).start()
    EVENT_LOOPS[event_loop](serve(settings))


def _drain_when_gone(parent: multiprocessing.process.BaseProcess) -> None:
    """A worker's watch on its parent: if the parent dies without forwarding a signal
    (SIGKILL), the worker drains as on SIGTERM instead of serving on as an orphan that
    still shares the port (SO_REUSEPORT) with whatever starts there next."""
    multiprocessing.connection.wait([parent.sentinel])
    logging.getLogger(__name__).warning("the parent process exited; draining")
    os.kill(os.getpid(), signal.SIGTERM)


def _run_workers(settings: Settings, log_level: str, event_loop: str, workers: int) -> None:
    """Starts `workers` server processes on one port and waits for them.

    Each worker handles SIGTERM/SIGINT itself (drain, grace, exit 0); this parent
    forwards the signal and exits 0 only if every worker did.
    """
    context = multiprocessing.get_context("spawn")  # no gRPC state is forked
    processes = [
        context.Process(
            target=_serve_forever,
            args=(_worker_settings(settings, i), log_level, event_loop),
            name=f"worker-{i}",
        )
        for i in range(workers)
    ]
    for process in processes:
        process.start()

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    for process in processes:
        process.join()
    failed = [p.name for p in processes if p.exitcode != 0]
    if failed:
        sys.exit(f"grpctest-server: workers {failed} exited with an error")


def _worker_settings(settings: Settings, index: int) -> Settings:
    """Worker `index` of several: its own metrics port, next to the first one's."""
    if not settings.metrics_port:
        return settings
    return dataclasses.replace(settings, metrics_port=settings.metrics_port + index)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = settings_from(args)
    try:
        if args.workers > 1:
            _run_workers(settings, args.log_level, args.event_loop, args.workers)
        else:
            _serve_forever(settings, args.log_level, args.event_loop)
    except (OSError, RuntimeError) as err:
        sys.exit(f"grpctest-server: failed to start: {err}")
