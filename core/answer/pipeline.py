"""The answer pipeline: retrieve → evidence → prompt → generate → verify → one `Answer` record.

The evidence (verbatim sentences with file, page and offsets) is the backbone of every
answer: it is shown first, at once, and the model only phrases it. Each generated
sentence is shown only once it is verified against the evidence it cites; the others are
kept, marked, in `Answer.generated`. The CLI, the window and export all use `to_dict()`.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sealroom.core.answer.corrections import Correction
from sealroom.core.answer.evidence import (
    QUESTION_FRAMING,
    Evidence,
    EvidenceSelector,
    misses_what_is_asked,
    unmatched_share,
    unmatched_words,
)
from sealroom.core.answer.prompts import (
    EXAMPLE_ANSWER,
    NOT_IN_SOURCES,
    STOP,
    WEAK_HEADING,
    chat_messages,
    completion_prompt,
    evidence_text,
    model_not_used,
)
from sealroom.core.answer.retriever import Hit, keyword_query, spellings
from sealroom.core.answer.text import content_terms
from sealroom.core.answer.verify import CITATION, SentenceCheck, Verifier, complete_prefix, split_generated
from sealroom.core.protocols import Embedder, Generator, PassageRetriever
from sealroom.core.runtime import tracing
from sealroom.core.runtime.errors import ModelError

ANSWER_SCHEMA = 1


@dataclass
class ModelInfo:
    name: str = ""
    sha256: str = ""


@dataclass
class Answer:
    """Everything an answer is and rests on: what was shown, why, from where, by which model."""

    question: str
    text: str  # the whole answer as shown: evidence, then the verified sentences
    evidence: list[Evidence]
    sources: list[Hit]  # the relevant passages retrieved; evidence and citations number into these
    generated: list[SentenceCheck] = field(default_factory=list)
    abstained: bool = False
    # declined although passages came close: why they are not the answer (they are shown, as closest passages)
    weak: str = ""
    called_model: bool = False
    model: ModelInfo = field(default_factory=ModelInfo)
    embedding_model: str = ""
    chat_id: int = 0
    answer_id: int = 0
    finish_reason: str = "stop"  # "stop", "length", "cancelled", "too_long", or "no_model"
    model_problem: str = ""  # why the chat model was not used ("no_model"): the quotes are the answer
    pending_files: int = 0
    invalid_citations: list[int] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # question words no passage contains
    timings: dict[str, float] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    # the user's correction this answer was given from (`corrections.Correction.to_dict`); {} when none
    correction: dict[str, Any] = field(default_factory=dict)
    trace_id: str = ""  # the ask's trace (`runtime/tracing.py`): "Why this answer?" reads it
    # what the search could not reach, said with the answer: "team index unreachable — answering from this
    # computer's folders", or a vector server down (keyword only); "" when everything answered
    notice: str = ""
    # which indexes the sources came from: "local", "team <address>", or both (team mode)
    indexes: list[str] = field(default_factory=list)

    # The verified sentence that could state the answer above the quotes. Measured, not put first: on the
    # real documents' test split 40-50 % of them did not state the expected answer (README, issue 23).
    direct: SentenceCheck | None = None

    @property
    def shown(self) -> list[SentenceCheck]:
        """Generated sentences shown after the evidence: verified, and adding to the quotes."""
        return [s for s in self.generated if s.verified and not s.repeats_evidence]

    @property
    def dropped(self) -> list[SentenceCheck]:
        return [s for s in self.generated if not s.verified]

    @property
    def matched_citations(self) -> list[int]:
        return sorted({n for s in self.shown if s.matched for n in s.cites})

    @property
    def citations(self) -> list[dict[str, Any]]:
        """One per cited source: what was quoted from it and where (the preview reads the rest from the index)."""
        out = []
        for n in dict.fromkeys(e.n for e in self.evidence):
            quotes = [e for e in self.evidence if e.n == n]
            hit = self.sources[n - 1]
            out.append(
                {
                    "n": n,
                    "path": hit.path,
                    "page": hit.page,
                    # where in the file beyond the page: a section, a sheet's rows, a slide, an attachment,
                    # or that the page was read by OCR and with what confidence
                    "heading": hit.heading,
                    "text": " … ".join(e.shown for e in quotes),
                    "sha256": hit.sha256,
                    "seq": hit.seq,
                    "start": quotes[0].start,
                    "end": quotes[0].end,
                }
                | ({"origin": hit.origin} if hit.origin else {})
            )
        return out

    def notes(self) -> list[str]:
        """What the reader should know about this answer (see `answer_notes`)."""
        return answer_notes(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": ANSWER_SCHEMA,
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "weak": self.weak,
            "evidence": [e.to_dict() for e in self.evidence],
            "citations": self.citations,
            "sources": [
                {"n": n, "path": h.path, "page": h.page, "heading": h.heading, "chunk_id": h.chunk_id}
                | ({"origin": h.origin} if h.origin else {})
                for n, h in enumerate(self.sources, 1)
            ],
            "direct": self.direct.text if self.direct else "",
            "verification": {
                "shown": [s.to_dict() for s in self.shown],
                "dropped": [s.to_dict() for s in self.dropped],
            },
            "matched_citations": self.matched_citations,
            "invalid_citations": self.invalid_citations,
            "unmatched_words": self.unmatched,
            "called_model": self.called_model,
            "model": self.model.name,
            "model_sha256": self.model.sha256,
            "embedding_model": self.embedding_model,
            "chat_id": self.chat_id,
            "answer_id": self.answer_id,
            "pending_files": self.pending_files,
            "finish_reason": self.finish_reason,
            "model_problem": self.model_problem,
            "correction": self.correction,
            "trace_id": self.trace_id,
            "notice": self.notice,
            "indexes": self.indexes,
            "timings": self.timings,
            "created_at": self.created_at,
        }


TOO_LONG = (
    "The question and its quotes are longer than the model's context (Settings › Context size), "
    "so the model was not asked: the quotes are the answer."
)


def as_sentence(notice: str) -> str:
    """A notice ("team index unreachable — …") as a sentence of its own ('' stays '')."""
    if not notice:
        return ""
    return notice[:1].upper() + notice[1:] + ("" if notice.endswith(".") else ".")


def answer_notes(record: dict[str, Any], count_dropped: bool = True) -> list[str]:
    """What the reader should know about an answer, from its record (`Answer.to_dict()`): one wording for
    the window, the command line and exports."""
    notes = []
    if record.get("notice"):  # team mode: an index that could not be reached, or vectors down
        notes.append(as_sentence(str(record["notice"])))
    indexes = [str(i) for i in record.get("indexes") or []]
    if any(i.startswith("team") for i in indexes):
        named = ["this computer's folders" if i == "local" else f"the team index ({i[5:]})" for i in indexes]
        notes.append(f"Sources from {' and '.join(named)}.")
    correction = record.get("correction") or {}
    if correction:
        notes.append(
            f"Answered from your correction of {correction.get('date')}"
            + (": nothing in your documents answers this." if correction.get("abstain") else ".")
        )
        if correction.get("expected"):
            notes.append(f"Your expected answer: {correction['expected']}")
    reason = record.get("finish_reason")
    if reason == "cancelled":
        notes.append("Stopped.")
    if reason == "too_long":
        notes.append(TOO_LONG)
    if reason == "no_model":
        notes.append(model_not_used(str(record.get("model_problem"))))
    if record.get("abstained"):
        return notes
    verification = record.get("verification") or {}
    dropped = len(verification.get("dropped") or [])
    if dropped and count_dropped:
        notes.append(f"{dropped} generated sentence(s) not found in the sources were left out.")
    pending = record.get("pending_files") or 0
    if pending:
        notes.append(
            f"{pending} file{'s are' if pending != 1 else ' is'} still being indexed; this answer may miss them."
        )
    if not verification.get("shown") and reason not in ("too_long", "no_model"):
        notes.append("The quotes are the answer: no generated sentence could be checked against them.")
    matched = record.get("matched_citations") or []
    if matched:
        marks = " ".join(f"[{n}]" for n in matched)
        notes.append(f"{marks}: the model did not cite this; Sealroom matched the sentence to the quote.")
    return notes


def abstention(pending_files: int, unmatched: Sequence[str] = ()) -> str:
    text = NOT_IN_SOURCES
    if unmatched:
        text += " Nothing found mentions " + ", ".join(f"“{w}”" for w in unmatched[:4]) + "."
    if pending_files:
        text += (
            f" {pending_files} file{'s are' if pending_files != 1 else ' is'} not indexed yet; "
            "the answer may be in them."
        )
    return text


TEMPLATE_TOKENS = 32  # a chat template's turn markers around the messages, and the BOS token: a margin


class AnswerPipeline:
    """Components in `__init__`, one question per `run()`; the model loads only when evidence exists."""

    def __init__(
        self,
        retriever: PassageRetriever,
        embedder: Embedder,
        generator: Callable[[], tuple[Generator, ModelInfo]],
        k: int = 6,
        min_similarity: float = 0.45,
        min_evidence: float = 0.3,
        max_answer_tokens: int = 160,
        max_unmatched: float = 0.3,
        strong_evidence: float = 0.85,
    ) -> None:
        self.max_unmatched = max_unmatched
        self.strong_evidence = strong_evidence
        self.retriever = retriever
        self.embedder = embedder
        self.generator = generator
        self.k = k
        self.min_similarity = min_similarity
        self.selector = EvidenceSelector(embedder, min_score=min_evidence)
        self.max_answer_tokens = max_answer_tokens

    def relevant(self, hits: list[Hit], question: str) -> list[Hit]:
        """Hits that share a content word with the question, or are close enough in meaning."""
        has_terms = keyword_query(question) is not None
        return [h for h in hits if (h.keyword and has_terms) or (h.similarity or 0) >= self.min_similarity]

    def _unknown(self, words: list[str]) -> list[str]:
        """Of the words no retrieved passage holds, those no indexed passage holds either: a paraphrase
        ("ship" for "distribute") is found elsewhere; a topic no document has ("Spain") is not. A word
        glued to a version ("GPLv2") counts as known when its parts are."""
        if not words:
            return []
        parts = {w: _parts(w) for w in words}
        asked = {p for ps in parts.values() for p in ps}
        known = self.retriever.known_words(sorted(asked | {v for p in asked for v in spellings(p)}))
        return [
            w for w in words if not all(p in known or any(v in known for v in spellings(p)) for p in parts[w])
        ]

    def run(
        self,
        question: str,
        earlier_questions: Sequence[str] = (),
        folders: list[str] | None = None,
        types: list[str] | None = None,
        on_text: Callable[[str], None] | None = None,
        stop: threading.Event | None = None,
        pending_files: int = 0,
        correction: Correction | None = None,
    ) -> Answer:
        """`correction`: the user's correction of this question (`corrections.find`): its passage is the
        evidence, or, when it says nothing answers, the answer declines."""
        stop = stop or threading.Event()
        emit = on_text or (lambda _: None)
        started, t0 = time.perf_counter(), time.time_ns()
        timings: dict[str, float] = {}
        context = " ".join(earlier_questions[-1:])  # follow-ups: the last question joins retrieval
        found = self.retriever.search(question, self.k, folders, types, context)
        notice = getattr(self.retriever, "notice", "")  # what the search could not do (a server down)
        hits = self.relevant(found, question)
        timings["retrieve_ms"] = _ms(started)
        t1, kept = time.time_ns(), [h.chunk_id for h in hits]
        tracing.stage(
            "retrieve",
            t0,
            t1,
            k=self.k,
            found=len(found),
            kept=kept,
            dropped_unrelated=[h.chunk_id for h in found if h.chunk_id not in kept],
            keyword=sum(h.keyword for h in hits),
            vector=sum(h.similarity is not None for h in hits),
            follow_up=bool(context),
        )
        if correction is not None:
            pinned = [correction.passage] if correction.passage else []
            hits = pinned + [h for h in hits if not pinned or h.chunk_id != pinned[0].chunk_id][: self.k - 1]
            # the user said this passage answers: its best sentences are the evidence, whatever they score
            evidence = EvidenceSelector(self.embedder, min_score=0.0).select(question, pinned, context)
            unmatched: list[str] = []
        else:
            evidence = self.selector.select(question, hits, context)
            unmatched = self._unknown(unmatched_words(question, hits))
            if (
                unmatched_share(question, unmatched) >= self.max_unmatched
                and max((e.score for e in evidence), default=0.0) < self.strong_evidence
            ):
                evidence = []  # the question is about something no passage mentions
        timings["evidence_ms"] = _ms(started) - timings["retrieve_ms"]
        answer = Answer(question, "", evidence, hits, pending_files=pending_files, timings=timings)
        answer.notice, answer.indexes = notice, list(getattr(self.retriever, "indexes", []))
        answer.unmatched = unmatched
        answer.embedding_model = self.embedder.model_id
        if correction is not None:
            answer.correction = correction.to_dict()
        elif evidence:
            answer.weak = misses_what_is_asked(question, " ".join(e.shown for e in evidence))
        tracing.stage(
            "evidence",
            t1,
            quotes=[f"{e.n}:{e.sha256[:12]}:{e.seq}" for e in evidence],
            scores=[round(e.score, 3) for e in evidence],
            unmatched_words=len(unmatched),
            weak=answer.weak or None,
            correction=correction.rating.id if correction else None,
            declined=not evidence or bool(answer.weak),
        )
        if not evidence or answer.weak:
            # declined; where passages came close, they are shown as that and no more
            answer.text, answer.abstained = abstention(pending_files, unmatched), True
            if answer.weak:
                answer.text += "\n\n" + evidence_text(evidence, WEAK_HEADING)
            emit(answer.text)
            timings["first_text_ms"] = timings["total_ms"] = _ms(started)
            return answer
        answer.text = evidence_text(evidence)
        emit(answer.text)
        timings["first_text_ms"] = _ms(started)
        if stop.is_set():  # stopped once the evidence was out: it stands as the answer
            answer.finish_reason = "cancelled"
        else:
            self._phrase(answer, emit, stop, started)
        timings["total_ms"] = _ms(started)
        return answer

    def _phrase(
        self, answer: Answer, emit: Callable[[str], None], stop: threading.Event, started: float
    ) -> None:
        """Ask the model to phrase the evidence; show each sentence once it is verified."""
        t_load = time.time_ns()
        try:
            generator, answer.model = self.generator()
        except ModelError as exc:  # refused by the IT policy, missing, damaged: the quotes stand, and say why
            answer.finish_reason, answer.model_problem = "no_model", str(exc)
            tracing.stage("model_load", t_load, failed=str(exc))
            return
        answer.called_model = True
        answer.timings["load_model_ms"] = _ms(started) - answer.timings["first_text_ms"]
        tracing.stage("model_load", t_load, model=answer.model.name)
        if stop.is_set():  # stopped while the model loaded: the evidence stands
            answer.finish_reason = "cancelled"
            return
        passages = {n: h.text for n, h in enumerate(answer.sources, 1)}
        verifier = Verifier(answer.question, answer.evidence, passages, [EXAMPLE_ANSWER])
        messages = chat_messages(answer.question, answer.evidence) if generator.has_chat_template else None
        prompt = None if messages else completion_prompt(answer.question, answer.evidence)
        text = prompt or "\n".join(m["content"] for m in messages or [])
        answer.timings["prompt_tokens"] = prompt_tokens = generator.count_tokens([text])[0]
        if prompt_tokens + TEMPLATE_TOKENS + self.max_answer_tokens > generator.n_ctx:
            # the quotes stand as the answer; the note says why
            answer.finish_reason = "too_long"
            return
        if messages:
            stream = generator.generate(messages=messages, max_tokens=self.max_answer_tokens)
        else:
            stream = generator.generate(prompt=prompt, max_tokens=self.max_answer_tokens, stop=STOP)
        gen_start, t_gen = time.perf_counter(), time.time_ns()
        buffer, tokens, cancel_sent = "", 0, False
        separator = "\n\n"
        verifying = 0  # ns spent checking sentences

        def settle(sentences: list[str]) -> None:
            nonlocal separator, verifying
            for sentence in sentences:
                t = time.time_ns()
                check = verifier.check(sentence)
                verifying += time.time_ns() - t
                answer.generated.append(check)
                if check.verified and not check.repeats_evidence:
                    piece = separator + check.text
                    answer.text += piece
                    emit(piece)
                    separator = " "

        for piece in stream:
            if tokens == 0:
                answer.timings["first_token_ms"] = _ms(gen_start)
            tokens += 1
            buffer += piece
            done, buffer = complete_prefix(buffer)
            settle(done)
            if stop.is_set() and not cancel_sent:
                generator.cancel()
                cancel_sent = True
        answer.finish_reason = "cancelled" if stop.is_set() else getattr(generator, "finish_reason", "stop")
        if answer.finish_reason != "cancelled":
            settle(split_generated(buffer))  # an unfinished last sentence is dropped when stopped
        answer.timings["generate_ms"] = _ms(gen_start)
        answer.timings["tokens"] = tokens
        answer.timings["prompt_tokens_reused"] = getattr(generator, "prompt_reused", 0)
        if tokens > 1 and "first_token_ms" in answer.timings:
            rate = (tokens - 1) / max(
                1e-6, (answer.timings["generate_ms"] - answer.timings["first_token_ms"]) / 1000
            )
            answer.timings["tokens_per_s"] = round(rate, 2)
        answer.invalid_citations = sorted({n for s in answer.generated for n in s.invalid})
        answer.direct = direct_answer(answer.question, answer.generated, answer.evidence)
        t_end = time.time_ns()
        tracing.stage(
            "generate",
            t_gen,
            t_end,
            tokens=tokens,
            prompt_tokens=prompt_tokens,
            finish_reason=answer.finish_reason,
        )
        tracing.stage(
            "verify",
            t_end - verifying,
            t_end,
            sentences=len(answer.generated),
            shown=len(answer.shown),
            repeats_quotes=sum(s.verified and s.repeats_evidence for s in answer.generated),
            dropped=len(answer.dropped),
            dropped_why=[s.reason for s in answer.dropped],
            invalid_citations=answer.invalid_citations,
            direct=answer.direct is not None,
        )


#: A direct answer is short: the fact, not the quote again.
DIRECT_WORDS = 30
YES_NO = re.compile(r"\W*(?:yes|no)\b", re.IGNORECASE)
VERB = re.compile(
    r"\b(?:is|are|was|were|be|been|has|have|had|can|cannot|may|must|shall|should|will|would|does|do|did)\b"
    r"|\b\w{3,}(?:ed|es)\b",
    re.IGNORECASE,
)


def direct_answer(
    question: str, generated: Sequence[SentenceCheck], evidence: Sequence[Evidence]
) -> SentenceCheck | None:
    """The first verified sentence that could stand above the quotes as the answer: it rests on the best quote
    (the highest-scored evidence), is short, states what the question asks for (a number, a date, a
    default), adds to the question something the quote itself says (not only its label), and is not the
    quote again."""
    if not evidence:
        return None
    best = max(range(len(evidence)), key=lambda i: evidence[i].score)
    quote = evidence[best]
    quoted, asked = content_terms(quote.quote), content_terms(question) | QUESTION_FRAMING
    for s in generated:
        if not s.verified or s.unit != best or len(s.text.split()) > DIRECT_WORDS:
            continue
        sentence = CITATION.sub("", s.text)
        if YES_NO.match(sentence) or not VERB.search(sentence):
            continue  # a bare yes or no cannot be checked against the quote; a fragment is not an answer
        said = content_terms(sentence)
        copy = said <= quoted and len(s.text.split()) >= 0.8 * len(quote.quote.split())
        if (said - asked) & quoted and not copy and not misses_what_is_asked(question, sentence):
            return s
    return None


def _parts(word: str) -> list[str]:
    """A word's parts as the keyword index sees them: 'cut-off' -> cut, off; 'GPLv2' -> gpl, 2 (letters
    alone say nothing)."""
    pieces = re.split(r"(?<=[^\W\d])v?(?=\d)|(?<=\d)(?=[^\W\d])|[^\w]+", word.lower())
    return [p for p in pieces if len(p) > 1 or p.isdigit()]


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 1)
