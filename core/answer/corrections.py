"""Corrections adjust answers without retraining anything: when a user marked an answer wrong and said what
does answer it (a passage, or that nothing in the documents does), the same or a near-identical question
is answered from that correction next time, and the answer says so ("answered from your correction of
<date>"). A correction whose passage left the index, or lies outside the folders asked, is not used.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sealroom.core.answer.retriever import first_matching
from sealroom.core.answer.text import content_terms
from sealroom.core.protocols import Hit
from sealroom.core.store.catalog import Catalog
from sealroom.core.store.ratings import Rating, Ratings

#: Two questions are the same question when their meaningful words overlap this much (Jaccard) ...
SAME_QUESTION = 0.8
#: ... and have at least this many meaningful words (shorter questions must match word for word).
MIN_TERMS = 3


@dataclass
class Correction:
    rating: Rating
    passage: Hit | None  # the passage that answers; None with `abstain`
    abstain: bool  # the user said nothing in the documents answers it
    expected: str  # the answer the user expected, in their words (shown as theirs, never as evidence)

    @property
    def date(self) -> str:
        return when(self.rating.created_at)

    def to_dict(self) -> dict[str, object]:
        return {
            "feedback_id": self.rating.id,
            "date": self.date,
            "passage": self.rating.passage,
            "abstain": self.abstain,
            "expected": self.expected,
        }


def when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%-d %b %Y")


def same_question(a: str, b: str) -> bool:
    """Whether `a` and `b` ask the same thing (case, punctuation, word order and small words aside)."""
    if _plain(a) == _plain(b):
        return True
    ta, tb = content_terms(a), content_terms(b)
    if not ta or not tb:
        return False
    if min(len(ta), len(tb)) < MIN_TERMS:
        return ta == tb
    return len(ta & tb) / len(ta | tb) >= SAME_QUESTION


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def find(catalog: Catalog, question: str, folders: list[str] | None) -> Correction | None:
    """The newest standing correction of `question` that still holds in these folders."""
    for rating in reversed(Ratings(catalog).all()):
        if not rating.is_correction or not same_question(question, rating.question):
            continue
        if rating.reason == "should_abstain" and not rating.passage:
            return Correction(rating, None, True, rating.expected)
        if not rating.passage:
            continue  # an expected answer alone does not say where the answer is: it is checked, not used
        hit = passage_hit(catalog, rating.passage, folders)
        if hit is not None:
            return Correction(rating, hit, False, rating.expected)
    return None


def passage_hit(catalog: Catalog, chunk_id: str, folders: list[str] | None) -> Hit | None:
    """The passage `chunk_id` as a search hit, from a file under `folders` (None: anywhere; []: nowhere);
    None when it is not there."""
    chunk = catalog.chunks_by_id([chunk_id]).get(chunk_id)
    if chunk is None or folders == []:
        return None
    owner = first_matching(catalog.files_for_content([chunk.sha256]).get(chunk.sha256, []), folders, None)
    return Hit.of_chunk(chunk, owner.path, 1.0) if owner else None
