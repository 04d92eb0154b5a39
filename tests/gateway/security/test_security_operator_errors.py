"""Finding 13 of issue 13: operator errors end cleanly. A port already in use is one line naming
the cause (it was a traceback after the core had started); `tokens revoke` of an unknown id says
so instead of inventing a row; `tokens list` tells expired tokens from active ones."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway import cli
from tests.gateway.auth.support import prepared_database
from tests.server_process import trackgate_server


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with trackgate_server(tmp_path, wait=False, port=port) as server:
            assert server.process.wait(60) == 1
            log = server.log()
    assert "Traceback" not in log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"cannot listen on 127.0.0.1:{port}: Address already in use" in errors[0], log


@pytest.fixture
def store(tmp_path: Path) -> str:
    return prepared_database(tmp_path)


def tokens(capsys: pytest.CaptureFixture[str], store: str, *args: str) -> tuple[int, str, str]:
    code = cli.main(["tokens", *args, "--backend-store-uri", store])
    out = capsys.readouterr()
    return code, out.out, out.err


def token_ids(store: str) -> list[str]:
    from tracking_core.store.tables import auth_tokens

    engine = sa.create_engine(store)
    with engine.connect() as conn:
        ids = list(conn.scalars(sa.select(auth_tokens.c.jti)))
    engine.dispose()
    return ids


def test_revoking_an_unknown_token_says_so(capsys: pytest.CaptureFixture[str], store: str) -> None:
    code, out, err = tokens(capsys, store, "revoke", "nonexistent")
    assert code != 0 and "no token nonexistent" in err and "Revoked" not in out
    assert token_ids(store) == []  # no phantom row
    # A token issued elsewhere with the same key can still be revoked, when asked for explicitly.
    code, out, _ = tokens(capsys, store, "revoke", "issued-elsewhere", "--not-issued-here")
    assert code == 0 and "Revoked" in out and token_ids(store) == ["issued-elsewhere"]


def test_list_tells_expired_from_active(capsys: pytest.CaptureFixture[str], store: str) -> None:
    assert tokens(capsys, store, "issue", "--subject", "ci", "--ttl", "1s")[0] == 0
    assert tokens(capsys, store, "issue", "--subject", "cd", "--ttl", "1h")[0] == 0
    time.sleep(1.5)
    code, out, _ = tokens(capsys, store, "list")
    assert code == 0
    status = {line.split("\t")[1]: line.split("\t")[3] for line in out.splitlines()}
    assert status["ci"].startswith("expired") and status["cd"] == "active", out
    jti = next(line.split("\t")[0] for line in out.splitlines() if "\tcd\t" in line)
    assert tokens(capsys, store, "revoke", jti)[0] == 0
    code, out, _err = tokens(capsys, store, "revoke", jti)
    assert code == 0 and "already revoked" in out
