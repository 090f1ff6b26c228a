"""Ranking logic of hybrid retrieval (a fake vector ranking; the catalog and its FTS5 index are real)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sealroom.core.answer.retriever import Hit, Retriever, complete_edges, merge_neighbours, named_documents
from sealroom.core.store.catalog import Catalog, Chunk, chunk_id


class FixedVectors:
    """Stands in for Chroma: returns a fixed similarity ranking."""

    def __init__(self, ranking: list[str]) -> None:
        self.ranking = ranking

    def query(
        self, embedding: np.ndarray, n: int, *, groups: list[str] | None = None
    ) -> list[tuple[str, float]]:
        assert groups is None  # the laptop's retriever never asks for a wall
        return [(i, 0.9 - 0.01 * r) for r, i in enumerate(self.ranking[:n])]


class NoEmbedder:
    model_id = "none"

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), 3), dtype=np.float32)


def add(catalog: Catalog, folder_id: int, name: str, text: str) -> str:
    sha = (name.encode().hex() * 64)[:64]
    catalog.upsert_file(folder_id, f"/docs/{name}", 1, len(text), sha, "pending")
    cid = chunk_id(sha, 0)
    catalog.finish_content(sha, "indexed", None, None, [Chunk(cid, sha, 0, text, None, None, 0, len(text))])
    return cid


def test_an_exact_rare_token_wins_over_junk_that_only_looks_similar(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder("/docs")
    folder_id = catalog.folders()[0][0]
    control = add(
        catalog, folder_id, "control.txt", "Permit reference QX7731 was renewed by the harbour office."
    )
    junk = [
        add(catalog, folder_id, f"mutant-{i}.txt", f"perm1t permit permit ren\x00ewed harb0ur permit {i}")
        for i in range(12)
    ]
    # the vector ranking puts the garbled look-alikes first and the control file last
    retriever = Retriever(catalog, FixedVectors([*junk, control]), NoEmbedder())  # type: ignore[arg-type]
    hits = retriever.search("permit QX7731", k=3)
    assert hits[0].chunk_id == control
    # a word found in many passages is not rare: no boost, the ranking is the plain fusion
    hits = retriever.search("permit", k=3)
    assert hits[0].chunk_id in junk


def _hit(seq: int, text: str, start: int, heading: str | None, page: int | None = None) -> Hit:
    return Hit(
        f"c-{seq}",
        "/docs/manual.html",
        page,
        heading,
        text,
        1.0,
        0.5,
        True,
        start,
        start + len(text),
        "s",
        seq,
    )


def test_neighbouring_chunks_of_one_section_are_joined_without_losing_or_repeating_text():
    section = "Alpha beta gamma. Delta epsilon zeta. Eta theta iota."
    first, second = _hit(0, section[:30], 0, "Intro"), _hit(1, section[24:], 24, "Intro")
    [merged] = merge_neighbours([second, first])
    assert merged.text == section and (merged.start, merged.end) == (0, len(section))


def test_chunks_of_two_page_less_sections_are_not_joined():
    # an HTML page: section offsets restart at 0, so the next chunk may begin a new section
    first = _hit(0, "Installing. Run the installer as root.", 0, "Installing")
    second = _hit(1, "Removing. Delete the folder.", 0, "Removing")
    merged = merge_neighbours([first, second])
    assert [h.text for h in merged] == [first.text, second.text]


def test_keyword_search_finds_british_and_american_spellings_and_word_forms(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder("/docs")
    folder_id = catalog.folders()[0][0]
    licence = add(catalog, folder_id, "terms.txt", "The license is granted to each recipient.")
    colour = add(catalog, folder_id, "style.txt", "Colors are normalized before printing.")
    other = add(catalog, folder_id, "other.txt", "Nothing relevant here at all.")
    retriever = Retriever(catalog, FixedVectors([other]), NoEmbedder())  # type: ignore[arg-type]
    assert retriever.search("Who is granted the licence?", k=2)[0].chunk_id == licence
    assert retriever.search("is the colour normalised?", k=2)[0].chunk_id == colour
    assert retriever.search("recipients of grants", k=2)[0].chunk_id == licence  # stems: grants -> grant


def test_a_question_naming_a_version_finds_that_version_first(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder("/docs")
    folder_id = catalog.folders()[0][0]
    v2 = add(catalog, folder_id, "gpl-2.txt", "GNU GENERAL PUBLIC LICENSE Version 2\nYou may charge a fee.")
    v3 = add(
        catalog, folder_id, "gpl-3.txt", "GNU GENERAL PUBLIC LICENSE Version 3\nYou may charge any price."
    )
    others = [add(catalog, folder_id, f"note-{i}.txt", f"Fees are listed in table {i}.") for i in range(4)]
    # the vectors prefer version 2: without the file's name, version 3 would not lead
    retriever = Retriever(catalog, FixedVectors([v2, *others, v3]), NoEmbedder())  # type: ignore[arg-type]
    assert retriever.search("Under GPL version 3, may I charge for copies?", k=3)[0].chunk_id == v3
    assert retriever.search("Under the GPL 2, may I charge for copies?", k=3)[0].chunk_id == v2


def test_named_documents_needs_a_version_or_year_with_a_word_of_the_name():
    docs = [
        (f"s{i}", f"/d/python-3.11-library-{m}.html", "") for i, m in enumerate(["json", "zipfile", "csv"])
    ]
    docs += [("g2", "/d/gpl-2.txt", "GNU GENERAL PUBLIC LICENSE"), ("l21", "/d/lgpl-2.1.docx", "")]
    docs += [("t", "/d/test.docx", ""), ("m", "/d/minimal-document.pdf", "")]
    assert named_documents("In the 2.1 LGPL, what is a library?", docs) == ["l21"]
    assert named_documents("Under GPL 2, may I charge a fee?", docs) == ["g2"]
    assert named_documents("What does json.dumps return in Python 3.11?", docs) == ["s0"]
    # plain words that happen to be in file names name nothing; nor does a word every Python page shares
    assert named_documents("What does the test document say?", docs) == []
    assert named_documents("What does Python return here?", docs) == []


def test_a_passage_cut_mid_sentence_is_completed_from_its_neighbour_chunks(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder("/docs")
    sha = "cd" * 32
    catalog.upsert_file(catalog.folders()[0][0], "/docs/lease.txt", 1, 1, sha, "pending")
    section = (
        "Rent is due monthly. The tenant shall give notice with a copy of the lease to the landlord. Done."
    )
    cut1, cut2 = 40, 60  # chunk 0 ends mid-sentence; chunk 1 overlaps it and ends mid-sentence too
    chunks = [
        Chunk(chunk_id(sha, 0), sha, 0, section[:cut2], None, "Terms", 0, cut2),
        Chunk(chunk_id(sha, 1), sha, 1, section[cut1:], None, "Terms", cut1, len(section)),
    ]
    catalog.finish_content(sha, "indexed", None, None, chunks)
    hit = Hit(chunks[0].id, "/docs/lease.txt", None, "Terms", section[:cut2], 1.0, 0.5, True, 0, cut2, sha, 0)
    [whole] = complete_edges([hit], catalog)
    assert whole.text == section[: section.index("landlord.") + len("landlord.")]
    assert (whole.start, whole.end) == (0, len(whole.text))
    later = Hit(
        chunks[1].id,
        "/docs/lease.txt",
        None,
        "Terms",
        section[cut1:],
        1.0,
        0.5,
        True,
        cut1,
        len(section),
        sha,
        1,
    )
    [whole] = complete_edges([later], catalog)
    assert whole.text.startswith("The tenant shall") and whole.start == section.index("The tenant")
