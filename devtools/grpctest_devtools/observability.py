"""Prometheus and Jaeger next to the local stack: real backends for metrics and traces.

    with Prometheus(stack, port) as prometheus:   # scrapes Envoy and every replica
        prometheus.value('sum(grpc_server_handled_total)')
    with Jaeger(otlp_port, ui_port) as jaeger:     # receives OTLP, answers queries
        jaeger.traces("grpctest-client")

Prometheus is Debian's package (`make observability-tools`), configured from
prometheus/prometheus.yml with the local addresses; Jaeger is built from its Go module
(tools/jaeger). Each is stopped again, with its data, when the block ends.
"""

from __future__ import annotations

import json
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.ports import LOOPBACK, port_in_use
from grpctest_devtools.processes import Process
from grpctest_devtools.repo import REPO, command
from grpctest_devtools.waiting import wait_until

PROMETHEUS_YML = REPO / "prometheus" / "prometheus.yml"


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.loads(reply.read())


def prometheus_config(stack: LocalStack, scrape_seconds: float) -> dict[str, Any]:
    """prometheus/prometheus.yml with the local stack's addresses as static targets."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_YML.read_text())
    config["global"]["scrape_interval"] = config["global"]["evaluation_interval"] = (
        f"{scrape_seconds:g}s"
    )
    replicas = [f"{LOOPBACK}:{port}" for port in stack.metrics_ports]
    python = len(replicas) - stack.go_replicas  # the Go replicas come last
    targets = {
        "envoy": [f"{LOOPBACK}:{stack.admin_port}"],
        "py-server": replicas[:python],
        "go-server": replicas[python:],
    }
    config["scrape_configs"] = [job for job in config["scrape_configs"] if targets[job["job_name"]]]
    for job in config["scrape_configs"]:
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    return config


class PrometheusAPI:
    """Queries to a Prometheus server's HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector of a PromQL expression: [{"metric": {...}, "value": [t, v]}]."""
        query = urllib.parse.urlencode({"query": expression})
        reply = _get_json(f"{self.url}/api/v1/query?{query}")
        vector: list[dict[str, Any]] = reply["data"]["result"]
        return vector

    def value(self, expression: str) -> float | None:
        """The single value of an expression (None while there is none)."""
        result = self.query(expression)
        return float(result[0]["value"][1]) if result else None

    def version(self) -> str:
        """The version of the Prometheus that answers (its build info)."""
        version: str = _get_json(f"{self.url}/api/v1/status/buildinfo")["data"]["version"]
        return version


class Prometheus(PrometheusAPI):
    """A real Prometheus scraping the local stack, on 127.0.0.1:port."""

    def __init__(self, stack: LocalStack, port: int, scrape_seconds: float = 1) -> None:
        super().__init__(f"http://{LOOPBACK}:{port}")
        self._workdir = tempfile.TemporaryDirectory(prefix="grpctest-prometheus-")
        workdir = Path(self._workdir.name)
        config = workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(stack, scrape_seconds)))
        self.process = Process(
            "prometheus",
            [command("prometheus"), f"--config.file={config}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address={LOOPBACK}:{port}"],
            workdir / "prometheus.log",
        )  # fmt: skip

    def __enter__(self) -> Prometheus:
        self.process.start()
        try:
            wait_until(self._ready, 60, "Prometheus to be ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _ready(self) -> bool:
        self.process.check_alive()
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as reply:
            status: int = reply.status
        return status == 200

    def __exit__(self, *exc: object) -> None:
        self.process.stop(timeout=10)
        self._workdir.cleanup()


JAEGER_CONFIG = """
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_storage:
    backends:
      memory:
        memory:
          max_traces: 100000
  jaeger_query:
    # Not its own spans: it would send them to localhost:4317, and wait for it at exit.
    enable_tracing: false
    storage:
      traces: memory
    http:
      endpoint: {host}:{ui_port}
    grpc:
      endpoint: {host}:{grpc_port}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: {host}:{otlp_port}
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memory
"""


class Jaeger:
    """A real Jaeger (v2: an OpenTelemetry collector with Jaeger's storage and query),
    receiving OTLP/gRPC on 127.0.0.1:otlp_port, its UI and API on ui_port."""

    def __init__(self, otlp_port: int, ui_port: int, grpc_port: int) -> None:
        self.url = f"http://{LOOPBACK}:{ui_port}"
        self.otlp_port = otlp_port
        self.otlp_endpoint = f"http://{LOOPBACK}:{otlp_port}"
        self._workdir = tempfile.TemporaryDirectory(prefix="grpctest-jaeger-")
        config = Path(self._workdir.name) / "jaeger.yaml"
        config.write_text(
            JAEGER_CONFIG.format(
                host=LOOPBACK, ui_port=ui_port, grpc_port=grpc_port, otlp_port=otlp_port
            )
        )
        self.process = Process(
            "jaeger", [command("jaeger"), "--config", f"file:{config}"],
            Path(self._workdir.name) / "jaeger.log",
        )  # fmt: skip

    def __enter__(self) -> Jaeger:
        self.process.start()
        try:
            wait_until(
                lambda: self.services() is not None and port_in_use(self.otlp_port),
                60,
                "Jaeger to answer and receive",
            )
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop(timeout=10)
        self._workdir.cleanup()

    def services(self) -> list[str] | None:
        self.process.check_alive()
        return _get_json(f"{self.url}/api/services")["data"] or []

    def traces(self, service: str) -> list[dict[str, Any]]:
        """The traces with spans of `service`, as Jaeger's API returns them."""
        query = urllib.parse.urlencode({"service": service, "limit": 100})
        return _get_json(f"{self.url}/api/traces?{query}")["data"] or []
