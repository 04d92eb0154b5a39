"""Issue 13, finding 2 (read side): the server touches artifacts only inside its roots.

Reproduced before the fix: `model-versions/create` with `source: "s3://another-bucket"` and then
`GET /model-versions/get-artifact?...&path=file.csv` returned the other bucket's object, read with
the server's own credentials. Now every direct read goes through `Confinement.require`, for any
scheme; `--artifact-allowed-locations` admits more.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.artifacts.conftest import Core
from tests.artifacts.stores import S3Server, environment
from tracking_core.artifacts.confine import Confinement

MV = "/api/2.0/mlflow/model-versions"


def _put(s3: S3Server, bucket: str, key: str, body: bytes) -> None:
    client = s3.client()
    if bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=key, Body=body)


async def test_model_version_source_in_another_bucket_is_not_read(
    core: Core, s3_server: S3Server
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    _put(s3_server, "another-bucket", "file.csv", b"secret,rows\n")
    _put(s3_server, s3_server.bucket, f"{prefix}-sibling/file.csv", b"sibling prefix\n")
    with environment(s3_server.env):
        for allowed, expected in [((), 403), (("s3://another-bucket",), 200)]:
            async with core(artifacts_destination=f"s3://{s3_server.bucket}/{prefix}",
                            artifact_allowed_locations=allowed) as c:
                name = f"m-{uuid.uuid4().hex[:8]}"
                await c.post("/api/2.0/mlflow/registered-models/create", json={"name": name})
                for source in ("s3://another-bucket", f"s3://{s3_server.bucket}/{prefix}-sibling"):
                    r = await c.post(f"{MV}/create", json={"name": name, "source": source})
                    assert r.status == 200, await r.text()  # registering is allowed, as in MLflow
                r = await c.get("/model-versions/get-artifact", params={"name": name, "version": "1",
                                                                       "path": "file.csv"})
                assert r.status == expected, await r.text()
                if expected == 200:
                    assert await r.read() == b"secret,rows\n"
                else:
                    assert (await r.json())["error_code"] == "PERMISSION_DENIED"
                # A sibling prefix of the destination is not inside it (whole segments only).
                r = await c.get("/model-versions/get-artifact", params={"name": name, "version": "2",
                                                                       "path": "file.csv"})
                assert r.status == 403


ROOTS = ["s3://artifacts/proxied", "gs://team", "sftp://svc@files.example:2222/srv/art",
         "wasbs://c@acct.blob.core.windows.net/art", "hdfs://nn:8020/art", "/srv/mlartifacts", "mlflow-artifacts:/"]


@pytest.mark.parametrize(
    ("uri", "inside"),
    [
        ("s3://artifacts/proxied/1/run/artifacts", True),
        ("s3://artifacts/proxied", True),
        ("s3://artifacts/proxied-other/x", False),
        ("s3://artifacts/other", False),
        ("s3://another-bucket/proxied/x", False),
        ("s3://artifacts/proxied/../other", False),
        ("s3://artifacts/proxied/%2e%2e/other", False),
        ("s3://artifacts/proxied/x?versionId=1", False),
        ("S3://ARTIFACTS/proxied/x", True),
        ("gs://team/any/thing", True),
        ("gs://team-b/x", False),
        ("sftp://svc@files.example:2222/srv/art/x", True),
        ("sftp://svc@files.example:22/srv/art/x", False),
        ("sftp://root@files.example:2222/srv/art/x", False),
        ("wasbs://c@acct.blob.core.windows.net/art/x", True),
        ("wasbs://c@evil.blob.core.windows.net/art/x", False),
        ("hdfs://nn:8020/art/x", True),
        ("ftp://files.example/srv/art/x", False),
        ("/srv/mlartifacts/1/x", True),
        ("file:///srv/mlartifacts/1/x", True),
        ("/srv/mlartifacts-evil/x", False),
        ("/etc/passwd", False),
        ("mlflow-artifacts:/1/x", False),  # proxied URIs never reach a store directly
    ],
)
def test_confinement_compares_scheme_authority_and_whole_segments(uri: str, inside: bool) -> None:
    assert Confinement(ROOTS).allows(uri) is inside


def test_symlink_out_of_a_local_root_is_outside(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    confinement = Confinement([str(root)])
    assert confinement.allows(str(root / "dir"))
    assert not confinement.allows(str(root / "link" / "x"))
