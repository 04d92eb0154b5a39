"""Fixtures of the security tests: the auth tests' prepared database with the user alice."""

from __future__ import annotations

from tests.gateway.auth.conftest import tracking_db

__all__ = ["tracking_db"]
