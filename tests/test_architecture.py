"""The engine stays headless: core/ and models/ never import Qt or the desktop package."""

import ast
import re
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


# --- the house (issue 25): rooms and the import rules that keep it as drawn in docs/architecture.md -------
ROOMS = ("runtime", "ingest", "store", "answer", "output", "feedback")


def room(module: str) -> str | None:
    """'core.answer' for sealroom.core.answer.evidence, 'core.engine' for sealroom.core.engine, 'models',
    'desktop'; None for anything not Sealroom's."""
    parts = module.split(".")
    if parts[0] != "sealroom" or len(parts) < 2:
        return None
    if parts[1] != "core":
        return parts[1]
    return f"core.{parts[2]}" if len(parts) > 2 else "core"


def _source_room(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("").parts
    return room("sealroom." + ".".join(rel)) or ""


def import_graph() -> dict[str, set[str]]:
    """Which room imports which, from every import statement (top level or inside a function)."""
    graph: dict[str, set[str]] = {}
    for package in ("core", "models", "desktop", "server"):
        for path in (ROOT / package).rglob("*.py"):
            src = _source_room(path)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                else:
                    continue
                for target in targets:
                    dst = room(target)
                    if dst and dst != "core" and dst != src:
                        graph.setdefault(src, set()).add(dst)
    return graph


def mermaid() -> str:
    """The picture in docs/architecture.md, drawn from the imports."""
    lines = ["flowchart TD"]
    for src, dsts in sorted(import_graph().items()):
        for dst in sorted(dsts):
            lines.append(f"    {src.replace('.', '_')}[{src}] --> {dst.replace('.', '_')}[{dst}]")
    return "\n".join(lines)


def test_core_is_six_rooms_and_four_wiring_files():
    top = sorted(p.name for p in (ROOT / "core").iterdir() if not p.name.startswith(("_", ".")))
    assert top == sorted([*ROOMS, "cli.py", "components.py", "engine.py", "protocols.py"])


def test_the_rooms_import_each_other_in_one_direction_only():
    graph = import_graph()
    allowed = {  # a room may import those below it; nothing imports upwards
        "core.runtime": set(),
        "core.protocols": set(),
        "core.store": {"core.runtime", "core.protocols"},
        "core.ingest": {"core.runtime", "core.protocols", "core.store"},
        "core.answer": {"core.runtime", "core.protocols", "core.store"},
        "core.output": {"core.runtime", "core.protocols", "core.store", "core.answer"},
        # the feedback loop watches the others: it runs answers, reads ingest's parser version, sends metrics
        "core.feedback": {
            "core.runtime",
            "core.protocols",
            "core.store",
            "core.ingest",
            "core.answer",
            "core.output",
        },
        "models": {"core.runtime", "core.protocols"},
        # the wiring: components builds the parts the rooms use; the engine wires rooms and parts together
        "core.components": {
            "core.runtime",
            "core.protocols",
            "core.store",
            "core.ingest",
            "core.answer",
            "models",
        },
        "core.engine": {
            "core.runtime",
            "core.protocols",
            "core.store",
            "core.ingest",
            "core.answer",
            "core.output",
            "core.feedback",
            "core.components",
        },
    }
    wrong = {
        src: sorted(graph.get(src, set()) - ok) for src, ok in allowed.items() if graph.get(src, set()) - ok
    }
    assert wrong == {}


def test_only_components_builds_models_and_the_desktop_never_reaches_into_the_store():
    graph = import_graph()
    assert sorted(src for src, dsts in graph.items() if "models" in dsts and src.startswith("core")) == [
        "core.components"
    ]
    assert not {"core.store", "core.ingest", "core.components", "models"} & graph.get("desktop", set())
    # team mode's service is wiring of its own, like the engine: nothing in core, models or the desktop uses it
    assert sorted(src for src, dsts in graph.items() if "server" in dsts) == []
    assert "desktop" not in graph.get("server", set())
    reaches = [
        f"{path.name}: {line.strip()}"
        for path in (ROOT / "desktop").glob("*.py")
        for line in path.read_text().splitlines()
        if ".catalog." in line or ".store." in line
    ]
    assert reaches == []  # the window goes through Engine methods, never around them


def test_the_picture_in_docs_is_the_one_the_imports_draw():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    assert mermaid() in doc, "docs/architecture.md is out of date: python -m tests.test_architecture"


def test_the_fast_lane_starts_no_process_and_no_model():
    from tests.conftest import UNIT_MODULES

    heavy = ("subprocess", "Engine", "OnnxEmbedder", "LlmWorker", "make_generator", "cli(", "cli_json(")
    offenders = [
        f"{module}: {word}"
        for module in UNIT_MODULES
        for word in heavy
        if word in (ROOT / module).read_text()
    ]
    assert offenders == []


if __name__ == "__main__":
    print(mermaid())


def _bare_any(annotation: ast.expr) -> bool:
    """`Any` in an annotation other than as a JSON record's values (dict[str, Any])."""
    return "Any" in ast.unparse(annotation).replace("dict[str, Any]", "")


def _module(path: Path) -> str:
    return "sealroom." + ".".join(path.relative_to(ROOT).with_suffix("").parts)


def test_no_signature_that_crosses_a_room_is_typed_any():
    """mypy checks the seams only where they are typed: a public function or method that code in another
    room (or the wiring, desktop, models) calls, from a module it imports, takes and returns real types."""
    sources = {
        path: path.read_text()
        for package in ("core", "models", "desktop")
        for path in (ROOT / package).rglob("*.py")
    }
    loose: list[tuple[str, str]] = []  # (module, public function or method typed with a bare Any)
    for path, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                args = node.args.args + node.args.kwonlyargs
                annotations = [a.annotation for a in args if a.annotation] + (
                    [node.returns] if node.returns else []
                )
                if any(_bare_any(a) for a in annotations):
                    loose.append((_module(path), node.name))
    crossing = sorted(
        f"{module}.{name} used in {path.relative_to(ROOT)}"
        for module, name in loose
        for path, text in sources.items()
        if room(_module(path)) != room(module) and module in text and re.search(rf"(?<!def )\b{name}\(", text)
    )
    assert crossing == []


def test_the_engine_stays_wiring():
    """The Engine wires rooms together; what it grows beyond this belongs in a room (issue 25: 808 -> 248)."""
    assert len((ROOT / "core" / "engine.py").read_text().splitlines()) <= 250


def test_every_package_is_in_the_wheel():
    """pyproject.toml lists packages by hand (the source folders map to sealroom.*): a package missing there
    works from the editable install and is absent from a built wheel (sealroom.core.feedback once was)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        "sealroom." + ".".join(init.parent.relative_to(ROOT).parts)
        for package in ("core", "models", "desktop")
        for init in (ROOT / package).rglob("__init__.py")
    }
    assert found - listed == set()
