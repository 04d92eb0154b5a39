"""`trackgate users`, `tokens` and `certs dev` as a script or an operator runs them."""

from __future__ import annotations

import ssl
from pathlib import Path

import jwt
import pytest
from cryptography import x509

from gateway.auth import passwords
from tests.gateway.support import cli


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/t.db"


def stored_hash(db: str, name: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(db)
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT password_hash FROM users WHERE name = :n"), {"n": name}).scalar_one()
    engine.dispose()
    return str(value)


def test_users_lifecycle(db: str) -> None:
    created = cli("users", "create", "alice", "--admin", "--backend-store-uri", db, stdin="first-pw\n")
    assert created.returncode == 0, created.stderr
    assert "first-pw" not in created.stdout + created.stderr
    assert passwords.verify(stored_hash(db, "alice"), "first-pw")
    again = cli("users", "create", "alice", "--backend-store-uri", db, stdin="another-pw\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = cli("users", "list", "--backend-store-uri", db)
    assert listed.stdout.split("\t")[:2] == ["alice", "admin"] and "scrypt" not in listed.stdout
    changed = cli("users", "set-password", "alice", "--backend-store-uri", db, stdin="second-pw\n")
    assert changed.returncode == 0, changed.stderr
    assert passwords.verify(stored_hash(db, "alice"), "second-pw")
    assert cli("users", "delete", "alice", "--backend-store-uri", db).returncode == 0
    assert cli("users", "list", "--backend-store-uri", db).stdout.strip() == "(no users)"
    missing = cli("users", "delete", "alice", "--backend-store-uri", db)
    assert missing.returncode == 1 and "no user" in missing.stderr


def test_empty_password_is_refused(db: str) -> None:
    result = cli("users", "create", "bob", "--backend-store-uri", db, stdin="\n")
    assert result.returncode == 1 and "empty" in result.stderr


def test_tokens_issue_prints_only_the_token_and_revoke(db: str) -> None:
    issued = cli("tokens", "issue", "--subject", "ci-deploy", "--ttl", "30d", "--backend-store-uri", db)
    assert issued.returncode == 0, issued.stderr
    assert issued.stdout.count("\n") == 1 and issued.stderr == ""
    claims = jwt.decode(issued.stdout.strip(), options={"verify_signature": False})
    assert claims["sub"] == "ci-deploy" and claims["exp"] - claims["iat"] == 30 * 86400
    assert jwt.get_unverified_header(issued.stdout.strip())["alg"] == "EdDSA"
    listed = cli("tokens", "list", "--backend-store-uri", db)
    assert claims["jti"] in listed.stdout and "active" in listed.stdout
    assert cli("tokens", "revoke", claims["jti"], "--backend-store-uri", db).returncode == 0
    assert "revoked" in cli("tokens", "list", "--backend-store-uri", db).stdout
    # The key was generated once and kept: a second token has the same kid.
    second = cli("tokens", "issue", "--subject", "x", "--backend-store-uri", db).stdout.strip()
    assert jwt.get_unverified_header(second)["kid"] == jwt.get_unverified_header(issued.stdout.strip())["kid"]


def test_tokens_issue_with_a_configured_key(db: str, tmp_path: Path) -> None:
    from tests.gateway.auth.support import ed25519_pem

    key_file = tmp_path / "signing.pem"
    key_file.write_text(ed25519_pem())
    issued = cli("tokens", "issue", "--subject", "s", "--token-signing-key-file", str(key_file),
                 "--backend-store-uri", db)
    assert issued.returncode == 0, issued.stderr
    from gateway.auth.signing import load_private_key

    key = load_private_key(key_file.read_text())
    assert jwt.decode(issued.stdout.strip(), key.public, algorithms=["EdDSA"], audience="trackgate")["sub"] == "s"


def test_bad_ttl(db: str) -> None:
    result = cli("tokens", "issue", "--subject", "s", "--ttl", "soon", "--backend-store-uri", db)
    assert result.returncode == 1 and "--ttl" in result.stderr


def test_certs_dev(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    result = cli("certs", "dev", "--out", str(out))
    assert result.returncode == 0, result.stderr
    for name in ("ca.pem", "server.pem", "server-key.pem", "client.pem"):
        assert (out / name).is_file(), name
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    # client.pem is key + certificate in one file, as requests' cert= (and the mlflow client) takes it.
    ctx = ssl.create_default_context(cafile=str(out / "ca.pem"))
    ctx.load_cert_chain(str(out / "client.pem"))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(out / "server.pem"), str(out / "server-key.pem"))
    assert oct((out / "client.pem").stat().st_mode & 0o777) == "0o600"
