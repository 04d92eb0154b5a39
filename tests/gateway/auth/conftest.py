from __future__ import annotations

from pathlib import Path

import pytest

from tests.gateway.auth.support import PASSWORD, add_user, password_hash, prepared_database


@pytest.fixture
def tracking_db(tmp_path: Path) -> str:
    """A prepared SQLite tracking database with the user alice (password PASSWORD)."""
    uri = prepared_database(tmp_path)
    add_user(uri, "alice", password_hash(PASSWORD))
    return uri
