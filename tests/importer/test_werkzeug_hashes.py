"""MLflow's basic-auth users keep werkzeug hashes; imported as they are, they must verify."""

from __future__ import annotations

import pytest
from werkzeug.security import generate_password_hash

from tracking_core.passwords import check_format, verify

METHODS = ["scrypt", "pbkdf2:sha256", "pbkdf2:sha512:1000", "scrypt:16384:8:1"]


@pytest.mark.parametrize("method", METHODS, ids=METHODS)
def test_werkzeug_hash_verifies(method: str) -> None:
    stored = generate_password_hash("pä ss word", method=method)
    check_format(stored)
    assert verify(stored, "pä ss word")
    assert not verify(stored, "pä ss wordx")
    assert not verify(stored, "")
