"""Team mode under load (issue 29): the Sealroom service over PostgreSQL and Chroma with N passages.

    .venv/bin/python bench/team.py [--passages 200000] [--embed 5000] [--clients 20] [--questions 25]

Every server is started here: PostgreSQL (tests/team/postgres_server.py), Chroma's own server
(tests/team/chroma_server.py) and `sealroom-server start` over TLS (tests/team/service.py's certificate and
configuration). Then:

- Passages: N passages of real English text (bench/scale.py's source: the Python documentation's topics,
  the docstrings of the standard library and installed packages, the manual pages; Debian's python3.11-doc
  and linux-doc when installed), 40 to a file, the files spread over ten matters "matter-0".."matter-9",
  loaded straight into PostgreSQL (PostgresPassages.upsert_file + finish_content) and Chroma
  (ChromaServerIndex.upsert with each passage's groups), not through the indexer; one canary file is in
  matter-0 only. Vectors: the first E passages are embedded with Sealroom's embedder (cached in
  ~/.cache/sealroom/bench-team between runs); the others are given the vector of one of those plus a
  little Gaussian noise, renormalised ("derived"; the output says how many of each).
- Load: C concurrent clients (threads, each its own TeamIndex and token, in 1-3 matters) x Q questions:
  each question is one search (the whole request timed) and one ask without the chat model (time to
  the first "evidence" event: the evidence on screen).
- Walls: clients outside matter-0 search for the canary's word, phrases and file name (>= 200 queries):
  no passage of the canary file may come back.
- Faults: Chroma killed mid-load (answers keep coming, said to be keyword only; no client error);
  PostgreSQL stopped and started again under load (failures say PostgreSQL, then the same clients
  succeed again, no service restart); the client offline (an embedded Engine with team_server pointing
  at a closed port answers searches within 10% + 20 ms of one without team mode).
- Embedded figures beside them: the laptop's Engine.search over a small local folder (measured here),
  and bench/results/scale-*.json (the embedded index at 10k/100k passages) when present.

Figures go to bench/results/team.json; the exit status is 1 when a target is missed (printed).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))  # the tests' servers (tests/team)
from goals import RESULTS, Row, write  # noqa: E402
from scale import DOC_TREES, QUERIES, CachedEmbedder, passages  # noqa: E402

CACHE = Path.home() / ".cache" / "sealroom" / "bench-team"
PER_FILE = 40
MATTERS = 10
NOISE = 0.01  # per coordinate, on unit vectors of 384: cosine to the source vector about 0.98
SEARCH_P95_MS = 150.0
EVIDENCE_P95_MS = 1000.0
WALL_QUERIES = 200
OFFLINE_SLACK = (0.10, 20.0)  # within 10% + 20 ms of the p95 without team mode
RECOVERY_S = 30.0  # PostgreSQL back: every client answered again within this
CLEANUP: list[Callable[[], None]] = []  # what stops the servers started, on SIGTERM
CANARY = "Zorblatt"
CANARY_FILE = "zorblatt-memo.txt"
CANARY_TEXT = (
    "MEMORANDUM. The Zorblatt settlement with Quenfield Holdings is 4.2 million euros, approved by the board "
    "on 3 March. Nobody outside matter 1041 may read this memo."
)
STOP = set(
    [
        "about",
        "above",
        "after",
        "again",
        "against",
        "their",
        "there",
        "these",
        "those",
        "which",
        "while",
        "would",
        "could",
        "should",
        "where",
        "when",
        "being",
        "other",
        "every",
        "under",
        "within",
        "without",
        "between",
        "return",
        "returns",
        "value",
        "values",
        "given",
        "using",
        "object",
        "objects",
        "following",
        "example",
        "default",
        "defaults",
        "called",
        "method",
        "function",
        "functions",
        "argument",
        "arguments",
    ]
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def summary(values: list[float]) -> dict[str, float | int]:
    return {
        "n": len(values),
        "p50": round(pct(values, 0.5), 1),
        "p95": round(pct(values, 0.95), 1),
        "max": round(max(values), 1) if values else float("nan"),
        "mean": round(statistics.fmean(values), 1) if values else float("nan"),
    }


# --- the passages and their vectors ------------------------------------------------------------------
def texts_for(n: int) -> tuple[list[str], str]:
    """n distinct passages of real text (cached), and a sentence saying where they came from."""
    CACHE.mkdir(parents=True, exist_ok=True)
    file = CACHE / "texts.json.gz"
    texts: list[str] = []
    if file.is_file():
        texts = json.loads(gzip.decompress(file.read_bytes()))
    if len(texts) < n:
        log(f"collecting {n:,} passages of real text (bench/scale.py's source)")
        texts = passages(n)
        file.write_bytes(gzip.compress(json.dumps(texts).encode("utf-8"), 1))
    trees = [str(t) for t in DOC_TREES if t.is_dir()]
    source = (
        "bench/scale.py's real text: pydoc topics, "
        + (f"the doc trees {', '.join(trees)}, " if trees else "(python3.11-doc / linux-doc not installed), ")
        + "docstrings of the standard library and installed packages, manual pages"
    )
    # PostgreSQL's text holds no NUL and no lone surrogate (a few docstrings carry them)
    texts = [t.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8") for t in texts[:n]]
    if len(texts) < n:  # not enough text on this machine: repeated, each copy told apart
        have = len(texts)
        texts += [f"{texts[i % have]} (copy {i // have})" for i in range(have, n)]
        source += f"; only {have:,} distinct here, the rest repeated with a copy number"
    return texts, source


def vectors_for(texts: list[str], embed_n: int) -> tuple[np.ndarray, int, float]:
    """Vectors for `texts`: the first embed_n embedded for real (cached), the rest derived from them."""
    from sealroom.core.components import make_embedder
    from sealroom.core.runtime.config import Settings

    inner = make_embedder(Settings())
    cached = CachedEmbedder(inner, CACHE / f"vectors-{inner.model_id.replace('@', '-')}.npz")
    real = texts[:embed_n]
    started = time.perf_counter()
    out: list[np.ndarray] = []
    for start in range(0, len(real), 256):
        out.append(cached.embed(real[start : start + 256]))
        if cached.computed and start % 2560 == 0:
            log(f"  embedded {start + len(out[-1]):,}/{len(real):,} ({cached.computed:,} computed now)")
    if cached.computed > cached.saved:
        cached.save()
    embed_s = time.perf_counter() - started
    base = np.concatenate(out).astype(np.float32)
    rest = len(texts) - len(real)
    if rest > 0:
        rng = np.random.default_rng(29)
        derived = np.empty((rest, base.shape[1]), np.float32)
        for s in range(0, rest, 20_000):
            e = min(rest, s + 20_000)
            part = base[np.arange(s, e) % len(base)] + rng.normal(0, NOISE, (e - s, base.shape[1]))
            derived[s:e] = part / np.linalg.norm(part, axis=1, keepdims=True)
        base = np.concatenate([base, derived])
    log(
        f"vectors: {len(real):,} real ({cached.computed:,} computed now in {embed_s:.0f} s, the rest from the "
        f"cache), {max(rest, 0):,} derived (a real vector + N(0, {NOISE}) noise, renormalised)"
    )
    return base, cached.computed, embed_s


# --- loading PostgreSQL and Chroma --------------------------------------------------------------------
def load(dsn: str, chroma: tuple[str, int], texts: list[str], vectors: np.ndarray) -> dict[str, Any]:
    from sealroom.core.protocols import Chunk
    from sealroom.core.store.postgres import PostgresPassages
    from sealroom.core.store.remote_vectors import ChromaServerIndex

    files: list[tuple[str, str, list[str], list[Chunk], np.ndarray]] = []
    for f, start in enumerate(range(0, len(texts), PER_FILE)):
        part = texts[start : start + PER_FILE]
        matter = f"matter-{f % MATTERS}"
        body = "\n\n".join(part)
        sha = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
        chunks, offset = [], 0
        for seq, text in enumerate(part):
            heading = " ".join(text.split()[:6])
            chunks.append(
                Chunk(f"{sha[:20]}-{seq}", sha, seq, text, None, heading, offset, offset + len(text))
            )
            offset += len(text) + 2
        path = f"/srv/shares/{matter}/doc-{f:05d}.txt"
        files.append((path, sha, [matter], chunks, vectors[start : start + PER_FILE]))
    pg = PostgresPassages(dsn)
    started = time.perf_counter()
    done = [0]
    lock = threading.Lock()

    def pg_part(part: list[Any]) -> None:
        own = pg  # one connection per thread inside (its schema made once, before the threads)
        for path, sha, groups, chunks, _ in part:
            body_size = sum(len(c.text) for c in chunks)
            own.upsert_file(path, sha, "pending", str(Path(path).parent), time.time_ns(), body_size, groups)
            own.finish_content(sha, "indexed", None, None, chunks)
            with lock:
                done[0] += 1

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(pg_part, [files[i::2] for i in range(2)]))
    pg.query("ANALYZE chunks")
    pg.query("ANALYZE files")
    pg_s = time.perf_counter() - started
    log(f"PostgreSQL: {len(texts):,} passages in {len(files):,} files loaded in {pg_s:.0f} s")

    started = time.perf_counter()

    def chroma_part(part: list[Any]) -> None:
        index = ChromaServerIndex(*chroma, timeout=120.0)
        batch_ids: list[str] = []
        batch_vec: list[np.ndarray] = []
        batch_sha: list[str] = []
        batch_groups: list[list[str]] = []

        def flush() -> None:
            if batch_ids:
                index.upsert(batch_ids, np.concatenate(batch_vec), batch_sha, None, groups=batch_groups)
                batch_ids.clear(), batch_vec.clear(), batch_sha.clear(), batch_groups.clear()

        for _, sha, groups, chunks, vecs in part:
            batch_ids += [c.id for c in chunks]
            batch_vec.append(vecs)
            batch_sha += [sha] * len(chunks)
            batch_groups += [groups] * len(chunks)
            if len(batch_ids) >= 2560:
                flush()
        flush()

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(chroma_part, [files[i::2] for i in range(2)]))
    chroma_s = time.perf_counter() - started
    count = ChromaServerIndex(*chroma).count()
    log(f"Chroma: {count:,} vectors loaded in {chroma_s:.0f} s")
    pg.close()
    return {
        "files": len(files),
        "postgres_load_s": round(pg_s, 1),
        "chroma_load_s": round(chroma_s, 1),
        "vectors_in_chroma": count,
    }


def add_canary(dsn: str, chroma: tuple[str, int]) -> None:
    """The canary memo, in matter-0 only, embedded for real."""
    from sealroom.core.components import make_embedder
    from sealroom.core.protocols import Chunk
    from sealroom.core.runtime.config import Settings
    from sealroom.core.store.postgres import PostgresPassages
    from sealroom.core.store.remote_vectors import ChromaServerIndex

    sha = hashlib.sha256(CANARY_TEXT.encode()).hexdigest()
    chunk = Chunk(f"{sha[:20]}-0", sha, 0, CANARY_TEXT, None, "MEMORANDUM", 0, len(CANARY_TEXT))
    vector = make_embedder(Settings()).embed([CANARY_TEXT])
    ChromaServerIndex(*chroma).upsert([chunk.id], vector, [sha], None, groups=[["matter-0"]])
    pg = PostgresPassages(dsn)
    path = f"/srv/shares/matter-0/{CANARY_FILE}"
    pg.upsert_file(
        path, sha, "pending", "/srv/shares/matter-0", time.time_ns(), len(CANARY_TEXT), ["matter-0"]
    )
    pg.finish_content(sha, "indexed", None, None, [chunk])
    pg.close()


# --- questions ---------------------------------------------------------------------------------------
def questions(texts: list[str], n: int, rng: random.Random) -> list[str]:
    """Questions a reader of this documentation would ask: the scale bench's, and ones made of a passage's
    own words (so some passage answers them)."""
    frames = [
        "What does the documentation say about {} {}?",
        "How do I use {} with {}?",
        "{} {} {}",
        "Explain {} and {}",
        "Where is {} {} described?",
        "Is there anything about {} in relation to {}?",
    ]
    out = list(QUERIES)
    while len(out) < n:
        words = [w for w in re.findall(r"[A-Za-z][a-z]{4,14}", rng.choice(texts)) if w.lower() not in STOP]
        words = list(dict.fromkeys(words))
        if len(words) < 3:
            continue
        frame = rng.choice(frames)
        out.append(frame.format(*rng.sample(words, frame.count("{}"))))
    rng.shuffle(out)
    return out[:n]


# --- the clients -------------------------------------------------------------------------------------
class Client:
    def __init__(self, name: str, groups: list[str], url: str, token: str, ca: str) -> None:
        from sealroom.core.answer.team import TeamIndex

        self.name, self.groups = name, groups
        self.index = TeamIndex(url, token, ca, connect_timeout=5.0, timeout=30.0)

    def search(self, query: str, k: int = 6) -> tuple[float, list[Any], str]:
        self.index._down_until = 0.0  # measured: no circuit breaker between a bench's requests
        started = time.perf_counter()
        hits, notice = self.index.search(query, k=k)
        return (time.perf_counter() - started) * 1000, hits, notice

    def ask(self, question: str) -> tuple[float, dict[str, Any]]:
        """Time to the evidence on screen (ms), and the last event."""
        self.index._down_until = 0.0
        started = time.perf_counter()
        first = None
        last: dict[str, Any] = {}
        for event in self.index.ask(question, generate=False):
            if first is None:
                first = (time.perf_counter() - started) * 1000
                if event.get("event") not in ("evidence", "answer"):
                    raise RuntimeError(f"the ask began with {event}")
            last = event
        if last.get("event") == "error":
            raise RuntimeError(f"the ask ended with an error: {last.get('message')}")
        return first if first is not None else float("nan"), last


def run_load(
    clients: list[Client],
    work: Callable[[int, Client], list[str]],
    on_event: Callable[[str, Client, Any], None] | None = None,
    timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Every client at once, each asking its questions in turn (a search, then an ask)."""
    search_ms: list[float] = []
    evidence_ms: list[float] = []
    errors: list[str] = []
    notices: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        client = clients[i]
        for q in work(i, client):
            if time.perf_counter() > deadline:  # the service cannot keep up: what was asked is counted
                with lock:
                    unasked[0] += 1
                continue
            try:
                ms, _hits, notice = client.search(q)
                with lock:
                    search_ms.append(ms)
                    notices.append(notice)
                ask_ms, last = client.ask(q)
                with lock:
                    evidence_ms.append(ask_ms)
                    notices.append(str(last.get("answer", {}).get("notice", "")))
                    if len(evidence_ms) % 100 == 0:
                        log(f"  {len(evidence_ms)} questions done, {len(errors)} errors")
            except Exception as exc:  # every failure counted, with what the client was told
                with lock:
                    errors.append(f"{client.name}: {type(exc).__name__}: {exc}")
                if on_event:
                    on_event("error", client, exc)

    started = time.perf_counter()
    deadline = started + timeout_s
    unasked = [0]
    with ThreadPoolExecutor(len(clients)) as pool:
        list(pool.map(one, range(len(clients))))
    return {
        "unasked": unasked[0],
        "wall_s": round(time.perf_counter() - started, 1),
        "search_ms": search_ms,
        "evidence_ms": evidence_ms,
        "errors": errors,
        "notices": notices,
    }


