"""Starting a worker process (a core worker, an extra gateway), keeping it running, describing how one ended."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from gateway.config import Config
from tracking_core.contract import SETTINGS_ENV

log = logging.getLogger("trackgate.supervisor")

CRASH_LOOP_WINDOW = 10.0  # a process dying younger than this counts towards the backoff
MAX_BACKOFF = 30.0


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


def restart_delay(quick_failures: int) -> float:
    """Restart at once after a single crash; while a process keeps dying young, wait 0.5 s, 1 s, 2 s...

    so a process that cannot run (bad config, full disk) does not burn a CPU respawning."""
    return 0.0 if quick_failures <= 1 else min(0.25 * 2 ** (quick_failures - 1), MAX_BACKOFF)


async def keep_alive(
    name: str,
    current: Callable[[], asyncio.subprocess.Process],
    respawn: Callable[[], Awaitable[None]],
    exited: Callable[[asyncio.subprocess.Process, str], bool],
) -> None:
    """Watch one process slot: whenever `current()` exits, ask `exited(proc, how)` whether to
    restart it (False: the owner is stopping, or gives up) and `respawn()` it, backing off while
    it crash-loops and retrying while it cannot be started at all."""
    loop = asyncio.get_running_loop()
    failures = 0
    while True:
        proc = current()
        started = loop.time()
        how = describe_exit(await proc.wait())
        if not exited(proc, how):
            return
        failures = failures + 1 if loop.time() - started < CRASH_LOOP_WINDOW else 0
        delay = restart_delay(failures)
        log.warning("%s (pid %d) %s; restarting it in %.2g s", name, proc.pid, how, delay)
        while True:
            await asyncio.sleep(delay)
            try:
                await respawn()
                break
            except OSError as exc:
                delay = min(max(delay * 2, 0.25), MAX_BACKOFF)
                log.error("cannot start %s: %s; retrying in %.2g s", name, exc, delay)


async def terminate(
    procs: Sequence[asyncio.subprocess.Process], timeout: float, name: str, *, signalled: bool = False
) -> None:
    """SIGTERM every process still running (each drains its in-flight work; not again if
    `signalled`: a second one could reach a process past its handlers), wait up to `timeout`
    seconds for them, then kill the ones still running."""
    running = [p for p in procs if p.returncode is None]
    for proc in running if not signalled else ():
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    if not running:
        return
    waits = [asyncio.create_task(p.wait()) for p in running]
    await asyncio.wait(waits, timeout=timeout)
    for proc in running:
        if proc.returncode is None:
            log.warning("%s pid %d did not stop in time; killing it", name, proc.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    await asyncio.gather(*waits, return_exceptions=True)
