from __future__ import annotations

import base64

import pytest

from tracking_core.errors import ErrorCode, MlflowError
from tracking_core.search import page_token


@pytest.mark.parametrize("offset", [0, 1, 1000, 2**40], ids=["zero", "one", "thousand", "large"])
def test_round_trip(offset: int) -> None:
    assert page_token.decode(page_token.encode(offset)) == offset


def test_same_format_as_mlflow() -> None:
    assert page_token.encode(1000) == "eyJvZmZzZXQiOiAxMDAwfQ=="
    assert page_token.decode("eyJvZmZzZXQiOiAxMDAwfQ==") == 1000


@pytest.mark.parametrize("token", [None, ""], ids=["none", "empty"])
def test_no_token_is_first_page(token: str | None) -> None:
    assert page_token.decode(token) == 0


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


BAD = [
    ("not base64", "not a token!", "Invalid page token, could not base64-decode"),
    ("bad padding", "eyJvZmZzZXQiOiAxMDAwfQ", "Invalid page token, could not base64-decode"),
    ("non-ascii", "é", "Invalid page token, could not base64-decode"),
    ("not json", b64("offset=3"), "Invalid page token, decoded value="),
    ("not an object", b64("[1]"), "Invalid page token, parsed value="),
    ("no offset", b64('{"page": 1}'), "Invalid page token, parsed value="),
    ("string offset", b64('{"offset": "1"}'), "Invalid page token, parsed value="),
    ("float offset", b64('{"offset": 1.5}'), "Invalid page token, parsed value="),
    ("bool offset", b64('{"offset": true}'), "Invalid page token, parsed value="),
    ("negative offset", b64('{"offset": -1}'), "offset must be non-negative"),
]


@pytest.mark.parametrize(("token", "message"), [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_token(token: str, message: str) -> None:
    with pytest.raises(MlflowError) as caught:
        page_token.decode(token)
    assert caught.value.code is ErrorCode.INVALID_PARAMETER_VALUE
    assert message in caught.value.message
