"""MLflow's users API applies the same name and password rules as `trackgate users`: a user an admin
creates through the API can sign in with basic auth and prints on one log line."""

from __future__ import annotations

import pytest

from tests.authz.conftest import ADMIN, As, core

USERS = "/api/2.0/mlflow/users"
BAD = [
    ("", "long-enough-pw", "Missing value for required parameter 'username'"),
    ("a:b", "long-enough-pw", "must not contain ':'"),
    ("line\nbreak", "long-enough-pw", "must be printable"),
    (" padded", "long-enough-pw", "start or end with a space"),
    ("x" * 256, "long-enough-pw", "at most 255 characters"),
    ("carol", "short", "at least 8 characters"),
]


IDS = ["empty", "colon", "newline", "spaces", "long", "short"]


@pytest.mark.parametrize(("name", "password", "reason"), BAD, ids=IDS)
async def test_create_refuses_names_and_passwords_that_break_things(
    backend_uri: str, name: str, password: str, reason: str
) -> None:
    async with core(backend_uri) as client:
        admin = As(client, ADMIN)
        refused = await admin.call("POST", f"{USERS}/create", {"username": name, "password": password}, expect=400)
        assert refused["error_code"] == "INVALID_PARAMETER_VALUE" and reason in refused["message"]
        listed = await admin.call("GET", f"{USERS}/list")
        assert name not in [u["username"] for u in listed.get("users", [])]


async def test_password_change_keeps_the_minimum(backend_uri: str) -> None:
    async with core(backend_uri) as client:
        admin = As(client, ADMIN)
        await admin.call("POST", f"{USERS}/create", {"username": "dora-rules", "password": "first-password"})
        refused = await admin.call(
            "PATCH", f"{USERS}/update-password", {"username": "dora-rules", "password": "tiny"}, expect=400
        )
        assert "at least 8 characters" in refused["message"]
        await admin.call("PATCH", f"{USERS}/update-password", {"username": "dora-rules", "password": "second-password"})
