"""The extra gateway processes: N - 1 more processes serving the primary's public port.

`gateway_workers = N` runs N gateway processes. The primary (the one whose supervisor owns the
core workers) health-gates the core and binds the public port last, as with one process. It
binds one listening socket per process, all on that port with SO_REUSEPORT, and keeps every one
of them open: the kernel spreads new connections over the sockets by their addresses, so
keep-alive clients that connect while the server is idle are spread too. (One shared socket was
tried first, as the core workers share theirs: with every process idle, one process won every
accept, and 16 keep-alive clients all ended on it.) Because the primary holds each slot's socket,
connections that reach the slot of a process being restarted wait in its backlog for the new
process, as core requests wait on the core socket, instead of being refused.

The extra `python -m gateway.gateway_worker` processes are spawned (never forked from a running
event loop) when the primary starts, so that their imports overlap the core's start-up, and wait.
Once the primary listens, it sends each one its slot's socket(s) and the core's socket path over
a private socket pair ("go"); each then checks the core itself, opens its link and starts
accepting, and says "ready" back. The primary accepts only after that (bounded).

Over its stdin (a pipe, never the environment: the config holds secrets) an extra process gets
the validated config, then the live core worker count whenever it changes, so it answers 503
while no core worker is alive, exactly as the primary does; end of file means the primary is gone
(die_with_parent is the other half of that). A process that dies is restarted with the core
workers' backoff; SIGTERM and SIGHUP (TLS reload) are forwarded; stop() waits for their drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass

from gateway import worker_process
from gateway.config import Config
from gateway.supervisor import Supervisor

log = logging.getLogger("trackgate.gateway")

_LENGTH = struct.Struct("!Q")


def encode_config(config: Config) -> bytes:
    """The config as the first message on an extra process's stdin (read by `read_config`)."""
    payload = pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


def read_config(fd: int) -> Config:
    """The config `encode_config` wrote to `fd`, and not a byte more (what follows is for asyncio)."""
    (length,) = _LENGTH.unpack(_read_exactly(fd, _LENGTH.size))
    config = pickle.loads(_read_exactly(fd, length))  # from our own parent, over a private pipe
    if not isinstance(config, Config):
        raise TypeError("the gateway's parent sent no config")
    return config


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError("the primary gateway process went away before sending the config")
        data += chunk
    return data


READY = b"ready\n"
READY_TIMEOUT = 10.0  # the primary waits this long for the extra processes before accepting alone


@dataclass
class _Child:
    proc: asyncio.subprocess.Process
    control: socket.socket  # our end of the pair: "go" (with the listening sockets) out, "ready" in


class GatewayPool:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.count = config.gateway_processes - 1
        self.restarts = 0  # extra gateway processes restarted after dying (a metric)
        self._children: dict[int, _Child] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._preexec = worker_process.die_with_parent()
        self._core_socket = b""
        self._sockets: dict[int, list[socket.socket]] = {}  # each slot's listening sockets, held here
        self._supervisor: Supervisor | None = None

    @property
    def pids(self) -> list[int]:
        return [c.proc.pid for c in self._children.values() if c.proc.returncode is None]

    async def spawn(self) -> None:
        """Start the extra processes; they import and wait for `listen`."""
        for slot in range(self.count):
            self._children[slot] = await self._spawn(slot)
            self._tasks.append(asyncio.create_task(self._keep_alive(slot)))

    async def listen(self, supervisor: Supervisor, bind: Callable[[], list[socket.socket]]) -> None:
        """Give each extra process the listening sockets `bind()` makes for it (on the public port,
        SO_REUSEPORT); return once they accept (or after READY_TIMEOUT); from now on relay the
        live core worker count to them."""
        assert supervisor.watch is not None
        self._supervisor = supervisor
        self._core_socket = supervisor.socket_path.encode()
        self._sockets = {slot: bind() for slot in self._children}
        supervisor.watch.on_wake.append(self._publish)
        loop = asyncio.get_running_loop()
        children = list(self._children.values())
        for slot, child in self._children.items():
            self._tell(child)
            self._send_go(slot, child)
        waits = [asyncio.ensure_future(loop.sock_recv(c.control, len(READY))) for c in children]
        done, pending = await asyncio.wait(waits, timeout=READY_TIMEOUT)
        for wait in pending:
            wait.cancel()
        ready = sum(1 for w in done if not w.exception() and w.result() == READY)
        if ready < len(children):
            log.warning(
                "%d of %d extra gateway process(es) not accepting yet; serving without them",
                len(children) - ready,
                len(children),
            )
        log.info(
            "%d gateway processes on the public port: pids %d (primary), %s",
            1 + len(children),
            os.getpid(),
            ", ".join(map(str, self.pids)),
        )

    def signal(self, signum: signal.Signals) -> None:
        for child in self._children.values():
            if child.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signum)

    def terminate(self) -> None:
        """SIGTERM every extra process (they drain), restarting none from now on; let go of their
        listening sockets, so that the port closes as soon as they have closed theirs."""
        self._stopping = True
        self.signal(signal.SIGTERM)
        self._close_sockets()

    def _close_sockets(self) -> None:
        for sockets in self._sockets.values():
            for sock in sockets:
                sock.close()

    async def stop(self) -> None:
        """Wait for every extra process to drain (SIGTERMed if `terminate` was not), kill a straggler."""
        signalled = self._stopping
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)
        running = [c.proc for c in self._children.values() if c.proc.returncode is None]
        await worker_process.terminate(running, self.config.drain_timeout + 5.0, "gateway process", signalled=signalled)
        bad = [f"pid {p.pid} {worker_process.describe_exit(p.returncode)}" for p in running if p.returncode]
        if bad:
            log.warning("gateway process(es) stopped uncleanly: %s", "; ".join(bad))
        for child in self._children.values():
            child.control.close()
        self._close_sockets()

    async def _spawn(self, slot: int) -> _Child:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.gateway_worker",
                "--control-fd",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.PIPE,
                # Own session: a terminal's Ctrl-C reaches only the primary, which forwards it.
                start_new_session=True,
                preexec_fn=self._preexec,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        assert proc.stdin is not None
        proc.stdin.write(encode_config(self.config))
        child = _Child(proc, ours)
        if slot in self._sockets:  # a restart: its slot's connections are waiting in the backlog
            self._tell(child)
            self._send_go(slot, child)
        log.debug("gateway process %d started, pid %d", slot, proc.pid)
        return child

    def _send_go(self, slot: int, child: _Child) -> None:
        fds = [sock.fileno() for sock in self._sockets[slot]]
        with contextlib.suppress(OSError):  # it died already: its keep-alive restarts it
            socket.send_fds(child.control, [self._core_socket], fds)

    def _publish(self) -> None:
        for child in self._children.values():
            self._tell(child)

    def _tell(self, child: _Child) -> None:
        """The live core worker count, one line (the extra process's CoreWatch reads it)."""
        stdin = child.proc.stdin
        if child.proc.returncode is None and stdin is not None and self._supervisor is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                stdin.write(b"%d\n" % self._supervisor.live_workers)

    async def _keep_alive(self, slot: int) -> None:
        def exited(proc: asyncio.subprocess.Process, how: str) -> bool:
            if self._stopping:
                return False
            self._children[slot].control.close()
            return True

        async def respawn() -> None:
            if self._stopping:  # terminated during the backoff: the dead one stays, exited() ends this
                return
            self._children[slot] = await self._spawn(slot)
            self.restarts += 1

        name = f"gateway process {slot + 1}"
        await worker_process.keep_alive(name, lambda: self._children[slot].proc, respawn, exited)
