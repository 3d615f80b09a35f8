"""Derives the local run's Envoy config from envoy/envoy.yaml.

envoy/envoy.yaml is the one source of truth (written for docker compose, where the
replicas are found by DNS as py-server:50051). The local run changes only where
things are: the upstream endpoints become 127.0.0.1 ports, the listeners and admin
bind on loopback (on ports the caller chooses), and the files Envoy reads (certificates,
the descriptor set, the web page) come from the checkout instead of the container's
mounts. Every other setting
(health checks, retries, timeouts, balancing, limits) is used exactly as written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grpctest_devtools.envoy import UPSTREAM_CLUSTER
from grpctest_devtools.ports import LOOPBACK
from grpctest_devtools.repo import ENVOY_YAML, REPO

GRPC_LISTENER = "grpc_listener"
TLS_LISTENER = "grpc_tls_listener"
CONTAINER_CERTS = "/etc/envoy/certs/"
# Where compose mounts what Envoy reads -> where it is in the checkout (most specific
# first). The certificates' folder is the caller's (tests use their own).
MOUNTS = {"/etc/envoy/": REPO / "envoy", "/srv/web/": REPO / "web" / "dist"}


OTLP_CLUSTER = "otlp_collector"
UPSTREAM_TLS_CONTEXT = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
)


@dataclass(frozen=True)
class LocalPorts:
    """Where the local run listens: the replicas, Envoy's listeners and admin, and the
    OTLP collector Envoy sends its spans to (if one runs)."""

    upstreams: Sequence[int]
    grpc: int
    admin: int
    tls: int
    otlp: int = 4317


def load_compose_config(path: Path = ENVOY_YAML) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def local_config(
    ports: LocalPorts, certs_dir: Path, *, upstream_tls: bool = False
) -> dict[str, Any]:
    """envoy.yaml with endpoints, bind addresses and certificate paths swapped; with
    `upstream_tls`, the hop to the replicas is TLS too (certs/replica.crt)."""
    config = load_compose_config()
    config["admin"]["address"]["socket_address"] = _loopback(ports.admin)

    resources = config["static_resources"]
    listeners = {listener["name"]: listener for listener in resources["listeners"]}
    for name, port in ((GRPC_LISTENER, ports.grpc), (TLS_LISTENER, ports.tls)):
        listeners[name]["address"]["socket_address"] = _loopback(port)
    relocate_files(config, {CONTAINER_CERTS: certs_dir, **MOUNTS})

    clusters = {cluster["name"]: cluster for cluster in resources["clusters"]}
    _endpoints(clusters[UPSTREAM_CLUSTER], ports.upstreams)
    _endpoints(clusters[OTLP_CLUSTER], [ports.otlp])
    if upstream_tls:
        clusters[UPSTREAM_CLUSTER]["transport_socket"] = _upstream_tls(certs_dir)
    return config


def _endpoints(cluster: dict[str, Any], ports: Sequence[int]) -> None:
    endpoints = [{"endpoint": {"address": {"socket_address": _loopback(p)}}} for p in ports]
    cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": endpoints}]


def _upstream_tls(certs_dir: Path) -> dict[str, Any]:
    """TLS to the replicas, trusting the development CA and checking their name."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": UPSTREAM_TLS_CONTEXT,
            "sni": "py-server",
            "common_tls_context": {
                "alpn_protocols": ["h2"],
                "validation_context": {
                    "trusted_ca": {"filename": str(certs_dir / "ca.crt")},
                    "match_typed_subject_alt_names": [
                        {"san_type": "DNS", "matcher": {"exact": "py-server"}}
                    ],
                },
            },
        },
    }


def relocate_files(node: Any, mounts: dict[str, Path]) -> None:
    """Every path under a mounted folder (a certificate's `filename`, the transcoder's
    `proto_descriptor`, ...) becomes the same file in the checkout."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        if isinstance(value, str):
            mount = next((m for m in mounts if value.startswith(m)), None)
            if mount is not None:
                node[key] = str(mounts[mount] / value.removeprefix(mount))
        else:
            relocate_files(value, mounts)


def _loopback(port: int) -> dict[str, Any]:
    return {"address": LOOPBACK, "port_value": port}


def write_local_config(
    path: Path,
    ports: LocalPorts,
    certs_dir: Path,
    *,
    upstream_tls: bool = False,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Writes local_config(), changed in place by `edit` first if given."""
    config = local_config(ports, certs_dir, upstream_tls=upstream_tls)
    if edit is not None:
        edit(config)
    path.write_text(yaml.dump(config, Dumper=_PlainDumper, sort_keys=False), encoding="utf-8")
    return path


class _PlainDumper(yaml.SafeDumper):
    """Writes shared nodes (the anchored connection manager) out in full, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
