"""Help › Health: charts, alerts and the drift check, shown from the data the feedback loop gives it."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLabel, QTableWidget, QWidget

from sealroom.desktop.health import HealthWindow
from tests.core.test_report import drift_with_a_worse_item, history_with_data

EMPTY: dict[str, Any] = {"days": 7, "daily": [], "gauges": {}, "runs": [], "alerts": []}


def open_window(qtbot, history: dict[str, Any], drift: dict[str, Any] | None) -> HealthWindow:
    window = HealthWindow(history, drift)
    qtbot.addWidget(window)
    return window


def test_the_window_shows_every_chart_with_the_data(qtbot):
    window = open_window(qtbot, history_with_data(), drift_with_a_worse_item())
    window.show()
    qtbot.waitExposed(window)
    assert window.windowTitle() == "Health — Sealroom"
    assert "last 30 days" in window.header.text()
    assert "72 questions" in window.figures.text()
    assert window.no_data == set()
    assert len(window.charts) == 6
    bars = [i for i in window.charts["use"].getPlotItem().items if isinstance(i, pg.BarGraphItem)]
    assert len(bars) == 2  # questions and declined
    assert list(bars[0].opts["height"]) == [19, 16, 15, 12, 10]


def test_charts_without_data_say_so(qtbot):
    window = open_window(qtbot, EMPTY, None)
    assert window.no_data == {"use", "latency", "ratings", "files", "disk", "checks"}
    for chart in window.charts.values():
        texts = [i for i in chart.getPlotItem().items if isinstance(i, pg.TextItem)]
        assert [t.toPlainText() for t in texts] == ["no data yet"]
    assert [label.text() for label in window.alert_labels] == ["No alerts"]
    assert window.period.currentData() == 7


def test_alerts_show_each_message_as_text_with_what_to_do_below(qtbot):
    window = open_window(qtbot, history_with_data(), None)
    texts = [label.text() for label in window.alert_labels]
    assert texts == [
        "2 exports have waited more than 24 hours (the oldest 30 h) & <counting>",
        "check the destination is reachable (Export › Outbox, or `sealroom outbox`)",
    ]
    assert all(label.textFormat() == Qt.TextFormat.PlainText for label in window.alert_labels)


def test_the_drift_table_lists_every_item_what_moved_first(qtbot):
    drift = drift_with_a_worse_item()
    drift["items"].append({**drift["items"][0], "id": 9, "question": "When is rent due?", "status": "better"})
    window = open_window(qtbot, history_with_data(), drift)
    table = window.drift_table
    assert table.rowCount() == 3  # every item, before and after; what moved first
    questions = [table.item(r, 0).text() for r in range(3)]
    assert questions == [drift["items"][0]["question"], "When is rent due?", "Who pays the deposit?"]
    assert [table.item(r, 4).text() for r in range(3)] == ["worse", "better", "same"]
    assert table.item(0, 1).text() == "cites the passage you chose"
    assert table.item(0, 2).text() == "Three months [1].\n(gemma.gguf — right)"
    assert table.item(0, 3).text() == "Not in your documents.\n(qwen.gguf — wrong, declined)"
    assert window.drift_summary.text().startswith("Regression: 15 of 20")


@pytest.mark.parametrize(
    ("change", "enabled"),
    [
        ({}, True),
        ({"revertible": {}}, False),
        ({"regression": False}, False),
    ],
)
def test_go_back_is_offered_only_after_a_regression_with_settings_to_put_back(qtbot, change, enabled):
    window = open_window(qtbot, history_with_data(), {**drift_with_a_worse_item(), **change})
    assert window.revert.isEnabled() is enabled
    window.show_data(history_with_data(), None)
    assert not window.revert.isEnabled()
    assert not window.drift_table.isVisibleTo(window)


def test_go_back_and_check_now_ask_the_app(qtbot):
    window = open_window(qtbot, history_with_data(), drift_with_a_worse_item())
    window.show()
    with qtbot.waitSignal(window.revert_requested, timeout=1000):
        qtbot.mouseClick(window.revert, Qt.MouseButton.LeftButton)
    assert not window.revert.isEnabled()  # a second click does not go back twice
    with qtbot.waitSignal(window.check_requested, timeout=1000):
        qtbot.mouseClick(window.check, Qt.MouseButton.LeftButton)
    window.show_data(history_with_data(), None)
    with qtbot.assertNotEmitted(window.revert_requested):
        qtbot.mouseClick(window.revert, Qt.MouseButton.LeftButton)


def test_choosing_a_period_asks_for_it_and_showing_it_does_not(qtbot):
    window = open_window(qtbot, history_with_data(30), None)
    window.show()
    with qtbot.waitSignal(window.period_changed, timeout=1000) as chosen:
        qtbot.keyClick(window.period, Qt.Key.Key_Up)  # from "Last 30 days" to "Last 7 days"
    assert chosen.args == [7]
    with qtbot.assertNotEmitted(window.period_changed):
        window.show_data(history_with_data(90), None)
    assert window.period.currentData() == 90 and window.days == 90
    assert "last 90 days" in window.header.text()


def test_every_control_has_an_accessible_name(qtbot):
    window = open_window(qtbot, history_with_data(), drift_with_a_worse_item())
    window.show()
    kinds = (QAbstractButton, QComboBox, QTableWidget, QLabel, pg.PlotWidget)
    unnamed = [
        f"{type(w).__name__} {getattr(w, 'text', lambda: '')()!r}"
        for w in window.findChildren(QWidget)
        if isinstance(w, kinds) and w.isVisible() and not w.accessibleName()
    ]
    assert unnamed == []


def _text_fits(label: QLabel) -> bool:
    if label.textFormat() == Qt.TextFormat.RichText:
        return label.heightForWidth(label.width()) <= label.height() + 2
    if not label.wordWrap():
        return label.sizeHint().width() <= label.width()
    flags = int(label.alignment().value) | int(Qt.TextFlag.TextWordWrap.value)
    room = label.contentsRect().adjusted(max(label.indent(), 0), 0, 0, 0)
    needed = label.fontMetrics().boundingRect(room, flags, label.text())
    return needed.height() <= label.height() + 2 and needed.width() <= room.width() + 2


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (900, 600)])
def test_nothing_is_clipped_at_laptop_and_small_sizes(qtbot, width, height):
    history = history_with_data()
    history["alerts"].append(  # longer than the window is wide, as real alerts are: it must wrap
        {
            "kind": "watcher_restarting",
            "message": "the folder watcher stopped and was restarted 3 times in the last day " * 3,
            "fix": "nothing was missed (a rescan follows each restart); if it keeps happening, see Help › "
            "Diagnostics, where the log of each restart says what stopped it and what to send to IT",
        }
    )
    window = open_window(qtbot, history, drift_with_a_worse_item())
    window.show()
    qtbot.waitExposed(window)
    window.resize(width, height)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == (width, height), timeout=2000)
    qtbot.wait(50)  # the layouts settle (word-wrapped labels take a second pass)
    top_level = window.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)
    outside = [
        type(w).__name__ for w in top_level if w.isVisible() and not window.rect().contains(w.geometry())
    ]
    assert outside == []
    labels = [label for label in window.findChildren(QLabel) if label.isVisible()]
    assert len(labels) >= 14  # header, figures, six captions, four alert lines, drift summary and figures
    clipped = [label.text()[:60] for label in labels if not _text_fits(label)]
    assert clipped == []
    # nothing runs off the right of the page: it scrolls down, never sideways
    viewport = window.scroll_area.viewport()
    page = window.scroll_area.widget()
    assert page.width() <= viewport.width()
    beyond = [
        label.text()[:60]
        for label in labels
        if page.isAncestorOf(label)
        and QRect(label.mapTo(page, QPoint(0, 0)), label.size()).right() > page.rect().right()
    ]
    assert beyond == []
    table = window.drift_table
    assert table.height() >= table.horizontalHeader().height() + sum(
        table.rowHeight(r) for r in range(table.rowCount())
    )
