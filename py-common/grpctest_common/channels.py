"""Channels to a grpctest server or to Envoy: one way to connect for every program.

    connection = Connection("localhost:8443", tls=True, ca_pem=ca, token=jwt)
    with open_channel(connection) as channel:           # grpc (blocking stubs)
        ...

Plaintext, or TLS trusting a CA (or the system's trust store), optionally with a client
certificate (mutual TLS) and a bearer token on every call; traced (W3C traceparent) when
an OTLP endpoint is set (grpctest_common.tracing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from grpctest_common import tracing

# A channel argument, as grpc takes them.
Option = tuple[str, str | int]


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
    if credentials is None:
        channel = grpc.insecure_channel(connection.target, options)
    else:
        channel = grpc.secure_channel(connection.target, credentials, options)
    if tracing.enabled():
        # Imported only when tracing is on (about 0.1 s at start; see tracing).
        from opentelemetry.instrumentation.grpc import client_interceptor, grpcext  # noqa: PLC0415

        channel = grpcext.intercept_channel(channel, client_interceptor())
    return channel
