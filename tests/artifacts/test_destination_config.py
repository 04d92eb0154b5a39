"""--artifacts-destination accepts every registered store and refuses others without echoing the
URI (it may carry a password)."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load


@pytest.mark.parametrize(
    "destination",
    ["ftp://u:p@127.0.0.1/a", "ftps://h/a", "sftp://u@h/srv/a", "wasbs://c@acct.blob.core.windows.net/p",
     "abfss://c@acct.dfs.core.windows.net/p", "hdfs://nn/a", "s3://b/p", "gs://b/p", "/srv/a", "file:///srv/a"],
)  # fmt: skip
def test_registered_schemes_are_accepted(destination: str) -> None:
    assert load({"artifacts_destination": destination}, env={}).artifacts_destination == destination


def test_an_unknown_scheme_is_refused_without_the_uri() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"artifacts_destination": "gopher://user:hunter2@host/x"}, env={})
    message = str(caught.value)
    assert "gopher://" in message and "sftp://" in message
    assert "hunter2" not in message
