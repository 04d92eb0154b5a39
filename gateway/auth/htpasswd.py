"""An htpasswd file of basic-auth users, as oauth2-proxy's --htpasswd-file: `name:hash` lines.

bcrypt hashes (`htpasswd -B`: $2y$/$2b$/$2a$) are accepted. Unsalted {SHA}, crypt and MD5
($apr1$) lines are refused with a warning naming the line, never silently accepted. The file is
re-read when it changes (checked at most every RELOAD_CHECK seconds), so users can be added
without a restart.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import time
from collections import Counter

import bcrypt

from gateway.auth import passwords

log = logging.getLogger("trackgate.auth.htpasswd")

RELOAD_CHECK = 2.0
DEFAULT_COST = 5  # htpasswd -B


def bcrypt_cost(stored: str) -> int | None:
    """The cost (log2 rounds) of a bcrypt hash; None for any other kind."""
    parts = stored.split("$")
    if stored.startswith(("$2a$", "$2b$", "$2y$")) and len(parts) > 2 and parts[2].isdigit():
        return int(parts[2])
    return None


@functools.cache
def dummy_bcrypt(cost: int) -> str:
    """A bcrypt hash of a random password at `cost`, checked where an htpasswd user's hash would be."""
    return bcrypt.hashpw(secrets.token_urlsafe(16).encode(), bcrypt.gensalt(rounds=cost)).decode()


def parse(text: str, path: str = "htpasswd") -> dict[str, str]:
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not name:
            log.warning("%s line %d is not name:hash; ignored", path, number)
            continue
        try:
            passwords.check_format(stored)
        except passwords.UnsupportedHash as exc:
            log.warning("%s line %d (user %s): %s; ignored (use htpasswd -B)", path, number, name, exc)
            continue
        users[name] = stored
    return users


class Htpasswd:
    def __init__(self, path: str) -> None:
        self.path = path
        self._users: dict[str, str] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        self._reload()

    def _reload(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
            if mtime != self._mtime:
                with open(self.path, encoding="utf-8") as f:
                    self._users = parse(f.read(), self.path)
                self._mtime = mtime
        except OSError as exc:
            # Keep the last good set: a file being replaced must not lock everyone out.
            log.warning("cannot read %s (%s); keeping the users read before", self.path, type(exc).__name__)
        self._checked = time.monotonic()

    def typical_cost(self) -> int:
        """The bcrypt cost most of the file's users have (htpasswd -B's default for an empty file):
        what checking a name that is not in the file must cost."""
        costs = Counter(c for stored in self._users.values() if (c := bcrypt_cost(stored)) is not None)
        return costs.most_common(1)[0][0] if costs else DEFAULT_COST

    def get(self, name: str) -> str | None:
        if time.monotonic() - self._checked > RELOAD_CHECK:
            self._reload()
        return self._users.get(name)
