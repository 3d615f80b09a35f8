"""Derives the local run's Envoy config from envoy/envoy.yaml.

envoy/envoy.yaml is the one source of truth (written for docker compose, where the
replicas are found by DNS as py-server:50051 and go-server:50051). The local run changes
only where things are: the upstream endpoints become 127.0.0.1 ports (each named, as its
hostname, for the compose service it stands in for, as Envoy names a host found by DNS),
the listeners and admin bind on loopback (on ports the caller chooses), and the files
Envoy reads (certificates, the descriptor set, the web page) come from the checkout
instead of the container's mounts. Every other setting (health checks, retries, timeouts,
balancing, limits) is used exactly as written.

Whatever changes the config (this module, an opt-in such as upstream_tls, the benchmark's
levers) finds what it edits by name, never by position: listener(), cluster(),
connection_manager(), virtual_host(), http_filters_without(); an Edit changes a derived
config in place.
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
# The certificates' folder is the caller's (tests use their own); every other file Envoy
# reads is where docker-compose.yml mounts it from (compose_mounts).
CONTAINER_CERTS = "/etc/envoy/certs/"


OTLP_CLUSTER = "otlp_collector"
ADMIN_CLUSTER = "envoy_admin"
# The names envoy.yaml finds the replicas by (its compose endpoints). Envoy's view of a
# host shows the name it was found by, and the web page tells Python and Go apart by it.
PY_SERVER = "py-server"
GO_SERVER = "go-server"
CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
UPSTREAM_TLS_CONTEXT = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
)


@dataclass(frozen=True)
class LocalPorts:
    """Where the local run listens: the replicas (the last `go_upstreams` of them
    go-server), Envoy's listeners and admin, and the OTLP collector Envoy sends its spans
    to (if one runs)."""

    upstreams: Sequence[int]
    grpc: int
    admin: int
    tls: int
    otlp: int = 4317
    go_upstreams: int = 0

    def hostnames(self) -> list[str]:
        """Each upstream's name: the compose service it stands in for."""
        python = len(self.upstreams) - self.go_upstreams
        return [PY_SERVER] * python + [GO_SERVER] * self.go_upstreams


Config = dict[str, Any]
Edit = Callable[[Config], None]


def named(items: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """The item of a list of Envoy resources whose `name` is `name` (KeyError if none)."""
    for item in items:
        if item.get("name") == name:
            return item
    raise KeyError(f"no {name!r} among {[item.get('name') for item in items]}")


def listener(config: Config, name: str) -> dict[str, Any]:
    return named(config["static_resources"]["listeners"], name)


def cluster(config: Config, name: str) -> dict[str, Any]:
    return named(config["static_resources"]["clusters"], name)


def connection_manager(config: Config, listener_name: str) -> dict[str, Any]:
    """The HTTP connection manager's settings on a listener (its one filter chain)."""
    (chain,) = listener(config, listener_name)["filter_chains"]
    manager: dict[str, Any] = named(chain["filters"], CONNECTION_MANAGER)["typed_config"]
    return manager


def virtual_host(manager: dict[str, Any], name: str) -> dict[str, Any]:
    return named(manager["route_config"]["virtual_hosts"], name)


def http_filters_without(manager: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The connection manager's HTTP filters less the one named `name` (which must be there)."""
    named(manager["http_filters"], name)
    return [f for f in manager["http_filters"] if f["name"] != name]


def load_compose_config(path: Path = ENVOY_YAML) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        config: dict[str, Any] = yaml.safe_load(f)
    return config


def local_config(ports: LocalPorts, certs_dir: Path) -> Config:
    """envoy.yaml with endpoints, bind addresses and file paths swapped, nothing else."""
    config = load_compose_config()
    config["admin"]["address"]["socket_address"] = _loopback(ports.admin)
    for name, port in ((GRPC_LISTENER, ports.grpc), (TLS_LISTENER, ports.tls)):
        listener(config, name)["address"]["socket_address"] = _loopback(port)
    relocate_files(config, {**compose_mounts("envoy"), CONTAINER_CERTS: certs_dir})
    _endpoints(cluster(config, UPSTREAM_CLUSTER), ports.upstreams, ports.hostnames())
    _endpoints(cluster(config, OTLP_CLUSTER), [ports.otlp])
    _endpoints(cluster(config, ADMIN_CLUSTER), [ports.admin])
    return config


def _endpoints(
    cluster: dict[str, Any], ports: Sequence[int], hostnames: Sequence[str] = ()
) -> None:
    """The cluster's endpoints become `ports` on loopback, named `hostnames` if given."""
    names: list[str | None] = [*hostnames] or [None] * len(ports)
    endpoints = [_endpoint(port, name) for port, name in zip(ports, names, strict=True)]
    cluster["load_assignment"]["endpoints"] = [{"lb_endpoints": endpoints}]


def _endpoint(port: int, hostname: str | None) -> dict[str, Any]:
    endpoint: dict[str, Any] = {"address": {"socket_address": _loopback(port)}}
    if hostname is not None:
        endpoint["hostname"] = hostname
    return {"endpoint": endpoint}


def upstream_tls(certs_dir: Path) -> Edit:
    """An opt-in: the hop to the replicas is TLS too (certs/replica.crt on their side)."""

    def edit(config: Config) -> None:
        cluster(config, UPSTREAM_CLUSTER)["transport_socket"] = _upstream_tls(certs_dir)

    return edit


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


def compose_mounts(service: str) -> dict[str, Path]:
    """Where docker-compose.yml mounts the checkout into a service: path in the container
    -> the file or folder in the checkout (read from the compose file, not repeated here)."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    volumes = (v.split(":") for v in compose["services"][service]["volumes"])
    return {inside: REPO / outside for outside, inside, *_ in volumes if outside.startswith(".")}


def relocate_files(node: Any, mounts: dict[str, Path]) -> None:
    """Every path under a mounted file or folder (a certificate's `filename`, the
    transcoder's `proto_descriptor`, ...) becomes the same file in the checkout; the
    most specific mount wins."""
    items = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else ()
    )
    for key, value in items:
        if isinstance(value, str):
            mount = max((m for m in mounts if value.startswith(m)), key=len, default=None)
            if mount is not None:
                node[key] = str(mounts[mount] / value.removeprefix(mount).lstrip("/"))
        else:
            relocate_files(value, mounts)


def _loopback(port: int) -> dict[str, Any]:
    return {"address": LOOPBACK, "port_value": port}


def write_local_config(
    path: Path, ports: LocalPorts, certs_dir: Path, edits: Sequence[Edit] = ()
) -> Path:
    """Writes local_config(), changed in place by each of `edits` first."""
    config = local_config(ports, certs_dir)
    for edit in edits:
        edit(config)
    path.write_text(yaml.dump(config, Dumper=_PlainDumper, sort_keys=False), encoding="utf-8")
    return path


class _PlainDumper(yaml.SafeDumper):
    """Writes shared nodes (the anchored connection manager) out in full, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
