"""What the data folder holds and what is wrong with it: `status` for the command line, the window's
sidebar overview, and the warnings both show (a recovered catalog, a data folder others can read, a
vector index that lacks passages)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sealroom.core.protocols import DEFAULT_WORKSPACE
from sealroom.core.runtime.errors import SealroomError
from sealroom.core.runtime.paths import sealroom_version
from sealroom.core.store.catalog import Catalog


class Health:
    def __init__(
        self, home: Path, catalog: Catalog, vectors: Callable[[], int], vectors_opened: Callable[[], bool]
    ) -> None:
        """`vectors()`: how many passages the vector index holds (opening it); `vectors_opened()`: whether
        it is open already."""
        self.home, self.catalog, self._vectors, self._opened = home, catalog, vectors, vectors_opened

    def status(self) -> dict[str, Any]:
        c = self.catalog
        return {
            "version": sealroom_version(),
            "data_dir": str(self.home),
            "folders": [path for _, path in c.folders(None)],
            "files": [{"path": f.path, "status": f.status, "reason": f.reason} for f in c.files()],
            "counts": c.count_by_status(),
            "chunks": c.chunk_count(),
            "semantic_pending": self.semantic_pending(),
            "embedding_model": c.get_meta("embedding_model"),
            "warnings": self.warnings(),
        }

    def overview(self, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
        """What the window's sidebar shows: workspaces, folders with counts, chats, totals, failures."""
        c = self.catalog
        folders = {path for _, path in c.folders(workspace)}
        return {
            "workspaces": c.workspaces(),
            "counts": {p: n for p, n in c.counts_by_folder().items() if p in folders},
            "chats": c.chat_list(workspace),
            "totals": c.count_by_status(),
            "not_indexed": c.not_indexed(),
            "chunks": c.chunk_count(),
            "semantic_pending": self.semantic_pending(),
            "embedding_model": c.get_meta("embedding_model"),
            "warnings": self.warnings(),
        }

    def semantic_pending(self) -> dict[str, Any]:
        """Files searchable by keyword whose vectors are still being made, and a line saying so."""
        files, passages = self.catalog.semantic_pending()
        line = (
            f"{files:,} file{'s' if files != 1 else ''} searchable by keyword, semantic index pending "
            f"({passages:,} passages)"
            if files
            else ""
        )
        return {"files": files, "passages": passages, "message": line}

    def warnings(self) -> list[str]:
        """Problems the user should fix that do not stop Sealroom (shown by `status` and Diagnostics)."""
        out = []
        recovered = self.catalog.get_meta("recovered")
        if recovered:
            out.append(recovered)
        mode = self.home.stat().st_mode & 0o777
        if mode & 0o077:
            out.append(
                f"the data folder {self.home} can be read by other users (mode {mode:o}); "
                f"run: chmod 700 {self.home}"
            )
        vectors = self.vector_gap()
        if vectors:
            out.append(vectors)
        return out

    def vector_gap(self) -> str:
        """Says so when the vector index lacks passages the catalog has (deleted or damaged under us):
        search is then keyword-only for them until indexing (or `repair`) embeds them again."""
        chunks = self.catalog.chunk_count()
        if not chunks:
            return ""
        fix = "indexing restores it (the window does so on its own), or run `sealroom repair`"
        if not self._opened() and not (self.home / "chroma" / "chroma.sqlite3").exists():
            return f"the vector index is missing: search is by keyword only; {fix}"
        try:
            held = self._vectors()
        except SealroomError as exc:
            return str(exc)
        chunks -= self.catalog.semantic_pending()[1]  # on their way (indexing says so), not lost
        if held < chunks:
            return f"the vector index holds {held:,} of {chunks:,} passages: the rest are found by keyword only; {fix}"
        return ""
