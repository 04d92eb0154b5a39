"""Fixtures for the search tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from .db import sqlite_engine


@pytest.fixture(scope="module")
def module_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sa.Engine]:
    engine = sqlite_engine(tmp_path_factory.mktemp("search") / "search.db")
    yield engine
    engine.dispose()
