"""The private Unix socket between gateway and core: bound once, shared by every worker."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import tempfile
from dataclasses import dataclass


class CoreSocketError(Exception):
    """The core socket cannot be created; the message is meant for the operator."""


@dataclass
class CoreSocket:
    sock: socket.socket
    path: str
    tmpdir: str | None  # ours to delete, when no path was configured

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def bind(path: str | None) -> CoreSocket:
    """Bind and listen on `path`, or on a fresh private temporary path when it is None."""
    tmpdir = None
    if path:
        _remove_stale(path)
    else:
        # mkdtemp makes the directory 0700: nobody else can even reach the socket in it.
        tmpdir = tempfile.mkdtemp(prefix="trackgate-")
        path = os.path.join(tmpdir, "core.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        # The core trusts identity headers because they arrive on this socket: owner only.
        os.chmod(path, 0o600)
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
        raise CoreSocketError(f"cannot listen on the core socket {path}: {exc}") from exc
    return CoreSocket(sock, path, tmpdir)


def _remove_stale(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise CoreSocketError(f"core_socket {path} exists and is not a socket; refusing to replace it.")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)  # left behind by a server that did not shut down cleanly
        return
    finally:
        probe.close()
    raise CoreSocketError(f"core_socket {path} is in use by another running server.")
