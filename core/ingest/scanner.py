"""Bring the catalog's file list in line with the disk.

Unchanged files cost one stat (size + mtime). A changed or new file is hashed; a
hash the catalog already knows (a rename, move or copy) takes that content's result
without parsing or embedding again. Files gone from disk are removed; their chunks
become garbage for `Engine.collect_garbage`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from sealroom.core.ingest.parsers import SUPPORTED_SUFFIXES, sniff
from sealroom.core.runtime.hashing import content_key
from sealroom.core.runtime.paths import is_within
from sealroom.core.store.catalog import Catalog

EventSink = Callable[[dict[str, object]], None]
TEMP_PREFIXES = ("~$", ".~lock", ".#")
TEMP_SUFFIXES = ("~", ".tmp", ".swp", ".part", ".crdownload")


def is_candidate(path: Path) -> bool:
    """Every entry of a watched folder gets a status (indexed, or why not), except hidden files (a name
    starting with '.') and editors' temporary and lock files, which are no one's documents."""
    name = path.name
    return not (name.startswith(".") or name.startswith(TEMP_PREFIXES) or name.endswith(TEMP_SUFFIXES))


@dataclass
class ScanResult:
    seen: int = 0
    queued: int = 0
    reused: int = 0
    removed: int = 0
    removed_paths: list[str] = field(default_factory=list)  # taken out of the logs too (`logs.forget`)


def entry_problem(path: Path, root: str) -> str | None:
    """Why a directory entry must not be read, or None for a regular file inside the watched folder.

    A link is followed only when its target stays inside the watched folder: a link to
    /etc/shadow or /proc/self/environ must never become searchable text. Special files
    (FIFOs, sockets, devices) are never opened: reading a FIFO blocks forever.
    """
    try:
        info = path.lstat()
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    if stat.S_ISLNK(info.st_mode):
        try:
            target = path.resolve(strict=True)
        except RuntimeError:
            return "link loop (the link points back to itself)"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "link loop (the link points back to itself)"
            return f"broken link (points to {os.readlink(path)}, which does not exist)"
        if target.is_dir():
            return (
                f"link to a folder ({target}); linked folders are not followed, as they may lead anywhere: "
                "add the folder itself to watch it"
            )
        if not is_within(str(target), os.path.realpath(root)):
            return f"link to a file outside the watched folder ({target}); links are followed only inside it"
        try:
            info = target.stat()
        except OSError as exc:
            return f"cannot read file: {exc.strerror or exc}"
    if stat.S_ISREG(info.st_mode):
        return None
    kinds = {stat.S_ISFIFO: "a FIFO (named pipe)", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a device"}
    kinds[stat.S_ISBLK] = "a device"
    kinds[stat.S_ISDIR] = "a folder"
    kind = next((name for test, name in kinds.items() if test(info.st_mode)), "not a regular file")
    return f"not a regular file: {kind}"


def within_any(path: str, folders: list[str]) -> bool:
    """`path` is one of `folders` or inside one. Used for folders that could not be listed: they and
    the files already indexed from them are kept as they were, not dropped from the index."""
    return any(is_within(path, f) for f in folders)


class Scanner:
    def __init__(self, catalog: Catalog, max_file_mb: int, emit: EventSink | None = None) -> None:
        self.catalog = catalog
        self.max_bytes = max_file_mb * 1024 * 1024
        self.emit = emit or (lambda event: None)

    def _folder_of(self, path: str, folders: list[tuple[int, str]]) -> int | None:
        best: tuple[int, int] | None = None
        for folder_id, root in folders:
            if is_within(path, root) and (best is None or len(root) > best[1]):
                best = (folder_id, len(root))
        return best[0] if best else None

    def scan_all(self) -> ScanResult:
        result = ScanResult()
        folders = self.catalog.folders()
        on_disk: set[str] = set()
        unreadable: list[str] = []
        for folder_id, root in folders:
            for path in self._walk(Path(root), partial(self._unreadable, folder_id, seen=unreadable)):
                on_disk.add(str(path))
                self._scan_file(folder_id, root, path, result)
        for row in self.catalog.files():
            if row.path not in on_disk and not within_any(row.path, unreadable):
                self._remove(row.path, result)
        return result

    def _unreadable(self, folder_id: int, path: str, why: str, seen: list[str]) -> None:
        """A folder that cannot be listed is shown in status with its reason (its files are not lost)."""
        seen.append(path)
        self._skip(folder_id, Path(path), f"cannot read this folder ({why}); the files in it are not indexed")

    def scan_paths(self, paths: Iterable[str]) -> ScanResult:
        """Re-check the given files or folders (from watcher events): existing ones first, so a
        move's new path claims the content before its old path lets go of it."""
        result = ScanResult()
        folders = self.catalog.folders()
        roots = dict(folders)
        present: list[str] = []
        missing: list[str] = []
        for raw in sorted(set(paths)):
            (present if os.path.lexists(raw) else missing).append(raw)
        for raw in present:
            path = Path(raw)
            if path.is_dir() and not path.is_symlink():  # a linked folder is not walked: it may lead out
                folder_id = self._folder_of(raw, folders)
                if folder_id is not None:
                    seen: set[str] = set()
                    hidden: list[str] = []
                    for child in self._walk(path, partial(self._unreadable, folder_id, seen=hidden)):
                        seen.add(str(child))
                        self._scan_file(folder_id, roots[folder_id], child, result)
                    missing.extend(
                        r.path
                        for r in self.catalog.files_under(raw)
                        if r.path not in seen and not within_any(r.path, hidden)
                    )
            elif (folder_id := self._folder_of(raw, folders)) is not None and is_candidate(path):
                self._scan_file(folder_id, roots[folder_id], path, result)
        for raw in missing:
            if self.catalog.file(raw):
                self._remove(raw, result)
            for row in self.catalog.files_under(raw):  # a deleted or moved-away folder
                self._remove(row.path, result)
        return result

    def _walk(self, root: Path, unreadable: Callable[[str, str], None]) -> Iterable[Path]:
        """Candidate files under `root`, links and special files included (`_scan_file` judges them);
        a folder that cannot be listed goes to `unreadable(path, why)`."""

        def failed(exc: OSError) -> None:
            unreadable(str(exc.filename), exc.strerror or type(exc).__name__)

        for dirpath, dirnames, filenames in os.walk(root, onerror=failed, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            linked = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]  # listed, not walked
            for name in sorted([*filenames, *linked]):
                path = Path(dirpath) / name
                if is_candidate(path):
                    yield path

    def _skip(self, folder_id: int, path: Path, why: str) -> None:
        """Record a path that will not be read, with its reason (a link out, a FIFO, a device…)."""
        key = str(path)
        row = self.catalog.file(key)
        if row and row.status == "skipped" and row.reason == why:
            return
        self.catalog.upsert_file(folder_id, key, 0, 0, f"special:{key}", "skipped", why)
        self.emit({"event": "failed", "path": key, "status": "skipped", "reason": why})

    def _scan_file(self, folder_id: int, root: str, path: Path, result: ScanResult) -> None:
        result.seen += 1
        problem = entry_problem(path, root)
        if problem:
            self._skip(folder_id, path, problem)
            return
        try:
            info = path.stat()
        except OSError:
            return  # vanished between listing and stat; the next event or scan removes it
        key = str(path)
        row = self.catalog.file(key)
        if (
            row
            and row.size == info.st_size
            and row.mtime_ns == info.st_mtime_ns
            and row.folder_id == folder_id
        ):
            return
        if info.st_size > self.max_bytes:
            reason = (
                f"file too large ({info.st_size / 1e6:.0f} MB; the limit is {self.max_bytes / 1e6:.0f} MB)"
            )
            self.catalog.upsert_file(
                folder_id,
                key,
                info.st_size,
                info.st_mtime_ns,
                f"large:{info.st_size}:{info.st_mtime_ns}",
                "skipped",
                reason,
            )
            self.emit({"event": "failed", "path": key, "status": "skipped", "reason": reason})
            return
        try:
            if path.suffix.lower() not in SUPPORTED_SUFFIXES and self._unsupported(folder_id, path, info):
                return
            sha = content_key(path)
        except OSError as exc:
            reason = f"cannot read file: {exc.strerror or exc}"
            self.catalog.upsert_file(
                folder_id, key, info.st_size, info.st_mtime_ns, "unreadable", "failed", reason
            )
            self.emit({"event": "failed", "path": key, "status": "failed", "reason": reason})
            return
        if row and row.sha256 == sha:
            self.catalog.touch_file(key, info.st_size, info.st_mtime_ns)
            return
        known = self.catalog.known_outcome(sha)
        if known:
            self.catalog.upsert_file(
                folder_id, key, info.st_size, info.st_mtime_ns, sha, known.status, known.reason, known.pages
            )
            result.reused += 1
            event = "indexed" if known.status == "indexed" else "failed"
            self.emit(
                {"event": event, "path": key, "status": known.status, "reason": known.reason, "reused": True}
            )
            return
        self.catalog.upsert_file(folder_id, key, info.st_size, info.st_mtime_ns, sha, "pending")
        result.queued += 1

    def _unsupported(self, folder_id: int, path: Path, info: os.stat_result) -> bool:
        """A file whose name does not say its type is judged by its content (`sniff`): text, a PDF, a Word
        document… is read as such; anything else is listed as skipped with what it is. True: skipped."""
        kind, what = sniff(path)
        if kind is not None:
            return False
        reason = f"unsupported type ({what})"
        key = str(path)
        self.catalog.upsert_file(
            folder_id, key, info.st_size, info.st_mtime_ns, f"unsupported:{key}", "skipped", reason
        )
        self.emit({"event": "failed", "path": key, "status": "skipped", "reason": reason})
        return True

    def _remove(self, path: str, result: ScanResult) -> None:
        if self.catalog.remove_file(path):
            result.removed += 1
            result.removed_paths.append(path)
            self.emit({"event": "removed", "path": path})
