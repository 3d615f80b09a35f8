"""The grpctest server: grpctest.Grpctest on grpc.aio, with Health and Server Reflection.

servicer      the service itself
validation    the check of every request it gets (an interceptor): parses, and keeps
              the rules of the contract (protovalidate), answering with BadRequest details
interception  the plumbing the interceptors share: a handler rebuilt around each call
metrics       Prometheus metrics of every call, and health, on their own port
lifecycle     build, start, drain and stop the server (health, reflection included)
health        the standard Health service (the library's servicer, plus List)
reflection    Server Reflection under v1 and v1alpha
cli           the `grpctest-server` command: settings, workers
healthcheck   the `grpctest-healthcheck` probe (Docker HEALTHCHECK, readiness checks)
"""
