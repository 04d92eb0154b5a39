"""Fixtures for the search tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .db import BACKENDS, SearchDb, database


@pytest.fixture(scope="module", params=BACKENDS)
def empty_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SearchDb]:
    """One empty database per test module and backend; each module loads its own rows."""
    with database(request.param, tmp_path_factory.mktemp("search")) as db:
        yield db
