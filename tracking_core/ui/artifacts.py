"""The run page's artifact browser: one directory listing and a preview of one file.

Listing goes through the artifacts/list handler (the API's checks); the preview reads at most
PREVIEW_BYTES of the file from the same repository the download route streams from.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tracking_core.api import run_artifacts
from tracking_core.artifacts import paths
from tracking_core.keys import ARTIFACTS
from tracking_core.ui.calls import call

PREVIEW_BYTES = 256 * 1024
CSV_ROWS = 200
IMAGE = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
TEXT = {".txt", ".log", ".md", ".py", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".sh", ".html", ".xml", ".svg",
        ".rst", ".r", ".sql", ".ipynb", ".jsonl", ".conf", ".env"}
TEXT_NAMES = {"MLmodel", "conda.yaml", "requirements.txt", "python_env.yaml", "MLproject", "LICENSE", "README"}


@dataclass
class Preview:
    path: str
    kind: str  # "image" | "json" | "text" | "csv" | "binary" | "dir"
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False
    size: int | None = None


def kind_of(name: str) -> str:
    base = paths.basename(name)
    ext = "." + base.rsplit(".", 1)[-1].lower() if "." in base else ""
    if ext in IMAGE:
        return "image"
    if ext == ".json":
        return "json"
    if ext in (".csv", ".tsv"):
        return "csv"
    if ext in TEXT or base in TEXT_NAMES:
        return "text"
    return "binary"


async def listing(request: web.Request, run_id: str, path: str) -> dict[str, Any]:
    return await call(request, run_artifacts.ENDPOINTS, "artifacts/list", run_id=run_id, path=path or None)


async def _head(request: web.Request, root: str, path: str) -> tuple[bytes, int | None, bool]:
    repo, where = await request.app[ARTIFACTS].locate(root, path)
    stat = await repo.stat(where)
    if stat is None or stat.is_dir:
        return b"", None, False
    size = stat.size or 0
    if size == 0:
        return b"", 0, False
    download = await repo.download(where, 0, min(size, PREVIEW_BYTES) - 1)
    parts = []
    try:
        async for chunk in download.chunks:
            parts.append(chunk)
    finally:
        await download.aclose()
    return b"".join(parts)[:PREVIEW_BYTES], size, size > PREVIEW_BYTES


def _decode(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3:  # a character cut at the preview limit
            return data[: exc.start].decode("utf-8")
        return None


async def preview(request: web.Request, root: str, path: str) -> Preview:
    kind = kind_of(path)
    if kind == "image":
        return Preview(path, kind)
    data, size, truncated = await _head(request, root, path)
    if size is None:
        return Preview(path, "dir")
    text = _decode(data)
    if text is None or (kind == "binary" and "\x00" in text):
        return Preview(path, "binary", size=size)
    if kind == "json" and not truncated:
        with contextlib.suppress(ValueError):
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    if kind == "csv":
        dialect = "excel-tab" if path.lower().endswith(".tsv") else "excel"
        rows = []
        try:
            for i, row in enumerate(csv.reader(io.StringIO(text), dialect)):
                if i > CSV_ROWS:
                    truncated = True
                    break
                rows.append(row)
        except csv.Error:
            return Preview(path, "text", text=text, truncated=truncated, size=size)
        return Preview(path, "csv", rows=rows, truncated=truncated, size=size)
    return Preview(path, "json" if kind == "json" else "text", text=text, truncated=truncated, size=size)
