"""Exports: one document built from stored answer records, rendered as Markdown, Word or JSON.

An export holds one answer, a whole chat, or a search result list, each with the question,
the answer as shown, every citation (file, page and, unless the IT policy says references
only, the quoted passage), the chat and embedding models (with sha256), Sealroom's version,
the workspace, timestamps and the flags the answer carried. The JSON form is the document
itself (schema in docs/export-schema.md); Markdown and Word are views of it.
"""

from __future__ import annotations

import io
import json
import re
import time
import unicodedata
from typing import Any

from sealroom.core.answer.pipeline import answer_notes
from sealroom.core.protocols import REASONS, Hit
from sealroom.core.runtime.errors import UsageError
from sealroom.core.runtime.paths import sealroom_version
from sealroom.core.store.ratings import Rating

EXPORT_SCHEMA = "sealroom-export"
EXPORT_SCHEMA_VERSION = 1
FORMATS = {"md": "Markdown", "docx": "Word", "json": "JSON"}
SUFFIX = {"md": ".md", "docx": ".docx", "json": ".json"}


def _iso(ts: float | None) -> str | None:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None


def answer_item(
    record: dict[str, Any], answer_id: int, include_text: bool, rating: Rating | None = None
) -> dict[str, Any]:
    """One answer of the document from its stored record (`Answer.to_dict()`) and the user's rating of it."""
    verification = record.get("verification") or {}
    citations = []
    for c in record.get("citations", []):
        entry: dict[str, Any] = {"n": c["n"], "path": c["path"], "page": c.get("page")}
        if c.get("heading"):
            entry["heading"] = c["heading"]
        if c.get("origin"):  # team mode: the passage is the team index's, not this computer's
            entry["origin"] = c["origin"]
        if include_text:
            entry["text"] = c.get("text", "")
        citations.append(entry)
    return {
        "answer_id": answer_id,
        "chat_id": record.get("chat_id"),
        "question": record.get("question", ""),
        "answer": record.get("answer", "") if include_text or not citations else _refs_only(record),
        "asked_at": _iso(record.get("created_at")),
        "abstained": bool(record.get("abstained")),
        "citations": citations,
        "model": {"name": record.get("model", ""), "sha256": record.get("model_sha256", "")},
        "embedding_model": record.get("embedding_model", ""),
        "flags": {
            "unsupported_sentences": [s.get("text", "") for s in verification.get("dropped", [])]
            if include_text
            else len(verification.get("dropped", [])),
            "matched_citations": record.get("matched_citations", []),
            "invalid_citations": record.get("invalid_citations", []),
            "pending_files": record.get("pending_files", 0),
            "finish_reason": record.get("finish_reason", "stop"),
            "model_problem": record.get("model_problem", ""),
        },
        "notes": answer_notes(record) + _rating_notes(rating, include_text),  # as the window and CLI say them
        "feedback": _feedback(rating, include_text),
    }


def _feedback(rating: Rating | None, include_text: bool) -> dict[str, Any] | None:
    if rating is None:
        return None
    return {
        "rating": rating.rating,
        "reason": rating.reason or None,
        "passage": rating.passage or None,
        "expected": (rating.expected or None) if include_text else bool(rating.expected),
        "rated_at": _iso(rating.created_at),
    }


def _rating_notes(rating: Rating | None, include_text: bool) -> list[str]:
    if rating is None:
        return []
    if rating.rating == "good":
        return [f"Rated helpful on {_iso(rating.created_at)}."]
    why = REASONS.get(rating.reason, rating.reason)
    note = f"Rated not helpful on {_iso(rating.created_at)}: {why}."
    if rating.passage:
        note += f" Corrected with passage {rating.passage}."
    if rating.expected and include_text:
        note += f" Expected answer: {rating.expected}"
    return [note]


def _refs_only(record: dict[str, Any]) -> str:
    """The answer without the quoted evidence (IT chose references only): its verified sentences."""
    shown = [s.get("text", "") for s in (record.get("verification") or {}).get("shown", [])]
    return " ".join(shown) or "(passages withheld by policy: see the sources)"


def document(
    kind: str,
    title: str,
    workspace: str,
    include_text: bool,
    answers: list[dict[str, Any]] | None = None,
    search: dict[str, Any] | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema": EXPORT_SCHEMA,
        "schema_version": EXPORT_SCHEMA_VERSION,
        "kind": kind,
        "title": title,
        "workspace": workspace,
        "exported_at": _iso(time.time()),
        "sealroom_version": sealroom_version(),
        "include_passages": include_text,
    }
    if answers is not None:
        doc["answers"] = answers
    if search is not None:
        doc["search"] = search
    return doc


def search_section(query: str, hits: list[Hit], embedding_model: str, include_text: bool) -> dict[str, Any]:
    return {
        "query": query,
        "embedding_model": embedding_model,
        "hits": [{"n": n} | h.to_dict(text=include_text) for n, h in enumerate(hits, 1)],
    }


