"""`sealroom-server backup DIR` and `sealroom-server restore DIR`: the service's three stores in one folder.

A backup folder holds

    postgres.dump              pg_dump --format=custom of the configured database (passages, files, tokens)
    chroma/                    a copy of Chroma's persistent folder (`chroma_path`): chroma.sqlite3 and the
                               HNSW segment folders
    indexer/catalog.sqlite     the indexer's own catalog (its queue: what is indexed, what waits)
    manifest.json              when, which Sealroom, and each file's size and SHA-256

The SQLite databases (Chroma's and the catalog) are copied with SQLite's online backup API, so a copy taken
while their owner writes is still one consistent database. They are copied in the order catalog, PostgreSQL,
Chroma: the indexer writes vectors to Chroma before the passages to PostgreSQL, so what is taken later holds
what was taken earlier.

No publish runs while the three are copied: the backup holds the advisory lock every publish takes
(`PostgresPassages.publishing`), waiting for a publish under way to finish, so PostgreSQL and Chroma are
copied as one state (a file deleted, say, is gone from both or from neither). With no publish nothing
writes to Chroma, so its HNSW segment files hold still while they are copied; its write-ahead log, in
chroma.sqlite3 and copied before them, holds whatever they had not yet taken in. After a restore, `sealroom-server index` brings PostgreSQL and Chroma back to
what the shared folders hold: publishing is diff-based, so anything changed or missing since the catalog's
copy is indexed and published again, and what is gone is removed.

`restore` checks every file against the manifest before it touches anything (a damaged backup restores
nothing and names the file), refuses while the Chroma server answers (its folder is replaced, so it must be
stopped) or while an indexer holds the data folder, then restores PostgreSQL (pg_restore --clean --if-exists,
in one transaction), replaces the contents of Chroma's folder, and puts the catalog back into the data folder
(an existing catalog is moved aside, never deleted).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from sealroom.core.runtime.errors import SealroomError, UsageError
from sealroom.core.runtime.paths import sealroom_version
from sealroom.core.store.postgres import PUBLISH_LOCK
from sealroom.server.config import ServerConfig

MANIFEST = "manifest.json"
DUMP = "postgres.dump"
CHROMA_DIR = "chroma"
CHROMA_DB = "chroma.sqlite3"
CATALOG = "catalog.sqlite"
INDEXER_CATALOG = f"indexer/{CATALOG}"
FORMAT = 1
PG_ROOT = Path("/usr/lib/postgresql")  # Debian's binaries, one folder per major version
PG_TIMEOUT_S = 6 * 3600


class BackupError(SealroomError):
    """A backup or restore could not be done; the message says what and what to do."""


# --- helpers --------------------------------------------------------------------------------------------
def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    """Every file under `folder` but the manifest, sorted, as paths relative to it."""
    return sorted(
        p.relative_to(folder)
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder) != Path(MANIFEST)
    )


def _copy_sqlite(source: Path, target: Path) -> None:
    """`source` copied to `target` with SQLite's backup API (consistent while another process writes)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        try:
            src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:  # a WAL database whose -shm cannot be made read-only
            src = sqlite3.connect(source, timeout=30)
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the SQLite database {source}: {exc}") from None


def _pg_major(dsn: str) -> int:
    """The configured PostgreSQL's major version (it answers, or a clear error)."""
    try:
        import psycopg
    except ImportError:
        raise BackupError("psycopg is not installed (pip install 'sealroom[server]')") from None
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            return int(conn.info.server_version) // 10000
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BackupError(f"PostgreSQL (the configured postgres) did not answer: {first}") from None


@contextlib.contextmanager
def _no_publish(dsn: str) -> Iterator[None]:
    """No publish runs while this is held (the lock every publish takes): PostgreSQL and Chroma are copied
    as one state, never a file's passages in one and not its vectors in the other."""
    import psycopg

    try:
        conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise BackupError(f"PostgreSQL (the configured postgres) did not answer: {exc}") from None
    with conn:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (PUBLISH_LOCK,)).fetchone()
        if not (row and row[0]):
            print("waiting for the indexer to finish publishing…", flush=True)
            conn.execute("SELECT pg_advisory_lock(%s)", (PUBLISH_LOCK,))
        yield  # the lock ends with the connection


