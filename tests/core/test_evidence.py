"""Evidence selection: verbatim sentences with offsets, chosen without a model."""

from sealroom.core.answer.evidence import EvidenceSelector, asks_for, split_sentences
from sealroom.core.answer.retriever import Hit


def hit(text: str, path: str = "/docs/policy.pdf", page: int | None = 3, start: int = 100, n: int = 0) -> Hit:
    return Hit(f"c{n}", path, page, None, text, 1.0, 0.5, True, start, start + len(text), "s" * 64, n)


def test_wrapped_pdf_lines_join_but_headers_and_items_split():
    text = (
        "Retention\n"
        "Audit logs are kept for ten years after the end of the contract, in line with the\n"
        "regulator's guidance. Backups are kept for two years.\n"
        "From: Alice Example\n"
        "- a list item that stands alone"
    )
    pieces = [text[s:e] for s, e in split_sentences(text)]
    assert pieces == [
        "Retention",
        "Audit logs are kept for ten years after the end of the contract, in line with the\n"
        "regulator's guidance.",
        "Backups are kept for two years.",
        "From: Alice Example",
        "- a list item that stands alone",
    ]


def test_very_long_runs_are_cut_at_spaces():
    text = "word " * 300
    spans = split_sentences(text)
    assert len(spans) > 1 and all(e - s <= 400 for s, e in spans)


def test_the_answering_sentence_is_chosen_verbatim_with_document_offsets():
    passage = (
        "Backups are kept for two years. Audit logs are kept for ten years after the contract ends. "
        "Access is reviewed quarterly."
    )
    other = hit("The canteen opens at noon on weekdays.", path="/docs/canteen.docx", page=None, n=1)
    evidence = EvidenceSelector(None).select("How long are audit logs kept?", [hit(passage), other])
    assert [e.quote for e in evidence] == ["Audit logs are kept for ten years after the contract ends."]
    e = evidence[0]
    assert (e.n, e.path, e.page) == (1, "/docs/policy.pdf", 3)
    assert passage[e.start - 100 : e.end - 100] == e.quote  # offsets are the document's, not the hit's


def test_no_evidence_when_the_question_is_about_something_else():
    passages = [hit("Audit logs are kept for ten years."), hit("The canteen opens at noon.", n=1)]
    assert EvidenceSelector(None).select("What is the rent of the Berlin office?", passages) == []


def test_evidence_is_numbered_by_its_source():
    a = hit("The notice period is three months.", n=0)
    b = hit("For the tenant the notice period is two months.", path="/docs/b.pdf", n=1)
    evidence = EvidenceSelector(None, keep_ratio=0.5).select("What is the notice period?", [a, b])
    assert [e.n for e in evidence] == [1, 2]


def test_question_kinds():
    assert asks_for("When was the contract signed?") == {"date"}
    assert asks_for("How many employees are there?") == {"number"}
    assert asks_for("Who signed it?") == {"name"}
    assert asks_for("Why did the delivery fail?") == {"reason"}
    assert asks_for("Is the sky blue?") == set()


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.text(alphabet=st.sampled_from(list("ab .!?\n:-•1Dr")), max_size=300))
def test_sentences_are_ordered_trimmed_pieces_of_the_text(text: str):
    last = 0
    for start, end in split_sentences(text):
        assert last <= start < end <= len(text)
        assert text[start:end] == text[start:end].strip() and text[start:end]
        last = end


def test_a_sentence_is_chosen_under_the_label_it_belongs_to_and_quoted_with_it():
    text = (
        "wal_level (enum)\n"
        "wal_level determines how much information is written to the WAL. The default value is replica, "
        "which writes enough data to support WAL archiving.\n"
        "fsync (boolean)\n"
        "If this parameter is on, the server tries to make sure updates are written to disk. "
        "The default value is on."
    )
    [best, *_] = sorted(
        EvidenceSelector(None, max_quotes=1).select("wal_level default?", [hit(text)]), key=lambda e: -e.score
    )
    assert best.quote == "The default value is replica, which writes enough data to support WAL archiving."
    assert best.label == "wal_level (enum)" and best.shown.startswith("wal_level (enum) … The default value")
    assert text[best.start - 100 : best.end - 100] == best.quote  # offsets are the quote's own


def test_hard_wrapped_prose_stays_one_sentence_and_rules_of_dashes_are_not_text():
    rule = "-" * 60  # as long as a line of prose: only its lack of words tells it apart
    text = f"You must accept the terms with the\nlosing party responsible for costs.\n{rule}\nThe next part."
    pieces = [text[s:e] for s, e in split_sentences(text)]
    assert pieces[0] == "You must accept the terms with the\nlosing party responsible for costs."
    assert "The next part." in pieces and not any("---" in p for p in pieces if any(c.isalpha() for c in p))


def test_what_a_question_asks_for_when_it_asks_when():
    assert "date" in asks_for("When was version 2 of the GPL issued?")
    assert "date" not in asks_for("When logging to syslog, which severity is used?")
    assert "number" in asks_for("Which PostgreSQL release introduced the hex format?")


def test_a_very_long_sentence_is_cut_where_a_clause_ends():
    text = (
        "Any litigation shall be subject to the courts "
        + "of the district " * 20
        + ("in the county, with the losing party responsible for costs, including court costs and fees.")
    )
    pieces = [text[s:e] for s, e in split_sentences(text)]
    assert all(len(p) <= 400 for p in pieces)
    assert any(p.startswith("with the losing party responsible for costs") for p in pieces), pieces
