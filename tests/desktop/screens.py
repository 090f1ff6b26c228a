"""Every screen of the real window, checked from geometry and (on a display) saved as PNGs.

`layout_problems(widget)` lists text that does not fit its control and widgets outside the window.
`python -m tests.desktop.screens [--xvfb WxH] DOCS OUT_DIR` (what `make screenshots` runs on its own Xvfb,
once per screen size and text scale; DOCS '-' for a folder of sample documents) indexes DOCS with the real engine and default model, asks a question, then visits each
screen — the answer with its source cards, search only with filters, the chat list, Settings, Export,
destinations, the audit trail, Diagnostics, Health, ratings, the dark and high-contrast themes — saving
`<OUT_DIR>/<screen>.png`, checking each, and exiting 1 when a problem was found (they are printed).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QLabel,
    QLayout,
    QMenuBar,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTextEdit,
    QWidget,
)

QUESTION = "What is the rotational life of the wirewound potentiometer?"


def _inside_scroll_area(widget: QWidget) -> bool:
    """Content that scrolls (the citation chips, a table's cells) may be wider than what shows of it."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea) or (
            isinstance(parent, QAbstractScrollArea) and widget is not parent
        ):
            return True
        parent = parent.parentWidget()
    return False


def _text_width(label: QLabel) -> int:
    text = label.text()
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and "<" in text and ">" in text
    )
    if rich:
        doc = QTextDocument()
        doc.setDefaultFont(label.font())
        doc.setHtml(text)
        doc.setDocumentMargin(0)
        return int(doc.idealWidth())
    return max((label.fontMetrics().horizontalAdvance(line) for line in text.splitlines()), default=0)


def layout_problems(top: QWidget) -> list[str]:
    """Text cut by its control (a label, button, check box or combo box narrower than its text) and
    visible widgets reaching outside `top`, by name, for a top-level window or dialog."""
    problems = []
    frame = QRect(0, 0, top.width(), top.height())
    for widget in [top, *top.findChildren(QWidget)]:
        if not widget.isVisible() or widget.window() is not top or isinstance(widget, QMenuBar):
            continue
        name = widget.accessibleName() or type(widget).__name__
        if widget is not top:
            rect = QRect(widget.mapTo(top, widget.rect().topLeft()), widget.size())
            if not frame.contains(rect) and not _inside_scroll_area(widget):
                problems.append(f"{name} reaches outside the window ({rect.getRect()} in {frame.getRect()})")
        if isinstance(widget, QScrollArea) and widget.widget() is not None:
            no_bar = widget.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
            needed = widget.widget().sizeHint().height()
            if no_bar and needed > widget.viewport().height() + 1:  # a row that scrolls sideways only
                problems.append(f"{name} cut at the bottom ({needed} > {widget.viewport().height()})")
        if isinstance(widget, (QTextEdit, QPlainTextEdit)) and widget.placeholderText():
            empty = not widget.toPlainText()
            width = widget.fontMetrics().horizontalAdvance(widget.placeholderText())
            if empty and width > widget.viewport().width() - 8:  # Qt draws a placeholder on one line
                problems.append(
                    f"placeholder {widget.placeholderText()[:50]!r} cut ({width} > {widget.viewport().width()})"
                )
        if _inside_scroll_area(widget):
            continue
        if isinstance(widget, QLabel) and widget.text() and not widget.wordWrap():
            if hasattr(widget, "fully_shown"):  # an eliding label says so itself, with a tooltip
                continue
            width = _text_width(widget)
            if width > widget.contentsRect().width() + 1:
                problems.append(
                    f"label {widget.text()[:60]!r} cut ({width} > {widget.contentsRect().width()})"
                )
        elif isinstance(widget, (QPushButton, QCheckBox)) and widget.text():
            if widget.sizeHint().width() > widget.width() + 1:
                problems.append(
                    f"button {widget.text()!r} cut ({widget.sizeHint().width()} > {widget.width()})"
                )
        elif isinstance(widget, QComboBox) and widget.currentText():
            needed = widget.fontMetrics().horizontalAdvance(widget.currentText()) + 24
            if (
                needed > widget.width()
                and widget.sizeAdjustPolicy()
                != QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            ):
                problems.append(f"combo box {widget.currentText()!r} cut ({needed} > {widget.width()})")
        elif isinstance(widget, QAbstractButton) and widget.height() < 8:
            problems.append(f"{name} squeezed to {widget.height()} px")
        problems += _overlaps(widget)
    return problems


