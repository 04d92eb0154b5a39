"""An htpasswd file of basic-auth users, as oauth2-proxy's --htpasswd-file: `name:hash` lines.

bcrypt hashes (`htpasswd -B`: $2y$/$2b$/$2a$) are accepted. Unsalted {SHA}, crypt and MD5
($apr1$) lines are refused with a warning naming the line, never silently accepted. The file is
re-read when it changes (checked at most every RELOAD_CHECK seconds), so users can be added
without a restart.
"""

from __future__ import annotations

import logging
import os
import time

from gateway.auth import passwords

log = logging.getLogger("trackgate.auth.htpasswd")

RELOAD_CHECK = 2.0


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

    def get(self, name: str) -> str | None:
        if time.monotonic() - self._checked > RELOAD_CHECK:
            self._reload()
        return self._users.get(name)
