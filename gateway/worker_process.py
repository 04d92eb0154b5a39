"""Starting one core worker process, and describing how one ended."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Sequence

from gateway.config import Config
from tracking_core.contract import SETTINGS_ENV


async def spawn(
    command: Sequence[str], config: Config, listen_fd: int, preexec: Callable[[], None] | None
) -> asyncio.subprocess.Process:
    """`command --listen-fd N`, the validated config in the environment, the socket inherited."""
    return await asyncio.create_subprocess_exec(
        *command,
        "--listen-fd",
        str(listen_fd),
        # AIOHTTP_NOSENDFILE: a framed response has no socket of its own to sendfile() into;
        # aiohttp then reads static files in chunks through the response writer instead.
        env={**os.environ, SETTINGS_ENV: config.core_settings().to_json(), "AIOHTTP_NOSENDFILE": "1"},
        pass_fds=(listen_fd,),
        stdin=asyncio.subprocess.DEVNULL,
        # Own session: a terminal's Ctrl-C reaches only the gateway, which drains first and
        # then stops the workers, instead of everything stopping at once mid-request.
        start_new_session=True,
        preexec_fn=preexec,
    )


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def die_with_parent() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the worker if the gateway dies without stopping it
    (a worker in its own session would otherwise outlive a SIGKILLed gateway)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here, not in the forked child
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM))

    return hook
