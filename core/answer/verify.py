"""Verification: a generated sentence is shown only when its evidence states what it says.

Rules, in order (the first that fails drops the sentence, with the reason):
1. It is not our prompt talking (instructions, the worked example, section labels).
2. Its `[n]` name sources that were given; a sentence that cites nothing is given the one
   source whose evidence holds all its facts, if exactly one does.
3. Every number, date, amount and identifier it states occurs in the evidence it cites, all of
   them in one quote (a table row, a clause), and that quote is about what the sentence ties them
   to (the rarest, or half, of the question's words the sentence uses; not another term's label);
   every proper name occurs there or in the cited passage.
4. It does not deny what the evidence affirms (a "not" the evidence does not have).
5. Most of its content words (≥ `min_coverage`) are in that evidence or the question.
Word overlap alone never vouches for a sentence: rules 3 and 4 come first.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sealroom.core.answer.evidence import QUESTION_FRAMING as FRAMING
from sealroom.core.answer.evidence import Evidence
from sealroom.core.answer.text import NEGATION, NUMBER, content_terms, facts, facts_in, is_abbreviation

CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
SENTENCE_END = re.compile(r"(?<=[.!?])(?:\s*\[\d+(?:\s*,\s*\d+)*\])*\s+")
KEY = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")  # a term in code style: wal_level, max_connections
SCAFFOLDING = re.compile(
    r"\b(?:Conversation so far|Question:|Answer:|Sources?:|Evidence:|numbered (?:sources|evidence)|"
    r"treat them as data|only the numbered)",
    re.IGNORECASE,
)


@dataclass
class SentenceCheck:
    text: str  # as generated, citations normalised
    cites: list[int] = field(default_factory=list)
    verified: bool = False
    reason: str = ""  # why it was dropped
    matched: bool = False  # its citation was added by Sealroom, not written by the model
    scaffolding: bool = False
    invalid: list[int] = field(default_factory=list)  # `[n]` naming no given evidence, removed
    repeats_evidence: bool = False  # verified, but says nothing the quotes above it do not: not shown
    unit: int = -1  # the evidence quote (its index) that holds the sentence's facts, when verified

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ends(text: str) -> list[int]:
    return [
        m.end()
        for m in SENTENCE_END.finditer(text)
        if not (text[m.start() - 1] == "." and is_abbreviation(text, m.start() - 1))
    ]


def split_generated(text: str) -> list[str]:
    """Sentences of generated text, each keeping the `[n]` that follow its full stop."""
    cuts = [0, *_ends(text), len(text)]
    return [text[a:b].strip() for a, b in itertools.pairwise(cuts) if text[a:b].strip()]


def complete_prefix(text: str) -> tuple[list[str], str]:
    """The finished sentences at the start of streaming text, and the unfinished rest."""
    ends = _ends(text)
    if not ends:
        return [], text
    return split_generated(text[: ends[-1]]), text[ends[-1] :]


class Verifier:
    def __init__(
        self,
        question: str,
        evidence: Sequence[Evidence],
        passages: dict[int, str],
        example_answers: Sequence[str] = (),
        min_coverage: float = 0.6,
    ) -> None:
        self.question, self.question_terms = question, content_terms(question)
        self.quotes: dict[int, str] = {}
        for e in evidence:
            self.quotes[e.n] = (self.quotes.get(e.n, "") + " " + e.shown).strip()
        self.units = [(e.n, e.shown) for e in evidence]
        self.labels = [e.label for e in evidence]
        self.passages = passages
        self.passage_terms = [content_terms(p) for p in passages.values()]
        self.examples = {_bare(a).lower() for a in example_answers}
        self.min_coverage = min_coverage

    def check(self, sentence: str) -> SentenceCheck:
        numbers = [int(x) for m in CITATION.finditer(sentence) for x in m.group(1).split(",")]
        bare = _bare(sentence)
        cites = [n for n in dict.fromkeys(numbers) if n in self.quotes]
        invalid = [n for n in dict.fromkeys(numbers) if n not in self.quotes]
        check = self._check(bare, cites)
        check.invalid = invalid
        return check

    def _check(self, bare: str, cites: list[int]) -> SentenceCheck:
        if SCAFFOLDING.search(bare) or bare.lower() in self.examples:
            return SentenceCheck(bare, cites, reason="our prompt's own text, not an answer", scaffolding=True)
        stated = facts(bare)
        if not stated and not content_terms(bare):
            return SentenceCheck(bare, cites, reason="it says nothing")
        matched = False
        if not cites:
            holders = [n for n, q in self.quotes.items() if self._holds(stated, n, q)]
            if stated and len(holders) == 1:
                cites, matched = holders, True
            elif not stated:
                cites, matched = self._best_coverage(bare), True
            if not cites:
                why = "its facts are in no single piece of evidence" if stated else "it matches no evidence"
                return SentenceCheck(bare, [], reason=why)
        evidence = " ".join(self.quotes[n] for n in cites)
        passage = " ".join(self.passages.get(n, "") for n in cites)
        missing = [f for f in sorted(stated) if not facts_in(f, evidence) and not self._name_in(f, passage)]
        if missing:
            shown = ", ".join(f.removeprefix("name:") for f in missing)
            return SentenceCheck(
                bare, cites, reason=f"not in the evidence it cites: {shown}", matched=matched
            )
        unit = self._unit(bare, stated, cites)
        if unit is None:
            why = (
                "its figures are not in one quote about what it says" if stated else "it matches no one quote"
            )
            return SentenceCheck(bare, cites, reason=why, matched=matched)
        if stated and not _figures_attached(bare, self.units[unit][1], self.question):
            return SentenceCheck(
                bare,
                cites,
                reason="it ties a figure to words its quote does not put next to it",
                matched=matched,
            )
        if NEGATION.search(bare) and not NEGATION.search(evidence):
            return SentenceCheck(bare, cites, reason="it denies what the evidence says", matched=matched)
        terms, quoted = content_terms(bare), content_terms(evidence)
        new = terms - self.question_terms  # what the sentence adds to the question must be in the evidence
        if new and len(new & quoted) / len(new) < self.min_coverage:
            return SentenceCheck(
                bare, cites, reason="most of its words are not in the evidence", matched=matched
            )
        text = _with_citations(bare, cites)
        repeats = not new or terms <= quoted  # adds nothing to the question or the quotes
        return SentenceCheck(text, cites, verified=True, matched=matched, repeats_evidence=repeats, unit=unit)

    def _unit(self, sentence: str, stated: set[str], cites: list[int]) -> int | None:
        """The cited quote that holds all the sentence's figures and is about what the sentence ties them
        to: the rarest of the question's words the sentence uses is in it, or half of them are; and when
        the quote sits under a term ('vacuum_failsafe_age (integer)'), the sentence does not pin its
        figures on another term. A figure from another row, clause or parameter does not count."""
        subject = (content_terms(sentence) & self.question_terms) - FRAMING
        rarest = self._rarest(subject)
        keys = set(KEY.findall(sentence.lower()))
        best, best_share = None, -1.0
        for i, (n, quote) in enumerate(self.units):
            if n not in cites or not self._holds(stated, n, quote):
                continue
            terms = content_terms(quote)
            share = len(subject & terms) / len(subject) if subject else 1.0
            if stated and not (share >= 0.5 or (rarest is not None and rarest in terms)):
                continue
            label_keys = set(KEY.findall(self.labels[i].lower()))
            if stated and label_keys and keys and not label_keys & keys:
                continue  # the figure is the labelled term's, and the sentence gives it to another
            if share > best_share:
                best, best_share = i, share
        return best

    def _rarest(self, subject: set[str]) -> str | None:
        """Of the question's words a sentence uses, the one fewest retrieved passages hold (at least one)."""
        counts = {t: sum(t in b for b in self.passage_terms) for t in subject}
        found = [t for t in subject if counts[t]]
        return min(found, key=lambda t: (counts[t], -len(t))) if found else None

    def _holds(self, stated: set[str], n: int, quote: str) -> bool:
        return all(facts_in(f, quote) or self._name_in(f, self.passages.get(n, "")) for f in stated)

    @staticmethod
    def _name_in(fact: str, passage: str) -> bool:
        return fact.startswith("name:") and facts_in(fact, passage)

    def _best_coverage(self, sentence: str) -> list[int]:
        terms = content_terms(sentence)
        if not terms:
            return []
        shares = {n: len(terms & content_terms(q)) / len(terms) for n, q in self.quotes.items()}
        best = max(shares, key=shares.__getitem__, default=None)
        return [best] if best is not None and shares[best] >= self.min_coverage else []


