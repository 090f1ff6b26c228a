"""Evidence: the sentences of the retrieved passages that answer a question, kept verbatim.

Picking them needs no language model: sentences are scored against the question by
keyword overlap (weighted by rarity among the candidates), by meaning (the embedding
model) and by what the question asks for (a date, a number, a name). The best one to
three become the answer's backbone, each with file, page and character offsets.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sealroom.core.answer.retriever import Hit, name_terms
from sealroom.core.answer.text import (
    DATE,
    NUMBER,
    NUMBER_WORDS,
    STOPWORDS,
    content_terms,
    expansions,
    has_proper_name,
    is_abbreviation,
    words,
)
from sealroom.core.protocols import Embedder

MAX_SENTENCE = 400  # characters: a longer "sentence" (a table, a list) is cut at its lines
MIN_SENTENCE = 12
SHORT_LINE = 60  # a line this short is often a label whose value is on the next line
MAX_WINDOW = 200  # a label and the lines after it, at most this long
LABEL_REACH = 700  # a sentence belongs under the nearest label line at most this far above it
LABEL_WEIGHT = 0.7  # a question word found only in the label counts this much
# Words that frame a question rather than name its topic: a passage need not contain them.
QUESTION_FRAMING = content_terms(
    "according say says said state states mention mentions mentioned find found might given give next call called "
    "name named title date dated many much several number long kind type value make made makes get gets compare "
    "compared exactly mean means example document documents file text written page exist appear id identifier "
    "code amount total size version company"
)
VERSION = re.compile(r"\b(?:version|release|since)\s+v?\d", re.IGNORECASE)  # "since when" is answered so too
DEFAULT = re.compile(r"\bdefault", re.IGNORECASE)
REASON = re.compile(r"\b(?:because|reason|due to|since|caused|as a result)\b", re.IGNORECASE)
END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9À-Ý])")
LINE_ITEM = re.compile(r"^\s*(?:[-*•·]|\d+[.)]|[A-Z][\w-]{0,30}:\s)")


@dataclass
class Evidence:
    """One verbatim sentence of a source; `n` is its source's number in the answer."""

    n: int
    quote: str
    path: str
    page: int | None
    sha256: str
    seq: int
    start: int  # offsets in the section's text, like a chunk's
    end: int
    score: float
    label: str = ""  # the line the sentence belongs under (a parameter's name, a table's header), verbatim

    @property
    def shown(self) -> str:
        """The quote as shown: under its label, with the text between them left out."""
        return f"{self.label} … {self.quote}" if self.label else self.quote

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Candidate:
    hit_rank: int
    hit: Hit
    start: int  # within hit.text
    end: int
    label: tuple[int, int] | None = None  # the label line above it, within hit.text

    @property
    def text(self) -> str:
        return self.hit.text[self.start : self.end]

    @property
    def label_text(self) -> str:
        return self.hit.text[self.label[0] : self.label[1]].strip() if self.label else ""


