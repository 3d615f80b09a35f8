"""The test cluster's certificates: one CA, the apiserver's serving certificate, one
client certificate for everything that talks to the apiserver, the service-account key."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAYS = 2
API_NAMES = ["kubernetes", "kubernetes.default", "kubernetes.default.svc",
             "kubernetes.default.svc.cluster.local", "localhost"]  # fmt: skip


def _name(common: str, organization: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _save(folder: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    (folder / f"{stem}.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    extensions: list[x509.ExtensionType],
) -> x509.Certificate:
    """A certificate for `key`, signed by issuer (name, key), or self-signed."""
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=DAYS))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write(folder: Path, node_ip: str, api_service_ip: str) -> None:
    """ca, apiserver (serving), admin (client, system:masters) as .crt/.key; sa.key/.pub."""
    folder.mkdir(parents=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("grpctest-cluster-ca")
    ca = _issue(ca_name, ca_key, None, [x509.BasicConstraints(ca=True, path_length=None)])
    _save(folder, "ca", ca_key, ca)
    server_key = ec.generate_private_key(ec.SECP256R1())
    addresses = [x509.IPAddress(ipaddress.ip_address(ip))
                 for ip in (node_ip, api_service_ip, "127.0.0.1")]  # fmt: skip
    server = _issue(_name("kube-apiserver"), server_key, (ca_name, ca_key), [
        x509.SubjectAlternativeName([*map(x509.DNSName, API_NAMES), *addresses]),
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
    ])  # fmt: skip
    _save(folder, "apiserver", server_key, server)
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _issue(_name("grpctest-admin", "system:masters"), admin_key, (ca_name, ca_key),
                   [x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])])  # fmt: skip
    _save(folder, "admin", admin_key, admin)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "sa.key").write_bytes(
        sa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    (folder / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def kubeconfig(path: Path, pki: Path, server: str) -> None:
    """A kubeconfig for the admin certificate (kubectl and every component use it)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "grpctest", "cluster": {
            "server": server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": "admin", "user": {
            "client-certificate": str(pki / "admin.crt"),
            "client-key": str(pki / "admin.key")}}],
        "contexts": [{"name": "grpctest", "context": {"cluster": "grpctest", "user": "admin"}}],
        "current-context": "grpctest",
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))
