r"""`grpctest-client`: calls grpctest.Grpctest, through Envoy or balancing the calls itself.

Over one channel to --target, in one of three modes:

    unary           --count calls of GetServerResponse, --interval apart (the default)
    server-stream   one StreamServerResponses call: --count replies, one every --interval
    chat            one Chat stream: sends --count messages, one every --interval

It prints each reply with the replica that answered and, for more than one reply, how
many each replica answered (--output json: one JSON object per reply and a summary); a
stream's replies are numbered by their own sequence. A stream or chat that breaks (a
replica shutting down or dying) goes on on another replica from the last reply received,
up to --resume-attempts times within --timeout, and says so on stderr ("resumed after 558
on replica-3"; with --output json, {"resumed":{"after":558,"replica":"replica-3"}}). A
failed call ends the run with the gRPC status name and detail and exit code 1: a rule of
the contract broken reads "field: description [rule id]"; with --output json, the last
line is {"error": {...}} instead of the summary.

    grpctest-client --target localhost:8080 --message hi --count 30
    grpctest-client --mode server-stream --count 10000
    grpctest-client --target localhost:8443 --ca certs/ca.crt      # TLS through Envoy
    grpctest-client --target localhost:8443 --ca certs/ca.crt \
        --cert certs/client.crt --key certs/client.key                 # mutual TLS
    grpctest-client --target localhost:8443 --ca certs/ca.crt \
        --token "$(cat certs/token.jwt)"                               # a bearer token
    GRPC_XDS_BOOTSTRAP=bootstrap.json grpctest-client \
        --target xds:///grpctest --count 30 --admin-port 9902          # proxyless
    grpctest-client --target dns:///py-server:50051 --count 30         # balanced here

Where the calls go follows from --target (grpctest_common.channels): a host:port is one
connection (to Envoy, which balances); xds:///NAME asks the xDS control plane named by
the bootstrap (GRPC_XDS_BOOTSTRAP, a file, or GRPC_XDS_BOOTSTRAP_CONFIG, its JSON) for
the replicas and how to balance; dns:///NAME:PORT and ipv4:ADDR,ADDR are balanced here,
round robin over every address. --admin-port serves gRPC's channelz (the client's
connections to the replicas) for grpcurl.

Tracing: set OTEL_EXPORTER_OTLP_ENDPOINT and every call starts a trace (W3C traceparent).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence

# A CLI reports a failure in one line of its own; gRPC core would also log it (e.g. a
# failed TLS handshake, at ERROR). Set GRPC_VERBOSITY yourself to see those logs. It is
# read when grpc is first imported, so it is set before the import below.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc

from grpctest.grpctest_pb2 import MessageResponse
from grpctest_client.calls import Resume, chat, get_server_responses, stream_server_responses
from grpctest_client.errors import Failure, failure
from grpctest_client.resume import Messages, OnResume, OutOfSequenceError
from grpctest_common.channels import Connection, needs_bootstrap, open_channel
from grpctest_common.settings import (
    BOOLEAN,
    PATH,
    SECONDS,
    TEXT,
    WHOLE_NUMBER,
    Setting,
    Table,
    choice,
    read_file,
    show_seconds,
)
from grpctest_common.tracing import tracing

DEFAULT_MESSAGE = "Hello Server you there?"
MODES = ("unary", "server-stream", "chat")
OUTPUTS = ("text", "json")
# --output json as the Go client writes it (encoding/json): no spaces.
COMPACT = (",", ":")


SETTINGS = Table(
    Setting(
        "--target",
        TEXT,
        "localhost:8080",
        "where to call: host:port (through Envoy), xds:///grpctest (proxyless), "
        "dns:///host:port or ipv4:ADDR,ADDR (balanced by the client); docs/load-balancing.md",
    ),
    Setting("--message", TEXT, DEFAULT_MESSAGE, "message to send", shown=repr(DEFAULT_MESSAGE)),
    Setting(
        "--mode",
        choice(MODES),
        "unary",
        f"{', '.join(MODES)}: unary calls, one server stream, or one chat",
    ),
    Setting(
        "--count", WHOLE_NUMBER, 1, "calls (unary), replies (server-stream) or messages (chat)"
    ),
    Setting(
        "--interval",
        SECONDS,
        0.0,
        "seconds between calls (unary), a stream's replies (server-stream) or messages (chat)",
        shown="0",
    ),
    Setting(
        "--timeout",
        SECONDS,
        5.0,
        "deadline of each call, or of the whole stream, in seconds",
        shown="5",
    ),
    Setting(
        "--resume-attempts",
        WHOLE_NUMBER,
        5,
        "times a broken server stream or chat is resumed on another replica, 0 for never",
    ),
    Setting("--tls", BOOLEAN, False, "connect with TLS; e.g. Envoy's :8443"),
    Setting(
        "--ca",
        PATH,
        None,
        "CA certificate (PEM) to trust, e.g. certs/ca.crt; implies --tls",
        shown="the system's trust store",
    ),
    Setting(
        "--cert",
        PATH,
        None,
        "client certificate (PEM) for mutual TLS, e.g. certs/client.crt; needs --key and "
        "implies --tls",
        shown="none",
    ),
    Setting(
        "--key",
        PATH,
        None,
        "the client certificate's private key (PEM), e.g. certs/client.key",
        shown="none",
    ),
    Setting(
        "--output",
        choice(OUTPUTS),
        "text",
        "text for people; json for programs: one JSON object per reply, then one summary object",
    ),
    Setting(
        "--token",
        TEXT,
        "",
        'bearer token sent with every call, e.g. "$(cat certs/token.jwt)"; TLS only',
        shown="none",
    ),
    Setting(
        "--admin-port",
        WHOLE_NUMBER,
        0,
        "serve gRPC's channelz (the client's connections and calls, per replica) and "
        "reflection on 127.0.0.1 at this port while the client runs; 0: none",
    ),
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The settings (SETTINGS) from the command line and the environment, checked."""
    parser = SETTINGS.parser("grpctest-client", __doc__.splitlines()[0])
    args = SETTINGS.parse(parser, argv)
    _check_ranges(parser, args)
    _check_tls(parser, args)
    args.ca_pem, args.cert_pem, args.key_pem = (
        read_file(parser, flag, path)
        for flag, path in (("--ca", args.ca), ("--cert", args.cert), ("--key", args.key))
    )
    return args


