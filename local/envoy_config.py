"""Derives the local run's Envoy config from envoy/envoy.yaml.

envoy/envoy.yaml is the one source of truth (written for docker compose, where the
replicas are found by DNS as py-server:50051). The local run changes only where
things are: the upstream endpoints become 127.0.0.1 ports, and the listener and
admin bind on loopback (on ports the caller chooses). Every other setting (health
checks, retries, timeouts, balancing) is used exactly as written.
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


def load_compose_config(path: Path = ENVOY_YAML) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def local_config(
    upstream_ports: Sequence[int],
    listen_port: int,
    admin_port: int,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Returns envoy.yaml with the endpoints and bind addresses swapped for loopback."""
    config = copy.deepcopy(base if base is not None else load_compose_config())
    config["admin"]["address"]["socket_address"] = {"address": LOOPBACK, "port_value": admin_port}

    resources = config["static_resources"]
    (listener,) = [l for l in resources["listeners"] if l["name"] == GRPC_LISTENER]
    listener["address"]["socket_address"] = {"address": LOOPBACK, "port_value": listen_port}

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
                       admin_port: int) -> Path:
    path.write_text(yaml.safe_dump(local_config(upstream_ports, listen_port, admin_port),
                                   sort_keys=False), encoding="utf-8")
    return path
