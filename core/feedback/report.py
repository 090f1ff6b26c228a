"""`sealroom report`: health over time for a person (text) or a compliance review (HTML with charts), from
`Feedback.history()` and the last drift report (`regression.DriftReport.to_dict()`)."""

from __future__ import annotations

import base64
import html
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sealroom.core.feedback.regression import settings_text


def _ms(value: Any) -> str:
    return "–" if value is None else f"{value / 1000:.2f} s"


def text(history: dict[str, Any], drift: dict[str, Any] | None) -> str:
    rows = history["daily"]
    lines = [f"Sealroom health, last {history['days']} days"]
    if rows:
        q = sum(r["questions"] for r in rows)
        declined = sum(r["declined"] for r in rows)
        good = sum(r.get("ratings_good", 0) for r in rows)
        bad = sum(r.get("ratings_bad", 0) for r in rows)
        lines.append(f"  {q} questions, {declined} declined, {good} rated helpful, {bad} not helpful")
        lines.append("  day         questions  declined  first text  answer p50  answer p95  ratings +/-")
        for r in rows[-14:]:
            lines.append(
                f"  {r['day']}  {r['questions']:>9}  {r['declined']:>8}  {_ms(r.get('first_text_p50_ms')):>10}"
                f"  {_ms(r.get('total_p50_ms')):>10}  {_ms(r.get('total_p95_ms')):>10}"
                f"  {r.get('ratings_good', 0):>5}/{r.get('ratings_bad', 0)}"
            )
    else:
        lines.append("  no questions asked in this time")
    gauges = history["gauges"]
    for name, label in (
        ("files_indexed", "files indexed"),
        ("files_failed", "files failed"),
        ("passages", "passages"),
        ("outbox_waiting", "exports waiting"),
        ("disk_free_gb", "disk free (GB)"),
    ):
        series = gauges.get(name) or []
        if series:
            first, last = series[0][1], series[-1][1]
            ago = _ago(series[0][0])
            since = f"unchanged since {ago}" if first == last else f"was {first:,.1f} {ago}"
            lines.append(f"  {label}: {last:,.1f} ({since})".replace(".0 ", " "))
    if history.get("runs"):
        last = history["runs"][-1]
        lines.append(
            f"  rated answers checked: {last['passed']} of {last['items']} right ({last['trigger']})"
        )
    alerts = history.get("alerts") or []
    lines.append("Alerts:" if alerts else "Alerts: none")
    lines += [f"  {a['message']} — {a['fix']}" for a in alerts]
    if drift:
        lines.append(drift_text(drift))
    return "\n".join(lines)


def _ago(at: float) -> str:
    hours = (time.time() - at) / 3600
    if hours < 1:
        return f"{hours * 60:.0f} minutes ago"
    return f"{hours / 24:.0f} days ago" if hours >= 24 else f"{hours:.0f} hours ago"


def drift_text(drift: dict[str, Any]) -> str:
    """The drift report for a person: what changed, the figures before and after, and each item that moved."""
    f = drift["figures"]
    lines = [
        "Drift report" + (" — REGRESSION" if drift.get("regression") else ""),
        f"  {drift['summary']}",
        f"  right: {f['passed_before']} → {f['passed_after']} of {f['items']}; "
        f"declined: {f['declined_before']} → {f['declined_after']}",
    ]
    for item in drift["items"]:
        if item["status"] == "same":
            continue
        before, after = item["before"], item["after"]
        lines.append(f"  [{item['status']}] {item['question']} (must: {item['expect']})")
        lines.append(f"      before ({before['model'] or 'quotes only'}): {_short(before['answer'])}")
        lines.append(f"      after  ({after['model'] or 'quotes only'}): {_short(after['answer'])}")
    if drift.get("regression") and drift.get("revertible"):
        back = settings_text(drift["revertible"])
        lines.append(f"  go back with `sealroom eval --feedback --revert` ({back})")
    return "\n".join(lines)