def _overlaps(parent: QWidget) -> list[str]:
    """Controls laid out on top of each other (a row drawn under the question box, say): visible
    siblings in one layout whose rectangles intersect."""
    layout = parent.layout()
    if layout is None or isinstance(parent, QStackedWidget):
        return []
    children = [
        w
        for w in parent.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
        if w.isVisible() and (layout.indexOf(w) >= 0 or _in_nested_layout(layout, w))
    ]
    found = []
    for i, first in enumerate(children):
        for second in children[i + 1 :]:
            overlap = first.geometry().intersected(second.geometry())
            if overlap.width() > 1 and overlap.height() > 1:
                found.append(
                    f"{first.accessibleName() or type(first).__name__} and "
                    f"{second.accessibleName() or type(second).__name__} overlap ({overlap.getRect()})"
                )
    return found


def _in_nested_layout(layout: QLayout, widget: QWidget) -> bool:
    for index in range(layout.count()):
        item = layout.itemAt(index)
        inner = item.layout() if item is not None else None
        if inner is not None and (inner.indexOf(widget) >= 0 or _in_nested_layout(inner, widget)):
            return True
    return False


def wait(app: QApplication, condition: Callable[[], object], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {condition}")
        app.processEvents()
        time.sleep(0.01)


def settle(app: QApplication, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def sample_folder(folder: Path, emails: int = 0) -> Path:
    """A small folder as a user has one: readable PDFs and a DOCX, an encrypted PDF, an image-only PDF (OCR
    finds no text), a broken PDF, and `emails` e-mails."""
    import shutil

    from tests.conftest import CORPUS, PDFS

    folder.mkdir(parents=True, exist_ok=True)
    for name in (
        "unreadablemetadata.pdf",
        "pdflatex-4-pages.pdf",
        "google-doc-document.pdf",
        "libreoffice-writer-password.pdf",
        "grayscale-image.pdf",
    ):
        shutil.copy(next(PDFS.rglob(name)), folder / name)
    shutil.copy(CORPUS / "docx-samples" / "par-known-paragraphs.docx", folder)
    for mail in sorted((CORPUS / "email-samples").glob("*.eml"))[:emails]:
        shutil.copy(mail, folder / mail.name)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj garbage")
    return folder


def main(docs: str, out_dir: str) -> int:
    from sealroom.desktop import ops
    from sealroom.desktop.dialogs import DiagnosticsDialog, SettingsDialog
    from sealroom.desktop.export_ui import AuditDialog, DestinationsDialog, ExportDialog
    from sealroom.desktop.host import EngineHost
    from sealroom.desktop.window import MainWindow

    app = QApplication([])
    ops.install()
    host = EngineHost()
    window = MainWindow(host)
    window.tray = None
    window.show()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}

    def shot(name: str, widget: QWidget | None = None) -> None:
        widget = widget or window
        settle(app)
        found = layout_problems(widget)
        if found:
            problems[name] = found
        screen = app.primaryScreen()
        image = screen.grabWindow(0) if os.environ.get("DISPLAY") else widget.grab()
        image.save(str(out / f"{name}.png"), "PNG")

    host.start()
    wait(app, lambda: host.engine is not None)
    shot("welcome")
    if docs == "-":
        docs = str(sample_folder(Path(os.environ["SEALROOM_HOME"]).parent / "Documents", emails=2))
    window.add_folder(docs)
    wait(app, lambda: window.sidebar.folders.count() == 1)
    wait(app, lambda: window.sidebar.indexing.status.text().startswith("Up to date"))
    settle(app, 1.0)
    if window.alert_label.text():  # a fresh start over readable documents has nothing to alert about
        problems["alerts"] = [
            f"alert on a fresh start: {window.alert_label.toolTip() or window.alert_label.text()}"
        ]
    wait(
        app,
        lambda: (
            window.model_label.text().startswith("Model: ") and "loading" not in window.model_label.text()
        ),
    )
    conv = window.conversation
    panes: dict[str, list[int]] = {"before the question": window.splitter.sizes()}
    conv.question.setPlainText(QUESTION)
    conv.submit()
    wait(app, lambda: not conv.busy or bool(conv.entries and conv.entries[-1].text))
    settle(app, 0.1)
    panes["while the answer streams"] = window.splitter.sizes()
    wait(app, lambda: not conv.busy)
    settle(app, 0.2)
    panes["with the answer"] = window.splitter.sizes()
    if conv.chip_buttons:
        conv.chip_buttons[0].click()
        wait(app, lambda: bool(window.preview.highlighted), 30)
    shot("answer")
    conv.search_only.setChecked(True)
    conv.type_filter.setCurrentIndex(1)  # PDF
    conv.question.setPlainText("potentiometer power rating")
    conv.submit()
    wait(app, lambda: not conv.busy)
    shot("search-only")
    panes["with search results"] = window.splitter.sizes()
    conv.search_only.setChecked(False)
    window.new_chat()
    settle(app, 0.2)
    panes["in a new chat"] = window.splitter.sizes()
    window.open_chat(int(window.sidebar.all_chats[0]["id"]))
    wait(app, lambda: window.chat_id is not None and not conv.state.text())
    settle(app, 0.3)
    panes["back in the first chat"] = window.splitter.sizes()
    first = next(iter(panes.values()))
    moved = [f"{when}: {sizes} (were {first})" for when, sizes in panes.items() if sizes != first]
    if moved:
        problems["pane widths"] = moved
    window.sidebar.chat_search.setText("rotational")
    shot("chat-search")
    window.sidebar.chat_search.clear()
    for name, make in (
        ("settings", lambda: SettingsDialog(window, host)),
        ("export", lambda: ExportDialog(window, host, "this answer")),
        ("destinations", lambda: DestinationsDialog(window, host)),
        ("audit", lambda: AuditDialog(window, host)),
        ("diagnostics", lambda: DiagnosticsDialog(window, host)),
    ):
        dialog: QDialog = make()
        dialog.show()
        settle(app, 1.5)  # their reads come back off the GUI thread
        if isinstance(dialog, SettingsDialog):
            wait(app, lambda d=dialog: d.table.rowCount() > 0, 60)
        shot(name, dialog)
        dialog.close()
    window.feedback.open_health()
    settle(app, 2.0)
    health = window.feedback.health
    if health is not None:
        shot("health", health)
        health.close()
    window.feedback.open_ratings()
    settle(app, 1.0)
    for dialog in app.topLevelWidgets():
        if isinstance(dialog, QDialog) and dialog.isVisible():
            shot("ratings", dialog)
            dialog.close()
    for theme in ("dark", "contrast"):
        window.set_theme(theme)
        shot(f"theme-{theme}")
    window.set_theme("system")
    for name, found in problems.items():
        for problem in found:
            print(f"{name}: {problem}")
    print(f"{len(list(out.glob('*.png')))} screenshots in {out}; {sum(map(len, problems.values()))} problems")
    window.quitting = True
    host.shutdown()
    return 1 if problems else 0


def under_xvfb(size: str, docs: str, out_dir: str, env: dict[str, str] | None = None) -> int:
    """Run `main` in a new process on its own Xvfb screen of `size` ('1366x768'); its exit code. Its
    output (the problems found) goes to this process's stdout."""
    import subprocess

    read, write = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size}x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as f:
            display = f":{f.readline().strip()}"
        env = dict(env or os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb")
        root = Path(__file__).resolve().parents[2]
        run = subprocess.run(
            [sys.executable, "-m", "tests.desktop.screens", docs, out_dir], env=env, cwd=root, timeout=900
        )
        return run.returncode
    finally:
        xvfb.terminate()
        xvfb.wait(10)


if __name__ == "__main__":
    if sys.argv[1] == "--xvfb":
        sys.exit(under_xvfb(sys.argv[2], sys.argv[3], sys.argv[4]))
    sys.exit(main(sys.argv[1], sys.argv[2]))
