"""Answering as a service: search, and ask with its bookkeeping (the question checked, the chat's earlier
questions and workspace, the pipeline run, the answer stored with its chat, the audit records and the
log line). The pipeline gets a retriever and a model handle, nothing more."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from sealroom.core.answer import corrections
from sealroom.core.answer.pipeline import Answer, AnswerPipeline, ModelInfo
from sealroom.core.answer.retriever import Retriever
from sealroom.core.answer.team import MergedRetriever, TeamIndex, stored_token
from sealroom.core.protocols import (
    DEFAULT_WORKSPACE,
    AuditLog,
    Embedder,
    Generator,
    Hit,
    Passage,
    PassageRetriever,
    VectorIndex,
)
from sealroom.core.runtime import logs, tracing
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.errors import UsageError
from sealroom.core.runtime.hashing import sha256_text
from sealroom.core.store.catalog import Catalog

MAX_QUESTION_CHARS = 2000


class Parts(Protocol):
    """What answering uses, started on first use (`components.Components`)."""

    @property
    def embedder(self) -> Embedder: ...
    @property
    def store(self) -> VectorIndex: ...
    def load_model(self) -> tuple[Generator, ModelInfo]: ...
    def cancel_generation(self) -> None: ...


class Answering:
    def __init__(
        self,
        catalog: Catalog,
        parts: Parts,
        settings: Callable[[], Settings],
        audit: AuditLog,
        indexing: Callable[[], bool],
    ) -> None:
        """`indexing()`: whether an index run is under way (it keeps the embedder's working memory)."""
        self.catalog, self.parts, self.settings, self.audit, self._indexing = (
            catalog,
            parts,
            settings,
            audit,
            indexing,
        )
        self._stop = threading.Event()  # the stop switch of the answer under way
        self._team: tuple[tuple[object, ...], TeamIndex] | None = None
        self.notice = ""  # what the last search could not reach (team mode), for the user

    def retriever(self) -> PassageRetriever:
        """This computer's index, and the team's beside it when the settings name a team server."""
        local = Retriever(self.catalog, self.parts.store, self.parts.embedder)
        team = self.team()
        return MergedRetriever(local, team) if team else local

    def team(self) -> TeamIndex | None:
        """The team index the settings name (None: team mode off), kept while they and the token stand, so
        a server found unreachable is not waited for again at once."""
        s = self.settings()
        if not s.team_server:
            return None
        token = stored_token(s.team_server)
        key = (s.team_server, s.team_ca, tuple(s.allowed_hosts), token)
        if self._team is None or self._team[0] != key:
            self._team = (key, TeamIndex(s.team_server, token, s.team_ca, s.allowed_hosts))
        return self._team[1]

    def team_passage(self, sha256: str, seq: int, start: int, end: int) -> Passage:
        """A team index's passage with the rest of its section around it (a citation's preview)."""
        team = self.team()
        if team is None:
            raise UsageError("team mode is off (no team_server in the policy), so the team index is not read")
        return team.passage(sha256, seq, start, end)

    def search(
        self,
        query: str,
        k: int | None = None,
        folders: list[str] | None = None,
        types: list[str] | None = None,
        context: str = "",
        since: float | None = None,
    ) -> list[Hit]:
        """Passages for `query` from files under `folders` (None: everywhere; []: nowhere) of `types` and
        modified `since` (seconds; None: any time); `context`: the earlier question of a follow-up."""
        if not query.strip():
            raise UsageError("the search is empty")
        retriever = self.retriever()
        hits = retriever.search(
            query, self.settings().search_k if k is None else k, folders, types, context, since
        )
        self.notice = getattr(retriever, "notice", "")
        return hits

    def pipeline(self) -> AnswerPipeline:
        s = self.settings()
        return AnswerPipeline(
            self.retriever(),
            self.parts.embedder,
            self.parts.load_model,
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
        folders: list[str] | None = None,
        types: list[str] | None = None,
        workspace: str | None = None,
        stop: threading.Event | None = None,
        origin: str = "",
    ) -> Answer:
        """Answer from the sources: the evidence at once, then verified sentences as they come.

        `stop` (or `cancel()`) ends the answer early, keeping what was shown. The chat and its
        messages are written only once the answer is complete, so a failed ask leaves nothing.
        `folders` None: those of `workspace` (or of the chat's), or everywhere. `origin` marks a new chat
        with where it was asked ('window', 'cli').
        """
        if not question.strip():
            raise UsageError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise UsageError(
                f"the question is too long ({len(question)} characters; at most {MAX_QUESTION_CHARS})"
            )
        self._stop = stop = stop or threading.Event()
        if chat_id is not None and not self.catalog.chat_exists(chat_id):
            raise UsageError(f"no chat with id {chat_id}")
        earlier: list[str] = []
        if chat_id is not None:
            earlier = [text for role, text in self.catalog.messages(chat_id) if role == "user"]
            workspace = workspace or self.catalog.chat_workspace(chat_id)
        if folders is None and workspace:
            folders = [path for _, path in self.catalog.folders(workspace)]
        pending = self.catalog.count_by_status().get("pending", 0)
        with tracing.ask(follow_up=bool(earlier), folders=len(folders or []), pending_files=pending) as (
            span,
            trace_id,
        ):
            correction = corrections.find(self.catalog, question, folders)
            answer = self.pipeline().run(
                question, earlier, folders, types, on_token, stop, pending, correction
            )
            answer.trace_id = trace_id
            t = time.time_ns()
            self._store(answer, chat_id, workspace or DEFAULT_WORKSPACE, origin)
            tracing.stage("store", t, answer_id=answer.answer_id)
            tracing.annotate(span, answer_id=answer.answer_id, abstained=answer.abstained, **answer.timings)
        if not self._indexing():  # the evidence's sentence vectors grew the arena (~20 MB)
            self.parts.embedder.release_memory()
        return answer

    def _store(self, answer: Answer, chat_id: int | None, workspace: str, origin: str = "") -> None:
        """The answer into its chat, the question and answer into the audit trail (as hashes unless IT
        asks for the question's words), a line into the log."""
        question = answer.question
        answer.chat_id = self.catalog.record_answer(
            chat_id, question, answer.text, answer.citations, answer.to_dict(), workspace, origin
        )
        answer.answer_id = self.catalog.last_answer_id(answer.chat_id)
        asked: dict[str, Any] = {"chat_id": answer.chat_id, "question_sha256": sha256_text(question)}
        if self.settings().audit_question_text:
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
            # team mode: which indexes answered, and what could not be reached
            **({"indexes": answer.indexes} if answer.indexes else {}),
            **({"notice": answer.notice} if answer.notice else {}),
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

    def cancel(self) -> None:
        """Stop the answer under way (from any thread); what was generated so far is kept."""
        self._stop.set()
        self.parts.cancel_generation()
