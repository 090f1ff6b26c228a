"""What the app changes in its Qt binding, in one place (imported by the package, before any widget)."""

from __future__ import annotations

import sys
from types import ModuleType

import PySide6.QtCore  # noqa: F401  # installs PySide6's import hook, changed below


def keep_module_sources_out_of_memory() -> None:
    """Stop PySide6's import hook from keeping the source text of every module imported after it.

    The hook (for `from __feature__ import snake_case`, which we do not use) asks of each new module
    whether its source mentions "PySide6", by `inspect.getsource`, and `linecache` then keeps all that
    source for the life of the process (PYSIDE-2029; napari#8584 saw the same tax at start-up). With
    Chroma, ONNX Runtime and their dependencies that is 744 files and 28 MB of the window's memory,
    measured. Here the same question is answered by reading the file's bytes, which keeps nothing.
    Modules without a `.py` file (extensions, a frozen bundle's) still go to PySide6's own check.
    """
    feature = sys.modules.get("shibokensupport.feature")
    original = getattr(feature, "_mod_uses_pyside", None)
    if original is None or getattr(original, "sealroom", False):
        return  # another binding layout (nothing to change), or changed already

    def uses_pyside(module: ModuleType) -> bool:
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            return bool(original(module))
        try:
            with open(path, "rb") as source:
                return b"PySide6" in source.read()
        except OSError:
            return False  # as PySide6's check: no source, no PySide6 use to switch

    uses_pyside.sealroom = True  # type: ignore[attr-defined]
    feature._mod_uses_pyside = uses_pyside  # type: ignore[union-attr]


keep_module_sources_out_of_memory()
