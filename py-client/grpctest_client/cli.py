"""`grpctest-client`: calls grpctest.Grpctest, normally through Envoy.

Over one channel (one HTTP/2 connection) to --target, in one of three modes:

    unary           --count calls of GetServerResponse (the default)
    server-stream   one StreamServerResponses call: --count replies, one every --interval
    chat            one Chat stream: sends --count messages, one every --interval

It prints each reply with the replica that answered and, for more than one reply, how
many each replica answered (--output json: one JSON object per reply and a summary); a
stream's replies are numbered by their own sequence. A stream or chat that breaks (a
replica shutting down or dying) goes on on another replica from the last reply received,
up to --resume-attempts times within --timeout, and says so on stderr ("resumed after 558
on replica-3"). A failed call ends the run with the gRPC status name and detail and exit
code 1.

    grpctest-client --target localhost:8080 --message hi --count 30
    grpctest-client --mode server-stream --count 10000
    grpctest-client --target localhost:8443 --ca certs/ca.crt      # TLS through Envoy
    grpctest-client --target localhost:8443 --ca certs/ca.crt \
        --cert certs/client.crt --key certs/client.key                 # mutual TLS
    grpctest-client --target localhost:8443 --ca certs/ca.crt \
        --token "$(cat certs/token.jwt)"                               # a bearer token

Tracing: set OTEL_EXPORTER_OTLP_ENDPOINT and every call starts a trace (W3C traceparent).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from grpctest_common.settings import env, env_bool

# A CLI reports a failure in one line of its own; gRPC core would also log it (e.g. a
# failed TLS handshake, at ERROR). Set GRPC_VERBOSITY yourself to see those logs. It is
# read when grpc is first imported, so it is set before the import below.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc

from grpctest.grpctest_pb2 import MessageResponse
from grpctest_client.calls import (
    Connection,
    Resume,
    chat,
    get_server_responses,
    open_channel,
    stream_server_responses,
)
from grpctest_client.resume import Messages, OutOfSequenceError
from grpctest_common.tracing import tracing

DEFAULT_MESSAGE = "Hello Server you there?"
MODES = ("unary", "server-stream", "chat")
OUTPUTS = ("text", "json")
# --output json as the Go client writes it (encoding/json): no spaces.
COMPACT = (",", ":")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="grpctest-client", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target",
        default=env("GRPCTEST_TARGET", "localhost:8080"),
        help="host:port to call (env GRPCTEST_TARGET, default %(default)s)",
    )
    parser.add_argument(
        "--message",
        default=env("GRPCTEST_MESSAGE", DEFAULT_MESSAGE),
        help="message to send (env GRPCTEST_MESSAGE, default %(default)r)",
    )
    parser.add_argument(
        "--mode",
        default=env("GRPCTEST_MODE", "unary"),
        help=f"{', '.join(MODES)}: unary calls, one server stream, or one chat "
        "(env GRPCTEST_MODE, default %(default)s)",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=env("GRPCTEST_COUNT", "1"),
        help="calls (unary), replies (server-stream) or messages (chat) "
        "(env GRPCTEST_COUNT, default %(default)s)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=env("GRPCTEST_INTERVAL", "0"),
        help="seconds between a stream's replies (server-stream) or messages (chat) "
        "(env GRPCTEST_INTERVAL, default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=env("GRPCTEST_TIMEOUT", "5"),
        help="deadline of each call, or of the whole stream, in seconds "
        "(env GRPCTEST_TIMEOUT, default %(default)s)",
    )
    parser.add_argument(
        "--resume-attempts",
        type=int,
        default=env("GRPCTEST_RESUME_ATTEMPTS", "5"),
        help="times a broken server stream or chat is resumed on another replica, 0 for "
        "never (env GRPCTEST_RESUME_ATTEMPTS, default %(default)s)",
    )
    parser.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=env_bool(parser, "GRPCTEST_TLS", False),
        help="connect with TLS (env GRPCTEST_TLS); e.g. Envoy's :8443",
    )
    parser.add_argument(
        "--ca",
        default=env("GRPCTEST_CA", ""),
        help="CA certificate (PEM) to trust, e.g. certs/ca.crt; implies --tls "
        "(env GRPCTEST_CA, default: the system's trust store)",
    )
    parser.add_argument(
        "--cert",
        default=env("GRPCTEST_CERT", ""),
        help="client certificate (PEM) for mutual TLS, e.g. certs/client.crt; needs --key "
        "and implies --tls (env GRPCTEST_CERT)",
    )
    parser.add_argument(
        "--key",
        default=env("GRPCTEST_KEY", ""),
        help="the client certificate's private key (PEM), e.g. certs/client.key (env GRPCTEST_KEY)",
    )
    parser.add_argument(
        "--output",
        default=env("GRPCTEST_OUTPUT", "text"),
        help="text for people; json for programs: one JSON object per reply, then one "
        "summary object (env GRPCTEST_OUTPUT, default %(default)s)",
    )
    parser.add_argument(
        "--token",
        default=env("GRPCTEST_TOKEN", ""),
        help='bearer token sent with every call, e.g. "$(cat certs/token.jwt)"; TLS only '
        "(env GRPCTEST_TOKEN)",
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")
    if args.timeout <= 0:
        parser.error(f"--timeout must be positive, got {args.timeout}")
    if args.interval < 0:
        parser.error(f"--interval must not be negative, got {args.interval}")
    if args.resume_attempts < 0:
        parser.error(f"--resume-attempts must not be negative, got {args.resume_attempts}")
    if args.mode not in MODES:
        parser.error(f"--mode must be one of {', '.join(MODES)}, got {args.mode!r}")
    if args.output not in OUTPUTS:
        parser.error(f"--output must be one of {', '.join(OUTPUTS)}, got {args.output!r}")
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    args.tls = args.tls or bool(args.ca or args.cert)
    if args.token and not args.tls:
        parser.error(
            "--token needs TLS (--tls, --ca; Envoy's :8443): a token is never sent in the clear"
        )
    args.ca_pem, args.cert_pem, args.key_pem = (
        _read(parser, flag, path)
        for flag, path in (("--ca", args.ca), ("--cert", args.cert), ("--key", args.key))
    )
    return args


def _read(parser: argparse.ArgumentParser, flag: str, path: str) -> bytes | None:
    """The file's bytes (None for no file); a usage error if it cannot be read."""
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as err:
        parser.error(f"cannot read {flag} {path}: {err.strerror}")


def _resumed(after: int, replica: str) -> None:
    print(f"resumed after {after} on {replica}", file=sys.stderr, flush=True)


def _replies(args: argparse.Namespace, channel: grpc.Channel) -> Iterator[MessageResponse]:
    """The replies of the mode's calls, as they arrive."""
    resume = Resume(args.resume_attempts, _resumed)
    if args.mode == "server-stream":
        return stream_server_responses(
            channel, args.message, args.count, args.interval, args.timeout, resume=resume
        )
    if args.mode == "chat":
        messages = Messages(args.message, args.count, args.interval)
        return chat(channel, messages, args.timeout, resume=resume)
    return get_server_responses(channel, args.message, args.count, args.timeout)


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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with tracing("grpctest-client"):
            per_replica = run(args)
    except grpc.RpcError as err:
        print(f"error: {err.code().name}: {err.details()}", file=sys.stderr)
        return 1
    except OutOfSequenceError as err:
        print(f"error: {err.code}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.output == "json":
        print_json_summary(args.target, per_replica)
    elif args.count > 1:
        print_summary(args.target, per_replica, "calls" if args.mode == "unary" else "replies")
    return 0
