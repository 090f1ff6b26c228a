"""Text the window shows or copies: an answer with its sources as plain text or Markdown, a passage cut
to whole sentences, a search's words marked, a relevance bar. Plain functions, no widgets."""

from __future__ import annotations

import html
import os
import re
from typing import Any

from sealroom.core.answer.retriever import search_terms
from sealroom.core.output.render import md_escape

SENTENCE_END = re.compile(r"(?<=[.!?;:])[\"”’)\]]*\s+(?=[\"“‘(\[]?[A-Z0-9§•–-])")


def where(c: dict[str, Any]) -> str:
    """'lease.pdf, page 2 — Rent' (the file's name, its page, and the heading where there is one)."""
    place = os.path.basename(c.get("path", "")) + (f", page {c['page']}" if c.get("page") else "")
    team = "team index: " if c.get("origin") == "team" else ""  # team mode: not on this computer
    return team + place + (f" — {c['heading']}" if c.get("heading") else "")


def answer_plain(question: str, answer: str, citations: list[dict[str, Any]], note: str = "") -> str:
    """The answer as the user pastes it into a mail: question, answer, note, then each source with its
    file, page and passage."""
    out = [f"Q: {question}", ""] if question else []
    out += [answer.strip(), ""]
    if note:
        out += [f"({note})", ""]
    if citations:
        out.append("Sources:")
        for c in citations:
            out.append(f"[{c['n']}] {where(c)}")
            if c.get("text"):
                out.append(f"    “{' '.join(c['text'].split())}”")
    return "\n".join(out).rstrip() + "\n"


def answer_markdown(question: str, answer: str, citations: list[dict[str, Any]], note: str = "") -> str:
    """The same in Markdown: the question in bold, [n] as footnote-style links to a numbered source list
    with each passage quoted."""
    out = [f"**{md_escape(question)}**", ""] if question else []
    body = md_escape(answer.strip())
    body = re.sub(r"\\\[(\d{1,2})\\\]", r"[\1]", body)  # citations stay readable as [1]
    out += [line if line.strip() else "" for line in body.splitlines()] + [""]
    if note:
        out += [f"*{md_escape(note)}*", ""]
    if citations:
        out += ["Sources:", ""]
        for c in citations:
            out.append(f"{c['n']}. `{where(c)}`")
            if c.get("text"):
                out.append(f"   > {md_escape(' '.join(c['text'].split()))}")
    return "\n".join(out).rstrip() + "\n"


def whole_sentences(text: str, limit: int = 320) -> str:
    """A passage from the start of its first whole sentence, ending at a sentence's end within `limit`
    characters (or at a word, with '…', when no sentence ends in time)."""
    text = " ".join(text.split())
    if not text:
        return ""
    first = SENTENCE_END.search(text[: min(len(text), 200)])
    if first and not text[:1].isupper() and not text[:1].isdigit() and first.end() < len(text) - 20:
        text = "… " + text[first.end() :]  # a passage that starts mid-sentence starts at the next one
    if len(text) <= limit:
        return text
    ends = [m.start() for m in SENTENCE_END.finditer(text[: limit + 1])]
    cut = max((e for e in ends if e >= limit // 3), default=0)
    if cut:
        return text[:cut].rstrip()
    return text[:limit].rsplit(" ", 1)[0] + " …"


def highlighted(text: str, query: str, background: str) -> str:
    """`text` as HTML with each of the query's words (and longer forms of them: 'terminat' marks
    'termination') in bold on a light mark."""
    terms = sorted({t for t in search_terms(query) if len(t) >= 3}, key=len, reverse=True)
    if not terms:
        return html.escape(text)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")\w*", re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(text):
        out.append(html.escape(text[last : match.start()]))
        out.append(f"<b style='background-color:{background}'>{html.escape(match.group(0))}</b>")
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def score_bar(relevance: float, colour: str, faint: str, cells: int = 10) -> str:
    """A bar of `cells` blocks, filled as far as `relevance` (0..1) of the best match, with its percent."""
    relevance = max(0.0, min(1.0, relevance))
    filled = round(relevance * cells)
    return (
        f"<span style='color:{colour}'>{'█' * filled}</span>"
        f"<span style='color:{faint}'>{'█' * (cells - filled)}</span>"
        f" <small>{relevance:.0%}</small>"
    )


def mixed(first: str, second: str, share: float) -> str:
    """The colour `share` of the way from `first` to `second` ('#rrggbb' both)."""
    a = [int(first[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(second[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * share):02x}" for x, y in zip(a, b, strict=True))
