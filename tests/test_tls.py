"""TLS through Envoy's :8443 listener (certificates from certs/generate.sh, `make certs`):
server authentication, mutual TLS, and the configuration graded by sslyze. (Who may call
what over TLS: tests/test_auth.py.)"""

from __future__ import annotations

import datetime
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from grpctest_devtools.clients import CLIENTS, JSON_OUTPUT, calls_per_replica, run_client
from grpctest_devtools.localstack import LocalStack
from grpctest_devtools.repo import CERTS, command

REPLICAS = 3
CLIENT_CERT = ["--cert", str(CERTS / "client.crt"), "--key", str(CERTS / "client.key")]


@pytest.mark.parametrize("client", CLIENTS)
def test_client_over_tls_with_the_local_ca(stack, client: str) -> None:
    result = run_client(
        client,
        stack.tls_target,
        "--ca",
        str(CERTS / "ca.crt"),
        *CLIENT_CERT,
        "--count",
        "9",
        *JSON_OUTPUT,
    )
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


# -- mutual TLS ------------------------------------------------------------------------------


def ssl_stats(stack) -> dict[str, int]:
    prefix = f"listener.127.0.0.1_{stack.tls_port}.ssl."
    return {k.removeprefix(prefix): v for k, v in stack.admin.stats(prefix).items()}


@pytest.mark.parametrize("client", CLIENTS)
def test_client_certificate_from_the_local_ca_is_accepted(stack, client: str) -> None:
    before = ssl_stats(stack)
    result = run_client(client, stack.tls_target, "--ca", str(CERTS / "ca.crt"), *CLIENT_CERT)
    assert result.returncode == 0, result.stderr
    after = ssl_stats(stack)
    assert after["handshake"] > before["handshake"]
    # The client presented its certificate and Envoy verified it.
    assert after.get("no_certificate", 0) == before.get("no_certificate", 0)
    assert after.get("fail_verify_error", 0) == before.get("fail_verify_error", 0)


def test_grpcurl_with_a_client_certificate(stack) -> None:
    result = subprocess.run(
        [command("grpcurl"), "-cacert", str(CERTS / "ca.crt"), "-cert", str(CERTS / "client.crt"),
         "-key", str(CERTS / "client.key"), stack.tls_target, "list"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "grpctest.Grpctest" in result.stdout.split()


def test_client_certificate_from_another_ca_is_refused(stack, tmp_path: Path) -> None:
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", tmp_path / "other.key", "-out", tmp_path / "other.crt",
         "-days", "30", "-subj", "/CN=not-from-the-local-ca"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    before = ssl_stats(stack)
    other = ["--cert", str(tmp_path / "other.crt"), "--key", str(tmp_path / "other.key")]
    # The Python client presents any certificate it is given (grpc-go, like grpcurl,
    # offers only one from a CA the server names, and would connect without it).
    result = run_client(
        "py-client", stack.tls_target, "--ca", str(CERTS / "ca.crt"), *other, "--timeout", "3"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: UNAVAILABLE: "), result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert ssl_stats(stack)["fail_verify_error"] > before.get("fail_verify_error", 0)


# -- the certificates and the TLS configuration, graded -------------------------------------


@pytest.mark.parametrize("name", ["ca.crt", "server.crt", "client.crt"])
def test_certificates_live_at_most_365_days(stack, name: str) -> None:
    certificate = x509.load_pem_x509_certificate((CERTS / name).read_bytes())
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=365), lifetime


def test_tls_listener_meets_mozillas_intermediate_configuration(stack) -> None:
    """sslyze, with the development CA trusted (a local CA is not a public one)."""
    result = subprocess.run(
        [command("sslyze"), "--mozilla_config=intermediate",
         "--certinfo_ca_file", str(CERTS / "ca.crt"), stack.tls_target],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert f"{stack.tls_target}: OK - Compliant." in result.stdout


# -- TLS from Envoy to the replicas, too ---------------------------------------------------


@pytest.fixture
def tls_stack(tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack.on_free_ports(log_dir=tmp_path, upstream_tls=True) as stack:
        yield stack


def test_the_hop_to_the_replicas_can_be_tls_too(tls_stack) -> None:
    result = run_client("go-client", tls_stack.target, "--count", "9", *JSON_OUTPUT)
    assert result.returncode == 0, result.stderr
    assert len(calls_per_replica(result.stdout)) == REPLICAS
    handshakes = "cluster.grpctest.ssl.handshake"
    assert tls_stack.admin.stats(handshakes)[handshakes] >= REPLICAS
    # The replicas speak TLS only: plaintext straight to one fails, TLS with the CA works.
    replica = tls_stack.replica_target(0)
    plaintext = run_client("py-client", replica, "--timeout", "3")
    assert plaintext.returncode == 1
    assert plaintext.stderr.startswith("error: UNAVAILABLE: ")
    direct = run_client(
        "py-client", f"localhost:{tls_stack.ports[0]}", "--ca", str(CERTS / "ca.crt")
    )
    assert direct.returncode == 0, direct.stderr
