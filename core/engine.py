"""The engine: one object that owns a data directory and offers every operation.

Construction takes the data-directory lock and opens the catalog; the embedder,
Chroma, the parser pool and the LLM start on first use (`warm_up` style), so
`status` and `folders` stay fast. The CLI and the desktop app are thin layers on this.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sealroom.core.answer.pipeline import Answer, AnswerPipeline, ModelInfo
from sealroom.core.answer.prompts import shared_start
from sealroom.core.answer.retriever import Hit, Retriever, known_words
from sealroom.core.components import make_embedder, make_generator, model_catalogue
from sealroom.core.ingest import upkeep
from sealroom.core.ingest.indexer import (
    Indexer,
    IndexSummary,
    Progress,
    text_budget,
)
from sealroom.core.ingest.parse_pool import ParserPool
from sealroom.core.ingest.scanner import EventSink, Scanner
from sealroom.core.output.audit import AuditTrail, sha256_text
from sealroom.core.output.service import Output
from sealroom.core.protocols import Embedder, Generator
from sealroom.core.runtime import logs, offline
from sealroom.core.runtime.config import Settings, load_settings, under_policy
from sealroom.core.runtime.errors import DiskFull, SealroomError, UsageError, is_disk_full
from sealroom.core.runtime.lock import DataDirLock
from sealroom.core.runtime.paths import data_dir, is_within
from sealroom.core.store.catalog import DEFAULT_WORKSPACE
from sealroom.core.store.recovery import mirror_folders, open_catalog
from sealroom.core.store.vectorstore import VectorStore


@dataclass
class WatchState:
    """What `watch` is doing, for diagnostics: folders, observers, last run, errors."""

    folders: list[str] = field(default_factory=list)
    polling: list[str] = field(default_factory=list)
    watcher: Any = None
    last_index: float | None = None
    errors: list[str] = field(default_factory=list)

    def started(self, folders: list[str], watcher: Any) -> None:
        self.folders, self.polling, self.watcher = folders, list(watcher.polling), watcher

    @property
    def running(self) -> bool:
        return self.watcher is not None

    @property
    def healthy(self) -> bool:
        return self.watcher is not None and self.watcher.healthy()


MAX_QUESTION_CHARS = 2000
RELEASE_AFTER_CHUNKS = 64  # an index run that embedded this many passages gives back its working memory


class Engine:
    def __init__(self, home: Path | None = None, purpose: str = "", settings: Settings | None = None) -> None:
        self.home = home or data_dir()
        os.umask(0o077)  # everything Sealroom writes (catalog, index, logs, models) is private to the user
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.settings = under_policy(settings) if settings else load_settings()
        offline.enforce(self.settings.allowed_hosts)
        self.log_path = logs.setup(self.home, self.settings.log_level)
        self._lock = DataDirLock(self.home, purpose)
        self._lock.acquire()
        # `recovered` says so when a damaged catalog was moved aside and rebuilt at start
        self.catalog, self.recovered = open_catalog(self.home)
        mirror_folders(self.home, self.catalog)
        self.audit = AuditTrail(self.home, enabled=self.settings.audit_enabled)
        self.output = Output(self.home, self.settings, self.catalog, self.audit)
        self._note_policy()
        self._embedder: Embedder | None = None
        self._store: VectorStore | None = None
        self._closing = False  # close() has begun: failures to open now are not the index's fault
        self._pool: ParserPool | None = None
        self._llm: Generator | None = None
        self._model = ModelInfo()
        self.emit: EventSink = lambda event: None
        self._index_lock = threading.Lock()
        self._start_lock = threading.RLock()  # components start once, whichever thread asks first
        self._llm_lock = threading.Lock()
        self.paused = threading.Event()  # see pause()
        self._rescan = threading.Event()
        self._stop_answer = threading.Event()  # the stop switch of the answer under way
        self.watch_state = WatchState()

    # --- components, started on first use ---------------------------------------------
    @property
    def embedder(self) -> Embedder:
        with self._start_lock:
            if self._embedder is None:
                self._embedder = make_embedder(self.settings)
            return self._embedder

    @property
    def store(self) -> VectorStore:
        with self._start_lock:
            if self._store is None:
                with logs.stage("open vector store"):
                    self._store = self._open_store()
                recorded = self.catalog.get_meta("embedding_model")
                if recorded and recorded != self.embedder.model_id:
                    # an upgrade brought another embedding model: its vectors are not comparable. Drop
                    # them; the next index run embeds every passage again from the catalog (no document
                    # is re-read) and search is by keyword meanwhile (status and the window say so).
                    self._store.reset()
                    self.recovered = (
                        f"the embedding model changed ({recorded} → {self.embedder.model_id}): the vector "
                        "index is rebuilt from the catalog at the next index; search is by keyword until then"
                    )
                    logs.event("embedding model changed", previous=recorded, current=self.embedder.model_id)
                    self.audit.record(
                        "model_changed", embedding_model=self.embedder.model_id, previous=recorded
                    )
                self.catalog.set_meta("embedding_model", self.embedder.model_id)
            return self._store

    @property
    def pool(self) -> ParserPool:
        with self._start_lock:
            if self._pool is None:
                s = self.settings
                self._pool = ParserPool(
                    s.parser_processes, s.parse_timeout_s, s.parse_memory_mb, text_budget(s)
                )
            return self._pool

    def llm(self) -> Generator:
        """The chat model, loaded on first use (in its own process)."""
        with self._llm_lock:
            if self._llm is None:
                llm, entry = make_generator(self.home, self.settings)
                with logs.stage("load model", model=Path(entry.path).name):
                    llm.warm_up()
                    try:
                        for _ in llm.generate(max_tokens=1, **shared_start(llm.has_chat_template)):
                            pass  # the prompts' shared start, into the model's KV cache
                    except BaseException:
                        llm.close()  # a model that cannot say one token is not kept running
                        raise
                self._llm, self._model = llm, ModelInfo(Path(entry.path).name, entry.sha256)
            return self._llm

    @property
    def model_state(self) -> str:
        """'ready: <file>' once the chat model is loaded, else 'not loaded'."""
        return f"ready: {self._model.name}" if self._llm is not None else "not loaded"

    def unload_model(self) -> None:
        """Close the chat model so the next question loads it with the current settings."""
        with self._llm_lock:
            if self._llm is not None:
                self._llm.close()
            self._llm = None

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings (held to the IT policy: nothing here loosens it); a changed chat model, context
        or thread count reloads the model."""
        settings = under_policy(settings)
        reload = any(
            getattr(settings, k) != getattr(self.settings, k)
            for k in ("chat_model", "compact_default_model", "n_ctx", "n_threads")
        )
        changed = {
            f.name: getattr(settings, f.name)
            for f in dataclasses.fields(settings)
            if f.name != "locked" and getattr(settings, f.name) != getattr(self.settings, f.name)
        }
        if "chat_model" in changed:
            self.audit.record("model_changed", model=changed.pop("chat_model") or "default")
        if changed:
            self.audit.record("settings_changed", **changed)
        self.settings = settings
        self.output.settings = settings
        self.audit.enabled = settings.audit_enabled
        logs.log.setLevel(settings.log_level.upper())
        if reload:
            self.unload_model()

    def _note_policy(self) -> None:
        """Audit the IT policy file when it appears or changes; prune the trail as it says."""
        from sealroom.core.runtime.config import policy_paths

        files = {}
        for path in policy_paths():
            try:
                files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                continue  # absent: the record lists the files that applied
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest() if files else ""
        if digest != (self.catalog.get_meta("policy_sha256") or ""):
            self.audit.record("policy_loaded", files=files, keys=sorted(self.settings.locked))
            self.catalog.set_meta("policy_sha256", digest)
        self.audit.prune(self.settings.audit_retention_days)

    def close(self) -> None:
        self._closing = True
        if self._store is not None:
            self._store.close()
        if self._pool:
            self._pool.close()
        if self._llm:
            self._llm.close()
        self.catalog.close()
        self._lock.release()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- folders ----------------------------------------------------------------------
    def add_folder(self, folder: str, workspace: str = DEFAULT_WORKSPACE) -> str:
        path = os.path.abspath(os.path.expanduser(folder))
        if not os.path.isdir(path):
            raise UsageError(f"not a folder: {folder}")
        if os.path.dirname(path) == path:
            raise UsageError(f"{path} is the whole disk; add the folders that hold your documents")
        home = os.path.realpath(self.home)
        real = os.path.realpath(path)
        if is_within(home, real) or is_within(real, home):
            raise UsageError(f"{path} holds Sealroom's own data folder ({self.home}); choose another folder")
        for known in self.folders():
            if path != known and (is_within(path, known) or is_within(known, path)):
                raise UsageError(f"{path} overlaps the watched folder {known}")
        self.catalog.add_folder(path, workspace)
        mirror_folders(self.home, self.catalog)
        self.audit.record("folder_added", folder=path, workspace=workspace)
        return path

    def remove_folder(self, folder: str) -> str:
        path = os.path.abspath(os.path.expanduser(folder))
        if not self.catalog.remove_folder(path):
            raise UsageError(f"not a watched folder: {folder}")
        mirror_folders(self.home, self.catalog)
        self.collect_garbage()
        logs.forget([], prefixes=[path])
        self.audit.record("folder_removed", folder=path)
        self.audit.record("data_deleted", what="index of folder", folder=path)
        return path

    def folders(self, workspace: str | None = None) -> list[str]:
        return [path for _, path in self.catalog.folders(workspace)]

    def remove_workspace(self, workspace: str) -> None:
        self.catalog.remove_workspace(workspace)
        mirror_folders(self.home, self.catalog)
        self.collect_garbage()
        self.audit.record("data_deleted", what="workspace", workspace=workspace)

    # --- indexing ---------------------------------------------------------------------
    def scanner(self) -> Scanner:
        return Scanner(self.catalog, self.settings.max_file_mb, self.emit)

    def indexer(self) -> Indexer:
        indexer = Indexer(self.catalog, self.store, self.embedder, self.pool, self.settings, self.emit)
        indexer.paused = self.paused
        return indexer

    def index(
        self,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
        paths: set[str] | None = None,
    ) -> IndexSummary:
        """Scan (all folders, or just `paths`), index what is pending, collect garbage."""
        with self._index_lock:
            with logs.stage("scan", paths=len(paths) if paths else "all") as info:
                scan = self.scanner().scan_paths(paths) if paths is not None else self.scanner().scan_all()
                info.update(queued=scan.queued, reused=scan.reused, removed=scan.removed)
            self.emit(
                {"event": "scanned", "queued": scan.queued, "reused": scan.reused, "removed": scan.removed}
            )
            if scan.removed_paths:
                logs.forget(scan.removed_paths)  # a deleted document's name leaves the log files too
            upkeep.heal_vectors(self.catalog, self.store, self.embedder)
            from sealroom.core.ingest.parsers import PARSER_VERSION

            if self.catalog.get_meta("parser_version") != PARSER_VERSION:
                self.catalog.requeue(
                    "status IN ('failed', 'skipped') AND sha256 NOT LIKE 'large:%' AND sha256 NOT LIKE 'special:%'"
                )
                self.catalog.set_meta("parser_version", PARSER_VERSION)
            with logs.stage("index") as info:
                summary = self.indexer().run(progress, stop)
                info.update(files=summary.files, pages=summary.pages, chunks=summary.chunks)
            self.collect_garbage()
            if summary.chunks >= RELEASE_AFTER_CHUNKS:  # chunking them loaded the embedder
                self.embedder.release_memory()  # an idle app holds no arena sized for indexing
            return summary

    def retry_failed(self) -> int:
        """Queue the failed files again (after a fix, or once a file is readable)."""
        return self.catalog.requeue("status = 'failed'")

    def collect_garbage(self) -> int:
        return upkeep.collect_garbage(self.catalog, self.store)

    def _open_store(self) -> VectorStore:
        try:
            return VectorStore(self.home / "chroma", self.embedder)
        except Exception as exc:  # Chroma's own errors vary: sqlite, HNSW, pydantic
            if self._closing or sys.is_finalizing():
                # quitting while the store was still opening: Chroma's imports then fail ("cannot
                # schedule new futures after interpreter shutdown"); the index itself is fine
                raise SealroomError("Sealroom is closing; the vector index was not opened") from exc
            logs.problem("vector index unreadable", error=True, detail=type(exc).__name__)
            raise SealroomError(
                f"the vector index in {self.home / 'chroma'} cannot be read ({type(exc).__name__}); "
                "run `sealroom repair` to rebuild it from the catalog (your documents are not re-read)"
            ) from None

    def repair(self, progress: Progress | None = None) -> int:
        """Rebuild the vector index from the catalog's chunks (no re-parsing).

        An index Chroma cannot open, or one built by another embedding model, is moved aside
        (`chroma.damaged-<time>`) and built anew.
        """
        with self._start_lock:
            self._store = None
            try:
                store = self._open_store()
                store.reset()
            except Exception:
                aside = self.home / f"chroma.damaged-{int(time.time())}"
                if (self.home / "chroma").exists():
                    os.replace(self.home / "chroma", aside)
                    logs.event("vector index moved aside", to=str(aside))
                VectorStore.forget_open_clients()
                store = self._open_store()
            self._store = store
        done = upkeep.embed_chunks(self.catalog, store, self.embedder, None, progress)
        self.catalog.mark_embedded()
        self.catalog.set_meta("embedding_model", self.embedder.model_id)
        logs.event("repair", chunks=done)
        return done

    def watch(
        self,
        on_ready: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Index, then keep the index fresh until `stop`; follows folders added or removed meanwhile."""
        from sealroom.core.ingest.watcher import FolderWatcher

        stop = stop or threading.Event()
        state = self.watch_state
        watcher: FolderWatcher | None = None
        next_reconcile = 0.0
        ready = False
        courier = threading.Thread(target=self.output.courier, args=(stop,), name="outbox", daemon=True)
        courier.start()  # waiting exports go out when their share is back, whatever indexing does
        try:
            while not stop.is_set():
                folders = self.folders()
                if watcher is None or folders != state.folders:
                    if watcher:
                        watcher.stop()
                    # started before the scan, so nothing saved meanwhile is missed
                    watcher = FolderWatcher(folders, self.settings.debounce_s, self.settings.force_polling)
                    watcher.start()
                    state.started(folders, watcher)
                    next_reconcile = 0.0
                if self._rescan.is_set():
                    self._rescan.clear()
                    next_reconcile = 0.0
                try:
                    if time.monotonic() >= next_reconcile:
                        self.index(progress, stop)
                        next_reconcile = time.monotonic() + self.settings.reconcile_interval_s
                        state.last_index = time.time()
                        if not ready and on_ready:
                            on_ready()
                        ready = True
                        continue
                    batch = watcher.wait_batch(timeout=min(1.0, max(0.0, next_reconcile - time.monotonic())))
                    if batch:
                        self.index(progress, stop, paths=batch)
                        state.last_index = time.time()
                except SealroomError as exc:
                    if not is_disk_full(exc):
                        raise
                    self._wait_for_space(state, stop)
                except Exception as exc:  # a disk or store error: report it, keep watching, retry later
                    if is_disk_full(exc):
                        self._wait_for_space(state, stop)
                        continue
                    state.errors.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
                    logs.problem("watch error", error=True, detail=f"{type(exc).__name__}: {exc}")
                    next_reconcile = time.monotonic() + 10
                    stop.wait(1.0)
        finally:
            if watcher:
                watcher.stop()
            state.watcher = None

    def _wait_for_space(self, state: WatchState, stop: threading.Event) -> None:
        """The disk is full: say so once, then look again every 30 s; indexing resumes when there is room."""
        message = str(DiskFull(self.home))
        if not state.errors or not state.errors[-1].endswith(message):
            state.errors.append(f"{time.strftime('%H:%M:%S')} {message}")
            logs.problem("disk full", error=True)
        self.emit({"event": "disk full", "message": message})
        stop.wait(30.0)

    def pause(self) -> None:
        """Indexing finishes the files in hand and leaves the rest pending (scans still run)."""
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()
        self.rescan()

    def rescan(self) -> None:
        """Ask a running `watch` to scan every folder now (after retry, or a folder added)."""
        self._rescan.set()

    # --- status -----------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        files = self.catalog.files()
        from sealroom.core.output.render import sealroom_version

        return {
            "version": sealroom_version(),
            "data_dir": str(self.home),
            "folders": self.folders(),
            "files": [{"path": f.path, "status": f.status, "reason": f.reason} for f in files],
            "counts": self.catalog.count_by_status(),
            "chunks": self.catalog.chunk_count(),
            "semantic_pending": self.semantic_pending(),
            "embedding_model": self.catalog.get_meta("embedding_model"),
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
        if self._store is None and not (self.home / "chroma" / "chroma.sqlite3").exists():
            return f"the vector index is missing: search is by keyword only; {fix}"
        try:
            held = self.store.count()
        except SealroomError as exc:
            return str(exc)
        chunks -= self.catalog.semantic_pending()[1]  # on their way (indexing says so), not lost
        if held < chunks:
            return f"the vector index holds {held:,} of {chunks:,} passages: the rest are found by keyword only; {fix}"
        return ""

    def overview(self, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
        """What the window's sidebar shows: workspaces, folders with counts, chats, totals, failures."""
        folders = set(self.folders(workspace))
        return {
            "workspaces": self.catalog.workspaces(),
            "counts": {p: c for p, c in self.catalog.counts_by_folder().items() if p in folders},
            "chats": self.catalog.chats(workspace),
            "totals": self.catalog.count_by_status(),
            "not_indexed": self.catalog.not_indexed(),
            "chunks": self.catalog.chunk_count(),
            "semantic_pending": self.semantic_pending(),
            "embedding_model": self.catalog.get_meta("embedding_model"),
            "warnings": self.warnings(),
        }

    def add_workspace(self, name: str) -> bool:
        return self.catalog.add_workspace(name)

    def chats(self, workspace: str = DEFAULT_WORKSPACE) -> list[tuple[int, str]]:
        return self.catalog.chats(workspace)

    def transcript(self, chat_id: int) -> list[tuple[str, str, list[dict[str, Any]], dict[str, Any] | None]]:
        """(role, text, citations, answer record) of each message; records hold what export needs."""
        return self.catalog.transcript(chat_id)

    def answer_ids(self, chat_id: int) -> list[int]:
        """The stored answers of a chat, in order (what Export… names)."""
        return [int(a["id"]) for a in self.catalog.answers(chat_id)]

    def preference(self, key: str) -> str | None:
        """A choice the window remembers in this data folder (the last export destination, say)."""
        return self.catalog.get_meta(key)

    def remember(self, key: str, value: str) -> None:
        self.catalog.set_meta(key, value)

    def rename_chat(self, chat_id: int, title: str) -> None:
        self.catalog.rename_chat(chat_id, title)

    def delete_chat(self, chat_id: int) -> None:
        self.catalog.delete_chat(chat_id)
        self.audit.record("data_deleted", what="chat", chat_id=chat_id)

    # --- asking -----------------------------------------------------------------------
    def search(
        self,
        query: str,
        k: int | None = None,
        folder: str | None = None,
        types: list[str] | None = None,
        workspace: str | None = None,
    ) -> list[Hit]:
        """Passages for `query`, from one folder, or a workspace's folders, or everywhere."""
        folders = [folder] if folder else self.folders(workspace) if workspace else None
        return self.search_in(query, k, folders, types)

    def search_in(
        self,
        query: str,
        k: int | None = None,
        folders: list[str] | None = None,
        types: list[str] | None = None,
        context: str = "",
    ) -> list[Hit]:
        """Passages for `query` from files under `folders` (None: everywhere; []: nowhere); `context`: the
        earlier question of a follow-up."""
        if not query.strip():
            raise UsageError("the search is empty")
        if k is not None and not 1 <= k <= 100:
            raise UsageError(f"-k must be between 1 and 100, not {k}")
        if folders == []:
            return []
        with logs.stage("search", k=k) as info:
            hits = Retriever(self.catalog, self.store, self.embedder).search(
                query, k or self.settings.search_k, folders, types, context
            )
            info["hits"] = len(hits)
        return hits

    def pipeline(self) -> AnswerPipeline:
        s = self.settings

        def generator() -> tuple[Generator, ModelInfo]:
            llm = self.llm()
            return llm, self._model

        return AnswerPipeline(
            _EngineRetriever(self),
            self.embedder,
            generator,
            k=s.search_k,
            min_similarity=s.min_similarity,
            min_evidence=s.min_evidence,
            max_answer_tokens=s.max_answer_tokens,
        )

    def ask(
        self,
        question: str,
        chat_id: int | None = None,
        on_token: Callable[[str], None] | None = None,
        folder: str | None = None,
        types: list[str] | None = None,
        workspace: str | None = None,
        stop: threading.Event | None = None,
    ) -> Answer:
        """Answer from the sources: the evidence at once, then verified sentences as they come.

        `stop` (or `cancel()`) ends the answer early, keeping what was shown. The chat and its
        messages are written only once the answer is complete, so a failed ask leaves nothing.
        """
        if not question.strip():
            raise UsageError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise UsageError(
                f"the question is too long ({len(question)} characters; at most {MAX_QUESTION_CHARS})"
            )
        stop = stop or threading.Event()
        self._stop_answer = stop
        if chat_id is not None and not self.catalog.chat_exists(chat_id):
            raise UsageError(f"no chat with id {chat_id}")
        earlier: list[str] = []
        if chat_id is not None:
            earlier = [text for role, text in self.catalog.messages(chat_id) if role == "user"]
            workspace = workspace or self.catalog.chat_workspace(chat_id)
        folders = [folder] if folder else self.folders(workspace) if workspace else None
        pending = self.catalog.count_by_status().get("pending", 0)
        answer = self.pipeline().run(question, earlier, folders, types, on_token, stop, pending)
        answer.chat_id = self.catalog.record_answer(
            chat_id, question, answer.text, answer.citations, answer.to_dict(), workspace or DEFAULT_WORKSPACE
        )
        answer.answer_id = self.catalog.last_answer_id(answer.chat_id)
        asked: dict[str, Any] = {"chat_id": answer.chat_id, "question_sha256": sha256_text(question)}
        if self.settings.audit_question_text:
            asked["question"] = question
        self.audit.record("question_asked", **asked)
        self.audit.record(
            "answer_given",
            chat_id=answer.chat_id,
            answer_id=answer.answer_id,
            answer_sha256=sha256_text(answer.text),
            cited_chunks=[f"{c['sha256']}:{c['seq']}" for c in answer.citations],
            model_sha256=answer.model.sha256 or None,
            abstained=answer.abstained,
        )
        logs.event(
            "answered",
            chat_id=answer.chat_id,
            sources=len(answer.sources),
            evidence=len(answer.evidence),
            abstained=answer.abstained,
            shown=len(answer.shown),
            dropped=len(answer.dropped),
            **answer.timings,
        )
        if not self._index_lock.locked():  # the evidence's sentence vectors grew the arena (~20 MB)
            self.embedder.release_memory()
        return answer

    def export_search(self, query: str, to: str, fmt: str = "md", k: int | None = None) -> Any:
        """Export the passages a search finds (the same search as `search`)."""
        hits = self.search(query, k)
        return self.output.export(to, fmt, search=(query, hits, self.embedder.model_id, DEFAULT_WORKSPACE))

    def passage(self, sha256: str, seq: int, start: int, end: int) -> Passage:
        """The passage [start, end) that begins in chunk `seq`, with the rest of its section around it."""
        chunks = self.catalog.chunks_of(sha256)
        first = next((c for c in chunks if c.seq == seq), None)
        if first is None:
            raise UsageError(
                "source deleted or changed: this passage is no longer in the index (the answer keeps the "
                "quote as it was shown); ask again for the current text"
            )
        # offsets count from the start of a section: the run of chunks with the same page and heading
        i = j = chunks.index(first)
        while i > 0 and (chunks[i - 1].page, chunks[i - 1].heading) == (first.page, first.heading):
            i -= 1
        while j + 1 < len(chunks) and (chunks[j + 1].page, chunks[j + 1].heading) == (
            first.page,
            first.heading,
        ):
            j += 1
        section = chunks[i : j + 1]
        return Passage(
            _span(section, section[0].start, start),
            _span(section, start, end),
            _span(section, end, section[-1].end),
            first.page,
        )

    def cancel(self) -> None:
        """Stop the answer under way (from any thread); what was generated so far is kept."""
        self._stop_answer.set()
        if self._llm:
            self._llm.cancel()

    # --- models -----------------------------------------------------------------------
    def models(self) -> list[Any]:
        """The chat models the user may choose (the IT policy's allow-list applied)."""
        return model_catalogue(self.home, self.settings).available()

    def add_model(self, path: str) -> Any:
        return model_catalogue(self.home, self.settings).add(Path(path))


class _EngineRetriever:
    """The engine's search as the pipeline's `PassageRetriever`."""

    def __init__(self, engine: Engine) -> None:
        self.search = engine.search_in
        self.known_words = functools.partial(known_words, engine.catalog)


@dataclass
class Passage:
    before: str
    text: str
    after: str
    page: int | None


def _span(chunks: list[Any], start: int, end: int) -> str:
    """Document text [start, end) pieced together from overlapping chunks (offsets are per version)."""
    out: list[str] = []
    pos = start
    for c in chunks:
        if c.end <= pos or c.start >= end:
            continue
        if out and c.start > pos:
            out.append(" ")
        out.append(c.text[max(0, pos - c.start) : min(len(c.text), end - c.start)])
        pos = min(c.end, end)
    return "".join(out)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
