"""Text size and theme: following the system's light or dark scheme by default, or light, dark or high
contrast as chosen, with the text 70–200 % of the system's size. Kept in `window.json` in the data folder
(the window's own choices, not settings IT manages)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from sealroom.core.runtime.paths import data_dir

THEMES = {"system": "Follow the system", "light": "Light", "dark": "Dark", "contrast": "High contrast"}
SCALES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5, 1.75, 2.0)

# (window, base, alternate base, text, button, highlight, highlighted text, link, mid)
COLOURS = {
    "dark": (
        "#202124",
        "#17181a",
        "#2a2b2e",
        "#e8eaed",
        "#303134",
        "#3d6fd9",
        "#ffffff",
        "#8ab4f8",
        "#5f6368",
    ),
    "contrast": (
        "#000000",
        "#000000",
        "#101010",
        "#ffffff",
        "#000000",
        "#ffff00",
        "#000000",
        "#00ffff",
        "#ffffff",
    ),
}


def palette_of(theme: str) -> QPalette:
    window, base, alternate, text, button, highlight, on_highlight, link, mid = COLOURS[theme]
    palette = QPalette()
    role = QPalette.ColorRole
    for r, colour in (
        (role.Window, window),
        (role.WindowText, text),
        (role.Base, base),
        (role.AlternateBase, alternate),
        (role.Text, text),
        (role.Button, button),
        (role.ButtonText, text),
        (role.ToolTipBase, base),
        (role.ToolTipText, text),
        (role.PlaceholderText, "#9aa0a6" if theme == "dark" else "#ffffff"),
        (role.Highlight, highlight),
        (role.HighlightedText, on_highlight),
        (role.Link, link),
        (role.LinkVisited, link),
        (role.Mid, mid),
        (role.Dark, mid),
        (role.Light, alternate),
        (role.BrightText, "#ffffff"),
    ):
        palette.setColor(r, QColor(colour))
    disabled = "#80868b" if theme == "dark" else "#c0c0c0"
    for r in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, r, QColor(disabled))
    return palette


class Appearance:
    def __init__(self, home: Path | None = None) -> None:
        self.path = (home or data_dir()) / "window.json"
        self.scale, self.theme = 1.0, "system"
        self._base: float | None = None  # the system's text size, before any scaling
        self._style = ""
        self._following = False
        try:
            saved: dict[str, Any] = json.loads(self.path.read_text())
            self.scale = float(saved.get("scale", 1.0))
            self.theme = str(saved.get("theme", "system"))
        except (OSError, ValueError, TypeError):
            pass
        if os.environ.get("SEALROOM_TEXT_SCALE"):  # screenshots at 150 %, a kiosk's larger text
            self.scale = float(os.environ["SEALROOM_TEXT_SCALE"])
        self.scale = min(max(self.scale, SCALES[0]), SCALES[-1])
        if self.theme not in THEMES:
            self.theme = "system"

    def effective_theme(self) -> str:
        """light, dark or contrast: the system's scheme when following it."""
        if self.theme != "system":
            return self.theme
        hints = QGuiApplication.styleHints()
        return "dark" if hints.colorScheme() == Qt.ColorScheme.Dark else "light"

    def apply(self) -> None:
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            return
        if self._base is None:
            self._base = app.font().pointSizeF() if app.font().pointSizeF() > 0 else 10.0
            self._style = app.style().name()
        font = app.font()
        font.setPointSizeF(self._base * self.scale)
        app.setFont(font)
        theme = self.effective_theme()
        if theme == "light":
            app.setStyle(self._style or "Fusion")
            app.setPalette(app.style().standardPalette())
        else:
            app.setStyle("Fusion")  # the style that draws every control from the palette
            app.setPalette(palette_of(theme))
        if not self._following:
            self._following = True
            QGuiApplication.styleHints().colorSchemeChanged.connect(lambda _: self._system_changed())

    def _system_changed(self) -> None:
        if self.theme == "system":
            self.apply()

    def zoom(self, step: int) -> None:
        if step == 0:
            self.scale = 1.0
        else:
            nearest = min(range(len(SCALES)), key=lambda i: abs(SCALES[i] - self.scale))
            self.scale = SCALES[min(max(nearest + step, 0), len(SCALES) - 1)]
        self._save()
        self.apply()

    def set_theme(self, theme: str) -> None:
        self.theme = theme if theme in THEMES else "system"
        self._save()
        self.apply()

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"scale": self.scale, "theme": self.theme}))
        except OSError:
            pass  # a read-only data folder: the choice lasts until the window closes
