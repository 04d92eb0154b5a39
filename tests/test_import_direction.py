"""Dependencies run one way: the gateway uses the tracking core; the core never imports the gateway.

The core's settings and the identity contract live in the core (tracking_core.settings,
tracking_core.contract) exactly so that a worker process loads none of the gateway's auth, TLS or
config-validation code, and so that the two packages cannot grow an import cycle again.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "tracking_core"


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


CORE_MODULES = sorted(CORE.rglob("*.py"))


@pytest.mark.parametrize("path", CORE_MODULES, ids=[str(p.relative_to(CORE.parent)) for p in CORE_MODULES])
def test_core_module_never_imports_the_gateway(path: Path) -> None:
    offending = [f"line {n}: {name}" for n, name in _imported_modules(path) if name.split(".")[0] == "gateway"]
    assert not offending, f"{path.relative_to(CORE.parent)} imports the gateway: {offending}"


def test_a_core_worker_loads_no_gateway_module() -> None:
    code = (
        "import sys, tracking_core.worker, tracking_core.gc, tracking_core.store.schema;"
        "print(sorted(m for m in sys.modules if m == 'gateway' or m.startswith('gateway.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