def _pg_tool(name: str, major: int) -> str:
    """pg_dump or pg_restore for a server of version `major`: Debian's binaries of that version, else the
    newest one installed that is newer, else the one on PATH (Debian's /usr/bin wrapper may pick an older
    one than the running server, which pg_dump refuses)."""
    versions = (
        sorted(
            (int(d.name) for d in PG_ROOT.glob("*") if d.name.isdigit() and (d / "bin" / name).exists()),
            reverse=True,
        )
        if PG_ROOT.is_dir()
        else []
    )
    for v in [major, *versions]:
        if v >= major and (PG_ROOT / str(v) / "bin" / name).exists():
            return str(PG_ROOT / str(v) / "bin" / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (Debian: apt-get install postgresql-client-{major})")
    return found


def _run_pg(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PG_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{what} could not run: {exc}") from None
    if done.returncode != 0:
        errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        detail = next((e for e in errors if "error" in e.lower()), errors[-1] if errors else "")
        raise BackupError(f"{what} failed (exit {done.returncode}): {detail}")


def _chroma_path(config: ServerConfig) -> Path:
    where = f" in {config.source}" if config.source else ""
    if not config.chroma_path:
        raise UsageError(
            f'no chroma_path{where}: [server] needs chroma_path = "..." (the Chroma server\'s --path folder) '
            "for backup and restore"
        )
    return Path(config.chroma_path)


def _chroma_answers(config: ServerConfig) -> bool:
    try:
        with socket.create_connection(config.chroma_address, timeout=2):
            return True
    except OSError:
        return False


# --- backup ---------------------------------------------------------------------------------------------
def backup(config: ServerConfig, folder: str) -> int:
    """Back up PostgreSQL, Chroma's folder and the indexer's catalog into `folder` (new or empty).

    The service, the indexer and the Chroma server may run: no publish writes while the copy is taken (see
    the module's docstring), and after a restore `sealroom-server index` publishes what changed on the
    shares since, since publishing is diff-based."""
    target = Path(folder)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"the backup folder {target} is not empty: give a new or empty folder")
    chroma = _chroma_path(config)
    if not (chroma / CHROMA_DB).is_file():
        raise BackupError(
            f"chroma_path {chroma} holds no {CHROMA_DB}: is it the Chroma server's --path folder?"
        )
    major = _pg_major(config.postgres)
    started = time.time()
    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise BackupError(f"cannot make the backup folder {target}: {exc}") from None

    # the catalog first, then PostgreSQL, then Chroma (see the module's docstring), no publish meanwhile
    catalog = config.data / CATALOG
    with _no_publish(config.postgres):
        if catalog.is_file():
            _copy_sqlite(catalog, target / INDEXER_CATALOG)
        _run_pg(
            [
                _pg_tool("pg_dump", major),
                "--format=custom",
                f"--file={target / DUMP}",
                f"--dbname={config.postgres}",
            ],
            "pg_dump",
        )
        _copy_sqlite(chroma / CHROMA_DB, target / CHROMA_DIR / CHROMA_DB)
        try:
            for entry in sorted(chroma.iterdir()):
                if entry.is_dir():
                    shutil.copytree(entry, target / CHROMA_DIR / entry.name)
                elif entry.is_file() and not entry.name.startswith(CHROMA_DB):  # not the database, -wal, -shm
                    shutil.copy2(entry, target / CHROMA_DIR / entry.name)
        except OSError as exc:
            raise BackupError(f"cannot copy Chroma's folder {chroma}: {exc}") from None

    files: dict[str, dict[str, object]] = {
        path.as_posix(): {"size": (target / path).stat().st_size, "sha256": _sha256(target / path)}
        for path in _files(target)
    }
    total = sum((target / name).stat().st_size for name in files)
    manifest = {
        "format": FORMAT,
        "sealroom": sealroom_version(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "postgres_major": major,
        "chroma_path": str(chroma),
        "data": str(config.data),
        "indexer_catalog": catalog.is_file(),
        "files": files,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(
        f"backed up into {target}: {len(files)} files, {total / 1e6:.1f} MB, in {time.time() - started:.1f} s"
    )
    return 0


# --- restore --------------------------------------------------------------------------------------------
def check(folder: Path) -> dict[str, object]:
    """The backup's manifest, once every file it lists is there with its size and SHA-256 and no other file
    is (else a `BackupError` naming the file: nothing is restored from a damaged backup)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
        if not isinstance(files, dict):
            raise ValueError("files is not a table")
    except FileNotFoundError:
        raise BackupError(f"{folder} is not a backup: it has no {MANIFEST}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BackupError(f"the backup's {folder / MANIFEST} cannot be read: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"the backup {folder} is in format {manifest.get('format')!r}; this Sealroom reads {FORMAT}"
        )
    for required in (DUMP, f"{CHROMA_DIR}/{CHROMA_DB}"):
        if required not in files:
            raise BackupError(f"the backup {folder} is incomplete: its manifest lists no {required}")
    present = {p.as_posix() for p in _files(folder)}
    for name in sorted(set(files) - present):
        raise BackupError(f"the backup is damaged: {folder / name} is missing; nothing was restored")
    for name in sorted(present - set(files)):
        raise BackupError(
            f"the backup is not as it was made: {folder / name} is not in its manifest; nothing was restored"
        )
    for name, want in sorted(files.items()):
        path = folder / name
        if path.stat().st_size != want.get("size") or _sha256(path) != want.get("sha256"):
            raise BackupError(
                f"the backup is damaged: {path} does not match its SHA-256 in {MANIFEST}; nothing was restored"
            )
    return dict(manifest)


def _replace_contents(folder: Path, source: Path) -> None:
    """`folder`'s contents replaced by a copy of `source`'s: copied first into a staging folder inside it
    (so a failed copy leaves the old contents), then the old entries removed and the new moved in."""
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".sealroom-restore-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    for entry in folder.iterdir():
        if entry == staging:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for entry in staging.iterdir():
        entry.rename(folder / entry.name)
    staging.rmdir()


def restore(config: ServerConfig, folder: str) -> int:
    """Restore a backup made by `backup` into the configured PostgreSQL, Chroma folder and data folder.

    The Chroma server must be stopped (its folder is replaced), and `sealroom-server index` too (its
    catalog is replaced). Every file is checked first. Afterwards: start Chroma, then run
    `sealroom-server index`, which re-publishes anything missing since publishing is diff-based."""
    from sealroom.core.runtime.lock import DataDirLock

    source = Path(folder)
    if not source.is_dir():
        raise UsageError(f"no backup folder at {source}")
    chroma = _chroma_path(config)
    manifest = check(source)
    host, port = config.chroma_address
    if _chroma_answers(config):
        raise BackupError(
            f"the Chroma server at {host}:{port} is running: stop it before a restore (its folder {chroma} "
            "is replaced), then start it again afterwards"
        )
    major = _pg_major(config.postgres)
    config.data.mkdir(parents=True, exist_ok=True, mode=0o700)
    files = manifest["files"]
    assert isinstance(files, dict)
    with DataDirLock(config.data, "sealroom-server restore"):  # no indexer may run meanwhile
        started = time.time()
        _run_pg(
            [
                _pg_tool("pg_restore", major),
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={config.postgres}",
                str(source / DUMP),
            ],
            "pg_restore",
        )
        try:
            _replace_contents(chroma, source / CHROMA_DIR)
        except OSError as exc:
            raise BackupError(
                f"PostgreSQL was restored but Chroma's folder {chroma} could not be replaced: {exc}; "
                "free the space or fix the permissions, then run the restore again"
            ) from None
        moved = ""
        if INDEXER_CATALOG in files:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            try:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    old = config.data / f"{CATALOG}{suffix}"
                    if old.exists():
                        aside = config.data / f"{CATALOG}.before-restore-{stamp}{suffix}"
                        old.rename(aside)
                        moved = moved or str(aside)
                staged = config.data / f"{CATALOG}.restoring"
                shutil.copy2(source / INDEXER_CATALOG, staged)
                staged.rename(config.data / CATALOG)
            except OSError as exc:
                raise BackupError(
                    f"PostgreSQL and Chroma were restored but the indexer's catalog could not be put into "
                    f"{config.data}: {exc}; run the restore again"
                ) from None
    note = f"; the catalog that was there is kept as {moved}" if moved else ""
    print(
        f"restored the backup of {manifest.get('finished', '?')} from {source} in {time.time() - started:.1f} s"
        f"{note}. Now start the Chroma server on {chroma}, then run `sealroom-server index` (it re-publishes "
        "anything missing)"
    )
    return 0
