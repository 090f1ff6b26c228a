"""Upgrades keep users' indexes: a changed embedding model re-embeds from the catalog, with a message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sealroom.core.engine import Engine
from sealroom.core.ingest.parsers import PARSER_VERSION
from sealroom.core.runtime.errors import SealroomError
from sealroom.core.store.catalog import SCHEMA_VERSION, Catalog
from tests.conftest import PDFS

pytestmark = pytest.mark.slow


def test_new_embedding_model_rebuilds_vectors_from_the_catalog_with_a_message(home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    shutil.copytree(PDFS / "017-unreadable-meta-data", docs)
    with Engine(home) as engine:
        engine.add_folder(str(docs))
        engine.index()
        chunks = engine.catalog.chunk_count()
        assert chunks and engine.parts.store.count() == chunks
        engine.catalog.set_meta("embedding_model", "older-embedder@0123456789ab")  # as an older release wrote
    with Engine(home) as engine:
        assert engine.parts.store.count() == 0
        assert "embedding model changed (older-embedder@0123456789ab" in engine.recovered
        assert any("holds 0 of" in w for w in engine.warnings())
        summary = engine.index()
        assert summary.files == 0  # no document was read again
        assert engine.parts.store.count() == chunks and not engine.vector_gap()
        assert engine.search("wirewound potentiometer")[0].page == 1
        assert [r["event"] for r in engine.audit.records()].count("model_changed") == 1


def test_a_catalog_from_a_newer_release_is_refused_not_damaged(tmp_path: Path):
    path = tmp_path / "catalog.sqlite"
    Catalog(path).close()
    catalog = Catalog(path)
    catalog.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    catalog.close()
    with pytest.raises(SealroomError, match="newer Sealroom"):
        Catalog(path)


def test_a_parser_upgrade_reads_text_and_html_again_and_leaves_pdfs(home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    shutil.copytree(PDFS / "017-unreadable-meta-data", docs)
    (docs / "guide.md").write_text(
        "# Install\n\nRun the installer as root.\n\n# Backup\n\nCopy the data folder nightly.\n"
    )
    (docs / "page.html").write_text("<h4>Retention</h4><p>Logs are kept for ninety days.</p>")
    with Engine(home) as engine:
        engine.add_folder(str(docs))
        engine.index()
        catalog = engine.catalog
        # as an older parser left them: sections without headings, and the version it wrote
        with catalog.transaction() as db:
            db.execute("UPDATE chunks SET heading = 'old'")
        catalog.set_meta("parser_version", "6")
        engine.index()

        def headings(name: str) -> set[str | None]:
            rows = catalog.query(
                "SELECT c.heading FROM chunks c JOIN files f ON f.sha256 = c.sha256 WHERE f.path LIKE ?",
                (f"%{name}",),
            )
            return {r["heading"] for r in rows}

        assert headings("guide.md") == {"Install", "Backup"}
        assert headings("page.html") == {"Retention"}
        assert headings(".pdf") == {"old"}  # read the same way by both versions: not read again
        assert catalog.get_meta("parser_version") == PARSER_VERSION
        assert set(catalog.count_by_status()) == {"indexed"}
