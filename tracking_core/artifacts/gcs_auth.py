"""Access tokens for Google Cloud Storage, found the way Google's own client libraries find them.

1. `STORAGE_EMULATOR_HOST` set: no token at all (what the official clients do for an emulator).
2. `GOOGLE_APPLICATION_CREDENTIALS` naming a service-account key file: a self-signed JWT
   exchanged at the key's token_uri (RS256, signed with the key in the file).
3. Otherwise the metadata server of the instance (Cloud Run, GCE, GKE workload identity):
   `GCE_METADATA_HOST` overrides its address, as it does for google-auth.

Tokens are cached until a minute before they expire and never logged.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import aiohttp

from tracking_core.errors import ErrorCode, MlflowError

SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
REFRESH_MARGIN = 60.0


class TokenSource:
    """Hands out a bearer token (or None for an emulator), refreshing it when needed."""

    def __init__(self, session: aiohttp.ClientSession, env: dict[str, str] | None = None) -> None:
        self._session = session
        self._env = dict(os.environ if env is None else env)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.anonymous = bool(self._env.get("STORAGE_EMULATOR_HOST"))

    async def headers(self) -> dict[str, str]:
        if self.anonymous:
            return {}
        if self._token is None or time.monotonic() > self._expires - REFRESH_MARGIN:
            async with self._lock:
                if self._token is None or time.monotonic() > self._expires - REFRESH_MARGIN:
                    self._token, lifetime = await self._fetch()
                    self._expires = time.monotonic() + lifetime
        return {"Authorization": f"Bearer {self._token}"}

    async def _fetch(self) -> tuple[str, float]:
        key_file = self._env.get("GOOGLE_APPLICATION_CREDENTIALS")
        try:
            if key_file:
                return await self._from_key_file(key_file)
            return await self._from_metadata()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError) as exc:
            # The message names the source, never the token or key material.
            raise MlflowError(
                ErrorCode.TEMPORARILY_UNAVAILABLE,
                f"Cannot get Google Cloud credentials ({type(exc).__name__}); "
                "check the service account of this instance or GOOGLE_APPLICATION_CREDENTIALS.",
            ) from None

    async def _from_metadata(self) -> tuple[str, float]:
        host = self._env.get("GCE_METADATA_HOST") or "metadata.google.internal"
        url = f"http://{host}{METADATA_PATH}"
        timeout = aiohttp.ClientTimeout(total=10)
        async with self._session.get(url, headers={"Metadata-Flavor": "Google"}, timeout=timeout) as r:
            r.raise_for_status()
            data = await r.json(content_type=None)
        return str(data["access_token"]), float(data.get("expires_in", 3600))

    async def _from_key_file(self, path: str) -> tuple[str, float]:
        import jwt  # PyJWT with cryptography: already a dependency for bearer tokens

        with open(path, encoding="utf-8") as f:
            info: dict[str, Any] = json.load(f)
        token_uri = info.get("token_uri") or "https://oauth2.googleapis.com/token"
        now = int(time.time())
        assertion = jwt.encode(
            {"iss": info["client_email"], "scope": SCOPE, "aud": token_uri, "iat": now, "exp": now + 3600},
            info["private_key"],
            algorithm="RS256",
            headers={"kid": info.get("private_key_id", "")},
        )
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        async with self._session.post(token_uri, data=form, timeout=aiohttp.ClientTimeout(total=30)) as r:
            r.raise_for_status()
            data = await r.json(content_type=None)
        return str(data["access_token"]), float(data.get("expires_in", 3600))