def _line_breaks_sentence(line: str, following: str) -> bool:
    """Whether a line break ends a sentence: PDF lines wrap mid-sentence, lists and headers do not."""
    body, after = line.strip(), following.strip()
    if not any(ch.isalnum() for ch in body) or not any(ch.isalnum() for ch in after):
        return True  # a blank line, or a rule of dashes: never inside a sentence
    if body[-1] in ".!?:;":
        return True
    if after[0].islower() and not LINE_ITEM.match(following):
        return False  # the sentence goes on: a hard-wrapped line, however short
    return bool(len(body) < 40 or LINE_ITEM.match(following) or _is_label(following))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character ranges of the sentences of `text` (whitespace trimmed)."""
    pieces: list[tuple[int, int]] = []
    # first, blocks: runs of lines joined where a line wraps a sentence
    lines = text.splitlines(keepends=True)
    block_start, pos = 0, 0
    for i, line in enumerate(lines):
        pos += len(line)
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if _line_breaks_sentence(line, following):
            pieces.append((block_start, pos))
            block_start = pos
    if block_start < len(text):
        pieces.append((block_start, len(text)))
    out: list[tuple[int, int]] = []
    for a, b in pieces:
        block = text[a:b]
        ends = [
            m
            for m in END.finditer(block)
            if not (block[m.start() - 1] == "." and is_abbreviation(block, m.start() - 1))
        ]
        cuts = [a] + [a + m.end() for m in ends] + [b]
        for s, e in itertools.pairwise(cuts):
            out.extend(_trimmed(text, s, e))
    return out


def _trimmed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    raw = text[start:end]
    lead = len(raw) - len(raw.lstrip())
    body = raw.strip()
    if not body:
        return []
    s, e = start + lead, start + lead + len(body)
    if e - s <= MAX_SENTENCE:
        return [(s, e)]
    # too long: cut where a clause ends (", " "; " ": "), else at a space, before the limit, repeatedly
    out = []
    while e - s > MAX_SENTENCE:
        window = text[s + MAX_SENTENCE // 2 : s + MAX_SENTENCE]
        clause = max(window.rfind(mark) for mark in (", ", "; ", ": "))
        if clause >= 0:
            cut = s + MAX_SENTENCE // 2 + clause + 1  # after the comma; the space starts the next piece
        else:
            cut = text.rfind(" ", s + MAX_SENTENCE // 2, s + MAX_SENTENCE)
            cut = cut if cut > s else s + MAX_SENTENCE
        out.append((s, cut))
        s = cut + 1 if text[cut : cut + 1].isspace() else cut
        while s < e and text[s].isspace():
            s += 1
    if e > s:
        out.append((s, e))
    return out


def asks_for(question: str) -> set[str]:
    """What kind of fact a question wants: 'date', 'number', 'name'."""
    q = question.lower()
    kinds: set[str] = set()
    # "when" asks for a date as a question ("When was it issued?"), not as a condition ("When logging, …")
    when = r"^\W*(?:since )?when (?:was|is|did|does|will|were|are|do|has|have|had|should|must|can|may)\b|\bsince when\b"
    if re.search(when + r"|\bwhat (?:date|day|year|month)\b|\bwhich (?:date|day|year)\b|\bdated?\b", q):
        kinds.add("date")
    if re.search(
        r"\b(?:which|what) (?:\w+ )?(?:version|release)\b|"
        r"\bhow (?:many|much|long|old|big|large|often|far|high|low)\b|\bwhat (?:is the )?(?:number|percentage|amount|size|"
        r"price|cost|rating|value|version)\b|\bnumber of\b|\b(?:biggest|largest|smallest|highest|lowest|maximum|"
        r"minimum|max|min|limit|range|port|percent|percentage|bytes|digits|seconds|days|years)\b",
        q,
    ):
        kinds.add("number")
    if re.search(r"\bwho\b|\bwhose\b|\bwhich (?:person|company|organi[sz]ation)\b|\bname of\b", q):
        kinds.add("name")
    if re.search(r"\bwhy\b|\breason\b|\bcause\b", q):
        kinds.add("reason")
    return kinds


class EvidenceSelector:
    """Scores every sentence of the passages against the question and keeps the best few."""

    def __init__(
        self,
        embedder: Embedder | None,
        max_quotes: int = 3,
        keep_ratio: float = 0.8,
        min_score: float = 0.3,
        max_candidates: int = 800,
        max_embedded: int = 48,
    ) -> None:
        self.embedder = embedder
        self.max_quotes = max_quotes
        self.keep_ratio = keep_ratio
        self.min_score = min_score
        self.max_candidates = max_candidates
        self.max_embedded = max_embedded

    def candidates(self, hits: Sequence[Hit]) -> list[Candidate]:
        """Each sentence; and a short line (a label) together with the lines after it (its value)."""
        out = []
        for rank, hit in enumerate(hits):
            spans = split_sentences(hit.text)
            labels = label_lines(hit.text)
            for i, (s, e) in enumerate(spans):
                if e - s >= MIN_SENTENCE and any(ch.isalnum() for ch in hit.text[s:e]):
                    out.append(Candidate(rank, hit, s, e, _label_above(labels, s)))
                if e - s < SHORT_LINE and hit.text[e - 1] not in ".!?":
                    for j in range(i + 1, min(i + 4, len(spans))):
                        if spans[j][1] - s > MAX_WINDOW:
                            break
                        if not _is_label(hit.text[spans[j][0] : spans[j][1]]):  # a window ends on a value
                            out.append(Candidate(rank, hit, s, spans[j][1]))
                        if spans[j][1] - spans[j][0] >= SHORT_LINE:
                            break
        return out[: self.max_candidates]

    def score(self, question: str, context: str, cands: list[Candidate]) -> list[float]:
        """A score in [0, ~1.2] per candidate; `context` (an earlier question) counts half."""
        if not cands:
            return []
        terms = content_terms(question)
        related = expansions(question) - terms
        extra = content_terms(context) - terms - related
        bags = [content_terms(c.text) for c in cands]
        # a word that names a candidate's document ('MPL', '2.0' for mpl-2.0.txt) holds for all its sentences
        named = {
            path: content_terms(" ".join(name_terms(os.path.basename(path)))) & terms
            for path in {c.hit.path for c in cands}
        }
        label_bags = [
            (content_terms(c.label_text) | named[c.hit.path]) - bag
            for c, bag in zip(cands, bags, strict=True)
        ]
        n = len(cands)

        def idf(t: str) -> float:
            df = sum(1 for b in bags if t in b)
            return math.log(1 + n / (1 + df)) + 0.1

        weights = {t: idf(t) for t in terms} | {t: 0.5 * idf(t) for t in extra | related}
        total = sum(weights[t] for t in terms) or 1.0
        keyword = [
            min(
                1.0,
                sum(w if t in b else LABEL_WEIGHT * w if t in lb else 0.0 for t, w in weights.items())
                / total,
            )
            for b, lb in zip(bags, label_bags, strict=True)
        ]
        dense = [0.0] * n
        if self.embedder is not None:
            # meaning is compared for the most promising candidates only: it costs ~3 ms a sentence
            order = sorted(range(n), key=lambda i: (-keyword[i], cands[i].hit_rank))[: self.max_embedded]
            vectors = self.embedder.embed([question] + [_with_label(cands[i]) for i in order])
            q, rest = vectors[0], vectors[1:]
            norms = np.linalg.norm(rest, axis=1) * (np.linalg.norm(q) or 1.0)
            for i, cos in zip(order, (rest @ q) / np.where(norms == 0, 1.0, norms), strict=True):
                dense[i] = float(cos)
        kinds = asks_for(question)
        fields = {r for r in related if r.startswith("field:")}
        scores = []
        for c, bag, kw, cos in zip(cands, bags, keyword, dense, strict=True):
            text = c.text
            bonus = 0.0
            if "date" in kinds and DATE.search(text):
                bonus += 0.1
            if "number" in kinds and NUMBER.search(text):
                bonus += 0.08
            if "name" in kinds and has_proper_name(text):
                bonus += 0.08
            if "reason" in kinds and REASON.search(text):
                bonus += 0.08
            if fields & bag:
                bonus += 0.1
            bonus += 0.04 / (1 + c.hit_rank)
            if bag <= terms | extra:  # says nothing the question does not: a label
                bonus -= 0.15
            bonus -= 0.0002 * len(text)
            scores.append(0.55 * kw + 0.45 * max(0.0, cos) + bonus)
        return scores

    def select(self, question: str, hits: Sequence[Hit], context: str = "") -> list[Evidence]:
        """The best 1–3 sentences, `n` being their hit's rank + 1; [] when none clears `min_score`."""
        cands = self.candidates(hits)
        scores = self.score(question, context, cands)
        ranked = sorted(range(len(cands)), key=lambda i: scores[i], reverse=True)
        if not ranked or scores[ranked[0]] < self.min_score:
            return []
        best = scores[ranked[0]]
        chosen: list[int] = []
        seen: set[str] = set()
        for i in ranked:
            if len(chosen) == self.max_quotes or scores[i] < max(self.min_score, self.keep_ratio * best):
                break
            key = " ".join(cands[i].text.lower().split())
            if key in seen or any(_overlap(cands[i], cands[j]) for j in chosen):
                continue
            seen.add(key)
            chosen.append(i)
        out = []
        for i in sorted(chosen, key=lambda i: (cands[i].hit_rank, cands[i].start)):
            c = cands[i]
            out.append(
                Evidence(
                    c.hit_rank + 1,
                    c.text,
                    c.hit.path,
                    c.hit.page,
                    c.hit.sha256,
                    c.hit.seq,
                    c.hit.start + c.start,
                    c.hit.start + c.end,
                    round(scores[i], 4),
                    c.label_text if c.label_text and c.label_text not in c.text else "",
                )
            )
        return out


