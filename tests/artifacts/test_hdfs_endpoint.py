"""Where an HDFS location's WebHDFS API is, as whom it is called, and how its failures to reach
one look to a client.

No real WebHDFS server can run on this machine (no Hadoop; none is packaged for PyPI, npm or
Debian), and a stand-in written for the test would only test itself. So only what needs no
namenode is tested: the address mapping, a refused location, nothing listening (a retried 503),
and a real HTTP server that is not WebHDFS (Python's http.server, as a mistyped WEBHDFS_URL would
reach). The repository's file operations are untested against a cluster (README).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.artifacts.conftest import Core
from tests.artifacts.daemons import daemon
from tests.artifacts.stores import environment
from tests.services import free_port
from tracking_core.artifacts.filetrees import StoreUnavailable
from tracking_core.artifacts.hdfs import endpoint
from tracking_core.artifacts.repository import ArtifactStores, default_registry
from tracking_core.errors import ErrorCode, MlflowError

ART = "/api/2.0/mlflow-artifacts/artifacts"


@pytest.mark.parametrize(
    ("uri", "env", "expected"),
    [
        ("hdfs://nn:8020/mlflow/art", {}, ("http://nn:9870", None, "/mlflow/art")),
        ("hdfs://alice@nn/mlflow", {"HADOOP_USER_NAME": "bob"}, ("http://nn:9870", "alice", "/mlflow")),
        ("hdfs://nn/x", {"HADOOP_USER_NAME": "bob"}, ("http://nn:9870", "bob", "/x")),
        ("hdfs://nn/x", {"WEBHDFS_URL": "https://knox:8443/gateway/default/"},
         ("https://knox:8443/gateway/default", None, "/x")),
        ("hdfs:///x", {"WEBHDFS_URL": "http://httpfs:14000"}, ("http://httpfs:14000", None, "/x")),
        ("webhdfs://nn:50070/a%20b", {}, ("http://nn:50070", None, "/a b")),
        ("swebhdfs://nn/a", {}, ("https://nn:9870", None, "/a")),
    ],
    ids=["rpc-port-ignored", "uri-user-wins", "hadoop-user-name", "gateway-url", "no-host-with-url",
         "webhdfs-port", "swebhdfs-https"],
)  # fmt: skip
def test_endpoint(uri: str, env: dict[str, str], expected: tuple[str, str | None, str]) -> None:
    assert endpoint(uri, env) == expected


def test_a_location_without_namenode_is_refused() -> None:
    with pytest.raises(MlflowError, match="name the namenode"):
        endpoint("hdfs:///x", {})


def test_registered_like_every_store() -> None:
    assert {"hdfs", "webhdfs", "swebhdfs", "ftp", "ftps", "sftp", "wasbs", "abfss"} <= set(default_registry().schemes)


@pytest.fixture(scope="module")
def plain_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Python's own http.server on loopback, serving an empty directory: a web server, not WebHDFS."""
    root = tmp_path_factory.mktemp("www")
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(root), str(port)]
    with daemon(argv, port, root.parent / "http.log"):
        yield port


async def first_error(uri: str, env: dict[str, str]) -> MlflowError:
    with environment(env):
        async with ArtifactStores(default_registry()) as stores:
            repo = await stores.repository(uri)
            with pytest.raises(MlflowError) as caught:
                await repo.stat("x")
    return caught.value


async def test_nothing_listening_is_a_retryable_503_without_user_or_token() -> None:
    port = free_port()
    env = {"WEBHDFS_DELEGATION_TOKEN": "tok-secret-123"}
    error = await first_error(f"webhdfs://alice-secret@127.0.0.1:{port}/data", env)
    assert isinstance(error, StoreUnavailable)
    assert error.code == ErrorCode.TEMPORARILY_UNAVAILABLE and error.status == 503
    assert f"127.0.0.1:{port}" in error.message and "unreachable" in error.message
    assert "alice-secret" not in error.message and "tok-secret-123" not in error.message


async def test_an_http_server_that_is_not_webhdfs_is_named_as_such(plain_http: int) -> None:
    env = {"WEBHDFS_URL": f"http://127.0.0.1:{plain_http}", "HADOOP_USER_NAME": "bob"}
    error = await first_error("hdfs://namenode/data", env)
    assert error.code == ErrorCode.INTERNAL_ERROR
    assert f"127.0.0.1:{plain_http} answered 404" in error.message and "WEBHDFS_URL" in error.message
    assert "bob" not in error.message


async def test_proxied_upload_to_an_unreachable_namenode_answers_mlflow_json_503(core: Core, tmp_path: Path) -> None:
    port = free_port()
    async with core(artifacts_destination=f"webhdfs://127.0.0.1:{port}/mlflow") as client:
        r = await client.put(f"{ART}/1/run/artifacts/model.bin", data=b"x" * 1000)
        assert r.status == 503
        body = await r.json()
        assert body["error_code"] == "TEMPORARILY_UNAVAILABLE" and "HDFS" in body["message"]
        r = await client.get(ART, params={"path": "1/run/artifacts"})
        assert r.status == 503 and (await r.json())["error_code"] == "TEMPORARILY_UNAVAILABLE"
