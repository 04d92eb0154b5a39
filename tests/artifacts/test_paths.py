"""Path normalisation and confinement: one row per shape of hostile or odd input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracking_core.artifacts import paths
from tracking_core.errors import MlflowError

ACCEPTED = [
    ("a.txt", "a.txt"),
    ("dir/sub/file.bin", "dir/sub/file.bin"),
    ("dir//double/./dot", "dir/double/dot"),
    ("trailing/", "trailing"),
    ("with space/ünïcode ✓.txt", "with space/ünïcode ✓.txt"),
    ("..hidden/...dots", "..hidden/...dots"),
    ("", ""),
    ("/", ""),
]
REJECTED = [
    "../etc/passwd",
    "a/../../etc",
    "a/..",
    "..",
    "/etc/passwd",
    "//server/share",
    "~/.ssh/id_rsa",
    "C:/Windows",
    "c:relative",
    "a\\..\\b",
    "dir\\file",
    "a\x00b",
    "line\nbreak",
    "a/%2e%2e/b",
    "%2E%2E/x",
    "a%2fb",
    "a%5cb",
    "a%00b",
]


@pytest.mark.parametrize(("raw", "expected"), ACCEPTED, ids=[repr(r) for r, _ in ACCEPTED])
def test_clean_accepts(raw: str, expected: str) -> None:
    assert paths.clean(raw) == expected


@pytest.mark.parametrize("raw", REJECTED, ids=[repr(r) for r in REJECTED])
def test_clean_rejects(raw: str) -> None:
    with pytest.raises(MlflowError) as info:
        paths.clean(raw)
    assert (info.value.status, info.value.message) == (400, "Invalid path")


def test_root_refused_where_a_file_is_meant() -> None:
    with pytest.raises(MlflowError):
        paths.clean("/", allow_root=False)


def test_confine_refuses_symlinks_out_of_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "inside").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    os.symlink(outside, root / "escape")
    os.symlink(outside / "secret.txt", root / "inside" / "link.txt")
    os.symlink(root / "inside", root / "inner-link")
    assert paths.confine(root, "inside/new/file.txt") == Path(os.path.realpath(root)) / "inside/new/file.txt"
    for bad in ["escape", "escape/secret.txt", "escape/new-file", "inside/link.txt", "inner-link"]:
        with pytest.raises(MlflowError):
            paths.confine(root, bad)
