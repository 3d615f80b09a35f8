"""Changes to the local Envoy config for the benchmark's floors, REST path and levers.

Each function edits the config that grpctest_devtools.envoy_config derives from
envoy/envoy.yaml, in place, finding what it edits by name (envoy_config's lookups);
everything it does not touch stays as the project runs it.
"""

from __future__ import annotations

import base64
from typing import Any

from grpctest_devtools.envoy import UPSTREAM_CLUSTER
from grpctest_devtools.envoy_config import (
    GRPC_LISTENER,
    Config,
    Edit,
    cluster,
    connection_manager,
    http_filters_without,
    virtual_host,
)

HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
TRANSCODER = "envoy.filters.http.grpc_json_transcoder"
VIRTUAL_HOST = "grpc_backend"


def _connection_manager(config: Config) -> dict[str, Any]:
    return connection_manager(config, GRPC_LISTENER)


def _upstream(config: Config) -> dict[str, Any]:
    return cluster(config, UPSTREAM_CLUSTER)


def _upstream_http2(config: Config) -> dict[str, Any]:
    options = _upstream(config)["typed_extension_protocol_options"][HTTP_OPTIONS]
    return options["explicit_http_config"]["http2_protocol_options"]


def answer_itself(reply: bytes) -> Edit:
    """Envoy's floor: every request on the gRPC listener answered by Envoy itself
    (direct_response with this body), no upstream, every filter still in place."""

    def edit(config: Config) -> None:
        manager = _connection_manager(config)
        manager["route_config"] = {
            "name": "floor",
            "virtual_hosts": [
                {
                    "name": "floor",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"prefix": "/"},
                            "direct_response": {
                                "status": 200,
                                "body": {"inline_bytes": base64.b64encode(reply).decode()},
                            },
                            "response_headers_to_add": [
                                {"header": {"key": "content-type", "value": "application/grpc"}}
                            ],
                        }
                    ],
                }
            ],
        }

    return edit


def rest_upstream(health_path: str, prefix: str) -> Edit:
    """REST behind Envoy: requests under `prefix` go to the upstream over HTTP/1.1 as
    they are (no transcoder), and it is health-checked with GET `health_path`."""

    def edit(config: Config) -> None:
        upstream = _upstream(config)
        del upstream["typed_extension_protocol_options"]  # HTTP/1.1, Envoy's default
        (grpc_check,) = (c for c in upstream["health_checks"] if "grpc_health_check" in c)
        check = {k: v for k, v in grpc_check.items() if k != "grpc_health_check"}
        check["http_health_check"] = {"path": health_path}  # same timing, over HTTP
        upstream["health_checks"] = [check]
        manager = _connection_manager(config)
        manager["http_filters"] = http_filters_without(manager, TRANSCODER)
        routes = virtual_host(manager, VIRTUAL_HOST)["routes"]
        routes.insert(0, {"match": {"prefix": prefix}, "route": {"cluster": UPSTREAM_CLUSTER}})

    return edit


def without_access_log(config: Config) -> None:
    del _connection_manager(config)["access_log"]


def one_connection_per_replica(config: Config) -> None:
    """No stream limit on the upstream connections: one connection per replica (and
    Envoy worker thread), however many calls it carries."""
    del _upstream_http2(config)["max_concurrent_streams"]


def envoy_default_windows(config: Config) -> None:
    """Envoy's default HTTP/2 flow-control windows to the replicas (256 MiB), instead of
    the 64 KiB per stream (1 MiB per connection) envoy.yaml sets."""
    upstream = _upstream_http2(config)
    del upstream["initial_stream_window_size"], upstream["initial_connection_window_size"]


def least_request(config: Config) -> None:
    """Least request instead of round robin: of two random healthy replicas, the one
    with fewer calls in flight (Envoy's default choice count), so a faster replica gets
    more calls."""
    _upstream(config)["lb_policy"] = "LEAST_REQUEST"


def trace_every_call(config: Config) -> None:
    """Envoy's default sampling: every call traced and its span exported."""
    provider = _connection_manager(config)["tracing"]["provider"]
    del provider["typed_config"]["sampler"]
