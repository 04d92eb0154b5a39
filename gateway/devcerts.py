"""Development certificates (`trackgate certs dev`): a CA, a server and a client certificate.

For trying TLS and mTLS on one machine, never for production: the CA key sits next to the
certificates. Made with `cryptography` (EC P-256), valid for a year.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def make_dev_certs(out: Path, client_name: str = "dev-client") -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trackgate development CA")])
    ca = _cert(
        ca_name,
        ca_key,
        ca_name,
        ca_key,
        [
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            ),
        ],
    )
    leaf_usage = x509.KeyUsage(
        digital_signature=True,
        key_encipherment=False,
        key_cert_sign=False,
        crl_sign=False,
        content_commitment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    server_key = _key()
    server = _cert(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
        server_key,
        ca_name,
        ca_key,
        [
            (
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                False,
            ),
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (leaf_usage, True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
    )
    client_key = _key()
    client = _cert(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, client_name)]),
        client_key,
        ca_name,
        ca_key,
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (leaf_usage, True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        ],
    )
    pem = serialization.Encoding.PEM
    files = {
        "ca.pem": ca.public_bytes(pem),
        "ca-key.pem": _pem_key(ca_key),  # to issue more client certificates; keep it private
        "server.pem": server.public_bytes(pem),
        "server-key.pem": _pem_key(server_key),
        # One file, key and certificate, as MLFLOW_TRACKING_CLIENT_CERT_PATH (requests' cert=) wants.
        "client.pem": _pem_key(client_key) + client.public_bytes(pem),
    }
    paths = {}
    for name, data in files.items():
        path = out / name
        fd = os.open(
            path,
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
            0o600 if "key" in name or name == "client.pem" else 0o644,
        )
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        paths[name] = path
    return paths
