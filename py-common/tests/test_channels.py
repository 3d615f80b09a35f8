"""Where a channel's calls go follows from its target (grpctest_common.channels)."""

from __future__ import annotations

import json

import pytest

from grpctest_common.channels import SERVICE_CONFIG, channel_options, needs_bootstrap


@pytest.mark.parametrize(
    ("target", "balanced"),
    [
        ("localhost:8080", False),
        ("xds:///grpctest", False),
        ("dns:///replicas:50051", True),
        ("ipv4:127.0.0.1:50051,127.0.0.1:50052", True),
    ],
)
def test_only_dns_and_list_targets_get_the_client_side_policy(target: str, balanced: bool) -> None:
    options = dict(channel_options(target))
    assert ("grpc.service_config" in options) == balanced
    assert options["grpc.keepalive_time_ms"] == 1000  # every channel pings


def test_the_policy_is_round_robin_with_health_and_retries() -> None:
    config = json.loads(SERVICE_CONFIG)
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": "grpctest.Grpctest"}
    (method,) = config["methodConfig"]
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_an_xds_target_needs_a_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRPC_XDS_BOOTSTRAP", raising=False)
    monkeypatch.delenv("GRPC_XDS_BOOTSTRAP_CONFIG", raising=False)
    assert needs_bootstrap("xds:///grpctest")
    assert not needs_bootstrap("localhost:8080")
    monkeypatch.setenv("GRPC_XDS_BOOTSTRAP", "/etc/grpctest/xds-bootstrap.json")
    assert not needs_bootstrap("xds:///grpctest")
