"""Finding 10 of issue 13: `trackgate users create` refuses names and passwords that break things
(an empty name, one with a colon that basic auth can never sign in, one with a newline that
breaks `users list` and the logs, a one-character password)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.auth.support import prepared_database
from tests.gateway.support import cli


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return prepared_database(tmp_path_factory.mktemp("users"))


# (id, name, password, what the refusal says)
REFUSED = [
    ("empty-name", "", "long-enough-pw", "empty"),
    ("colon", "a:b", "long-enough-pw", "':'"),
    ("newline", "eve\nadmin\tadmin", "long-enough-pw", "printable"),
    ("tab", "a\tb", "long-enough-pw", "printable"),
    ("surrounding-space", " bob", "long-enough-pw", "space"),
    ("too-long", "n" * 256, "long-enough-pw", "at most 255"),
    ("one-character-password", "carol", "x", "at least 8"),
    ("empty-password", "carol", "", "empty"),
]


@pytest.mark.parametrize(("name", "password", "says"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused(db: str, name: str, password: str, says: str) -> None:
    result = cli("users", "create", name, "--backend-store-uri", db, stdin=password + "\n")
    assert result.returncode == 1 and says in result.stderr, result.stderr
    assert password not in result.stderr or len(password) < 2
    listed = cli("users", "list", "--backend-store-uri", db, stdin="")
    assert listed.stdout.strip() == "(no users)"


def test_set_password_has_the_same_minimum(db: str, tmp_path: Path) -> None:
    assert cli("users", "create", "dave.o'neil@example.com", "--backend-store-uri", db,
               stdin="long-enough-pw\n").returncode == 0  # emails and punctuation are fine
    result = cli("users", "set-password", "dave.o'neil@example.com", "--backend-store-uri", db, stdin="short\n")
    assert result.returncode == 1 and "at least 8" in result.stderr