def render(doc: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8", "surrogateescape")
    if fmt == "md":
        return markdown(doc).encode("utf-8", "surrogateescape")
    if fmt == "docx":
        return word(doc)
    raise UsageError(f"unknown export format '{fmt}' (md, docx or json)")


def _where(c: dict[str, Any]) -> str:
    """'file, page 2 — Slide 2: Title' (the heading says where beyond the page, or that OCR read it)."""
    where = f"{c['path']}" + (f", page {c['page']}" if c.get("page") else "")
    return where + (f" — {c['heading']}" if c.get("heading") else "")


def _provenance(doc: dict[str, Any]) -> list[str]:
    lines = [
        f"Exported {doc['exported_at']} by Sealroom {doc['sealroom_version']} from workspace “{doc['workspace']}”."
    ]
    models = {
        (a["model"]["name"], a["model"]["sha256"]) for a in doc.get("answers", []) if a["model"]["name"]
    }
    for name, sha in sorted(models):
        lines.append(f"Chat model: {name} (sha256 {sha}).")
    embedders = {a["embedding_model"] for a in doc.get("answers", []) if a["embedding_model"]}
    if doc.get("search"):
        embedders.add(doc["search"]["embedding_model"])
    for e in sorted(embedders - {""}):
        lines.append(f"Embedding model: {e}.")
    if not doc["include_passages"]:
        lines.append("Passage text withheld by policy: references only.")
    return lines


def md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", text)


def markdown(doc: dict[str, Any]) -> str:
    out = [f"# {md_escape(doc['title'])}", ""]
    answers = doc.get("answers", [])
    alone = len(answers) == 1 and " ".join(answers[0]["question"].split()) == " ".join(doc["title"].split())
    for a in answers:
        if not alone:  # an answer exported alone has its question as the title already
            out += [f"## {md_escape(a['question'])}", ""]
        out += [f"*Asked {a['asked_at']}*", ""]
        for line in a["answer"].splitlines():  # each line its own paragraph, as shown in the window
            if line.strip():
                out += [md_escape(line), ""]
        for flag in a["notes"]:
            out.append(f"> {flag}")
        if a["notes"]:
            out.append("")
        if a["citations"]:
            out += ["### Sources", ""]
            for c in a["citations"]:
                out.append(f"{c['n']}. `{_where(c)}`")
                if "text" in c:
                    out.append(f"   > {md_escape(' '.join(c['text'].split()))}")
            out.append("")
    if doc.get("search"):
        s = doc["search"]
        out += [f"## Search: {md_escape(s['query'])}", ""]
        for h in s["hits"]:
            out.append(f"{h['n']}. `{_where(h)}` (score {h['score']:.3f})")
            if "text" in h:
                out.append(f"   > {md_escape(' '.join(h['text'].split()))}")
        out.append("")
    out += ["---", ""] + [f"{line}  " for line in _provenance(doc)]
    return "\n".join(out) + "\n"


def _xml_safe(text: str) -> str:
    """Word's XML takes no control characters and no lone surrogates."""
    text = text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text
    return "".join(ch for ch in text if ch in "\t\n" or unicodedata.category(ch) != "Cc")


def _has_surrogates(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def word(doc: dict[str, Any]) -> bytes:
    import docx

    d = docx.Document()
    d.core_properties.title = _xml_safe(doc["title"])[:255]
    d.core_properties.comments = f"Exported by Sealroom {doc['sealroom_version']}"
    d.add_heading(_xml_safe(doc["title"]), level=0)
    for a in doc.get("answers", []):
        d.add_heading(_xml_safe(a["question"]), level=1)
        d.add_paragraph().add_run(f"Asked {a['asked_at']}").italic = True
        for line in a["answer"].splitlines():
            if line.strip():
                d.add_paragraph(_xml_safe(line))
        for flag in a["notes"]:
            d.add_paragraph(_xml_safe(flag), style="Intense Quote")
        if a["citations"]:
            d.add_heading("Sources", level=2)
            _table(d, a["citations"], with_score=False)
    if doc.get("search"):
        s = doc["search"]
        d.add_heading(_xml_safe(f"Search: {s['query']}"), level=1)
        _table(d, s["hits"], with_score=True)
    d.add_heading("Provenance", level=2)
    for line in _provenance(doc):
        d.add_paragraph(_xml_safe(line))
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _table(d: Any, rows: list[dict[str, Any]], with_score: bool) -> None:
    has_text = any("text" in r for r in rows)
    headers = ["#", "File", "Page"] + (["Score"] if with_score else []) + (["Passage"] if has_text else [])
    table = d.add_table(rows=1, cols=len(headers))
    table.style = "Table Grid"
    for cell, header in zip(table.rows[0].cells, headers, strict=True):
        cell.text = header
    for r in rows:
        place = " — ".join(
            str(p) for p in (r.get("page"), r.get("heading")) if p
        )  # a sheet's rows, a slide, OCR
        values = [str(r["n"]), r["path"], place]
        if with_score:
            values.append(f"{r['score']:.3f}")
        if has_text:
            values.append(" ".join(r.get("text", "").split()))
        for cell, value in zip(table.add_row().cells, values, strict=True):
            cell.text = _xml_safe(value)


# --- file names ---------------------------------------------------------------------------
WINDOWS_RESERVED = (
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
)
MAX_STEM = 80


def safe_stem(title: str) -> str:
    """A file name stem from a title or question that cannot leave the folder it is written into.

    Only letters, digits, spaces, '-' and '_' survive (no separators, dots, drive colons, NUL
    or control characters); reserved Windows device names are prefixed; length is capped.
    """
    text = unicodedata.normalize("NFKC", title)
    text = "".join(ch if (ch.isalnum() and ch.isprintable()) or ch in " -_" else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip(" -_")
    text = text.encode("utf-8", "ignore")[: MAX_STEM * 2].decode("utf-8", "ignore")[:MAX_STEM].strip(" -_")
    text = text.replace(" ", "-")
    if not text:
        text = "export"
    if text.split("-")[0].upper() in WINDOWS_RESERVED or text.upper() in WINDOWS_RESERVED:
        text = f"sealroom-{text}"
    return text


def file_name(kind: str, ident: str, title: str, fmt: str, when: float | None = None) -> str:
    """Deterministic: the same export of the same thing on the same day gets the same name."""
    day = time.strftime("%Y-%m-%d", time.gmtime(when or time.time()))
    named = f"-{safe_stem(title)}" if title.strip() else ""
    return f"{day}-{kind}-{safe_stem(ident)}{named}{SUFFIX[fmt]}"
