"""Channels to a grpctest server or to Envoy: one way to connect for every program.

    connection = Connection("localhost:8443", tls=True, ca_pem=ca, token=jwt)
    with open_channel(connection) as channel:           # grpc (blocking stubs)
        ...

Plaintext, or TLS trusting a CA (or the system's trust store), optionally with a client
certificate (mutual TLS) and a bearer token on every call; traced (W3C traceparent) when
an OTLP endpoint is set (grpctest_common.tracing).

Where the calls go follows from the target (docs/load-balancing.md):

    localhost:8080                   one connection, to Envoy, which balances every call
    xds:///grpctest                  proxyless: the xDS control plane named by the
                                     bootstrap (GRPC_XDS_BOOTSTRAP, a file, or
                                     GRPC_XDS_BOOTSTRAP_CONFIG, its JSON) sends the
                                     replicas, their health, the balancing and the retries
    dns:///py-server:50051           client-side, no control plane: every address the name
    ipv4:127.0.0.1:50051,127.0.0.1:50052   resolves to (or every listed one) gets a
                                     connection; SERVICE_CONFIG balances and retries

Every channel pings a connection that has calls open but has gone quiet (KEEPALIVE), so
that calls on a replica that stopped answering fail UNAVAILABLE and are retried.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from grpctest_common import tracing

# A channel argument, as grpc takes them.
Option = tuple[str, str | int]
# A connection with calls open is pinged every second; one whose ping is not answered
# within a second is closed, and its calls fail UNAVAILABLE (retried where the policy
# allows). A frozen replica's calls then end within about 2 s, not at their deadline.
# Pings are sent whether or not this side has sent data meanwhile (a server stream's
# caller sends none). The servers allow pings every 0.5 s while calls are open; the
# Go client cannot ping more often than every 10 s (grpc-go's floor).
KEEPALIVE: tuple[Option, ...] = (
    ("grpc.keepalive_time_ms", 1000),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.http2.max_pings_without_data", 0),
)
# Client-side balancing (dns:, ipv4:, ipv6: targets): round robin over every address,
# each replica's grpctest.Grpctest health watched (a replica reporting NOT_SERVING gets
# no calls), a call that fails UNAVAILABLE tried again on another replica (at most 3
# attempts). The Go client uses the same file (go-common/balancing).
SERVICE_CONFIG = Path(__file__).with_name("service_config.json").read_text()
BALANCED_SCHEMES = ("dns:", "ipv4:", "ipv6:")
XDS_SCHEME = "xds:"
BOOTSTRAP_VARIABLES = ("GRPC_XDS_BOOTSTRAP", "GRPC_XDS_BOOTSTRAP_CONFIG")


def balanced(target: str) -> bool:
    """Whether the client balances calls to `target` itself over DNS or a list."""
    return target.startswith(BALANCED_SCHEMES)


def needs_bootstrap(target: str) -> bool:
    """Whether `target` is an xDS one while no bootstrap is set (gRPC would only fail
    later, at the first call)."""
    return target.startswith(XDS_SCHEME) and not any(map(os.environ.get, BOOTSTRAP_VARIABLES))


def channel_options(target: str, options: Sequence[Option] = ()) -> list[Option]:
    """The options every channel to `target` gets, then `options`."""
    policy = [("grpc.service_config", SERVICE_CONFIG)] if balanced(target) else []
    return [*KEEPALIVE, *policy, *options]


@dataclass(frozen=True)
class Connection:
    """Where and how to connect: plaintext, or TLS trusting `ca_pem` (None: the system's
    trust store), optionally with a client certificate (mutual TLS) and a bearer token
    on every call (TLS only: gRPC sends no token in the clear)."""

    target: str
    tls: bool = False
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    token: str | None = None

    def credentials(self) -> grpc.ChannelCredentials | None:
        """The channel credentials of a TLS connection (None for plaintext)."""
        if not self.tls:
            return None
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=self.key_pem,
            certificate_chain=self.cert_pem,
        )
        if self.token:
            credentials = grpc.composite_channel_credentials(
                credentials, grpc.access_token_call_credentials(self.token)
            )
        return credentials


def open_channel(connection: Connection, options: Sequence[Option] = ()) -> grpc.Channel:
    """A blocking channel with the connection's credentials, traced when tracing is on."""
    credentials = connection.credentials()
    options = channel_options(connection.target, options)
    if credentials is None:
        channel = grpc.insecure_channel(connection.target, options)
    else:
        channel = grpc.secure_channel(connection.target, credentials, options)
    if tracing.enabled():
        # Imported only when tracing is on (about 0.1 s at start; see tracing).
        from opentelemetry.instrumentation.grpc import client_interceptor, grpcext  # noqa: PLC0415

        channel = grpcext.intercept_channel(channel, client_interceptor())
    return channel
