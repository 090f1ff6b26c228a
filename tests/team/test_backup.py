"""`sealroom-server backup` and `restore` for real (issue 29): a service indexed into a real PostgreSQL and
Chroma server is backed up, destroyed (tables dropped, Chroma's folder wiped, the catalog lost) and restored,
and the same search gives the same hits; a damaged backup restores nothing and names the file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sealroom.core.answer.team import TeamIndex
from sealroom.core.runtime.errors import UsageError
from sealroom.core.store.postgres import PUBLISH_LOCK, PostgresPassages
from sealroom.server import backup, cli
from sealroom.server import config as server_config
from sealroom.server.config import ServerConfig
from sealroom.server.publish import Published
from tests.team.chroma_server import ChromaServer
from tests.team.postgres_server import PostgresServer, run_postgres
from tests.team.service import TeamService

pytestmark = pytest.mark.slow

REAL = Path(__file__).resolve().parents[2] / "bench" / "eval" / "real" / "docs" / "versions"
QUERIES = ["What happens to the patent license if I sue?", "What does the LGPL say about combined works?"]


@pytest.fixture(scope="module")
def team(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TeamService, PostgresServer, ChromaServer]]:
    root = tmp_path_factory.mktemp("team")
    share = root / "share"
    share.mkdir()
    for name in ("apache-2.0.txt", "lgpl-3.txt", "mpl-2.0.txt"):
        shutil.copy(REAL / name, share)
    with run_postgres() as pg:
        chroma = ChromaServer(root / "chroma")  # the configuration's chroma_path
        chroma.start()
        service = TeamService(root, pg.dsn, (chroma.host, chroma.port), {str(share): ["staff"]})
        try:
            service.index()
            service.start()
            yield service, pg, chroma
        finally:
            service.stop()
            chroma.stop()


def searches(service: TeamService, token: str) -> list[list[tuple[str, str, str]]]:
    reader = TeamIndex(service.url, token, str(service.cert), connect_timeout=3.0, timeout=30.0)
    found = []
    for query in QUERIES:
        hits, notice = reader.search(query, k=5)
        assert hits and notice == ""  # vectors and keywords both answered
        found.append([(h.chunk_id, h.path, h.text) for h in hits])
    return found


def tables(dsn: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        names = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        counts = {}
        for name in sorted(names):
            row = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            assert row is not None
            counts[name] = int(row[0])
        return counts


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_backed_up_destroyed_and_restored_the_same_search_finds_the_same_hits(
    team: tuple[TeamService, PostgresServer, ChromaServer], tmp_path: Path
):
    service, pg, chroma = team
    token = service.token("alice", "staff")
    before = searches(service, token)
    config = server_config.load(service.config)
    rows = tables(pg.dsn)
    assert rows["chunks"] > 0

    # backed up by the command IT runs, Chroma and the service running
    folder = tmp_path / "backup"
    done = subprocess.run(
        [sys.executable, "-m", "sealroom.server.cli", "--config", str(service.config), "backup", str(folder)],
        env=service.env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"postgres.dump", "chroma/chroma.sqlite3", "indexer/catalog.sqlite"} <= set(manifest["files"])
    assert any(name.count("/") == 2 for name in manifest["files"])  # an HNSW segment folder's files
    assert manifest["sealroom"] and manifest["finished"]

    # a restore while Chroma answers is refused before anything changes
    with pytest.raises(backup.BackupError, match=r"Chroma server .* is running: stop it"):
        backup.restore(config, str(folder))

    # destroyed: the tables dropped, Chroma's folder wiped, the catalog replaced by junk
    service.stop()
    chroma.stop()
    import psycopg

    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        for name in rows:
            conn.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
    shutil.rmtree(chroma.path)
    chroma.path.mkdir()
    catalog = config.data / "catalog.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{catalog}{suffix}").unlink(missing_ok=True)
    catalog.write_bytes(b"a lost catalog")
    assert tables(pg.dsn) == {}

    assert backup.restore(config, str(folder)) == 0
    assert tables(pg.dsn) == rows
    aside = [p for p in config.data.glob("catalog.sqlite.before-restore-*")]
    assert [p.read_bytes() for p in aside] == [b"a lost catalog"]  # moved aside, not deleted

    chroma.start()
    service.start()
    assert searches(service, token) == before
    report = service.index()  # the three stores agree: nothing to publish again
    assert report["statuses"] == {"indexed": 3}
    assert report["published"] == Published().to_dict()  # nothing published


def waiting_for_the_publish_lock(dsn: str, deadline_s: float = 180.0) -> int:
    """How many sessions wait for the publish lock, once one does (polled in pg_locks)."""
    import psycopg

    deadline = time.monotonic() + deadline_s
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND NOT granted",
                (PUBLISH_LOCK,),
            ).fetchone()
            if row and row[0]:
                return int(row[0])
            time.sleep(0.1)
    return 0


def test_a_backup_and_a_publish_never_run_at_once(
    team: tuple[TeamService, PostgresServer, ChromaServer], tmp_path: Path
):
    """A backup waits for a publish under way, and an index run's publish waits for a backup: PostgreSQL
    and Chroma are copied as one state (a deletion published in between would be in one and not the
    other)."""
    service, pg, _ = team
    config = server_config.load(service.config)
    folder = tmp_path / "backup"
    publisher = PostgresPassages(pg.dsn, connections=2)
    try:
        with publisher.publishing():  # a publish under way
            taking = threading.Thread(target=backup.backup, args=(config, str(folder)))
            taking.start()
            assert waiting_for_the_publish_lock(pg.dsn) == 1
            assert not (folder / "manifest.json").exists() and not (folder / "postgres.dump").exists()
        taking.join(300)
        assert (folder / "manifest.json").exists()  # the publish done, the backup taken

        with backup._no_publish(pg.dsn):  # a backup under way
            indexing = threading.Thread(target=service.index)
            indexing.start()
            assert waiting_for_the_publish_lock(pg.dsn) == 1  # the index run waits to publish
        indexing.join(300)
        assert not indexing.is_alive()
    finally:
        publisher.close()


def test_a_damaged_backup_restores_nothing_and_names_the_file(
    team: tuple[TeamService, PostgresServer, ChromaServer],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
):
    service, pg, chroma = team
    config = server_config.load(service.config)
    folder = tmp_path / "backup"
    assert backup.backup(config, str(folder)) == 0
    dump = folder / "postgres.dump"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))

    chroma.stop()  # so that the damage, not the running server, is what refuses
    try:
        rows, chroma_files = tables(pg.dsn), listing(chroma.path)
        catalog = (config.data / "catalog.sqlite").read_bytes()
        data_files = sorted(os.listdir(config.data))
        capsys.readouterr()
        code = cli.main(["--config", str(service.config), "restore", str(folder)])
        err = capsys.readouterr().err
        assert code == 1
        assert err.count("\n") == 1 and "Traceback" not in err  # one line for IT
        assert "damaged" in err and str(dump) in err and "nothing was restored" in err
        assert tables(pg.dsn) == rows
        assert listing(chroma.path) == chroma_files
        assert (config.data / "catalog.sqlite").read_bytes() == catalog
        assert sorted(os.listdir(config.data)) == data_files  # nothing moved aside either
    finally:
        chroma.start()


def test_backup_refuses_a_folder_not_empty_and_a_configuration_without_chroma_path(tmp_path: Path):
    config = ServerConfig(
        postgres="host=127.0.0.1 port=1 dbname=none",
        chroma="http://127.0.0.1:1",
        data=tmp_path / "data",
        chroma_path=str(tmp_path / "chroma"),
        source="server.toml",
    )
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "old.txt").write_text("something")
    with pytest.raises(UsageError, match=r"backup folder .* is not empty"):
        backup.backup(config, str(folder))
    assert os.listdir(folder) == ["old.txt"]
    config.chroma_path = ""
    with pytest.raises(UsageError, match=r"no chroma_path in server\.toml"):
        backup.backup(config, str(tmp_path / "new"))
    with pytest.raises(UsageError, match="chroma_path"):
        backup.restore(config, str(folder))
    assert not (tmp_path / "new").exists()
