"""The artifact routes of the tracking core, in-process on loopback, on local disk and S3."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.artifacts.conftest import Core, destination_for
from tests.artifacts.stores import environment
from tracking_core.keys import CONFIG

ART = "/api/2.0/mlflow-artifacts/artifacts"
MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
async def client(request: pytest.FixtureRequest, core: Core, tmp_path: Path) -> AsyncIterator[TestClient]:
    uri, env = destination_for(request.param, request, tmp_path)
    with environment(env):
        async with core(artifacts_destination=uri) as c:
            yield c


async def test_put_get_list_delete(client: TestClient) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    r = await client.put(f"{ART}/1/run/artifacts/dir/model.bin", data=body)
    assert r.status == 200, await r.text()
    await client.put(
        f"{ART}/1/run/artifacts/notes.txt", data=b"hello", headers={"Content-Type": "text/plain"}
    )

    r = await client.get(f"{ART}/1/run/artifacts/dir/model.bin")
    assert r.status == 200 and await r.read() == body
    assert r.headers["Content-Length"] == str(len(body))
    assert r.headers["Accept-Ranges"] == "bytes"
    assert r.headers["Content-Disposition"].startswith('attachment; filename="model.bin"')
    r = await client.get(f"{ART}/1/run/artifacts/notes.txt")
    assert r.headers["Content-Type"].startswith("text/plain")

    listing = await (await client.get(ART, params={"path": "1/run/artifacts"})).json()
    assert listing == {
        "files": [{"path": "dir", "is_dir": True}, {"path": "notes.txt", "is_dir": False, "file_size": 5}]
    }
    for missing_or_file in ["1/run/artifacts/notes.txt", "nope"]:
        assert await (await client.get(ART, params={"path": missing_or_file})).json() == {}

    assert (await client.delete(f"{ART}/1/run/artifacts/dir")).status == 200
    r = await client.get(f"{ART}/1/run/artifacts/dir/model.bin")
    assert r.status == 404 and (await r.json())["error_code"] == "RESOURCE_DOES_NOT_EXIST"


async def test_a_chunked_upload_arrives_whole(client: TestClient) -> None:
    # No Content-Length: the body comes as HTTP chunks of odd sizes, whose ends the core's
    # reader reports as empty pieces, which must not end the upload.
    data = bytes(range(251)) * 9000

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(data), 70_001):
            yield data[at : at + 70_001]

    r = await client.put(f"{ART}/1/run/artifacts/chunked.bin", data=chunks())
    assert r.status == 200, await r.text()
    r = await client.get(f"{ART}/1/run/artifacts/chunked.bin")
    assert await r.read() == data


@pytest.mark.parametrize(
    ("header", "status", "expected"),
    [
        ("bytes=0-9", 206, (0, 9)),
        ("bytes=100-", 206, (100, 999)),
        ("bytes=-10", 206, (990, 999)),
        ("bytes=990-5000", 206, (990, 999)),
        ("bytes=1000-", 416, None),
        ("bytes=5-1", 200, (0, 999)),
        ("bytes=0-1,5-6", 200, (0, 999)),
        ("items=0-1", 200, (0, 999)),
    ],
    ids=["head", "open", "suffix", "clipped", "past-end", "reversed", "multi", "other-unit"],
)
async def test_range(client: TestClient, header: str, status: int, expected: tuple[int, int] | None) -> None:
    data = hashlib.sha256(b"x").digest() * 32
    data = (data * 4)[:1000]
    await client.put(f"{ART}/r.bin", data=data)
    r = await client.get(f"{ART}/r.bin", headers={"Range": header})
    assert r.status == status
    if expected is None:
        assert r.headers["Content-Range"] == "bytes */1000"
        assert (await r.json())["error_code"] == "INVALID_PARAMETER_VALUE"
        return
    start, end = expected
    assert await r.read() == data[start : end + 1]
    if status == 206:
        assert r.headers["Content-Range"] == f"bytes {start}-{end}/1000"


async def test_head_sends_headers_only(client: TestClient) -> None:
    await client.put(f"{ART}/h.txt", data=b"12345")
    r = await client.head(f"{ART}/h.txt")
    assert r.status == 200 and r.headers["Content-Length"] == "5"


BAD_PATHS = [
    "..%2F..%2Fetc%2Fpasswd",
    "a/%2e%2e/%2e%2e/x",
    "a%5c..%5cb",
    "x%00y",
    "%2Fetc%2Fpasswd",
    "a/%252e%252e/b",
]


@pytest.mark.parametrize("bad", BAD_PATHS, ids=BAD_PATHS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_traversal_rejected(client: TestClient, bad: str, method: str) -> None:
    # encoded=True: send the bytes as written, without the client resolving "%2e%2e" itself.
    url = URL(str(client.make_url("")).rstrip("/") + f"{ART}/{bad}", encoded=True)
    r = await client.session.request(method, url, data=b"x" if method == "PUT" else None)
    assert r.status == 400
    assert await r.json() == {"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"}
    # The list route takes the path as a query value, decoded once by the server.
    r = await client.get(ART, params={"path": unquote(bad)})
    assert r.status == 400


async def test_directory_download_and_trailing_slash(client: TestClient) -> None:
    await client.put(f"{ART}/d/f.txt", data=b"x")
    assert (await client.get(f"{ART}/d")).status == 400
    assert (await client.put(f"{ART}/d/", data=b"x")).status == 400
    assert (await client.delete(f"{ART}/")).status == 400, "the whole destination is never deleted"


async def test_multipart_follows_the_destination(client: TestClient) -> None:
    on_s3 = client.server.app[CONFIG].artifacts_destination.startswith("s3://")
    info = await (await client.get("/api/3.0/mlflow/server-info")).json()
    # Not advertised unless the operator says clients can reach the store (direct_artifact_transfers).
    assert info["multipart_uploads_enabled"] is False and info["multipart_downloads_enabled"] is False
    create = await client.post(
        "/api/2.0/mlflow-artifacts/mpu/create/out", json={"path": "/tmp/m.bin", "num_parts": 2}
    )
    if not on_s3:
        assert create.status == 501
        assert (await create.json())["message"].startswith(
            "Multipart upload is not supported for the current artifact repository"
        )
        assert (await client.get("/api/2.0/mlflow-artifacts/presigned/m.bin")).status == 501
        return
    assert create.status == 200
    created = await create.json()
    parts, etags = [b"a" * (5 * MiB), b"tail"], []
    for cred, body in zip(created["credentials"], parts, strict=True):
        async with client.session.put(cred["url"], data=body, headers=cred["headers"]) as r:
            assert r.status == 200
            etags.append({"part_number": cred["part_number"], "etag": r.headers["ETag"], "url": cred["url"]})
    done = await client.post(
        "/api/2.0/mlflow-artifacts/mpu/complete/out",
        json={"path": "/tmp/m.bin", "upload_id": created["upload_id"], "parts": etags},
    )
    assert done.status == 200
    assert await (await client.get(f"{ART}/out/m.bin")).read() == b"".join(parts)
    signed = await (await client.get("/api/2.0/mlflow-artifacts/presigned/out/m.bin")).json()
    assert signed["file_size"] == 5 * MiB + 4
    async with client.session.get(signed["url"], headers={"Range": "bytes=0-2"}) as r:
        assert await r.read() == b"aaa"


async def test_interrupted_upload_leaves_nothing_and_server_healthy(client: TestClient) -> None:
    """A client that announces 8 MiB, sends 3 MiB and disconnects."""
    host, port = client.server.host, client.server.port
    _reader, writer = await asyncio.open_connection(host, port)
    head = f"PUT {ART}/cut.bin HTTP/1.1\r\nHost: {host}\r\nContent-Length: {8 * MiB}\r\n\r\n"
    writer.write(head.encode() + b"z" * (3 * MiB))
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    for _ in range(100):  # the handler notices the disconnect asynchronously
        if (await client.get(ART)).status == 200:
            break
    await asyncio.sleep(0.2)
    assert (await client.get(f"{ART}/cut.bin")).status == 404
    assert await (await client.get(ART)).json() == {}
    assert (await client.get("/health")).status == 200


async def test_run_artifact_list_and_ui_download(core: Core) -> None:
    async with core() as c:
        eid = (await (await c.post("/api/2.0/mlflow/experiments/create", json={"name": "e"})).json())[
            "experiment_id"
        ]
        run = (await (await c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": eid})).json())["run"]
        run_id, root = run["info"]["run_id"], run["info"]["artifact_uri"]
        assert root == f"mlflow-artifacts:/{eid}/{run_id}/artifacts"
        await c.put(f"{ART}/{eid}/{run_id}/artifacts/sub/w.txt", data=b"weights")
        await c.put(f"{ART}/{eid}/{run_id}/artifacts/top.txt", data=b"t")

        listing = await (await c.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run_id})).json()
        assert listing == {
            "root_uri": root,
            "files": [{"path": "sub", "is_dir": True}, {"path": "top.txt", "is_dir": False, "file_size": 1}],
        }
        sub = await (
            await c.get("/ajax-api/2.0/mlflow/artifacts/list", params={"run_uuid": run_id, "path": "sub"})
        ).json()
        assert sub["files"] == [{"path": "sub/w.txt", "is_dir": False, "file_size": 7}]
        r = await c.get("/get-artifact", params={"run_uuid": run_id, "path": "sub/w.txt"})
        assert r.status == 200 and await r.read() == b"weights"
        assert r.headers["Content-Disposition"].startswith("attachment")
        assert (await c.get("/get-artifact", params={"run_id": run_id, "path": "../../x"})).status == 400
        assert (await c.get("/api/2.0/mlflow/artifacts/list", params={"run_id": "f" * 32})).status == 404
        r = await c.get(
            "/model-versions/get-artifact", params={"name": "m", "version": "1", "path": "MLmodel"}
        )
        assert r.status == 404 and (await r.json())["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        # A registered version whose source is a folder of the run.
        assert (await c.post("/api/2.0/mlflow/registered-models/create", json={"name": "m"})).status == 200
        version = {"name": "m", "source": f"runs:/{run_id}/sub", "run_id": run_id}
        assert (await c.post("/api/2.0/mlflow/model-versions/create", json=version)).status == 200
        r = await c.get("/model-versions/get-artifact", params={"name": "m", "version": "1", "path": "w.txt"})
        assert r.status == 200 and await r.read() == b"weights"


@pytest.mark.parametrize(("kind", "advertised"), [("local", False), ("s3", True)], ids=["local", "s3"])
async def test_direct_transfers_are_advertised_only_where_possible(
    core: Core, tmp_path: Path, request: pytest.FixtureRequest, kind: str, advertised: bool
) -> None:
    uri, env = destination_for(kind, request, tmp_path)
    with environment(env):
        async with core(artifacts_destination=uri, direct_artifact_transfers=True) as c:
            info = await (await c.get("/api/3.0/mlflow/server-info")).json()
    assert info["multipart_uploads_enabled"] is advertised
    assert info["multipart_downloads_enabled"] is advertised


async def test_no_serve_artifacts(core: Core, tmp_path: Path) -> None:
    async with core(serve_artifacts=False, default_artifact_root=str(tmp_path / "mlruns")) as c:
        r = await c.put(f"{ART}/a.txt", data=b"x")
        assert r.status == 503 and "--serve-artifacts" in (await r.json())["detail"]
        r = await c.get(ART)
        assert r.status == 503 and (await r.text()).startswith(
            "Endpoint: /api/2.0/mlflow-artifacts/artifacts disabled due to the mlflow server running with "
            "`--no-serve-artifacts`"
        )
        info = await (await c.get("/api/3.0/mlflow/server-info")).json()
        assert info["multipart_uploads_enabled"] is False
        # Runs then live where the client writes directly; the server still lists them.
        eid = (await (await c.post("/api/2.0/mlflow/experiments/create", json={"name": "d"})).json())[
            "experiment_id"
        ]
        run = (await (await c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": eid})).json())["run"]
        root = Path(run["info"]["artifact_uri"])
        assert root == tmp_path / "mlruns" / eid / run["info"]["run_id"] / "artifacts"
        root.mkdir(parents=True)
        (root / "direct.txt").write_text("written by the client")
        listing = await (
            await c.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run["info"]["run_id"]})
        ).json()
        assert listing["files"] == [{"path": "direct.txt", "is_dir": False, "file_size": 21}]


async def test_local_roots_outside_the_server_roots_are_not_read(core: Core, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere"
    secret.mkdir()
    body = {"name": "sneaky", "artifact_location": str(secret)}
    # Allowed once (an operator's allow-list), then the allow-list is gone: the run stays unreadable.
    async with core(artifact_allowed_locations=(str(secret),)) as c:
        eid = (await (await c.post("/api/2.0/mlflow/experiments/create", json=body)).json())["experiment_id"]
        run = (await (await c.post("/api/2.0/mlflow/runs/create", json={"experiment_id": eid})).json())["run"]
    async with core() as c:
        r = await c.get("/api/2.0/mlflow/artifacts/list", params={"run_id": run["info"]["run_id"]})
        assert r.status == 403 and (await r.json())["error_code"] == "PERMISSION_DENIED"
        r = await c.post("/api/2.0/mlflow/experiments/create", json={**body, "name": "sneaky-2"})
        assert r.status == 400 and (await r.json())["error_code"] == "INVALID_PARAMETER_VALUE"


async def test_artifacts_only(core: Core) -> None:
    async with core(artifacts_only=True) as c:
        assert (await c.put(f"{ART}/x.txt", data=b"x")).status == 200
        assert await (await c.get(f"{ART}/x.txt")).read() == b"x"
        for method, path in [
            ("POST", "/api/2.0/mlflow/experiments/create"),
            ("GET", "/api/2.0/mlflow/runs/get"),
            ("GET", "/ajax-api/2.0/mlflow/artifacts/list"),
            ("GET", "/get-artifact"),
            ("GET", "/api/2.0/mlflow/registered-models/search"),
        ]:
            r = await c.request(method, path, json={} if method == "POST" else None)
            assert r.status == 503, path
            assert await r.text() == (
                f"Endpoint: {path} disabled due to the mlflow server running in `--artifacts-only` mode. "
                "To enable tracking server functionality, run `mlflow server` without `--artifacts-only`"
            )
        info = await (await c.get("/api/3.0/mlflow/server-info")).json()
        assert info["store_type"] is None
        assert (await c.get("/health")).status == 200