def label_lines(text: str) -> list[tuple[int, int]]:
    """Character ranges of the lines of `text` that label what follows: a term, a heading, a table header."""
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        if _is_label_line(line):
            out.append((pos, pos + len(line.rstrip())))
        pos += len(line)
    return out


def _is_label_line(line: str) -> bool:
    """A label as it stands above its text: it has words, starts like a title or names a term
    ('wal_level (enum)'), and does not end on a word that carries on into the next line (a wrapped line)."""
    body = line.strip()
    if not body or not _is_label(body) or not any(ch.isalpha() for ch in body):
        return False
    last = body.rsplit(None, 1)[-1].lower()
    if last in STOPWORDS or body[-1] in ",;-":
        return False
    return body[0].isupper() or bool(re.search(r"[_()]|\w\.\w", body))


def _label_above(labels: list[tuple[int, int]], start: int) -> tuple[int, int] | None:
    above = [span for span in labels if span[1] <= start and start - span[1] <= LABEL_REACH]
    return above[-1] if above else None


def _with_label(c: Candidate) -> str:
    return f"{c.label_text}: {c.text}" if c.label_text else c.text


def _is_label(line: str) -> bool:
    """A short line with no figure and no full stop: a heading or a field name, not a value."""
    line = line.strip()
    if re.match(r"[^:]{1,40}:\s*\S", line):  # "Reason: disk quota" is a field with its value
        return False
    return len(line) < SHORT_LINE and not any(ch.isdigit() for ch in line) and line[-1:] not in ".!?"