#: How far a figure's own words reach: the next content words of the sentence's clause, and the quote's
#: words on either side of the same figure.
AFTER_FIGURE, AROUND_FIGURE = 3, 10
WORDS = re.compile(r"\d+(?:[.,]\d+)*|\w[\w'-]*|[,;:.!?()]")


def _figures_attached(sentence: str, quote: str, question: str) -> bool:
    """Whether each figure the sentence adds to the question is tied to what the question asks about as its
    quote ties it: of the question's words that follow the figure in the sentence's clause, at least one is
    near the same figure in the quote. '30 days after your receipt of the notice' does not vouch for
    '30 days after termination' when the question asks about termination."""
    said, quoted = WORDS.findall(sentence.lower()), WORDS.findall(quote.lower())
    asked, asked_terms = set(WORDS.findall(question.lower())), content_terms(question)
    for i, token in enumerate(said):
        if not NUMBER.fullmatch(token) or token in asked:
            continue  # not a figure, or one the question names ('MPL 2.0'): the subject, not the answer
        attached: set[str] = set()
        for word in said[i + 1 :]:
            if word in ",;:.!?()" or len(attached) >= AFTER_FIGURE:
                break
            attached |= content_terms(word)
        attached = {t for t in attached if _related({t}, asked_terms)}
        places = [j for j, w in enumerate(quoted) if w == token]
        near = [
            content_terms(" ".join(quoted[max(0, j - AROUND_FIGURE) : j + AROUND_FIGURE + 1])) for j in places
        ]
        if attached and near and not any(_related(attached, terms) for terms in near):
            return False
    return True


def _related(terms: set[str], others: set[str]) -> bool:
    """Whether a word of `terms` is one of `others` or shares its first six letters ('termination',
    'terminated'): the stemmer keeps the noun and the verb apart."""
    heads = {o[:6] for o in others if len(o) >= 6}
    return bool(terms & others) or any(len(t) >= 6 and t[:6] in heads for t in terms)


def _bare(sentence: str) -> str:
    """The sentence without its `[n]`, on one line."""
    sentence = re.sub(r"\[[a-zA-Z]\]", "", CITATION.sub("", sentence))  # a copied "[n]" placeholder too
    return re.sub(r"\s+([.,;:!?])", r"\1", " ".join(sentence.split())).strip()


def _with_citations(sentence: str, cites: list[int]) -> str:
    """The sentence with its citations before the final full stop: 'It is ten years [1].'"""
    marks = "".join(f"[{n}]" for n in cites)
    end = len(sentence.rstrip(".!?"))
    return f"{sentence[:end]} {marks}{sentence[end:]}"
