"""The Sealroom service as IT runs it (issue 29): `sealroom-server index` publishes shared folders into a real
PostgreSQL and Chroma server, `sealroom-server start` serves them over TLS behind per-user tokens, and the
laptop's `TeamIndex` reads them. The matter wall, the fault drills and the indexer's resumption, for real."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sealroom.core.answer.team import TeamIndex, TeamRefused
from sealroom.core.runtime.errors import ServerUnreachable
from sealroom.server.publish import Published
from tests.conftest import cli, cli_json
from tests.team.chroma_server import ChromaServer
from tests.team.postgres_server import PostgresServer, run_postgres
from tests.team.service import SERVER, TeamService, certificate

pytestmark = pytest.mark.slow

REAL = Path(__file__).resolve().parents[2] / "bench" / "eval" / "real" / "docs" / "versions"
CANARY = "Zorblatt"
CANARY_FILE = "zorblatt-memo.txt"
CANARY_TEXT = (
    "MEMORANDUM\n\nThe Zorblatt settlement with Quenfield Holdings is 4.2 million euros, approved by the board "
    "on 3 March. Nobody outside matter 1041 may read this memo.\n"
)


OLD_NAME = b"r\xe9sum\xe9 Quillfeather.txt"
OLD_TEXT = "The Quillfeather retainer is reviewed every January by the supervising partner.\n"


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PostgresServer, ChromaServer]]:
    with run_postgres() as pg:
        chroma = ChromaServer(tmp_path_factory.mktemp("chroma") / "db")
        chroma.start()
        try:
            yield pg, chroma
        finally:
            chroma.stop()


def shared_folders(root: Path) -> dict[str, list[str]]:
    """Matter A (the canary, the GPL), matter B (Apache, MPL), and a handbook both may read."""
    a, b, handbook = root / "matter-a", root / "matter-b", root / "handbook"
    for folder in (a, b, handbook):
        folder.mkdir()
    (a / CANARY_FILE).write_text(CANARY_TEXT)
    shutil.copy(REAL / "gpl-3.txt", a)
    shutil.copy(REAL / "apache-2.0.txt", b)
    shutil.copy(REAL / "mpl-2.0.txt", b)
    shutil.copy(REAL / "lgpl-3.txt", handbook)
    # a file name that is not UTF-8 (Latin-1, from an old share): published and found by its exact name
    (b / os.fsdecode(OLD_NAME)).write_text(OLD_TEXT, encoding="utf-8")
    return {str(a): ["matter-a"], str(b): ["matter-b"], str(handbook): ["matter-a", "matter-b"]}


@pytest.fixture(scope="module")
def team(
    servers: tuple[PostgresServer, ChromaServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TeamService]:
    pg, chroma = servers
    root = tmp_path_factory.mktemp("team")
    service = TeamService(root, pg.dsn, (chroma.host, chroma.port), shared_folders(root))
    service.index()
    service.start()
    yield service
    service.stop()


def index_for(team: TeamService, token: str | None) -> TeamIndex:
    return TeamIndex(team.url, token, str(team.cert), connect_timeout=3.0, timeout=30.0)


def test_the_matter_wall_holds_for_every_search_ask_and_word(team: TeamService):
    a = index_for(team, team.token("alice", "matter-a"))
    b = index_for(team, team.token("bob", "matter-b"))
    found, notice = a.search(f"the {CANARY} settlement amount", k=5)
    assert notice == ""
    assert found and found[0].path.endswith(CANARY_FILE) and found[0].origin == "team"
    assert CANARY in found[0].text
    assert "zorblatt" in {w.lower() for w in a.known_words(["zorblatt", "licensee"])}
    both = b.search("What does the LGPL say about combined works?", k=5)[0]
    assert any(h.path.endswith("lgpl-3.txt") for h in both)  # the handbook: both matters read it
    # the preview: the cited passage with its section, for a reader of matter A; for B it does not exist
    memo = found[0]
    shown = a.passage(memo.sha256, memo.seq, memo.start, memo.end)
    assert CANARY in shown.text and (shown.before + shown.text + shown.after).startswith("MEMORANDUM")
    assert shown.lines == (1, 3)  # a text file: the lines it spans, read from the share
    with pytest.raises(TeamRefused, match="no longer in the index") as refused:
        b.passage(memo.sha256, memo.seq, memo.start, memo.end)
    assert CANARY not in str(refused.value)
    latin = b.search("When is the Quillfeather retainer reviewed?", k=3)[0]
    assert os.fsencode(latin[0].path).endswith(b"/matter-b/" + OLD_NAME)  # the exact bytes of its name
    assert not any("Quillfeather" in h.text for h in a.search("Quillfeather retainer", k=5)[0])

    subjects = [
        CANARY,
        CANARY_FILE,
        f"the {CANARY} memo",
        "Quenfield Holdings",
        "4.2 million euros",
        "matter 1041",
    ]
    frames = [
        "{}",
        "What does the {} say?",
        "Find {} in the memo",
        "Who approved the {}?",
        "settlement {} board March",
        "Is there anything about {} in the GPL?",
    ]
    queries = [f.format(s) for f, s in itertools.product(frames, subjects)]  # 36
    contexts = ["", f"Tell me about {CANARY}", "the licence"]
    shown: list[str] = []  # every path and passage B was given (the questions' own words aside)
    known: set[str] = set()
    count = 0
    for query, context in itertools.product(queries, contexts):
        for k in (5, 20):
            hits, _ = b.search(query, k=k, context=context)
            shown += [h.path + " " + h.text for h in hits]
            count += 1
    for query in queries[:30]:
        events = list(b.ask(query, generate=False))
        answer = events[-1]
        assert answer["event"] == "answer"
        shown += [s["path"] + " " + s["text"] for s in answer["sources"]]
        shown += [e["text"] for e in answer["evidence"]]
        count += 1
    for query in queries[:20]:
        known |= b.known_words(query.lower().replace("?", "").split())
        count += 1
    assert count >= 200
    secret = (CANARY_FILE, CANARY.lower(), "quenfield", "nobody outside")
    assert [s[:200] for s in shown if any(m in s.lower() for m in secret)] == []
    assert not {"zorblatt", "quenfield"} & known
    assert any("apache" in s.lower() for s in shown)  # B did read its own matter


def test_a_request_without_a_valid_token_is_refused_and_a_revoked_token_stops_working(team: TeamService):
    with pytest.raises(TeamRefused, match="401"):
        index_for(team, None).search("licence")
    with pytest.raises(TeamRefused, match="401"):
        index_for(team, "srt_forged").search("licence")
    carol = index_for(team, team.token("carol", "matter-b"))
    assert carol.search("patent licence", k=3)[0]
    team.command("token", "revoke", "carol")
    time.sleep(10.5)  # a replica caches a token's lookup for 10 s
    with pytest.raises(TeamRefused, match="401"):
        carol.search("patent licence", k=3)
    listed = team.command("token", "list").stdout
    assert "carol" in listed and "revoked" in listed and "srt_" not in listed
    # every refusal and every read is in the service's audit trail, which cannot be rewritten
    records = [json.loads(line) for line in team.command("audit", "-n", "1000", "--json").stdout.splitlines()]
    refused = [r for r in records if r["event"] == "search_refused"]
    assert any(r["user"] == "no token" for r in refused) and any(
        r["user"].startswith("token:") for r in refused
    )
    assert any(r["user"] == "carol (revoked token)" and r["status"] == 401 for r in refused)
    read = [r for r in records if r["user"] == "carol" and r["event"] == "search"]
    assert read and read[0]["passages"] and read[0]["query_sha256"] and read[0]["client"] == "127.0.0.1"
    import psycopg

    with (
        psycopg.connect(team.dsn, autocommit=True) as conn,
        pytest.raises(psycopg.Error, match="append-only"),
    ):
        conn.execute("DELETE FROM team_audit")


def test_health_and_metrics_report_the_engines_and_the_requests(team: TeamService):
    reader = index_for(team, team.token("dave", "matter-b"))
    reader.search("patent licence", k=3)
    health = reader.health()
    assert health["status"] == "ok" and health["postgres"] == "ok" and health["chroma"] == "ok"
    assert health["passages"] == health["vectors"] > 0
    done = team.command("health", "--ca", str(team.cert))
    assert json.loads(done.stdout)["status"] == "ok"
    context = ssl.create_default_context(cafile=str(team.cert))
    with urllib.request.urlopen(f"{team.url}/metrics", context=context, timeout=10) as response:
        metrics = response.read().decode()
    assert 'sealroom_requests_total{endpoint="search",status="200"}' in metrics
    assert "sealroom_request_seconds_bucket" in metrics and "sealroom_passages " in metrics
    # the certificate is checked: a client trusting another CA is refused before any request is sent
    (team.root / "other").mkdir(exist_ok=True)
    other, _ = certificate(team.root / "other")
    with pytest.raises(TeamRefused, match="did not prove who it is"):
        TeamIndex(team.url, "x", str(other)).search("licence")


def test_chroma_killed_gives_keyword_only_answers_said_as_such_then_recovers(
    team: TeamService, servers: tuple[PostgresServer, ChromaServer]
):
    _, chroma = servers
    reader = index_for(team, team.token("erin", "matter-b"))
    chroma.kill()
    try:
        hits, notice = reader.search("patent litigation terminates the license", k=5)
        assert hits and "keyword only" in notice and "Chroma" in notice
        events = list(reader.ask("What happens to the patent license if I sue?", generate=False))
        answer = events[-1]["answer"]
        assert events[0]["event"] == "evidence" and "keyword only" in answer["notice"]
        assert reader.health()["status"] == "degraded"
    finally:
        chroma.start()
    hits, notice = reader.search("patent litigation terminates the license", k=5)
    assert hits and notice == ""


def test_postgres_restarted_fails_clearly_then_recovers_without_a_client_restart(
    team: TeamService, servers: tuple[PostgresServer, ChromaServer]
):
    pg, _ = servers
    reader = index_for(team, team.token("frank", "matter-b"))
    assert reader.search("patent licence", k=3)[0]
    pg.stop()
    try:
        with pytest.raises(
            ServerUnreachable, match=r"runs but cannot search now: the team's catalog \(PostgreSQL\)"
        ):
            reader._down_until = 0.0
            reader.search("patent licence", k=3)
    finally:
        pg.start()
    reader._down_until = 0.0  # the laptop waits RETRY_S before trying again; the test need not
    deadline = time.monotonic() + 30
    while True:
        try:
            assert reader.search("patent licence", k=3)[0]
            break
        except ServerUnreachable:
            if time.monotonic() > deadline:
                raise
            reader._down_until = 0.0
            time.sleep(0.5)


def test_the_indexer_killed_midway_resumes_with_nothing_lost_or_duplicated(
    servers: tuple[PostgresServer, ChromaServer], tmp_path: Path
):
    import psycopg

    pg, _ = servers
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE resume")
    dsn = pg.dsn.replace("dbname=postgres", "dbname=resume")
    folder = tmp_path / "share"
    folder.mkdir()
    sources = sorted(REAL.glob("*.txt")) + sorted((REAL.parent / "manual-html").glob("*.html"))
    for source in sources:
        shutil.copy(source, folder)
    chroma_db = tmp_path / "chroma-db"
    own = ChromaServer(chroma_db)
    own.start()
    try:
        service = TeamService(tmp_path, dsn, (own.host, own.port), {str(folder): ["all"]})
        catalog = service.data / "catalog.sqlite"

        def statuses() -> dict[str, int]:
            try:
                with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=5) as db:
                    return dict(db.execute("SELECT status, count(*) FROM files GROUP BY status").fetchall())
            except sqlite3.Error:
                return {}

        def published() -> int:
            try:
                with psycopg.connect(dsn) as conn:
                    return int(conn.execute("SELECT count(*) FROM published").fetchone()[0])
            except psycopg.Error:
                return 0

        def killed_when(ready: Callable[[], bool]) -> None:
            run = subprocess.Popen(
                [*SERVER, "index"], env=service.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + 300
            while not ready() and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert run.poll() is None, "the indexer finished before it could be killed"
            run.send_signal(signal.SIGKILL)
            run.wait(10)

        # killed while parsing and embedding (some files indexed, some waiting), then while publishing
        killed_when(lambda: statuses().get("indexed", 0) >= 2 and statuses().get("pending", 0) >= 2)
        killed_when(lambda: published() > 0)
        assert 0 < published() < len(sources)
        report = service.index()  # resumes
        assert report["statuses"] == {"indexed": len(sources)}
        with sqlite3.connect(catalog) as db:
            passages = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        with psycopg.connect(dsn) as conn:
            rows = conn.execute("SELECT count(*), count(DISTINCT id) FROM chunks").fetchone()
            files = conn.execute("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone()[0]
        from sealroom.core.store.remote_vectors import ChromaServerIndex

        vectors = ChromaServerIndex(own.host, own.port).count()
        assert rows[0] == rows[1] == passages == vectors > 0
        assert files == len(sources)
        again = service.index()  # nothing left to do: nothing written twice
        assert again["published"] == Published().to_dict()  # nothing published
    finally:
        own.stop()


def test_the_laptop_answers_from_both_indexes_labelled_and_offline_from_its_own(
    team: TeamService, secret_service: str, tmp_path: Path
):
    """The real CLI on a laptop whose policy names the team server: the token kept in the keyring (a real
    Secret Service), search and ask merged and labelled, the audit trail and the export saying which index
    answered, B's answers never holding A's canary, and the service stopped: local answers, said so."""
    home = tmp_path / "laptop"
    home.mkdir()
    (home / "no-policy.toml").write_text(f'team_server = "{team.url}"\nteam_ca = "{team.cert}"\n')
    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "office-notes.txt").write_text(
        "OFFICE NOTES\n\nThe patent licence review for the Brightwater matter is due on 14 May. "
        "Keep the signed copy in the blue cabinet.\n"
    )
    out = tmp_path / "exports"
    out.mkdir()
    cli(home, "add", str(mine))
    cli(home, "index")
    cli(home, "destinations", "add", "Share", "--folder", str(out))
    token = team.token("bob", "matter-b")
    refused = subprocess.run(
        [sys.executable, "-m", "sealroom.core.cli", "team", "login"],
        input="srt_wrong\n", capture_output=True, text=True, timeout=120,
        env=dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(home / "no-policy.toml")),
    )  # fmt: skip
    assert refused.returncode == 1 and "401" in refused.stderr
    login = subprocess.run(
        [sys.executable, "-m", "sealroom.core.cli", "team", "login"],
        input=token + "\n", capture_output=True, text=True, timeout=120,
        env=dict(os.environ, SEALROOM_HOME=str(home), SEALROOM_POLICY=str(home / "no-policy.toml")),
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert token not in (home / "settings.toml").read_text() if (home / "settings.toml").exists() else True
    assert "accepted" in cli(home, "team", "status").stdout

    hits = cli_json(home, "search", "patent licence")["hits"]
    origins = {h.get("origin", "local") for h in hits}
    assert origins == {"local", "team"}, hits
    assert any(h["path"].endswith("office-notes.txt") for h in hits)
    answer = cli_json(home, "ask", "What happens to the patent license if I file patent litigation?")
    assert answer["indexes"] and any(i.startswith("team") for i in answer["indexes"])
    assert any(c.get("origin") == "team" for c in answer["citations"])
    cli(home, "export", "--answer", str(answer["answer_id"]), "--to", "Share", "--format", "md")
    exported = "\n".join(p.read_text() for p in out.rglob("*.md"))
    assert "team index" in exported
    records = cli_json(home, "audit", "-n", "50")["records"]
    given = [r for r in records if r.get("event") == "answer_given"]
    assert given and any("team" in " ".join(r["data"].get("indexes", [])) for r in given)

    secret = cli_json(home, "ask", f"What is the {CANARY} settlement with Quenfield Holdings?")
    cli(home, "export", "--answer", str(secret["answer_id"]), "--to", "Share", "--format", "json")
    everything = "\n".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "nobody outside" not in everything.lower() and CANARY_FILE not in everything

    team.stop()  # the laptop is offline (or the service is down)
    try:
        offline = cli(home, "ask", "When is the patent licence review for Brightwater due?")
        said = (offline.stdout + offline.stderr).lower()
        assert "team index unreachable — answering from this computer's folders" in said
        assert "14 May" in offline.stdout
        searched = cli(home, "search", "Brightwater")
        assert "team index unreachable" in searched.stderr and "office-notes.txt" in searched.stdout
    finally:
        team.start()
