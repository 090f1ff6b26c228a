"""Content hashes: the identity of document versions and model files, and of the questions and answers
the audit trail records without their words."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from hashlib import _Hash


def sha256_of(path: Path) -> str:
    with path.open("rb") as handle:
        return sha256_of_stream(handle)


def sha256_of_stream(handle: BinaryIO, digest: _Hash | None = None) -> str:
    """The sha256 of what is left to read in `handle` (fed into `digest` when given)."""
    digest = digest or hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return str(digest.hexdigest())


def content_key(path: Path) -> str:
    """The identity of a document version: its bytes *as the type its name says*.

    The same bytes named .pdf and .docx parse differently (or fail differently), so they are
    different versions; a rename that keeps the type keeps the key (no re-parse, no re-embedding).
    """
    digest = hashlib.sha256(b"sealroom-content-v1:" + path.suffix.lower().encode("utf-8", "replace") + b"\0")
    with path.open("rb") as handle:
        return sha256_of_stream(handle, digest)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
