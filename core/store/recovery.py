"""Opening the catalog so that damage never loses the user's folders: an unreadable catalog is moved
aside (never deleted) and a new one starts from `folders.json`, a mirror of the watched folders kept
outside the catalog."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from sealroom.core.runtime import logs
from sealroom.core.runtime.errors import DiskFull, SealroomError, is_disk_full
from sealroom.core.store.catalog import Catalog

SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26  # a damaged file; other SQLite errors never move the catalog aside


def open_catalog(home: Path) -> tuple[Catalog, str]:
    """The catalog of `home`, and what was recovered ('' when nothing was)."""
    path = home / "catalog.sqlite"
    try:
        catalog = Catalog(path)
        catalog.readable()
        return catalog, ""
    except sqlite3.DatabaseError as exc:
        if is_disk_full(exc):
            raise DiskFull(home) from None
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF not in (SQLITE_CORRUPT, SQLITE_NOTADB):
            raise SealroomError(f"the catalog {path} cannot be opened: {exc}") from None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = home / f"catalog.damaged-{stamp}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        logs.problem("catalog unreadable", error=True, detail=type(exc).__name__, moved_to=str(aside))
        catalog = Catalog(path)
        for entry in read_folder_mirror(home):
            catalog.add_folder(entry["path"], entry["workspace"])
        recovered = (
            f"the catalog could not be read ({exc}); it was moved to {aside} and a new one started: "
            "your folders are indexed again, earlier chats are in the old copy"
        )
        catalog.set_meta("recovered", recovered)
        return catalog, recovered


def mirror_folders(home: Path, catalog: Catalog) -> None:
    """folders.json: the watched folders outside the catalog, so a damaged catalog can be rebuilt."""
    rows = catalog.folder_workspaces()
    if read_folder_mirror(home) == rows:
        return  # every command opens the engine: write only when the folders changed
    tmp = home / "folders.json.tmp"
    tmp.write_text(json.dumps(rows, ensure_ascii=True, indent=1))
    os.replace(tmp, home / "folders.json")


def read_folder_mirror(home: Path) -> list[dict[str, str]]:
    try:
        return list(json.loads((home / "folders.json").read_text()))
    except (OSError, ValueError):
        return []