def _short(answer: str, most: int = 160) -> str:
    flat = " ".join(answer.split())
    return flat if len(flat) <= most else flat[: most - 1] + "…"


# --- the HTML report: one self-contained file (no URL of any kind) for offices that work offline ---------
#: Okabe-Ito colours: told apart with the common colour blindnesses, and when printed in grey.
BLUE, ORANGE, GREEN, RED, GREY = "#0072B2", "#E69F00", "#009E73", "#D55E00", "#7F7F7F"
NO_DATA = "no data yet"
NO_CHECK = "No check of the rated answers has run yet."

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
       background: #fff; margin: 24px auto; max-width: 1180px; padding: 0 16px; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.written { color: #555; margin-top: 0; }
.figures { display: flex; flex-wrap: wrap; gap: 10px; padding: 0; list-style: none; }
.figures li { border: 1px solid #ccc; border-radius: 6px; padding: 8px 12px; min-width: 130px; }
.figures b { display: block; font-size: 1.35em; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 16px; }
figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: 8px; break-inside: avoid; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.nodata { color: #555; font-style: italic; margin: 8px 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { border: 1px solid #ccc; padding: 5px 8px; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f2f2f2; }
td.num { text-align: right; white-space: nowrap; }
.worse { color: #a12a00; font-weight: 600; } .better { color: #00684a; font-weight: 600; }
.regression { color: #a12a00; }
table.compact { width: auto; min-width: 360px; }
table.items td:first-child { width: 22%; } table.items td:nth-child(2) { width: 14%; }
table.items td:nth-child(3), table.items td:nth-child(4) { width: 28%; }
table.items td:last-child, table.items th:last-child { white-space: nowrap; }
"""


def write_html(path: Path, history: dict[str, Any], drift: dict[str, Any] | None) -> Path:
    """The report for a compliance review: figures, six charts as embedded PNGs, alerts, the drift report.

    Everything is inside the one file (no stylesheet, script, font or image URL), so it opens, prints and
    archives the same on a machine with no network. Written atomically and readable by the owner only."""
    now = time.time()
    days = int(history.get("days") or 30)
    start = now - days * 86400
    daily = list(history.get("daily") or [])
    title = f"Sealroom health, last {days} days ({_date(start)} to {_date(now)})"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="written">Written {html.escape(time.strftime("%Y-%m-%d %H:%M", time.localtime(now)))}'
        " by Sealroom on this computer.</p>",
        "<h2>Summary</h2>",
        _figures_html(history),
        "<h2>Charts</h2>",
        '<div class="charts">',
        *(_figure(caption, png) for caption, png in _charts(history, start, now)),
        "</div>",
        "<h2>Alerts</h2>",
        _alerts_html(history.get("alerts") or []),
    ]
    parts += ["<h2>Drift report</h2>", _drift_html(drift) if drift else f"<p>{NO_CHECK}</p>"]
    if daily:
        parts += ["<h2>Daily figures</h2>", _daily_html(daily)]
    parts.append("</body></html>")
    return _write_private(Path(path), "\n".join(parts))


def _date(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(at))


def _sum(rows: list[dict[str, Any]], key: str) -> int:
    return sum(int(r.get(key) or 0) for r in rows)


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def _figures_html(history: dict[str, Any]) -> str:
    rows = history.get("daily") or []
    gauges = history.get("gauges") or {}
    cells: list[tuple[str, str]] = [
        ("questions", f"{_sum(rows, 'questions'):,}"),
        ("declined", f"{_sum(rows, 'declined'):,}"),
        ("rated helpful", f"{_sum(rows, 'ratings_good'):,}"),
        ("rated not helpful", f"{_sum(rows, 'ratings_bad'):,}"),
    ]
    for key, label in (
        ("first_text_p50_ms", "first text, median day"),
        ("total_p50_ms", "answer, median day"),
        ("total_p95_ms", "answer p95, median day"),
    ):
        cells.append((label, _ms(_median([r[key] for r in rows if r.get(key) is not None]))))
    for key, label, fmt in (
        ("files_indexed", "files indexed now", "{:,.0f}"),
        ("files_failed", "files failed now", "{:,.0f}"),
        ("disk_free_gb", "disk free now", "{:,.1f} GB"),
        ("outbox_waiting", "exports waiting now", "{:,.0f}"),
    ):
        series = gauges.get(key) or []
        if series:
            cells.append((label, fmt.format(series[-1][1])))
    runs = history.get("runs") or []
    if runs:
        cells.append(("saved questions right, last check", f"{runs[-1]['passed']} of {runs[-1]['items']}"))
    items = "".join(f"<li><b>{html.escape(v)}</b>{html.escape(k)}</li>" for k, v in cells)
    return f'<ul class="figures">{items}</ul>'


def _figure(caption: str, png: bytes | None) -> str:
    cap = html.escape(caption)
    if png is None:
        return f'<figure><figcaption>{cap}</figcaption><p class="nodata">{NO_DATA}</p></figure>'
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><figcaption>{cap}</figcaption><img alt="{cap}" src="data:image/png;base64,{data}"></figure>'
    )


def _charts(history: dict[str, Any], start: float, end: float) -> list[tuple[str, bytes | None]]:
    """The six charts, each as PNG bytes (None when it has nothing to show)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    rows = [r for r in history.get("daily") or [] if r.get("day")]
    gauges = history.get("gauges") or {}
    runs = history.get("runs") or []
    days = [float(mdates.datestr2num(r["day"])) for r in rows]
    x_from = min([_day_num(start), *days]) - 0.5
    x_to = max([_day_num(end), *days]) + 0.5

    def series(key: str) -> tuple[list[float], list[float]]:
        pairs = gauges.get(key) or []
        return [_day_num(float(t)) for t, _ in pairs], [float(v) for _, v in pairs]

    def render(draw: Callable[[Any], None], dated: bool = True) -> bytes:
        # a Figure of its own, not pyplot's: nothing global to close or leak, and safe off the main thread
        fig = Figure(figsize=(6.4, 2.9), dpi=110, layout="constrained")
        ax = fig.add_subplot()
        try:
            draw(ax)
            if dated:
                ax.set_xlim(x_from, x_to)
                locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
                ax.xaxis.set_major_locator(locator)
                ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
            ax.grid(axis="y", alpha=0.3)
            ax.spines[["top", "right"]].set_visible(False)
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", metadata={"Software": None})  # no URL, not even in a PNG chunk
            return buffer.getvalue()
        finally:
            fig.clear()

    def legend(ax: Any) -> None:
        """Above the plot, never over the data."""
        ax.figure.legend(loc="outside upper left", ncols=3, frameon=False)

    def use(ax: Any) -> None:
        ax.bar(days, [r.get("questions") or 0 for r in rows], width=0.8, color=BLUE, label="questions")
        ax.bar(days, [r.get("declined") or 0 for r in rows], width=0.5, color=ORANGE, label="declined")
        ax.set_ylabel("per day")
        ax.yaxis.get_major_locator().set_params(integer=True)
        legend(ax)

    def latency(ax: Any) -> None:
        for key, label, colour, style in (
            ("first_text_p50_ms", "first text p50", GREEN, "-"),
            ("total_p50_ms", "answer p50", BLUE, "-"),
            ("total_p95_ms", "answer p95", RED, "--"),
        ):
            values = [float("nan") if r.get(key) is None else r[key] / 1000 for r in rows]
            ax.plot(days, values, style, marker="o", markersize=3, color=colour, label=label)
        ax.set_ylabel("seconds")
        ax.set_ylim(bottom=0)
        legend(ax)

    def ratings(ax: Any) -> None:
        good = [r.get("ratings_good") or 0 for r in rows]
        bad = [r.get("ratings_bad") or 0 for r in rows]
        ax.bar(days, good, width=0.8, color=GREEN, label="helpful")
        ax.bar(days, bad, width=0.8, bottom=good, color=RED, label="not helpful")
        ax.set_ylabel("ratings per day")
        ax.yaxis.get_major_locator().set_params(integer=True)
        legend(ax)

    def two_gauges(left: tuple[str, str, str], right: tuple[str, str, str]) -> Callable[[Any], None]:
        def draw(ax: Any) -> None:
            axes = [ax, ax.twinx()]
            for axis, (key, label, colour) in zip(axes, (left, right), strict=True):
                xs, ys = series(key)
                if len(xs) == 1:  # one sample so far: a step needs two, a marker shows it
                    axis.plot(xs, ys, "o", markersize=4, color=colour, label=label)
                elif xs:
                    axis.step(xs, ys, where="post", color=colour, label=label)
                axis.set_ylabel(label, color=colour)
                axis.tick_params(axis="y", colors=colour)
                axis.set_ylim(bottom=0)
                if key != "disk_free_gb":  # counts: no half files
                    axis.yaxis.get_major_locator().set_params(integer=True)
            axes[1].spines["top"].set_visible(False)

        return draw

    def checks(ax: Any) -> None:
        xs = list(range(len(runs)))
        ax.bar(xs, [r["items"] for r in runs], width=0.7, color="#d9d9d9", label="saved questions")
        ax.bar(xs, [r["passed"] for r in runs], width=0.7, color=BLUE, label="right")
        ax.set_xticks(xs, [time.strftime("%m-%d\n%H:%M", time.localtime(r["at"])) for r in runs])
        if len(xs) > 10:  # keep the labels readable: every n-th run
            for i, tick in enumerate(ax.xaxis.get_major_ticks()):
                tick.label1.set_visible(i % (len(xs) // 10 + 1) == 0)
        ax.set_ylabel("questions")
        ax.yaxis.get_major_locator().set_params(integer=True)
        legend(ax)

    has = bool(rows)
    has_latency = any(r.get(k) is not None for r in rows for k in ("first_text_p50_ms", "total_p50_ms"))
    has_ratings = any((r.get("ratings_good") or 0) + (r.get("ratings_bad") or 0) for r in rows)
    files = two_gauges(("files_indexed", "files indexed", BLUE), ("files_failed", "files failed", RED))
    disk = two_gauges(
        ("disk_free_gb", "disk free (GB)", GREEN), ("outbox_waiting", "exports waiting", ORANGE)
    )
    return [
        ("Questions and declined, per day", render(use) if has else None),
        ("Time to first text and to the answer, per day", render(latency) if has_latency else None),
        ("Ratings, per day", render(ratings) if has_ratings else None),
        (
            "Files indexed and failed",
            render(files) if gauges.get("files_indexed") or gauges.get("files_failed") else None,
        ),
        (
            "Disk free and exports waiting",
            render(disk) if gauges.get("disk_free_gb") or gauges.get("outbox_waiting") else None,
        ),
        ("Saved questions answered right, per check", render(checks, dated=False) if runs else None),
    ]


def _day_num(at: float) -> float:
    """A unix time as matplotlib's date number (days since 1970-01-01, the default epoch), in local time."""
    return (at + time.localtime(at).tm_gmtoff) / 86400


def _alerts_html(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return "<p>None.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(str(a.get('message', '')))}</td><td>{html.escape(str(a.get('fix', '')))}</td></tr>"
        for a in alerts
    )
    return f"<table><tr><th>Alert</th><th>What to do</th></tr>{rows}</table>"


def _drift_html(drift: dict[str, Any]) -> str:
    f = drift.get("figures") or {}
    note = " (dismissed in the window)" if drift.get("dismissed") else ""
    parts = [
        f'<p class="{"regression" if drift.get("regression") else ""}">'
        f"<b>{html.escape(str(drift.get('summary', '')) + note)}</b></p>",
        '<table class="compact"><tr><th></th><th>Before</th><th>After</th></tr>'
        f"<tr><td>saved questions right (of {f.get('items', 0)})</td>"
        f'<td class="num">{f.get("passed_before", "–")}</td><td class="num">{f.get("passed_after", "–")}</td></tr>'
        f'<tr><td>declined</td><td class="num">{f.get("declined_before", "–")}</td>'
        f'<td class="num">{f.get("declined_after", "–")}</td></tr></table>',
    ]
    runs = [drift.get("before") or {}, drift.get("after") or {}]
    if all(r.get("at") for r in runs):
        when = " → ".join(
            f"check {r.get('run', '?')} on {time.strftime('%Y-%m-%d %H:%M', time.localtime(r['at']))}"
            f" ({r.get('trigger', '')})"
            for r in runs
        )
        parts.append(f"<p>Compared: {html.escape(when)}</p>")
    changes = drift.get("changes") or {}
    if changes:
        items = "".join(
            f"<li>{html.escape(str(k))}: {html.escape(_value(v[0]))} → {html.escape(_value(v[1]))}</li>"
            if isinstance(v, list | tuple) and len(v) == 2
            else f"<li>{html.escape(str(k))}: {html.escape(_value(v))}</li>"
            for k, v in changes.items()
        )
        parts.append(f"<p>What changed between the checks:</p><ul>{items}</ul>")
    if drift.get("regression") and drift.get("revertible"):
        back = settings_text(drift["revertible"])
        parts.append(
            f"<p>To go back: Help › Health › Go back, or <code>sealroom eval --feedback --revert</code>"
            f" ({html.escape(back)}).</p>"
        )
    order = {"worse": 0, "better": 1, "changed": 2, "same": 3}
    moved = sorted(drift.get("items") or [], key=lambda i: order.get(str(i.get("status")), 9))
    if all(i.get("status") == "same" for i in moved):
        parts.append("<p>Every saved question was answered as before.</p>")
    if not moved:
        return "\n".join(parts)
    rows = []
    for item in moved:
        before, after = item.get("before") or {}, item.get("after") or {}
        status = str(item.get("status", ""))
        rows.append(
            "<tr>"
            f"<td>{html.escape(str(item.get('question', '')))}</td>"
            f"<td>{html.escape(str(item.get('expect', '')))}</td>"
            f"<td>{_answer_cell(before)}</td><td>{_answer_cell(after)}</td>"
            f'<td class="{html.escape(status)}">{html.escape(status)}</td>'
            "</tr>"
        )
    parts.append(
        '<table class="items"><tr><th>Question</th><th>What it must do</th><th>Before</th><th>After</th>'
        "<th>Status</th></tr>" + "".join(rows) + "</table>"
    )
    return "\n".join(parts)


def _value(value: Any) -> str:
    return "(default)" if value in ("", None) else str(value)


def _answer_cell(side: dict[str, Any]) -> str:
    verdict = "right" if side.get("passed") else "wrong"
    if side.get("abstained"):
        verdict += ", declined"
    model = side.get("model") or "quotes only"
    return (
        f"{html.escape(_short(str(side.get('answer') or ''), 300))}"
        f"<br><small>{html.escape(model)} — {html.escape(verdict)}</small>"
    )


def _daily_html(rows: list[dict[str, Any]]) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "Day",
            "Questions",
            "Declined",
            "First text p50",
            "Answer p50",
            "Answer p95",
            "Helpful",
            "Not helpful",
        )
    )
    body = "".join(
        f"<tr><td>{html.escape(str(r['day']))}</td>"
        + "".join(
            f'<td class="num">{html.escape(v)}</td>'
            for v in (
                str(r.get("questions", 0)),
                str(r.get("declined", 0)),
                _ms(r.get("first_text_p50_ms")),
                _ms(r.get("total_p50_ms")),
                _ms(r.get("total_p95_ms")),
                str(r.get("ratings_good", 0)),
                str(r.get("ratings_bad", 0)),
            )
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _write_private(path: Path, content: str) -> Path:
    """Atomically, mode 0600: a half-written report never replaces a whole one, and it stays the owner's."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(tmp, 0o600)  # O_CREAT's mode is masked by umask, and a leftover tmp keeps its old mode
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