def misses_what_is_asked(question: str, text: str) -> str:
    """Why `text` (the quotes, or a sentence) cannot be the answer, or "": the question wants a number, a
    date or a default and the text states none."""
    kinds = asks_for(question)
    if "number" in kinds and not NUMBER.search(text) and not any(w in NUMBER_WORDS for w in words(text)):
        return "no quote states a number"
    if "date" in kinds and not DATE.search(text) and not VERSION.search(text):
        return "no quote states a date"
    if re.search(r"\bdefaults?\b", question, re.IGNORECASE) and not DEFAULT.search(text):
        return "no quote states a default"
    return ""


def unmatched_words(question: str, hits: Sequence[Hit]) -> list[str]:
    """The question's topic words that no retrieved passage contains ("Spain", "warranty")."""
    have = set().union(*(content_terms(h.text) for h in hits)) if hits else set()
    out = []
    for word in dict.fromkeys(re.findall(r"[\w'-]+", question)):
        terms = content_terms(word)
        if terms and not (terms | expansions(word)) & have and not terms <= QUESTION_FRAMING:
            out.append(word)
    return out


def unmatched_share(question: str, unmatched: list[str]) -> float:
    topic = content_terms(question) - QUESTION_FRAMING
    return len(content_terms(" ".join(unmatched))) / len(topic) if topic else 0.0


def _overlap(a: Candidate, b: Candidate) -> bool:
    return a.hit.chunk_id == b.hit.chunk_id and a.start < b.end and b.start < a.end
