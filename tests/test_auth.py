"""Who may call what on Envoy's TLS listener (:8443), with both clients and grpcurl.

:8080 stays open (the demo flows); :8443 needs credentials: a client certificate from
the grpctest CA or a bearer token (JWT) signed by its key. Missing or invalid ones are
UNAUTHENTICATED; valid ones that may not call are PERMISSION_DENIED. Health checks need
nothing; reflection needs any valid credential; the service needs the client identity
or a token with the scope grpctest.call.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest

from grpctest_devtools.clients import CLIENTS, JSON_OUTPUT, calls_per_replica, run_client
from grpctest_devtools.repo import CERTS, command

CA = ["--ca", str(CERTS / "ca.crt")]
UNAUTHENTICATED = (
    "this listener needs a client certificate from the grpctest CA (--cert/--key) "
    "or a bearer token (--token)"
)


def cert(name: str) -> list[str]:
    return ["--cert", str(CERTS / f"{name}.crt"), "--key", str(CERTS / f"{name}.key")]


def make_token(tmp_path: Path, *options: str, key: Path = CERTS / "jwt.key") -> str:
    """A token from certs/jwt.py, the tool `make certs` uses."""
    result = subprocess.run(
        ["python3", str(CERTS / "jwt.py"), "token", str(key), *options],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout.strip()


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp_path = tmp_path_factory.mktemp("tokens")
    other_key = tmp_path / "other.key"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(other_key), "2048"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return {
        "valid": (CERTS / "token.jwt").read_text().strip(),
        "read-only": (CERTS / "token-readonly.jwt").read_text().strip(),
        "expired": make_token(tmp_path, "--days", "-1"),
        "forged": make_token(tmp_path, key=other_key),
        "other-audience": make_token(tmp_path, "--audience", "someone-else"),
        "garbage": "not-a-jwt",
    }


def call(client: str, stack, *flags: str):
    return run_client(client, stack.tls_target, *CA, "--timeout", "5", *flags)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(("credential", "allowed"), [("client-cert", True), ("valid-token", True)])
def test_allowed_identities_call(
    stack, tokens, client: str, credential: str, allowed: bool
) -> None:
    flags = cert("client") if credential == "client-cert" else ["--token", tokens["valid"]]
    result = call(client, stack, *flags, "--count", "3", *JSON_OUTPUT)
    assert result.returncode == 0, result.stderr
    assert sum(calls_per_replica(result.stdout).values()) == 3, result.stdout


# The refusals below are read from the clients' error line, `error: STATUS: details` on
# stderr: the one way both clients report a failed call (text by design, also with
# --output json), checked whole.


@pytest.mark.parametrize("client", CLIENTS)
def test_no_credentials_is_unauthenticated(stack, client: str) -> None:
    result = call(client, stack)
    assert result.returncode == 1
    assert result.stderr == f"error: UNAUTHENTICATED: Jwt is missing: {UNAUTHENTICATED}\n"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("expired", "Jwt is expired"),
        ("forged", "Jwt verification fails"),
        (
            "garbage",
            "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        ),
    ],
)
def test_invalid_tokens_are_unauthenticated(
    stack, tokens, client: str, token: str, reason: str
) -> None:
    result = call(client, stack, "--token", tokens[token])
    assert result.returncode == 1
    assert result.stderr == f"error: UNAUTHENTICATED: {reason}: {UNAUTHENTICATED}\n"


@pytest.mark.parametrize("client", CLIENTS)
def test_a_bad_token_is_refused_even_with_a_client_certificate(stack, tokens, client: str) -> None:
    result = call(client, stack, *cert("client"), "--token", tokens["forged"])
    assert result.returncode == 1
    assert result.stderr.startswith("error: UNAUTHENTICATED: Jwt verification fails"), result.stderr


DENIED = "this identity may not call /grpctest.Grpctest/GetServerResponse"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("credential", "reason"),
    [
        ("guest-cert", "RBAC: access denied"),
        ("read-only", "RBAC: access denied"),
        # Signed by our key, but for another service: Envoy's JWT filter refuses it
        # as not allowed (403), not as unauthenticated.
        ("other-audience", "Audiences in Jwt are not allowed"),
    ],
)
def test_valid_but_not_allowed_is_permission_denied(
    stack, tokens, client: str, credential: str, reason: str
) -> None:
    flags = cert("guest") if credential == "guest-cert" else ["--token", tokens[credential]]
    result = call(client, stack, *flags)
    assert result.returncode == 1
    assert result.stderr == f"error: PERMISSION_DENIED: {reason}: {DENIED}\n"


def grpcurl(stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [command("grpcurl"), "-cacert", str(CERTS / "ca.crt"), *args],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def bearer(token: str) -> list[str]:
    return ["-H", f"authorization: Bearer {token}"]


# grpcurl exits with 64 + the call's status code, and with -format-error writes the
# status as JSON.
GRPCURL_STATUS_EXIT = 64


@pytest.mark.parametrize(
    ("credential", "code"),
    [("none", 16), ("valid", 0), ("read-only", 7)],  # UNAUTHENTICATED, OK, PERMISSION_DENIED
)
def test_grpcurl_calls_with_and_without_credentials(
    stack, tokens, credential: str, code: int
) -> None:
    # The service's descriptors come from a file here: reflection needs credentials too.
    args = [] if credential == "none" else bearer(tokens[credential])
    proto = ["-import-path", str(CERTS.parent / "proto"), "-proto", "grpctest/grpctest.proto"]
    method = "grpctest.Grpctest/GetServerResponse"
    request = ["-format-error", "-d", '{"message": "grpcurl"}', stack.tls_target, method]
    result = grpcurl(stack, *proto, *args, *request)
    if code == 0:
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["received"] is True
    else:
        assert result.returncode == GRPCURL_STATUS_EXIT + code, result.stderr
        assert json.loads(result.stderr)["code"] == code, result.stderr


def test_health_checks_need_no_credentials(stack) -> None:
    probe = [command("grpc-health-probe"), "-addr", stack.tls_target, "-tls", "-tls-ca-cert",
             str(CERTS / "ca.crt"), "-service", "grpctest.Grpctest"]  # fmt: skip
    result = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    # (grpc-health-probe reports only as text: its one line.)
    assert (result.stdout + result.stderr).strip() == "status: SERVING"


@pytest.mark.parametrize(
    ("credential", "listed"),
    [("none", False), ("guest-cert", True), ("read-only", True)],
)
def test_reflection_needs_any_valid_credential(
    stack, tokens, credential: str, listed: bool
) -> None:
    guest = ["-cert", str(CERTS / "guest.crt"), "-key", str(CERTS / "guest.key")]
    args = {"none": [], "guest-cert": guest, "read-only": bearer(tokens["read-only"])}[credential]
    result = grpcurl(stack, *args, stack.tls_target, "list")
    if listed:
        assert result.returncode == 0, result.stderr
        assert "grpctest.Grpctest" in result.stdout.split()
    else:
        # grpcurl's `list` has no JSON form: its exit status 1 and its one line of text.
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(
            "Failed to list services: rpc error: code = Unauthenticated desc = Jwt is missing"
        ), result.stderr


def test_rest_over_tls_needs_a_token(stack, tokens) -> None:
    url = f"https://{stack.tls_target}/v1/message"
    with httpx.Client(
        verify=ssl.create_default_context(cafile=CERTS / "ca.crt"), timeout=10
    ) as http:
        missing = http.post(url, json={"message": "rest"})
        allowed = http.post(
            url, json={"message": "rest"}, headers={"authorization": f"Bearer {tokens['valid']}"}
        )
    assert missing.status_code == 401
    assert "Jwt is missing" in missing.text
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["received"] is True


def test_the_plaintext_listener_stays_open(stack) -> None:
    result = run_client("go-client", stack.target, *JSON_OUTPUT)
    assert result.returncode == 0, result.stderr
    assert sum(calls_per_replica(result.stdout).values()) == 1, result.stdout
