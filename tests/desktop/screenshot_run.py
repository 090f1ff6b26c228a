"""Run the real app on a display, ask a real question, follow a citation, save a screenshot.

Used by test_screenshot.py under Xvfb: `python -m tests.desktop.screenshot_run DOCS OUT.png`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication

from sealroom.desktop import ops
from sealroom.desktop.host import EngineHost
from sealroom.desktop.window import MainWindow

QUESTION = "What is the rotational life of the wirewound potentiometer?"


def wait(app: QApplication, condition, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {condition}")
        app.processEvents()
        time.sleep(0.01)


def main(docs: str, out: str) -> int:
    app = QApplication([])
    ops.install()
    host = EngineHost()
    window = MainWindow(host)
    window.show()
    host.start()
    wait(app, lambda: host.engine is not None)
    window.add_folder(docs)
    wait(
        app,
        lambda: (
            window.sidebar.folders.count() == 1 and "pending" not in window.sidebar.folders.item(0).text()
        ),
    )
    wait(app, lambda: window.sidebar.indexing.status.text().startswith("Up to date"))
    wait(app, lambda: window.model_label.text().startswith("Model: ready"))
    window.conversation.question.setPlainText(QUESTION)
    window.conversation.submit()
    wait(app, lambda: not window.conversation.busy)
    if window.conversation.chip_buttons:
        window.conversation.chip_buttons[0].click()
        wait(app, lambda: bool(window.preview.highlighted), 30)
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # let the last paint reach the X server
        app.processEvents()
        time.sleep(0.02)
    shot = app.primaryScreen().grabWindow(0)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    ok = shot.save(out, "PNG")
    print(f"screenshot {out} {shot.width()}x{shot.height()} answer: {window.conversation.entries[-1].text!r}")
    window.quitting = True
    host.shutdown()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
