"""TLS through Envoy's :8443 listener (certificate from certs/generate.sh, `make certs`)."""

from __future__ import annotations

import subprocess

import pytest

from grpctest_devtools.clients import CLIENTS, calls_per_replica, run_client
from grpctest_devtools.repo import CERTS, command

REPLICAS = 3


@pytest.mark.parametrize("client", CLIENTS)
def test_client_over_tls_with_the_local_ca(stack, client: str) -> None:
    result = run_client(client, stack.tls_target, "--ca", str(CERTS / "ca.crt"), "--count", "9")
    assert result.returncode == 0, result.stderr
    assert len(calls_per_replica(result.stdout)) == REPLICAS


@pytest.mark.parametrize("client", CLIENTS)
def test_tls_without_trusting_the_ca_fails_cleanly(stack, client: str) -> None:
    result = run_client(client, stack.tls_target, "--tls", "--timeout", "3")
    assert result.returncode == 1
    assert result.stderr.startswith("error: UNAVAILABLE: "), result.stderr
    assert "Traceback" not in result.stderr
    assert "panic" not in result.stderr


@pytest.mark.parametrize("client", CLIENTS)
def test_plaintext_to_the_tls_port_fails_cleanly(stack, client: str) -> None:
    result = run_client(client, stack.tls_target, "--timeout", "3")
    assert result.returncode == 1
    assert result.stderr.startswith("error: UNAVAILABLE: "), result.stderr


def test_grpcurl_with_cacert_lists_services_over_tls(stack) -> None:
    result = subprocess.run(
        [command("grpcurl"), "-cacert", str(CERTS / "ca.crt"), stack.tls_target, "list"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "grpctest.Grpctest" in result.stdout.split()
