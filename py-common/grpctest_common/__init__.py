"""Helpers every grpctest program (server, clients, local run, benchmark) shares.

settings  settings declared once as a table (flag, variable, kind, default, help), the
          command line built from it, one wording for bad values in Python and Go
channels  the one way to open a channel: plaintext or TLS, client certificate, token
tracing   OpenTelemetry spans over OTLP, on when OTEL_EXPORTER_OTLP_ENDPOINT is set
"""
