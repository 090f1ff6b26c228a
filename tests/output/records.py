"""A stored answer record shaped like `Answer.to_dict()`, with as many citations as asked."""

from __future__ import annotations

import time
from typing import Any


def answer_record(n: int = 10, question: str = "What are the terms of the lease?") -> dict[str, Any]:
    citations = [
        {
            "n": i,
            "path": f"/docs/contracts/lease-{i}.pdf",
            "page": i + 1,
            "text": f"Clause {i}: the tenant pays {1000 + i} euros on the first day of each month.",
            "sha256": f"{i:064x}",
            "seq": i,
            "start": 0,
            "end": 60,
        }
        for i in range(1, n + 1)
    ]
    quotes = "\n".join(f"“{c['text']}” [{c['n']}]" for c in citations)
    return {
        "schema": 1,
        "question": question,
        "answer": f"What the sources say:\n{quotes}\n\nThe tenant pays monthly [1].",
        "abstained": False,
        "evidence": [],
        "citations": citations,
        "sources": [{"n": c["n"], "path": c["path"], "page": c["page"]} for c in citations],
        "verification": {
            "shown": [{"text": "The tenant pays monthly [1].", "cites": [1]}],
            "dropped": [{"text": "The landlord is Mr Smith [2].", "cites": [2]}],
        },
        "matched_citations": [1],
        "invalid_citations": [],
        "unmatched_words": [],
        "called_model": True,
        "model": "gemma-3-270m-q4_k_m.gguf",
        "model_sha256": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "embedding_model": "all-MiniLM-L6-v2-onnx-int8@8199be6f699a",
        "chat_id": 0,
        "answer_id": 0,
        "pending_files": 0,
        "finish_reason": "stop",
        "timings": {},
        "created_at": time.time(),
    }


def store_answer(
    engine: Any, n: int = 10, question: str = "What are the terms of the lease?"
) -> tuple[int, int]:
    """(chat id, answer id) of a stored answer with `n` citations."""
    record = answer_record(n, question)
    chat = engine.catalog.record_answer(None, question, record["answer"], record["citations"], record)
    return chat, engine.catalog.last_answer_id(chat)