# --- where the CPU goes --------------------------------------------------------------------------------
def parts() -> dict[str, dict[str, float]]:
    """Each part's CPU seconds so far and memory now (proportional set size, so PostgreSQL's shared
    buffers count once), from /proc: PostgreSQL, Chroma, the service (its worker processes included),
    this bench (the clients)."""
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, str, float]] = {}  # pid → (parent, command line, CPU seconds)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        procs[int(entry.name)] = (
            int(fields[1]),
            f"{comm} {args}",
            (int(fields[11]) + int(fields[12])) / tick,
        )

    def part(pid: int) -> str:
        seen = 0
        while pid in procs and seen < 20:
            parent, args, _ = procs[pid]
            if pid == os.getpid():
                return "bench (the clients)"
            if args.startswith("postgres"):
                return "postgresql"
            if " run --path " in args and "chroma" in args:
                return "chroma"
            if "sealroom.server" in args or "sealroom-server" in args:
                return "service"
            pid, seen = parent, seen + 1
        return ""

    out: dict[str, dict[str, float]] = {}
    for pid, (_, _, used) in procs.items():
        name = part(pid)
        if not name:
            continue
        pss_kb = 0
        try:
            for line in (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss_kb = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        totals = out.setdefault(name, {"cpu_s": 0.0, "memory_mb": 0.0})
        totals["cpu_s"] += used
        totals["memory_mb"] += pss_kb / 1024
    return out


def cpu_seconds() -> dict[str, float]:
    return {name: v["cpu_s"] for name, v in parts().items()}


def sizes(dsn: str, chroma_path: Path) -> dict[str, Any]:
    """What 200,000 passages take: PostgreSQL's database and Chroma's folder on disk, each part's memory."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    chroma_bytes = sum(p.stat().st_size for p in chroma_path.rglob("*") if p.is_file())
    return {
        "postgres_database_mb": round((row[0] if row else 0) / 1e6),
        "chroma_folder_mb": round(chroma_bytes / 1e6),
        "memory_mb": {name: round(v["memory_mb"]) for name, v in sorted(parts().items())},
    }


def cpu_used(before: dict[str, float], after: dict[str, float], requests: int) -> dict[str, Any]:
    """Each part's CPU seconds between two readings, and per request (ms)."""
    parts = {k: round(after.get(k, 0.0) - before.get(k, 0.0), 1) for k in sorted(set(before) | set(after))}
    total = sum(parts.values())
    return {
        "cpu_s": parts,
        "cpu_s_total": round(total, 1),
        "cpu_ms_per_request": round(1000 * total / max(requests, 1), 1),
        "cores": os.cpu_count(),
    }


# --- the service -------------------------------------------------------------------------------------
def start_service(service: Any, workers: int) -> None:
    """The service with `workers` of uvicorn's worker processes (tests/team/service.py)."""
    service.start(workers)


# --- the offline laptop ------------------------------------------------------------------------------
def offline_laptop(tmp: Path) -> dict[str, Any]:
    """Engine.search p95 on a small local folder, team mode off vs. a team server that does not answer."""
    from sealroom.core.engine import Engine
    from sealroom.core.runtime.config import Settings
    from tests.team.chroma_server import free_port

    folder = tmp / "laptop-docs"
    shutil.copytree(ROOT / "bench" / "eval" / "real" / "docs" / "versions", folder)
    home = tmp / "laptop-home"
    closed = f"https://127.0.0.1:{free_port()}"
    result: dict[str, Any] = {"folder": "bench/eval/real/docs/versions", "team_server": closed}
    times: dict[str, list[float]] = {"off": [], "unreachable": []}
    rounds = ["off", "unreachable", "off", "unreachable"]  # interleaved: drift in the machine is shared
    for r, mode in enumerate(rounds):
        settings = Settings(team_server=closed) if mode == "unreachable" else Settings()
        with Engine(home, purpose="bench team offline", settings=settings) as engine:
            if r == 0:
                engine.add_folder(str(folder))
                engine.index()
                result["passages"] = engine.catalog.chunk_count()
            for q in QUERIES[:5]:
                engine.search(q)
            for q in QUERIES:
                started = time.perf_counter()
                hits = engine.search(q)
                times[mode].append((time.perf_counter() - started) * 1000)
                assert hits, f"no hits for {q!r}"
            if mode == "unreachable":
                notice = getattr(engine.answering.retriever(), "notice", None)
                result["retriever"] = type(engine.answering.retriever()).__name__
                result["notice_example"] = notice
    result["search_ms_team_off"] = summary(times["off"])
    result["search_ms_team_unreachable"] = summary(times["unreachable"])
    return result


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--passages", type=int, default=200_000)
    p.add_argument("--embed", type=int, default=5000, help="passages embedded for real (the rest derived)")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--questions", type=int, default=25)
    p.add_argument("--workers", type=int, default=2, help="the service's worker processes")
    p.add_argument("--json", default="team.json")
    p.add_argument(
        "--load-timeout", type=float, default=900.0, help="seconds the load may take (then missed)"
    )
    args = p.parse_args()

    def stopped(signum: int, _frame: object) -> None:  # the servers stopped too (not the client threads)
        print(f"stopped by signal {signum}; stopping the servers", file=sys.stderr, flush=True)
        for stop in reversed(CLEANUP):
            try:
                stop()
            except Exception as exc:
                print(f"stopping: {exc}", file=sys.stderr)
        os._exit(143)

    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGINT, stopped)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    t0 = time.perf_counter()
    rng = random.Random(29)

    texts, source = texts_for(args.passages)
    log(f"{len(texts):,} passages: {source}")
    vectors, embedded_now, embed_s = vectors_for(texts, min(args.embed, len(texts)))

    from tests.team.chroma_server import ChromaServer
    from tests.team.postgres_server import run_postgres
    from tests.team.service import TeamService

    failures: list[str] = []
    report: dict[str, Any] = {
        "passages": len(texts),
        "text_source": source,
        "vectors_real": min(args.embed, len(texts)),
        "vectors_derived": max(0, len(texts) - args.embed),
        "vectors_embedded_this_run": embedded_now,
        "embed_s": round(embed_s, 1),
        "clients": args.clients,
        "questions_per_client": args.questions,
        "service_workers": args.workers,
    }
    tmp = Path(tempfile.mkdtemp(prefix="sealroom-bench-team-"))
    os.chmod(tmp, 0o755)  # PostgreSQL runs as its own user when this runs as root
    chroma = ChromaServer(tmp / "chroma")
    service = None
    try:
        with run_postgres() as pg:
            CLEANUP.append(pg.stop)
            chroma.start()
            CLEANUP.append(chroma.stop)
            log(f"PostgreSQL on {pg.port}, Chroma on {chroma.port}")
            report["load"] = load(pg.dsn, (chroma.host, chroma.port), texts, vectors)
            add_canary(pg.dsn, (chroma.host, chroma.port))
            from sealroom.core.store.postgres import PostgresPassages
            from sealroom.server.tokens import Tokens

            catalog = PostgresPassages(pg.dsn)
            tokens = Tokens(catalog.query)
            (tmp / "service").mkdir()
            service = TeamService(tmp / "service", pg.dsn, (chroma.host, chroma.port), {})
            started = time.perf_counter()
            CLEANUP.append(service.stop)
            start_service(service, args.workers)
            report["service_start_s"] = round(time.perf_counter() - started, 1)
            log(f"service on {service.url} ({args.workers} workers) in {report['service_start_s']} s")

            clients: list[Client] = []
            for c in range(args.clients):
                size = 1 + c % 3
                groups = [f"matter-{(c + j * 3) % MATTERS}" for j in range(size)]
                name = f"user-{c:02d}"
                clients.append(
                    Client(name, groups, service.url, tokens.issue(name, groups), str(service.cert))
                )
            insiders = [c for c in clients if "matter-0" in c.groups]
            outsiders = [c for c in clients if "matter-0" not in c.groups]
            report["client_groups"] = {c.name: c.groups for c in clients}

            asked = questions(texts, args.clients * args.questions, rng)
            for c in clients[:4]:  # warm-up: each worker's embedder and connections
                c.search(QUERIES[0])
                c.ask(QUERIES[1])

            # --- one client alone: what a request costs the service when nothing else runs ------------
            alone_s, alone_e = [], []
            cpu_before = cpu_seconds()
            for q in asked[:20]:
                alone_s.append(clients[0].search(q)[0])
                alone_e.append(clients[0].ask(q)[0])
            report["one_client"] = {
                "search_ms": summary(alone_s),
                "evidence_ms": summary(alone_e),
                "cpu": cpu_used(cpu_before, cpu_seconds(), 40),
            }
            log(
                f"one client alone: search p50 {report['one_client']['search_ms']['p50']} ms, "
                f"evidence p50 {report['one_client']['evidence_ms']['p50']} ms"
            )

            # --- the load ---------------------------------------------------------------------------
            log(f"load: {args.clients} clients x {args.questions} questions (search + ask)")
            per = args.questions
            cpu_before = cpu_seconds()
            load_run = run_load(
                clients, lambda i, c: asked[i * per : (i + 1) * per], timeout_s=args.load_timeout
            )
            search, evidence = summary(load_run["search_ms"]), summary(load_run["evidence_ms"])
            requests = len(load_run["search_ms"]) + len(load_run["evidence_ms"])
            used = cpu_used(cpu_before, cpu_seconds(), requests)
            report["load_run"] = {
                "cpu": used,
                # with every part on this machine's cores, it serves at most cores / (CPU per request)
                # requests a second, so N clients asking without pause wait about N x (CPU per request) /
                # cores on average (less the time they spend between requests): the bound on latency here
                "cpu_bound_mean_ms": round(args.clients * used["cpu_ms_per_request"] / (os.cpu_count() or 1)),
                "sizes": sizes(pg.dsn, chroma.path),
                "wall_s": load_run["wall_s"],
                "search_ms": search,
                "evidence_ms": evidence,
                "errors": len(load_run["errors"]),
                "error_examples": load_run["errors"][:5],
                "requests": len(load_run["search_ms"]) + len(load_run["evidence_ms"]),
                "questions_not_asked_by_the_deadline": load_run["unasked"],
                "deadline_s": args.load_timeout,
            }
            if load_run["unasked"]:
                failures.append(
                    f"load: {load_run['unasked']} questions not asked within {args.load_timeout:.0f} s "
                    "(the service did not keep up)"
                )
            log(
                f"load: search p50 {search['p50']} p95 {search['p95']} ms; evidence p50 {evidence['p50']} "
                f"p95 {evidence['p95']} ms; {len(load_run['errors'])} errors in {load_run['wall_s']} s"
            )
            if load_run["errors"]:
                failures.append(f"load: {len(load_run['errors'])} client errors")
            if search["p95"] > SEARCH_P95_MS:
                failures.append(f"load: search p95 {search['p95']} ms > {SEARCH_P95_MS} ms")
            if evidence["p95"] > EVIDENCE_P95_MS:
                failures.append(f"load: evidence p95 {evidence['p95']} ms > {EVIDENCE_P95_MS} ms")

            restarts: list[str] = []

            def fresh_service(why: str) -> None:
                """The service restarted between phases (not during a drill), so one phase's exhausted
                PostgreSQL connections do not fail the next: said in the report."""
                service.stop()
                start_service(service, args.workers)
                restarts.append(why)
                report["service_restarted_between_phases"] = restarts
                log(f"service restarted: {why}")

            if load_run["errors"]:
                fresh_service("after the load, which ended with errors")

            # --- the wall ---------------------------------------------------------------------------
            subjects = [CANARY, CANARY_FILE, f"the {CANARY} memo", "Quenfield Holdings", "matter 1041"]
            frames = ["{}", "What does the {} say?", "Who approved the {}?", "settlement {} board March"]
            wall_q = [f.format(s) for s in subjects for f in frames]
            leaks: list[str] = []
            wall_count = [0]
            wall_errors: list[str] = []
            wall_lock = threading.Lock()

            def wall_client(c: Client) -> None:
                for i in range(-(-WALL_QUERIES // max(1, len(outsiders)))):
                    q = wall_q[i % len(wall_q)]
                    try:
                        _, hits, _ = c.search(q, k=20 if i % 2 else 6)
                    except Exception as exc:
                        with wall_lock:
                            wall_errors.append(f"{c.name}: {exc}")
                        continue
                    bad = [
                        h.path
                        for h in hits
                        if h.path.endswith(CANARY_FILE) or CANARY.lower() in h.text.lower()
                    ]
                    with wall_lock:
                        wall_count[0] += 1
                        leaks.extend(f"{c.name} {q!r}: {b}" for b in bad)

            log(f"wall: {len(outsiders)} clients outside matter-0 search for the canary")
            with ThreadPoolExecutor(len(outsiders)) as pool:
                list(pool.map(wall_client, outsiders))
            seen_inside = insiders and any(
                h.path.endswith(CANARY_FILE) for h in insiders[0].search(f"the {CANARY} settlement", 5)[1]
            )
            report["wall"] = {
                "queries": wall_count[0],
                "clients_outside": len(outsiders),
                "canary_hits_outside": len(leaks),
                "leaks": leaks[:5],
                "canary_found_inside_matter_0": bool(seen_inside),
                "errors": len(wall_errors),
                "error_examples": wall_errors[:3],
            }
            if wall_errors:
                failures.append(f"wall: {len(wall_errors)} searches failed")
            log(
                f"wall: {wall_count[0]} queries, {len(leaks)} canary hits outside; inside finds it: {seen_inside}"
            )
            if leaks or wall_count[0] < WALL_QUERIES:
                failures.append(f"wall: {len(leaks)} canary hits in {wall_count[0]} queries")
            if not seen_inside:
                failures.append(
                    "wall: the canary's own matter did not find it (the wall check proves nothing)"
                )

            if wall_errors:
                fresh_service("after the wall check, which ended with errors")

            # --- fault 1: Chroma killed mid-load ---------------------------------------------------
            log("fault: Chroma killed mid-load")
            killed_at = [0.0]

            def killer() -> None:
                time.sleep(4)
                chroma.kill()
                killed_at[0] = time.perf_counter()

            threading.Thread(target=killer, daemon=True).start()
            marks: list[tuple[float, str]] = []
            per_f = min(8, args.questions)
            rest_q = asked[: args.clients * per_f]

            def chroma_work(i: int, c: Client) -> list[str]:
                return rest_q[i * per_f : (i + 1) * per_f]

            original_search = Client.search

            def marking_search(self: Client, query: str, k: int = 6) -> tuple[float, list[Any], str]:
                started = time.perf_counter()  # a search asked once Chroma was dead must say keyword only
                out = original_search(self, query, k)
                marks.append((started, out[2]))
                return out

            Client.search = marking_search  # type: ignore[method-assign]
            try:
                fault1 = run_load(clients, chroma_work, timeout_s=args.load_timeout / 2)
            finally:
                Client.search = original_search  # type: ignore[method-assign]
            after_kill = [n for t, n in marks if killed_at[0] and t > killed_at[0]]
            keyword_only = sum("keyword only" in n for n in after_kill)
            chroma.start()
            _, hits_back, notice_back = clients[0].search(QUERIES[0])
            report["fault_chroma_killed"] = {
                "requests": len(fault1["search_ms"]) + len(fault1["evidence_ms"]),
                "errors": len(fault1["errors"]),
                "error_examples": fault1["errors"][:5],
                "searches_after_kill": len(after_kill),
                "said_keyword_only": keyword_only,
                "search_ms": summary(fault1["search_ms"]),
                "notice_example": next((n for n in after_kill if n), ""),
                "after_restart_notice": notice_back,
            }
            log(
                f"Chroma killed: {len(fault1['errors'])} errors, {keyword_only}/{len(after_kill)} searches after "
                f"the kill said keyword only; after restart notice {notice_back!r}"
            )
            if fault1["errors"]:
                failures.append(f"Chroma killed: {len(fault1['errors'])} client errors")
            if not after_kill or keyword_only < len(after_kill):
                failures.append(
                    f"Chroma killed: {keyword_only} of {len(after_kill)} searches after the kill said keyword only"
                )
            if notice_back or not hits_back:
                failures.append("Chroma restarted: searches did not come back whole")

            if fault1["errors"]:
                fresh_service("after the Chroma drill, which ended with errors")

            # --- fault 2: PostgreSQL restarted under load -------------------------------------------
            log("fault: PostgreSQL stopped and started again under load")
            state = {"stopped_at": 0.0, "started_at": 0.0, "done": False}
            outcomes: list[tuple[str, float, str, str]] = []  # client, time, ok/clear/unclear, message
            out_lock = threading.Lock()

            def pg_client(c: Client) -> None:
                i = 0
                recovered = False
                while not recovered and time.perf_counter() - t_fault < 120:
                    q = asked[(i * 7 + hash(c.name)) % len(asked)]
                    i += 1
                    try:
                        if i % 2:
                            c.search(q)
                        else:
                            c.ask(q)
                        kind, message = "ok", ""
                        if state["started_at"]:
                            recovered = True
                    except Exception as exc:
                        message = str(exc)
                        kind = "clear" if "PostgreSQL" in message else "unclear"
                    with out_lock:
                        outcomes.append((c.name, time.perf_counter(), kind, message))
                    if kind != "ok":
                        time.sleep(0.2)

            t_fault = time.perf_counter()
            with ThreadPoolExecutor(len(clients)) as pool:
                futures = [pool.submit(pg_client, c) for c in clients]
                time.sleep(3)
                pg.stop()
                state["stopped_at"] = time.perf_counter()
                time.sleep(4)
                pg.start()
                state["started_at"] = time.perf_counter()
                for f in futures:
                    f.result()
            failed = [o for o in outcomes if o[2] != "ok"]
            unclear = [o for o in outcomes if o[2] == "unclear"]
            back = {}
            for name, t, kind, _ in outcomes:
                if kind == "ok" and t > state["started_at"] and name not in back:
                    back[name] = t - state["started_at"]
            recovery = max(back.values()) if len(back) == len(clients) else float("inf")
            report["fault_postgres_restarted"] = {
                "requests": len(outcomes),
                "failed_clearly": len(failed) - len(unclear),
                "failed_unclearly": len(unclear),
                "unclear_examples": [o[3][:300] for o in unclear[:5]],
                "message_example": next((o[3] for o in failed), ""),
                "down_s": round(state["started_at"] - state["stopped_at"], 1),
                "clients_recovered": len(back),
                "recovery_s_after_start": round(recovery, 2),
                "service_restarted": False,
            }
            log(
                f"PostgreSQL restarted: {len(failed)} failed requests ({len(unclear)} unclear), "
                f"{len(back)}/{len(clients)} clients back, the last {recovery:.1f} s after the start"
            )
            if unclear:
                failures.append(f"PostgreSQL restarted: {len(unclear)} failures did not name PostgreSQL")
            if not failed:
                failures.append("PostgreSQL restarted: no request failed (the drill did not bite)")
            if recovery > RECOVERY_S:
                failures.append(f"PostgreSQL restarted: not every client recovered within {RECOVERY_S} s")
            if service.process is None or service.process.poll() is not None:
                failures.append("PostgreSQL restarted: the service died")
            catalog.close()
            service.stop()
    finally:
        if service is not None:
            service.stop()
        chroma.stop()

    # --- fault 3: the client offline, and the embedded figures -----------------------------------------
    log("the laptop offline: Engine.search with team mode off vs. a team server that does not answer")
    offline = offline_laptop(tmp)
    off, unreachable = offline["search_ms_team_off"]["p95"], offline["search_ms_team_unreachable"]["p95"]
    limit = off * (1 + OFFLINE_SLACK[0]) + OFFLINE_SLACK[1]
    offline["limit_ms"] = round(limit, 1)
    report["fault_client_offline"] = offline
    log(f"offline: p95 {unreachable} ms (team unreachable) vs {off} ms (team off); limit {limit:.1f} ms")
    if unreachable > limit:
        failures.append(
            f"client offline: p95 {unreachable} ms > {limit:.1f} ms (team off {off} ms + 10% + 20 ms)"
        )
    shutil.rmtree(tmp, ignore_errors=True)

    embedded = {
        "laptop_small_folder_search_ms": offline["search_ms_team_off"],
        "passages": offline["passages"],
    }
    for name in ("scale-10k.json", "scale-100k.json"):
        if (RESULTS / name).is_file():
            data = json.loads((RESULTS / name).read_text())
            embedded[name] = {
                "passages": data.get("chunks"),
                "search_ms": {k: data.get("search_ms", {}).get(k) for k in ("p50", "p95")},
                "ask_evidence_ms": data.get("ask_evidence_ms"),
                "machine": data.get("machine"),
                "measured": data.get("measured"),
            }
    report["embedded"] = embedded
    report["runtime_s"] = round(time.perf_counter() - t0, 1)
    report["failures"] = failures

    lr = report["load_run"]
    rows = [
        Row(
            f"team search p95, {args.clients} clients, {len(texts):,} passages",
            lr["search_ms"]["p95"],
            SEARCH_P95_MS,
            "ms",
            1.0,
            higher_is_better=False,
        ),
        Row(
            f"team evidence on screen p95, {args.clients} clients",
            lr["evidence_ms"]["p95"],
            EVIDENCE_P95_MS,
            "ms",
            1.0,
            higher_is_better=False,
        ),
        Row(
            "offline laptop search p95 vs team off + 10% + 20 ms",
            unreachable,
            limit,
            "ms",
            1.0,
            higher_is_better=False,
        ),
    ]
    print()
    print(f"{'':44} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for label, s in [
        (f"team search ({len(texts):,} passages, {args.clients} clients)", lr["search_ms"]),
        ("team evidence on screen (ask)", lr["evidence_ms"]),
        ("team search, Chroma killed mid-load", report["fault_chroma_killed"]["search_ms"]),
        (f"laptop search, team off ({offline['passages']} passages)", offline["search_ms_team_off"]),
        ("laptop search, team server unreachable", offline["search_ms_team_unreachable"]),
    ] + [
        (f"embedded {name} ({e['passages']:,} passages)", {**e["search_ms"], "max": float("nan")})
        for name, e in embedded.items()
        if name.startswith("scale")
    ]:
        print(f"{label:44} {s['p50']:>8} {s['p95']:>8} {s.get('max', ''):>8}")
    print()
    write(args.json, rows, **report)
    print(f"runtime {report['runtime_s']:.0f} s")
    if failures:
        print("TARGETS MISSED:\n  " + "\n  ".join(failures))
        return 1
    print("every target met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
