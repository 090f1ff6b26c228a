"""The engine stays headless: core/ and models/ never import Qt or the desktop package."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "sealroom.desktop")


@pytest.mark.parametrize("package", ["core", "models"])
def test_engine_sources_never_import_qt(package: str):
    offenders = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith(FORBIDDEN)]
    assert offenders == []


@pytest.mark.parametrize(
    ("modules", "heavy"),
    [
        # the engine imports nothing heavy (nor Qt) until it is used
        ("sealroom.core.engine, sealroom.core.cli, sealroom.models.catalogue", ["PySide6"]),
        # the window appears before Chroma, ONNX Runtime, llama.cpp or pypdf are loaded
        ("sealroom.desktop.app, sealroom.desktop.window", []),
    ],
)
def test_importing_loads_no_heavy_library_before_it_is_needed(modules: str, heavy: list[str]):
    names = [*heavy, "chromadb", "llama_cpp", "onnxruntime", "pypdf"]
    code = f"import sys, {modules}\nprint(sorted(m for m in {names!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_package_layout_maps_top_level_folders(tmp_path: Path):
    import sealroom.core
    import sealroom.models

    assert Path(sealroom.core.__file__).parent == ROOT / "core"
    assert Path(sealroom.models.__file__).parent == ROOT / "models"
