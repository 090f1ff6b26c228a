"""The CLI contract on the real corpus, real Chroma on disk and the real default models."""

import shutil
from pathlib import Path

import pytest

from sealroom.core.engine import Engine
from tests.conftest import CORPUS, PDFS, cli, cli_json

pytestmark = pytest.mark.slow


def test_every_pdf_ends_indexed_or_with_a_specific_reason(indexed_pdfs: Path):
    status = cli_json(indexed_pdfs, "status")
    files = {Path(f["path"]).name: f for f in status["files"]}
    assert len(files) == len([p for p in PDFS.rglob("*") if p.is_file()])  # the licence and files.json too
    for f in files.values():
        assert f["status"] in ("indexed", "failed", "skipped")
        if f["status"] != "indexed":
            assert f["reason"], f
    assert files["libreoffice-writer-password.pdf"]["status"] == "skipped"
    assert "encrypted" in files["libreoffice-writer-password.pdf"]["reason"]
    assert files["grayscale-image.pdf"]["reason"].startswith("no text found by OCR")  # a drawing, no text
    assert files["unreadablemetadata.pdf"]["status"] == "indexed"
    assert files["GeoTopo-komprimiert.pdf"]["status"] == "indexed"
    assert status["chunks"] > 100


def test_search_returns_cited_pages(indexed_pdfs: Path):
    hits = cli_json(indexed_pdfs, "search", "Homöomorphismus Topologie", "-k", "3")["hits"]
    assert len(hits) == 3
    assert all(set(h) >= {"path", "page", "score", "text"} for h in hits)
    assert hits[0]["path"].endswith("GeoTopo-komprimiert.pdf") and isinstance(hits[0]["page"], int)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    only = cli_json(indexed_pdfs, "search", "Topologie", "--type", "docx")["hits"]
    assert only == []


def test_ask_answers_with_evidence_first_and_only_verified_sentences(indexed_pdfs: Path):
    result = cli_json(indexed_pdfs, "ask", "What is the power rating of the wirewound potentiometer?")
    # the default model, run as its compact copy (models/compact.py), and recorded as what ran
    assert result["model"] == "gemma-3-270m-q4_k_m-compact.gguf"
    assert result["model_sha256"] == "a750a7ac660f08cfec8c811287022b3b1bf46fe3d3091adae9b616f44ec0d05c"
    assert result["answer"].startswith("What the sources say:\n“") and not result["abstained"]
    evidence = result["evidence"][0]
    assert evidence["path"].endswith("unreadablemetadata.pdf") and evidence["page"] == 1
    assert "5" in evidence["quote"] and " ".join(evidence["quote"].split()) in " ".join(
        result["answer"].split()
    )
    assert evidence["end"] - evidence["start"] == len(evidence["quote"])
    given = {s["n"] for s in result["sources"]}
    assert {c["n"] for c in result["citations"]} <= given
    for shown in result["verification"]["shown"]:  # every generated sentence shown was checked
        assert shown["verified"] and shown["text"] in result["answer"]
    for dropped in result["verification"]["dropped"]:
        assert dropped["reason"] and dropped["text"] not in result["answer"]
    assert result["timings"]["first_text_ms"] <= result["timings"]["total_ms"]
    # the start all prompts share was evaluated when the model loaded: a first question reuses it
    assert result["timings"]["prompt_tokens_reused"] >= 60, result["timings"]
    follow = cli_json(indexed_pdfs, "ask", "And its diameter?", "--chat", str(result["chat_id"]))
    assert follow["chat_id"] == result["chat_id"]
    assert any("24mm" in e["quote"].replace(" ", "") for e in follow["evidence"]), follow["evidence"]


def test_the_model_process_keeps_one_copy_of_the_weights(indexed_pdfs: Path):
    """llama.cpp's repacked second copy is off (12 MB), and the model still answers."""
    from sealroom.models.catalogue import ModelCatalogue
    from sealroom.models.llm import LlmWorker

    worker = LlmWorker(Path(ModelCatalogue(indexed_pdfs).default().path), n_ctx=512)
    try:
        worker.warm_up()
        assert worker.weights_repacked is False
        pieces = list(worker.generate(prompt="The capital of France is", max_tokens=8))
        assert pieces and worker.finish_reason in ("stop", "length"), (pieces, worker.finish_reason)
    finally:
        worker.close()


def test_our_prompts_example_is_never_the_answer(indexed_pdfs: Path):
    from sealroom.core.answer.prompts import EXAMPLE_QUESTION

    result = cli_json(indexed_pdfs, "ask", EXAMPLE_QUESTION)
    assert "12,000" not in result["answer"] and "Conversation so far" not in result["answer"]
    assert result["abstained"], result["answer"]


def test_nothing_relevant_is_said_without_calling_the_model(indexed_pdfs: Path):
    result = cli_json(indexed_pdfs, "ask", "zzqx vorpal snark?")
    assert result["called_model"] is False and result["abstained"] is True
    assert result["sources"] == [] and "do not say" in result["answer"]
    assert cli(indexed_pdfs, "ask", "x" * 5000, check=False).returncode == 2  # too long: a usage error


def test_rename_reuses_chunks_edit_replaces_them_delete_removes_them(home: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(CORPUS / "docx-samples" / "par-known-paragraphs.docx", docs / "a.docx")
    (docs / "notes.txt").write_text("The boiler service is every April.")
    cli(home, "add", str(docs))
    cli(home, "index")
    with Engine() as engine:
        before = {c.id for b in engine.catalog.all_chunks() for c in b}
        assert engine.parts.store.ids() == before
    (docs / "sub").mkdir()
    (docs / "a.docx").rename(docs / "sub" / "moved.docx")
    out = cli(home, "index").stdout
    assert "this run: 0 files" in out  # the move cost no parsing and no embedding
    (docs / "notes.txt").write_text("The boiler service is every October.")
    cli(home, "index")
    (docs / "sub" / "moved.docx").unlink()
    cli(home, "index")
    with Engine() as engine:
        texts = [c.text for b in engine.catalog.all_chunks() for c in b]
        assert texts == ["The boiler service is every October."]
        assert engine.parts.store.ids() == {c.id for b in engine.catalog.all_chunks() for c in b}
        assert [f.path for f in engine.catalog.files()] == [str(docs / "notes.txt")]


def test_a_question_too_long_for_the_models_context_gets_the_quotes_with_a_note(
    indexed_pdfs: Path, tmp_path: Path
):
    home = tmp_path / "home"
    shutil.copytree(indexed_pdfs, home)
    (home / "settings.toml").write_text("schema_version = 1\nn_ctx = 512\n")
    question = "What is the power rating of the wirewound potentiometer? " * 25  # ~300 tokens
    result = cli_json(home, "ask", question)
    assert result["finish_reason"] == "too_long" and result["called_model"] and not result["abstained"]
    assert result["answer"].startswith("What the sources say:\n“") and result["evidence"]
    assert result["verification"]["shown"] == [] and result["citations"]
    assert "longer than the model's context (Settings › Context size)" in cli(home, "ask", question).stdout
