"""Derives the local run's Envoy config from envoy/envoy.yaml.

envoy/envoy.yaml is the one source of truth (written for docker compose, where the
replicas are found by DNS as py-server:50051). The local run changes only where
things are: the upstream endpoints become 127.0.0.1 ports, the listeners and admin
bind on loopback (on ports the caller chooses), and the TLS listener reads its
certificate from a local folder instead of /etc/envoy/certs. Every other setting
(health checks, retries, timeouts, balancing, limits) is used exactly as written.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ENVOY_YAML = Path(__file__).resolve().parent.parent / "envoy" / "envoy.yaml"
LOOPBACK = "127.0.0.1"
UPSTREAM_CLUSTER = "py_server"
GRPC_LISTENER = "grpc_listener"
TLS_LISTENER = "grpc_tls_listener"
CONTAINER_CERTS = "/etc/envoy/certs/"


def load_compose_config(path: Path = ENVOY_YAML) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def local_config(
    upstream_ports: Sequence[int],
    listen_port: int,
    admin_port: int,
    tls_port: int,
    certs_dir: Path,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Returns envoy.yaml with endpoints, bind addresses and certificate paths swapped."""
    config = copy.deepcopy(base if base is not None else load_compose_config())
    config["admin"]["address"]["socket_address"] = {"address": LOOPBACK, "port_value": admin_port}

    resources = config["static_resources"]
    listeners = {l["name"]: l for l in resources["listeners"]}
    for name, port in ((GRPC_LISTENER, listen_port), (TLS_LISTENER, tls_port)):
        listeners[name]["address"]["socket_address"] = {"address": LOOPBACK, "port_value": port}
    tls = listeners[TLS_LISTENER]["filter_chains"][0]["transport_socket"]["typed_config"]
    for pair in tls["common_tls_context"]["tls_certificates"]:
        for part in pair.values():
            part["filename"] = str(certs_dir / part["filename"].removeprefix(CONTAINER_CERTS))

    (cluster,) = [c for c in resources["clusters"] if c["name"] == UPSTREAM_CLUSTER]
    cluster["load_assignment"]["endpoints"] = [
        {
            "lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": LOOPBACK, "port_value": port}}}}
                for port in upstream_ports
            ]
        }
    ]
    return config


def write_local_config(path: Path, upstream_ports: Sequence[int], listen_port: int,
                       admin_port: int, tls_port: int, certs_dir: Path) -> Path:
    config = local_config(upstream_ports, listen_port, admin_port, tls_port, certs_dir)
    path.write_text(yaml.dump(config, Dumper=_PlainDumper, sort_keys=False), encoding="utf-8")
    return path


class _PlainDumper(yaml.SafeDumper):
    """Writes shared nodes (the anchored connection manager) out in full, no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
