"""Help › Health: the figures of `sealroom report --html` as live charts, the alerts with what to do, and the
last drift check with a way back. The window only shows what it is given; the feedback wiring fetches it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QWheelEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from sealroom.core.feedback.regression import settings_text
from sealroom.core.feedback.report import BLUE, GREEN, ORANGE, RED  # the report's hues

NO_DATA = "no data yet"
PERIODS = (7, 30, 90)
CHART_HEIGHT = 190
COLUMNS = 3  # charts per row: two rows of three fit the window at 1366×768 without scrolling
DAY_S = 86400.0
STATUS_COLOURS = {"worse": RED, "better": GREEN}

#: The drift table's order: what got worse first, then better, then answered otherwise, then the same.
ORDER = {"worse": 0, "better": 1, "changed": 2, "same": 3}


class Chart(pg.PlotWidget):
    """A small chart in a scrolling page: the wheel scrolls the page, it does not zoom the chart."""

    def wheelEvent(self, event: QWheelEvent) -> None:
        event.ignore()


class HealthWindow(QDialog):
    period_changed = Signal(int)  # days
    check_requested = Signal()
    revert_requested = Signal()

    def __init__(self, history: dict[str, Any], drift: dict[str, Any] | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Health — Sealroom")
        self.setAccessibleName("Health")
        pg.setConfigOptions(antialias=True)
        self.days = 30
        self.charts: dict[str, Chart] = {}
        self.no_data: set[str] = set()  # the charts showing "no data yet"
        self.alert_labels: list[QLabel] = []

        self.header = _label("", "Period", bold=True)
        self.figures = _label("", "Summary figures")
        self.period = QComboBox()
        self.period.setAccessibleName("Period shown")
        for days in PERIODS:
            self.period.addItem(f"Last {days} days", days)
        self.period.activated.connect(self._period_chosen)
        show = QLabel("Show")
        show.setAccessibleName("Show")
        show.setBuddy(self.period)
        top = QHBoxLayout()
        top.addWidget(self.header, 1)
        top.addWidget(show)
        top.addWidget(self.period)

        page = QWidget()
        page.setAccessibleName("Health charts, alerts and drift")
        self.grid = QGridLayout()
        self.grid.setSpacing(10)
        self.cards: dict[str, tuple[QLabel, QVBoxLayout]] = {}
        for i, (key, title) in enumerate(CHARTS):
            frame = QFrame()
            frame.setFrameShape(QFrame.Shape.StyledPanel)
            frame.setAccessibleName(title)
            caption = _label("", f"{title}: legend")
            caption.setTextFormat(Qt.TextFormat.RichText)
            box = QVBoxLayout(frame)
            box.setContentsMargins(6, 6, 6, 6)
            box.addWidget(caption)
            self.cards[key] = (caption, box)
            self.grid.addWidget(frame, i // COLUMNS, i % COLUMNS)
        for column in range(COLUMNS):
            self.grid.setColumnStretch(column, 1)

        alerts = QGroupBox("Alerts")
        alerts.setAccessibleName("Alerts")
        self.alerts_box = QVBoxLayout(alerts)

        drift_box = QGroupBox("Drift: do your rated answers still come out right?")
        drift_box.setAccessibleName("Drift")
        self.drift_summary = _label("", "Drift summary", bold=True)
        self.drift_figures = _label("", "Drift figures")
        self.drift_table = QTableWidget(0, 5)
        self.drift_table.setAccessibleName("Rated answers that changed")
        self.drift_table.setHorizontalHeaderLabels(["Question", "It must", "Before", "After", "Status"])
        self.drift_table.verticalHeader().setVisible(False)
        self.drift_table.setWordWrap(True)
        self.drift_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.drift_table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.drift_table.horizontalHeader()
        header.sectionResized.connect(self._fit_table)  # new column widths wrap the text differently
        for column, mode in enumerate((1, 1, 1, 1, 0)):
            header.setSectionResizeMode(
                column, QHeaderView.ResizeMode.Stretch if mode else QHeaderView.ResizeMode.ResizeToContents
            )
        self.check = QPushButton("Check now")
        self.check.setAccessibleName("Check the rated answers now")
        self.check.setToolTip("Ask every rated question again and compare with the last check")
        self.check.clicked.connect(self.check_requested)
        self.revert = QPushButton("Go back")
        self.revert.setAccessibleName("Go back to the settings before the regression")
        self.revert.clicked.connect(self._go_back)
        buttons = QHBoxLayout()
        buttons.addWidget(self.check)
        buttons.addWidget(self.revert)
        buttons.addStretch(1)
        inner = QVBoxLayout(drift_box)
        inner.addWidget(self.drift_summary)
        inner.addWidget(self.drift_figures)
        inner.addWidget(self.drift_table)
        inner.addLayout(buttons)

        content = QVBoxLayout(page)
        content.addWidget(self.figures)
        content.addLayout(self.grid)
        content.addWidget(alerts)
        content.addWidget(drift_box)
        content.addStretch(1)
        self.scroll_area = QScrollArea()
        self.scroll_area.setAccessibleName("Health")
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setWidget(page)

        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.setAccessibleName("Close")
        close.button(QDialogButtonBox.StandardButton.Close).setAccessibleName("Close the Health window")
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.scroll_area, 1)
        layout.addWidget(close)
        self.resize(1100, 700)
        self.show_data(history, drift)

    # --- data -------------------------------------------------------------------------------------
    def show_data(self, history: dict[str, Any], drift: dict[str, Any] | None) -> None:
        """Redraw everything from `Feedback.history()` and the last drift report (None before any check)."""
        self.days = int(history.get("days") or 30)
        if self.period.findData(self.days) < 0:
            self.period.addItem(f"Last {self.days} days", self.days)
        self.period.setCurrentIndex(self.period.findData(self.days))
        end = dt.datetime.now().timestamp()
        start = end - self.days * DAY_S
        self.header.setText(f"Health over the last {self.days} days ({_date(start)} to {_date(end)})")
        self.figures.setText(_figures_text(history))
        self.no_data.clear()
        for key, title in CHARTS:
            self._draw(key, title, history, start, end)
        self._show_alerts(history.get("alerts") or [])
        self._show_drift(drift)

    def _go_back(self) -> None:
        self.revert.setEnabled(False)  # once: the next show_data says whether there is still a way back
        self.revert_requested.emit()

    def _period_chosen(self, index: int) -> None:
        days = int(self.period.itemData(index))
        if days != self.days:
            self.period_changed.emit(days)

    def _draw(self, key: str, title: str, history: dict[str, Any], start: float, end: float) -> None:
        """A new plot each time: twin axes and bar items leave nothing behind for the next period."""
        caption, box = self.cards[key]
        old = self.charts.pop(key, None)
        if old is not None:
            box.removeWidget(old)
            old.deleteLater()
        dated = key in ("files", "disk")
        chart = Chart(axisItems={"bottom": pg.DateAxisItem(orientation="bottom")} if dated else None)
        chart.setAccessibleName(f"Chart: {title}")
        chart.setMinimumWidth(220)
        chart.setFixedHeight(CHART_HEIGHT)  # small multiples: the page scrolls, the charts do not stretch
        chart.setBackground(self.palette().base().color())
        chart.setMenuEnabled(False)
        chart.setMouseEnabled(x=False, y=False)
        chart.hideButtons()
        ink = self.palette().text().color()
        for side in ("left", "bottom", "right"):
            axis = chart.getAxis(side)
            axis.setPen(pg.mkPen(ink))
            axis.setTextPen(pg.mkPen(ink))
        legend = DRAW[key](chart, history, _Period(start, end, self._bright()))
        caption.setText(f"<b>{title}</b>" + (f"<br>{legend}" if legend else ""))
        if not legend:
            self.no_data.add(key)
            text = pg.TextItem(NO_DATA, color=ink, anchor=(0.5, 0.5))
            chart.addItem(text)
            text.setPos(0.5, 0.5)
            chart.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            chart.hideAxis("left")
            chart.hideAxis("bottom")
        chart.setAccessibleDescription(caption.text() if legend else NO_DATA)
        box.addWidget(chart, 1)
        self.charts[key] = chart

    def _bright(self) -> bool:
        """Darker ink on a light page, lighter on a dark one: the same hues stay readable on both."""
        return self.palette().base().color().lightness() < 128

    def _show_alerts(self, alerts: list[dict[str, Any]]) -> None:
        for label in self.alert_labels:
            self.alerts_box.removeWidget(label)
            label.deleteLater()
        self.alert_labels = []
        for alert in alerts:
            message = _label(str(alert.get("message", "")), "Alert", bold=True)
            fix = _label(str(alert.get("fix", "")), "What to do")
            fix.setIndent(16)
            self.alert_labels += [message, fix]
        if not alerts:
            self.alert_labels.append(_label("No alerts", "No alerts"))
        for label in self.alert_labels:
            self.alerts_box.addWidget(label)

    def _show_drift(self, drift: dict[str, Any] | None) -> None:
        table = self.drift_table
        table.setRowCount(0)
        regression = bool(drift and drift.get("regression"))
        can_revert = bool(drift and drift.get("regression") and drift.get("revertible"))
        self.revert.setEnabled(can_revert)
        self.revert.setToolTip(
            "Put back: " + settings_text((drift or {})["revertible"])
            if can_revert
            else "Nothing to go back from: the last check found no regression"
        )
        if not drift:
            self.drift_summary.setText("No check yet: rate a few answers, then use Check now.")
            self.drift_figures.setText("")
            self.drift_figures.hide()
            table.hide()
            return
        summary = str(drift.get("summary", ""))
        if drift.get("dismissed"):
            summary += " (dismissed)"
        self.drift_summary.setText(summary)
        self.drift_summary.setStyleSheet(f"color: {_ink(RED, self._bright())};" if regression else "")
        f = drift.get("figures") or {}
        self.drift_figures.setText(
            f"Right: {f.get('passed_before', '–')} → {f.get('passed_after', '–')} of {f.get('items', '–')}; "
            f"declined: {f.get('declined_before', '–')} → {f.get('declined_after', '–')}"
        )
        self.drift_figures.show()
        moved = sorted(drift.get("items") or [], key=lambda item: ORDER.get(str(item.get("status")), 9))
        table.setVisible(bool(moved))  # every item, before and after; the ones that moved first
        for item in moved:
            row = table.rowCount()
            table.insertRow(row)
            status = str(item.get("status", ""))
            cells = [
                str(item.get("question", "")),
                str(item.get("expect", "")),
                _side(item.get("before") or {}),
                _side(item.get("after") or {}),
                status,
            ]
            for column, text in enumerate(cells):
                cell = QTableWidgetItem(text)
                cell.setToolTip(text)
                if column == 4 and status in STATUS_COLOURS:
                    cell.setForeground(QColor(_ink(STATUS_COLOURS[status], self._bright())))
                table.setItem(row, column, cell)
        self._fit_table()

    def _fit_table(self, *_: object) -> None:
        """As tall as its rows (the page scrolls, not the table), each row as tall as its wrapped text."""
        table = self.drift_table
        table.resizeRowsToContents()
        for row in range(table.rowCount()):
            table.setRowHeight(row, table.rowHeight(row) + 8)  # air above and below the wrapped text
        height = table.horizontalHeader().height() + 2 * table.frameWidth()
        height += sum(table.rowHeight(r) for r in range(table.rowCount()))
        table.setFixedHeight(height)


# --- the six charts ---------------------------------------------------------------------------------
class _Period:
    def __init__(self, start: float, end: float, bright: bool) -> None:
        self.start, self.end, self.bright = start, end, bright
        self.first_day = dt.date.fromtimestamp(start)

    def x(self, day: str) -> float:
        return float((dt.date.fromisoformat(day) - self.first_day).days)

    def colour(self, hue: str) -> QColor:
        return QColor(_ink(hue, self.bright))


def _day_axis(chart: Chart, period: _Period, xs: list[float]) -> None:
    """Day labels under the daily charts (a few, so they never overlap), over the whole period."""
    last = max([period.x(dt.date.fromtimestamp(period.end).isoformat()), *xs])
    first = min([0.0, *xs])
    step = max(1, math.ceil((last - first) / 5))
    ticks = []
    for n in range(int(first), int(last) + 1, step):
        day = period.first_day + dt.timedelta(days=n)
        ticks.append((float(n), f"{day.day} {day:%b}"))
    chart.getAxis("bottom").setTicks([ticks])
    chart.setXRange(first - 0.6, last + 0.6, padding=0)


def _counts(chart: Chart, side: str, top: float, view: Any = None) -> None:
    """Whole-number ticks on a count axis (pyqtgraph would put 0.5 exports on it), 0 to a little above top."""
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    chart.getAxis(side).setTicks([[(float(v), f"{v:,}") for v in range(0, int(top) + step, step)]])
    (view or chart).setYRange(0, top * 1.1, padding=0)


def _swatch(colour: QColor, text: str, dashed: bool = False) -> str:
    mark = "╌" if dashed else "■"
    return f'<span style="color:{colour.name()}">{mark}</span>&nbsp;{text}'


def _use(chart: Chart, history: dict[str, Any], period: _Period) -> str:
    rows = history.get("daily") or []
    if not rows:
        return ""
    xs = [period.x(r["day"]) for r in rows]
    asked, declined = period.colour(BLUE), period.colour(ORANGE)
    q = [float(r.get("questions") or 0) for r in rows]
    chart.addItem(pg.BarGraphItem(x=xs, height=q, width=0.8, brush=asked, pen=None))
    d = [float(r.get("declined") or 0) for r in rows]
    chart.addItem(pg.BarGraphItem(x=xs, height=d, width=0.5, brush=declined, pen=None))
    _counts(chart, "left", max([*q, 1.0]))
    _day_axis(chart, period, xs)
    return _swatch(asked, "questions") + " &nbsp; " + _swatch(declined, "declined")


def _latency(chart: Chart, history: dict[str, Any], period: _Period) -> str:
    rows = history.get("daily") or []
    keys = ("first_text_p50_ms", "total_p50_ms", "total_p95_ms")
    if not any(r.get(k) is not None for r in rows for k in keys):
        return ""
    xs = [period.x(r["day"]) for r in rows]
    legend, top = [], 1.0
    for key, label, hue, dashed in (
        (keys[0], "first text p50", GREEN, False),
        (keys[1], "answer p50", BLUE, False),
        (keys[2], "answer p95", RED, True),
    ):
        colour = period.colour(hue)
        ys = [math.nan if r.get(key) is None else r[key] / 1000 for r in rows]
        style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
        chart.plot(
            xs,
            ys,
            pen=pg.mkPen(colour, width=2, style=style),
            symbol="o",
            symbolSize=4,
            symbolBrush=colour,
            symbolPen=None,
            connect="finite",
        )
        top = max([top, *(y for y in ys if not math.isnan(y))])
        legend.append(_swatch(colour, label, dashed))
    chart.setYRange(0, top * 1.1, padding=0)
    chart.setLabel("left", "seconds")
    _day_axis(chart, period, xs)
    return " &nbsp; ".join(legend)


def _ratings(chart: Chart, history: dict[str, Any], period: _Period) -> str:
    rows = history.get("daily") or []
    good = [float(r.get("ratings_good") or 0) for r in rows]
    bad = [float(r.get("ratings_bad") or 0) for r in rows]
    if not any(good) and not any(bad):
        return ""
    xs = [period.x(r["day"]) for r in rows]
    helpful, unhelpful = period.colour(GREEN), period.colour(RED)
    chart.addItem(pg.BarGraphItem(x=xs, height=good, width=0.8, brush=helpful, pen=None))
    chart.addItem(pg.BarGraphItem(x=xs, y0=good, height=bad, width=0.8, brush=unhelpful, pen=None))
    _counts(chart, "left", max(g + b for g, b in zip(good, bad, strict=True)))
    _day_axis(chart, period, xs)
    return _swatch(helpful, "helpful") + " &nbsp; " + _swatch(unhelpful, "not helpful")


def _two_gauges(left: tuple[str, str, str], right: tuple[str, str, str]) -> Callable[..., str]:
    """Two sampled gauges over time, each on its own scale (left and right axes)."""

    def draw(chart: Chart, history: dict[str, Any], period: _Period) -> str:
        gauges = history.get("gauges") or {}
        if not gauges.get(left[0]) and not gauges.get(right[0]):
            return ""
        main = chart.getPlotItem()
        twin = pg.ViewBox()
        twin.setMouseEnabled(x=False, y=False)
        main.showAxis("right")
        main.scene().addItem(twin)
        main.getAxis("right").linkToView(twin)
        twin.setXLink(main)

        def follow() -> None:
            twin.setGeometry(main.vb.sceneBoundingRect())

        main.vb.sigResized.connect(follow)
        legend = []
        for view, axis, (key, label, hue) in ((main.vb, "left", left), (twin, "right", right)):
            series = gauges.get(key) or []
            colour = period.colour(hue)
            if series:
                xs = [float(t) for t, _ in series]
                ys = [float(v) for _, v in series]
                marks = (
                    {"symbol": "o", "symbolSize": 5, "symbolBrush": colour, "symbolPen": None}
                    if len(xs) < 3
                    else {}
                )
                view.addItem(
                    pg.PlotDataItem(xs, ys, pen=pg.mkPen(colour, width=2), **marks)
                )  # few samples: dots
                if key == "disk_free_gb":
                    view.setYRange(0, max([*ys, 1.0]) * 1.1, padding=0)
                else:  # counts: no half files
                    _counts(chart, axis, max([*ys, 1.0]), view)
            chart.getAxis(axis).setTextPen(pg.mkPen(colour))
            legend.append(_swatch(colour, f"{label} ({axis})"))
        times = [float(t) for key in (left[0], right[0]) for t, _ in gauges.get(key) or []]
        chart.setXRange(min([period.start, *times]), max([period.end, *times]), padding=0.02)
        follow()
        return " &nbsp; ".join(legend)

    return draw


def _checks(chart: Chart, history: dict[str, Any], period: _Period) -> str:
    runs = history.get("runs") or []
    if not runs:
        return ""
    xs = [float(i) for i in range(len(runs))]
    total, right = QColor("#9a9a9a"), period.colour(BLUE)
    chart.addItem(pg.BarGraphItem(x=xs, height=[r["items"] for r in runs], width=0.7, brush=total, pen=None))
    chart.addItem(pg.BarGraphItem(x=xs, height=[r["passed"] for r in runs], width=0.7, brush=right, pen=None))
    step = max(1, math.ceil(len(runs) / 5))
    ticks = [(x, dt.datetime.fromtimestamp(runs[int(x)]["at"]).strftime("%d %b")) for x in xs[::step]]
    chart.getAxis("bottom").setTicks([ticks])
    chart.setXRange(-0.6, len(runs) - 0.4, padding=0)
    _counts(chart, "left", max([r["items"] for r in runs] + [1]))
    return _swatch(right, "right") + " &nbsp; " + _swatch(total, "of the saved questions")


CHARTS = (
    ("use", "Questions and declined, per day"),
    ("latency", "Seconds to first text and to the answer, per day"),
    ("ratings", "Ratings, per day"),
    ("files", "Files indexed and failed"),
    ("disk", "Disk free and exports waiting"),
    ("checks", "Rated answers right, per check"),
)
DRAW: dict[str, Callable[[Chart, dict[str, Any], _Period], str]] = {
    "use": _use,
    "latency": _latency,
    "ratings": _ratings,
    "files": _two_gauges(("files_indexed", "indexed", BLUE), ("files_failed", "failed", RED)),
    "disk": _two_gauges(("disk_free_gb", "GB free", GREEN), ("outbox_waiting", "exports waiting", ORANGE)),
    "checks": _checks,
}


# --- small helpers ----------------------------------------------------------------------------------
def _label(text: str, name: str, bold: bool = False) -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # an alert or a question is text, never markup
    label.setWordWrap(True)
    label.setAccessibleName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if bold:
        font = label.font()
        font.setBold(True)
        label.setFont(font)
    return label


def _ink(hue: str, bright: bool) -> str:
    """The Okabe-Ito hue, lightened on a dark background so it keeps its contrast."""
    return QColor(hue).lighter(150).name() if bright else hue


def _date(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d")


def _seconds(ms: float | None) -> str:
    return "–" if ms is None else f"{ms / 1000:.2f} s"


def _figures_text(history: dict[str, Any]) -> str:
    rows = history.get("daily") or []
    if not rows:
        return "No questions asked in this time."

    def total(key: str) -> int:
        return sum(int(r.get(key) or 0) for r in rows)

    def median(key: str) -> float | None:
        values = sorted(float(r[key]) for r in rows if r.get(key) is not None)
        if not values:
            return None
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

    return (
        f"{total('questions'):,} questions, {total('declined'):,} declined; "
        f"{total('ratings_good'):,} rated helpful, {total('ratings_bad'):,} not helpful. "
        f"On a typical day the first text came in {_seconds(median('first_text_p50_ms'))} and the answer "
        f"in {_seconds(median('total_p50_ms'))} (p95 {_seconds(median('total_p95_ms'))})."
    )


def _side(side: dict[str, Any]) -> str:
    verdict = "right" if side.get("passed") else "wrong"
    if side.get("abstained"):
        verdict += ", declined"
    answer = " ".join(str(side.get("answer") or "").split())
    if len(answer) > 200:
        answer = answer[:199] + "…"
    return f"{answer}\n({side.get('model') or 'quotes only'} — {verdict})"