def _check_ranges(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors for numbers the table's kinds accept but the calls cannot use."""
    if args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be positive, got {show_seconds(args.timeout)}")
    if args.interval < 0:
        parser.error(f"--interval must not be negative, got {show_seconds(args.interval)}")
    if args.resume_attempts < 0:
        parser.error(f"--resume-attempts must not be negative, got {args.resume_attempts}")
    if not 0 <= args.admin_port < 65536:
        parser.error(f"--admin-port must be between 0 (none) and 65535, got {args.admin_port}")
    if needs_bootstrap(args.target):
        parser.error(
            f"--target {args.target} needs an xDS bootstrap: set GRPC_XDS_BOOTSTRAP (a file) "
            "or GRPC_XDS_BOOTSTRAP_CONFIG (its JSON)"
        )


def _check_tls(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A CA or a client certificate implies TLS; a certificate needs its key; a token
    needs TLS."""
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    args.tls = args.tls or bool(args.ca or args.cert)
    if args.token and not args.tls:
        parser.error(
            "--token needs TLS (--tls, --ca; Envoy's :8443): a token is never sent in the clear"
        )


def report_resumes(output: str) -> OnResume:
    """Each resume, one line on stderr: "resumed after 558 on replica-3", or with
    --output json {"resumed":{"after":558,"replica":"replica-3"}} (the Go client's bytes)."""

    def report(after: int, replica: str) -> None:
        line = f"resumed after {after} on {replica}"
        if output == "json":
            line = _json({"resumed": {"after": after, "replica": replica}})
        print(line, file=sys.stderr, flush=True)

    return report


def _replies(args: argparse.Namespace, channel: grpc.Channel) -> Iterator[MessageResponse]:
    """The replies of the mode's calls, as they arrive."""
    resume = Resume(args.resume_attempts, report_resumes(args.output))
    if args.mode == "server-stream":
        return stream_server_responses(
            channel, args.message, args.count, args.interval, args.timeout, resume=resume
        )
    if args.mode == "chat":
        messages = Messages(args.message, args.count, args.interval)
        return chat(channel, messages, args.timeout, resume=resume)
    return get_server_responses(channel, args.message, args.count, args.timeout, args.interval)


def run(args: argparse.Namespace) -> collections.Counter[str]:
    """Makes the calls, prints each reply, and returns the replies per replica."""
    per_replica: collections.Counter[str] = collections.Counter()
    connection = Connection(
        args.target, args.tls, args.ca_pem, args.cert_pem, args.key_pem, args.token or None
    )
    with open_channel(connection) as channel:
        for i, reply in enumerate(_replies(args, channel), start=1):
            per_replica[reply.replica] += 1
            # A stream's reply carries its place in the stream (a unary reply: 0).
            print(reply_line(args, reply.sequence or i, reply))
    return per_replica


def reply_line(args: argparse.Namespace, position: int, reply: MessageResponse) -> str:
    """One reply as printed, at its place in the run: for people, as
    "[position/count] replica: message (received=true)", or one JSON object (the Go
    client's fields)."""
    if args.output == "json":
        fields = {"n": position, "replica": reply.replica, "message": reply.message}
        fields |= {"received": reply.received, "sequence": reply.sequence}
        return _json(fields)
    received = str(reply.received).lower()
    return f"[{position}/{args.count}] {reply.replica}: {reply.message} (received={received})"


def print_json_summary(target: str, per_replica: collections.Counter[str]) -> None:
    """{"summary": {...}}, the last line of --output json."""
    replies, by_name = sum(per_replica.values()), dict(sorted(per_replica.items()))
    summary = {"replies": replies, "target": target, "per_replica": by_name}
    print(_json({"summary": summary}))


def _json(value: object) -> str:
    """One line of --output json, byte for byte as the Go client writes it: compact, and
    non-ASCII characters, <, > and & as they are (no \\u escapes)."""
    return json.dumps(value, separators=COMPACT, ensure_ascii=False)


def print_summary(target: str, per_replica: collections.Counter[str], what: str = "calls") -> None:
    print(
        f"summary: {sum(per_replica.values())} {what} through {target}, "
        f"{len(per_replica)} replicas answered"
    )
    for replica, count in sorted(per_replica.items()):
        print(f"  {replica}: {count} {what}")


@contextlib.contextmanager
def admin_services(port: int) -> Iterator[None]:
    """gRPC's admin services on 127.0.0.1:`port` while the calls run (0: none)."""
    if not port:
        yield
        return
    from grpctest_client.admin import serve_admin  # noqa: PLC0415 (only with --admin-port)

    server = serve_admin(port)
    try:
        yield
    finally:
        server.stop(grace=None)


def report(args: argparse.Namespace, failed: Failure) -> int:
    """A failed run: one line on stderr, and with --output json its object on stdout."""
    print(f"error: {failed}", file=sys.stderr)
    if args.output == "json":
        print(_json(failed.as_json()))
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with tracing("grpctest-client"), admin_services(args.admin_port):
            per_replica = run(args)
    except grpc.RpcError as err:
        return report(args, failure(err))
    except OutOfSequenceError as err:
        return report(args, Failure(err.code, str(err)))
    except KeyboardInterrupt:
        return 130
    if args.output == "json":
        print_json_summary(args.target, per_replica)
    elif args.count > 1:
        print_summary(args.target, per_replica, "calls" if args.mode == "unary" else "replies")
    return 0
