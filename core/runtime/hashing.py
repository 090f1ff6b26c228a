"""Content hashes of files: the identity of document versions and of model files."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_key(path: Path) -> str:
    """The identity of a document version: its bytes *as the type its name says*.

    The same bytes named .pdf and .docx parse differently (or fail differently), so they are
    different versions; a rename that keeps the type keeps the key (no re-parse, no re-embedding).
    """
    digest = hashlib.sha256(b"sealroom-content-v1:" + path.suffix.lower().encode("utf-8", "replace") + b"\0")
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
