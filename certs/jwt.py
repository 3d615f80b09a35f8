"""Development JSON Web Tokens for grpctest: the key set Envoy checks tokens against,
and tokens signed with its key (RS256, signed by openssl). Standard library only, so
that it runs wherever certs/generate.sh does.

    python3 jwt.py jwks jwt.key > jwks.json
    python3 jwt.py token jwt.key --scope grpctest.call > token.jwt
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import time

ISSUER = "grpctest-dev"
AUDIENCE = "grpctest"
KEY_ID = "grpctest-dev-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks(key: str) -> dict:
    """The public half of the RSA key as a JSON Web Key Set."""
    text = subprocess.run(
        ["openssl", "rsa", "-in", key, "-noout", "-modulus"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    modulus = int(text.strip().removeprefix("Modulus="), 16)
    n = modulus.to_bytes((modulus.bit_length() + 7) // 8, "big")
    return {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": KEY_ID,
                      "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}]}  # fmt: skip


def token(key: str, *, subject: str, scope: str, days: float, issuer: str, audience: str) -> str:
    """A JWT for `subject` with `scope`, valid from now for `days` (negative: expired)."""
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": KEY_ID}
    claims = {"iss": issuer, "aud": audience, "sub": subject, "scope": scope,
              "iat": now, "exp": now + int(days * 86400)}  # fmt: skip
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key], input=signing_input.encode(),
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return f"{signing_input}.{b64url(signature)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("jwks", help="print the key set").add_argument("key")
    make = commands.add_parser("token", help="print a signed token")
    make.add_argument("key")
    make.add_argument("--subject", default="grpctest-developer")
    make.add_argument("--scope", default="grpctest.call", help="space-separated scopes")
    make.add_argument("--days", type=float, default=365)
    make.add_argument("--issuer", default=ISSUER)
    make.add_argument("--audience", default=AUDIENCE)
    args = parser.parse_args()
    if args.command == "jwks":
        json.dump(jwks(args.key), sys.stdout, indent=2)
        print()
    else:
        claims = {k: getattr(args, k) for k in ("subject", "scope", "days", "issuer", "audience")}
        print(token(args.key, **claims))


if __name__ == "__main__":
    main()
