"""The source pane (issue 28): the file and its place stay above the text; hard-wrapped text is shown as
paragraphs with the cited passage still marked."""

from __future__ import annotations

from sealroom.core.protocols import Passage
from sealroom.desktop.preview import SourcePreview, unwrapped

WRAPPED = (
    "  The licenses for most software and other practical works are designed\n"
    "to take away your freedom to share and change the works.  By contrast,\n"
    "the GNU General Public License is intended to guarantee your freedom to\n"
    "share and change all versions of a program.\n"
    "\n"
    "  Developers that use the GNU GPL protect your rights with two steps:\n"
    "(1) assert copyright on the software, and (2) offer you this License\n"
    "giving you legal permission to copy, distribute and/or modify it.\n"
    "\n"
    "   Name          Size    Kept\n"
    "   smallint      2 bytes yes\n"
    "\n"
    "    for path in folder:\n"
    "        index(path)\n"
)


def test_hard_wrapped_paragraphs_are_joined_and_breaks_that_mean_something_stay():
    text, _ = unwrapped(WRAPPED, (0, 0))
    assert text.split("\n") == [
        "  The licenses for most software and other practical works are designed to take away your freedom"
        " to share and change the works.  By contrast, the GNU General Public License is intended to"
        " guarantee your freedom to share and change all versions of a program.",
        "",
        "  Developers that use the GNU GPL protect your rights with two steps:",  # "(1)" starts a list
        "(1) assert copyright on the software, and (2) offer you this License giving you legal permission"
        " to copy, distribute and/or modify it.",
        "",
        "   Name          Size    Kept",
        "   smallint      2 bytes yes",
        "",
        "    for path in folder:",
        "        index(path)",
        "",
    ]


def test_text_that_is_not_hard_wrapped_keeps_its_lines():
    prose = (
        "A paragraph that an editor wrapped softly is one long line, far longer than any terminal, and it"
        " goes on well past a hundred characters before it ends.\nShort line.\nAnother short one.\n"
    )
    assert unwrapped(prose, (5, 9)) == (prose, (5, 9))
    poem = "Roses are red,\nviolets are blue,\nsugar is sweet,\nand so are you.\n"
    assert unwrapped(poem, (0, 3))[0] == poem
    assert unwrapped("a\r\nb\r\n", (0, 4)) == ("a\nb\n", (0, 3))


def test_the_pane_shows_the_place_above_the_text_and_marks_the_unwrapped_passage(qtbot):
    preview = SourcePreview()
    qtbot.addWidget(preview)
    preview.resize(400, 200)
    preview.show()
    start = WRAPPED.index("the GNU General")
    end = WRAPPED.index("\n(1) assert")  # a passage is stripped: it never ends with a line break
    passage = Passage(WRAPPED[:start], WRAPPED[start:end], WRAPPED[end:] + WRAPPED * 20, None, (3, 6))
    source = {"path": "/docs/gpl-3.txt", "page": None, "heading": "Preamble", "text": "x"}
    preview.show_passage(source, passage)
    assert preview.heading.text() == "gpl-3.txt · Preamble · lines 3–6"
    assert preview.highlighted == (
        "the GNU General Public License is intended to guarantee your freedom to share and change all"
        " versions of a program.\n\n  Developers that use the GNU GPL protect your rights with two steps:"
    )
    assert "designed to take away" in preview.text.toPlainText()
    bar = preview.text.verticalScrollBar()
    bar.setValue(bar.maximum())
    assert bar.maximum() > 0 and preview.heading.isVisible()
    assert preview.heading.geometry().bottom() < preview.text.geometry().top()  # not inside the scrolled text


def test_a_page_a_single_line_and_no_known_lines_read_as_before(qtbot):
    preview = SourcePreview()
    qtbot.addWidget(preview)
    pdf = {"path": "/d/pot.pdf", "page": 4, "heading": "Ratings", "text": "x"}
    preview.show_passage(pdf, Passage("Before. ", "Rated 10 k.", " After.", 4))
    assert preview.heading.text() == "pot.pdf — page 4 · Ratings"
    assert preview.highlighted == "Rated 10 k."
    note = {"path": "/d/notes.txt", "page": None, "heading": None, "text": "x"}
    preview.show_passage(note, Passage("", "Call Sam.", "", None, (7, 7)))
    assert preview.heading.text() == "notes.txt · line 7"
    preview.show_passage(note, None)  # the file changed: the quote as it was cited, no lines
    assert preview.heading.text() == "notes.txt" and preview.highlighted == "x"


def test_a_citation_of_a_text_markdown_or_html_file_names_its_heading(tmp_path):
    """The window's citation label ('file · heading') for a passage under a heading of each kind of file."""
    import re

    from sealroom.core.ingest.chunker import chunk_sections
    from sealroom.core.ingest.parsers import parse
    from sealroom.core.protocols import Hit
    from sealroom.desktop.conversation import source_label

    files = {
        "rfc9999.txt": "Intro.\n\n3.2.  Message Syntax\n\n   A message is one line of text.\n",
        "guide.md": "# Guide\n\nIntro.\n\n## Install\n\nRun the installer: a message is one line of text.\n",
        "manual.html": "<h1>Manual</h1><p>Intro.</p><div><h4><a href='#s'>Message <b>Syntax</b></a></h4>"
        "<p>A message is one line of text.</p></div>",
    }
    labels = []
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        chunks = chunk_sections(
            parse(tmp_path / name).sections, "a" * 64, lambda t: [m.span() for m in re.finditer(r"\S+", t)]
        )
        chunk = next(c for c in chunks if "one line of text" in c.text)
        labels.append(source_label({"n": 1} | Hit.of_chunk(chunk, str(tmp_path / name), 1.0).to_dict()))
    assert labels == [
        "rfc9999.txt · 3.2. Message Syntax",
        "guide.md · Install",
        "manual.html · Message Syntax",
    ]
