"""The engine: one object that owns a data directory and wires the rooms together.

Construction takes the data-directory lock and opens the catalog; the embedder, Chroma, the parser pool and
the chat model start on first use (`components.Components`), so `status` stays fast. Indexing, answering,
export, what the folder holds (`store.health`) and the feedback loop are their rooms' own services; the
Engine hands each its parts and adds what crosses rooms (folders, settings, chats). CLI and window are thin.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sealroom.core.answer.pipeline import Answer
from sealroom.core.answer.service import MAX_QUESTION_CHARS, Answering
from sealroom.core.components import Components
from sealroom.core.feedback.service import Feedback
from sealroom.core.ingest.indexer import Progress
from sealroom.core.ingest.scanner import EventSink
from sealroom.core.ingest.service import Indexing, WatchState
from sealroom.core.output.audit import AuditTrail
from sealroom.core.output.service import ExportResult, Output
from sealroom.core.protocols import DEFAULT_WORKSPACE, Hit, ModelChoice, Passage
from sealroom.core.runtime import logs, offline, tracing
from sealroom.core.runtime.config import Settings, changes, load_settings, policy_digest, under_policy
from sealroom.core.runtime.errors import UsageError
from sealroom.core.runtime.lock import DataDirLock
from sealroom.core.runtime.paths import data_dir, folder_to_watch
from sealroom.core.store.health import Health
from sealroom.core.store.passages import passage
from sealroom.core.store.recovery import mirror_folders, open_catalog

__all__ = ["MAX_QUESTION_CHARS", "Engine", "Passage", "WatchState"]


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
        self.catalog, self._recovered = open_catalog(self.home)
        mirror_folders(self.home, self.catalog)
        self.audit = AuditTrail(self.home, enabled=self.settings.audit_enabled)
        self.output = Output(self.home, self.settings, self.catalog, self.audit)
        self._note_policy()
        self.parts = Components(self.home, self.settings, self.catalog, self.audit)
        self.emit: EventSink = lambda event: None  # what indexing reports, file by file
        self.indexing = Indexing(self.home, self.catalog, self.parts, self._settings, lambda e: self.emit(e))
        self.answering = Answering(
            self.catalog, self.parts, self._settings, self.audit, self.indexing.lock.locked
        )
        parts = self.parts
        self.health = Health(self.home, self.catalog, lambda: parts.store.count(), lambda: parts.store_opened)
        # what the rooms offer as they offer it
        self.index, self.collect_garbage = self.indexing.index, self.indexing.collect_garbage
        self.pause, self.resume, self.rescan = self.indexing.pause, self.indexing.resume, self.indexing.rescan
        self.paused, self.watch_state = self.indexing.paused, self.indexing.state
        h, a = self.health, self.answering
        self.status, self.overview, self.warnings = h.status, h.overview, h.warnings
        self.vector_gap, self.search_in = h.vector_gap, a.search
        self.pipeline, self.cancel = a.pipeline, a.cancel
        tracing.setup(self.home, self.settings.monitoring)  # each ask traced stage by stage, locally
        rooms = (self.home, self.catalog, self._settings, a.pipeline, self.output, self.audit)
        self.feedback = Feedback(*rooms, self.indexing.state, self.parts.embedding_model_id)
        self.llm, self.unload_model, self.models = parts.llm, parts.unload_model, parts.models
        self.embedding_model = parts.embedding_model_id

    def _settings(self) -> Settings:
        return self.settings

    @property
    def recovered(self) -> str:
        """What opening mended (a damaged catalog, a changed embedding model), for the user; '' if nothing."""
        return self._recovered or self.parts.recovered

    @property
    def model_state(self) -> str:
        return self.parts.model_state

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings (held to the IT policy: nothing here loosens it); a changed chat model, context
        or thread count reloads the model."""
        settings = under_policy(settings)
        changed = changes(self.settings, settings)
        reload = bool({"chat_model", "compact_default_model", "n_ctx", "n_threads"} & changed.keys())
        if "chat_model" in changed:
            self.audit.record("model_changed", model=changed.pop("chat_model") or "default")
        if changed:
            self.audit.record("settings_changed", **changed)
        self.settings = self.output.settings = self.parts.settings = settings
        self.audit.enabled = settings.audit_enabled
        logs.log.setLevel(settings.log_level.upper())
        if "monitoring" in changed:
            tracing.setup(self.home, settings.monitoring)
        if reload:
            self.unload_model()

    def _note_policy(self) -> None:
        """Audit the IT policy file when it appears or changes; prune the trail as it says."""
        files, digest = policy_digest()
        if digest != (self.catalog.get_meta("policy_sha256") or ""):
            self.audit.record("policy_loaded", files=files, keys=sorted(self.settings.locked))
            self.catalog.set_meta("policy_sha256", digest)
        self.audit.prune(self.settings.audit_retention_days)

    def close(self) -> None:
        self.feedback.close()
        self.parts.close()
        self.catalog.close()
        self._lock.release()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- folders and workspaces ---------------------------------------------------------
    def add_folder(self, folder: str, workspace: str = DEFAULT_WORKSPACE) -> str:
        path = folder_to_watch(folder, self.home, self.folders())
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

    def add_workspace(self, name: str) -> bool:
        return self.catalog.add_workspace(name)

    def remove_workspace(self, workspace: str) -> None:
        self.catalog.remove_workspace(workspace)
        mirror_folders(self.home, self.catalog)
        self.collect_garbage()
        self.audit.record("data_deleted", what="workspace", workspace=workspace)

    # --- indexing -------------------------------------------------------------------------
    def watch(
        self,
        on_ready: Callable[[], None] | None = None,
        stop: threading.Event | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Index, then keep the index fresh until `stop`; waiting exports go out meanwhile."""
        stop = stop or threading.Event()
        for name, loop in (("outbox", self.output.courier), ("monitor", self.feedback.monitor)):
            # waiting exports go out when their share is back, and metrics are sampled, whatever indexing does
            threading.Thread(target=loop, args=(stop,), name=name, daemon=True).start()
        self.indexing.state.looping = self.feedback.watching = True  # from now on a stopped loop is an alert
        self.indexing.watch(on_ready, stop, progress)
        self.feedback.watching = False  # stopped as asked (an error leaves the alert standing)

    def retry_failed(self) -> int:
        """Queue the failed files again (after a fix, or once a file is readable)."""
        return self.catalog.requeue_failed()

    def repair(self, progress: Progress | None = None) -> int:
        """Rebuild the vector index from the catalog's chunks (no document is re-read)."""
        from sealroom.core.ingest import upkeep

        return upkeep.rebuild(self.catalog, self.parts.new_store(), self.parts.embedder, progress)

    # --- chats ------------------------------------------------------------------------------
    def chats(self, workspace: str = DEFAULT_WORKSPACE) -> list[tuple[int, str]]:
        return self.catalog.chats(workspace)  # with dates and origin: overview()["chats"]

    def transcript(self, chat_id: int) -> list[tuple[str, str, list[dict[str, Any]], dict[str, Any] | None]]:
        """(role, text, citations, answer record) of each message; records hold what export needs."""
        return self.catalog.transcript(chat_id)

    def answer_ids(self, chat_id: int) -> list[int]:
        """The stored answers of a chat, in order (what Export… names)."""
        return [int(a["id"]) for a in self.catalog.answers(chat_id)]

    def rename_chat(self, chat_id: int, title: str) -> None:
        self.catalog.rename_chat(chat_id, title)

    def delete_chat(self, chat_id: int) -> None:
        self.catalog.delete_chat(chat_id)
        self.audit.record("data_deleted", what="chat", chat_id=chat_id)

    def preference(self, key: str) -> str | None:
        return self.catalog.get_meta(key)  # a choice the window remembers here (the last destination, say)

    def remember(self, key: str, value: str) -> None:
        self.catalog.set_meta(key, value)

    # --- asking -------------------------------------------------------------------------------
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
        return self.answering.search(query, k, folders, types)

    def ask(
        self,
        question: str,
        chat_id: int | None = None,
        on_token: Callable[[str], None] | None = None,
        folder: str | None = None,
        types: list[str] | None = None,
        workspace: str | None = None,
        stop: threading.Event | None = None,
        origin: str = "",
    ) -> Answer:
        """Answer from the sources (see `Answering.ask`), from one folder, a workspace's, or everywhere."""
        return self.answering.ask(
            question, chat_id, on_token, [folder] if folder else None, types, workspace, stop, origin
        )

    def passage(self, sha256: str, seq: int, start: int, end: int) -> Passage:
        """The passage [start, end) that begins in chunk `seq`, with the rest of its section around it."""
        return passage(self.catalog, sha256, seq, start, end)

    def export_search(self, query: str, to: str, fmt: str = "md", k: int | None = None) -> ExportResult:
        """Export the passages a search finds (the same search as `search`)."""
        hits = self.search(query, k)
        return self.output.export(
            to, fmt, search=(query, hits, self.parts.embedder.model_id, DEFAULT_WORKSPACE)
        )

    def add_model(self, path: str) -> ModelChoice:
        return self.parts.add_model(path)
