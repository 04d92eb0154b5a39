"""Start a store's own server as a subprocess on a loopback port, and stop it afterwards."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s:\n{log.read_text(errors='replace')}")


@contextlib.contextmanager
def daemon(
    argv: list[str], port: int, log: Path, env: dict[str, str] | None = None, graceful: bool = True
) -> Iterator[subprocess.Popen[bytes]]:
    """`argv` running until the block ends, once it accepts connections on `port`; then terminated,
    or killed outright when not `graceful` (a server whose data is throwaway anyway)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(port, process, log)
        yield process
    finally:
        if process.poll() is None and not graceful:
            process.kill()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
