"""Where an HDFS location's WebHDFS API is, and as whom it is called.

Only the address mapping is tested here: no real WebHDFS server can run on this machine (no
Hadoop; none is packaged for PyPI, npm or Debian), and a stand-in written for the test would
only test itself. The repository's file operations are untested against a cluster (README).
"""

from __future__ import annotations

import pytest

from tracking_core.artifacts.hdfs import endpoint
from tracking_core.artifacts.repository import default_registry
from tracking_core.errors import MlflowError


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
