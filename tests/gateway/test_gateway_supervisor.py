"""The supervisor, with the stand-in core (tests/gateway/fake_core.py) for crash and slow-start
control: health gating, restarts, 503 while down, drain. Real processes, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import keys
from gateway.app import build_gateway_app
from gateway.config import load
from gateway.server import start, stop
from gateway.supervisor import MAX_BACKOFF, CoreStartupError, restart_delay
from tests.gateway.support import FAKE_CORE, port_open
from tests.services import free_port


async def get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as client, client.get(url) as resp:
        return resp.status, dict(resp.headers), await resp.read()


async def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: only its exit status is left for the parent to collect.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


async def test_public_port_opens_only_once_the_core_is_ready(
    gateway_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_file = tmp_path / "db-reachable"
    monkeypatch.setenv("FAKE_CORE_READY_FILE", str(ready_file))  # core answers 503 until it exists
    port = free_port()
    starting = asyncio.create_task(gateway_factory(port=port))
    for _ in range(20):  # a second of samples while the core is up but not ready
        await asyncio.sleep(0.05)
        assert not port_open(port)
        assert not starting.done()
    ready_file.touch()
    gw = await asyncio.wait_for(starting, 30)
    status, _, body = await get(gw.url + "/readyz")
    assert (status, body) == (200, b'{"status": "ok"}')


async def test_worker_that_cannot_start_fails_startup_with_its_exit_code(
    gateway_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CORE_EXIT_CODE", "3")
    port = free_port()
    with pytest.raises(CoreStartupError, match="exited with code 3 before the core was ready"):
        await gateway_factory(port=port, core_startup_timeout=120)
    assert not port_open(port)


async def test_core_never_ready_times_out_with_its_last_answer(
    gateway_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CORE_READY_FILE", str(tmp_path / "never"))
    # The last answer is HTTP 503 here, or a timeout if this machine is too busy to start the
    # worker in time; either way it is reported, and only the deadline ends the wait.
    with pytest.raises(CoreStartupError, match=r"not ready after 2 s \(last answer: (HTTP 503|TimeoutError)"):
        await gateway_factory(core_startup_timeout=2)


async def test_startup_deadline_covers_a_schema_step_that_hangs() -> None:
    async def hanging_database(config: Any) -> None:
        await asyncio.Event().wait()

    port = free_port()
    config = load({"port": port, "core_startup_timeout": 0.5}, env={})
    app = build_gateway_app(config, core_command=FAKE_CORE, prepare_schema=hanging_database)
    with pytest.raises(CoreStartupError, match=r"tracking database .* was not ready after 0\.5 s"):
        await start(config, app)
    assert not port_open(port)


async def test_workers_start_during_the_schema_step_and_stop_when_it_fails() -> None:
    port = free_port()
    config = load({"port": port, "workers": 2}, env={})
    seen: list[int] = []

    async def refused_schema(config: Any) -> None:
        seen.extend(app[keys.supervisor].worker_pids)  # already importing while the schema is checked
        raise CoreStartupError("the schema step refused this database")

    app = build_gateway_app(config, core_command=FAKE_CORE, prepare_schema=refused_schema)
    with pytest.raises(CoreStartupError, match="refused this database"):
        await start(config, app)
    assert len(seen) == 2

    async def all_stopped() -> bool:
        return not any(alive(pid) for pid in seen)

    await wait_for(all_stopped, timeout=10)
    assert not port_open(port)


async def test_killed_worker_gives_503_then_a_new_worker_serves(
    gw: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, body = await get(gw.url + "/pid")
    old_pid = int(body.split(b":")[1].strip(b" }"))
    # The replacement starts slowly, so the gap in which the gateway must answer 503 is visible.
    monkeypatch.setenv("FAKE_CORE_START_DELAY", "1")
    os.kill(old_pid, signal.SIGKILL)
    supervisor = gw.app[keys.supervisor]

    async def noticed() -> bool:
        return not supervisor.available

    # (A request racing the death notice is not refused: it waits in the socket backlog for
    # the replacement worker, which is fine; what must never happen is a hang or a 502.)
    await wait_for(noticed)
    status, headers, body = await get(gw.url + "/pid")
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert json.loads(body)["error_code"] == "TEMPORARILY_UNAVAILABLE"

    async def recovered() -> bool:
        return (await get(gw.url + "/pid"))[0] == 200

    await wait_for(recovered)
    new_pid = int((await get(gw.url + "/pid"))[2].split(b":")[1].strip(b" }"))
    assert new_pid != old_pid
    assert (await get(gw.url + "/readyz"))[0] == 200


async def test_every_worker_slot_is_kept_filled(gateway_factory: Any) -> None:
    gw = await gateway_factory(workers=3)
    supervisor = gw.app[keys.supervisor]
    assert supervisor.live_workers == 3
    victim = supervisor.worker_pids[0]
    os.kill(victim, signal.SIGTERM)  # a clean exit is restarted too: the core must not shrink

    async def refilled() -> bool:
        pids = set(supervisor.worker_pids)
        return len(pids) == 3 and victim not in pids

    await wait_for(refilled)
    assert (await get(gw.url + "/readyz"))[0] == 200


async def test_readyz_follows_the_core_database(
    gateway_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_file = tmp_path / "db-reachable"
    ready_file.touch()
    monkeypatch.setenv("FAKE_CORE_READY_FILE", str(ready_file))
    gw = await gateway_factory()
    assert (await get(gw.url + "/readyz"))[0] == 200
    ready_file.unlink()  # the database becomes unreachable
    status, headers, body = await get(gw.url + "/readyz")
    assert status == 503 and headers["Retry-After"] == "1"
    assert b"HTTP 503" in body
    assert (await get(gw.url + "/healthz"))[0] == 200  # the gateway itself is fine


async def test_cleanup_drains_in_flight_requests_then_stops_the_workers(gateway_factory: Any) -> None:
    gw = await gateway_factory(drain_timeout=30)
    worker_pids = gw.app[keys.supervisor].worker_pids
    slow = asyncio.create_task(get(gw.url + "/slow?seconds=1.5"))
    await asyncio.sleep(0.3)  # the request is in flight in gateway and core
    await stop(gw.runner)  # what SIGTERM triggers in `trackgate server`
    status, _, body = await slow
    assert (status, body) == (200, b'{"slept": 1.5}')
    assert not port_open(gw.port)
    assert not any(alive(pid) for pid in worker_pids)


@pytest.mark.parametrize(
    ("failures", "delay"), [(0, 0.0), (1, 0.0), (2, 0.5), (3, 1.0), (4, 2.0), (30, MAX_BACKOFF)]
)
def test_restart_backoff_grows_while_a_worker_crash_loops(failures: int, delay: float) -> None:
    assert restart_delay(failures) == delay


def test_stand_in_core_is_the_documented_one() -> None:
    assert FAKE_CORE[-1].endswith("tests/gateway/fake_core.py")


async def test_drain_waits_for_a_request_body_still_arriving(gateway_factory: Any) -> None:
    # aiohttp's own shutdown stops reading such a body; the gateway's drain must not.
    gw = await gateway_factory(drain_timeout=30)
    go_on = asyncio.Event()

    async def trickle() -> Any:
        yield b"first part;"
        await go_on.wait()
        yield b"second part"

    async def upload() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as client, client.post(gw.url + "/echo", data=trickle()) as resp:
            return resp.status, await resp.json()

    async def in_flight() -> bool:
        return gw.app[keys.drain].in_flight == 1

    uploading = asyncio.create_task(upload())
    await wait_for(in_flight)
    stopping = asyncio.create_task(stop(gw.runner))

    async def refusing() -> bool:
        return not port_open(gw.port)

    await wait_for(refusing)  # no new connections once the drain has begun
    go_on.set()
    status, echoed = await uploading
    await stopping
    assert (status, echoed["body_size"]) == (200, len(b"first part;second part"))
