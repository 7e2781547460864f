"""The import rules of docs/ARCHITECTURE.md, checked on the source and in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.settings import REPO_ROOT

FORBIDDEN = {
    "protocol": {"node", "market", "client", "torch", "transformers"},
    "client": {"node", "market", "torch", "transformers"},
    "market": {"node", "client", "torch", "transformers"},
}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_never_imports_what_it_must_not(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(_imported_roots(path) & FORBIDDEN[package])
        for path in (REPO_ROOT / package).rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_all_four_packages_import_and_client_market_stay_torch_free() -> None:
    code = (
        "import sys, protocol, node, market, client\n"
        "import protocol.settings, protocol.cli, protocol.manifest\n"
        "assert 'torch' not in sys.modules, 'importing the packages must not import torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
