"""`sealroom report`: the text for a person and the one-file HTML report for a compliance review."""

from __future__ import annotations

import base64
import re
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sealroom.core.feedback import report

DAY = 86400.0
SCRIPT_QUESTION = "What is the notice period? <script>alert('x')</script>"


def history_with_data(days: int = 30) -> dict[str, Any]:
    """A month as `Feedback.history()` gives it: daily use, gauges every 15 minutes, checks and one alert."""
    now = time.time()
    daily = []
    for back in (9, 6, 5, 2, 0):
        daily.append(
            {
                "day": time.strftime("%Y-%m-%d", time.localtime(now - back * DAY)),
                "questions": 10 + back,
                "declined": back % 3,
                "no_model": 0,
                "first_text_p50_ms": None if back == 6 else 140.0 + back,
                "total_p50_ms": 630.5 + 10 * back,
                "total_p95_ms": 2100.0,
                "ratings_good": 3,
                "ratings_bad": back % 2,
            }
        )
    times = [now - 3 * DAY + i * 900 for i in range(3 * 96)]
    gauges = {
        "passages": [(t, 40_000.0 + i) for i, t in enumerate(times)],
        "files_failed": [(t, float(2 + i // 100)) for i, t in enumerate(times)],
        "files_indexed": [(t, 1_200.0 + i) for i, t in enumerate(times)],
        "outbox_waiting": [(t, float(i // 50 % 3)) for i, t in enumerate(times)],
        "disk_free_gb": [(t, 80.0 - i * 0.01) for i, t in enumerate(times)],
        "watcher_restarts": [(t, 0.0) for t in times],
    }
    runs = [
        {"at": now - 4 * DAY, "trigger": "you asked", "items": 20, "passed": 18},
        {"at": now - 1 * DAY, "trigger": "chat model  → qwen.gguf", "items": 20, "passed": 15},
    ]
    alerts = [
        {
            "kind": "export_waiting",
            "message": "2 exports have waited more than 24 hours (the oldest 30 h) & <counting>",
            "fix": "check the destination is reachable (Export › Outbox, or `sealroom outbox`)",
        }
    ]
    return {"days": days, "daily": daily, "gauges": gauges, "runs": runs, "alerts": alerts}


def drift_with_a_worse_item() -> dict[str, Any]:
    now = time.time()
    item = {
        "id": 7,
        "question": SCRIPT_QUESTION,
        "expect": "cites the passage you chose",
        "status": "worse",
        "before": {"passed": True, "abstained": False, "answer": "Three months [1].", "model": "gemma.gguf"},
        "after": {
            "passed": False,
            "abstained": True,
            "answer": "Not in your documents.",
            "model": "qwen.gguf",
        },
    }
    same = {**item, "id": 8, "question": "Who pays the deposit?", "status": "same"}
    return {
        "before": {"run": 3, "at": now - 4 * DAY, "trigger": "you asked", "fingerprint": {}},
        "after": {"run": 4, "at": now - DAY, "trigger": "chat model  → qwen.gguf", "fingerprint": {}},
        "changes": {"chat_model": ["", "/models/qwen.gguf"]},
        "items": [item, same],
        "figures": {
            "items": 20,
            "passed_before": 18,
            "passed_after": 15,
            "declined_before": 2,
            "declined_after": 5,
            "changed": 6,
        },
        "regression": True,
        "revertible": {"chat_model": ""},
        "summary": "Regression: 15 of 20 saved questions right after chat model → qwen.gguf (were 18)",
    }


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full report, drawn once for the module (six matplotlib charts take about a second)."""
    where = tmp_path_factory.mktemp("report") / "reports" / "q4" / "health.html"
    return report.write_html(where, history_with_data(), drift_with_a_worse_item())


@pytest.fixture
def page(written: Path) -> str:
    return written.read_text(encoding="utf-8")


def test_the_html_report_is_one_private_file_with_six_charts(written: Path, page: str):
    assert written.name == "health.html" and written.parent.name == "q4"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert [p.name for p in written.parent.iterdir()] == ["health.html"]  # no temporary file left behind
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 6
    assert all(base64.b64decode(png).startswith(b"\x89PNG\r\n\x1a\n") for png in images)
    assert report.NO_DATA not in page
    assert "Sealroom health, last 30 days" in page and time.strftime("%Y-%m-%d") in page
    assert "<b>72</b>questions" in page  # the five days summed: 19 + 16 + 15 + 12 + 10


def test_the_html_report_refers_to_nothing_outside_itself(page: str):
    for reference in ("http://", "https://", 'src="//', 'href="//', "<link", "<script", "url(", "@import"):
        assert reference not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for png in re.findall(r"base64,([A-Za-z0-9+/=]+)", page):  # not even in the images' text chunks
        assert b"http" not in base64.b64decode(png)


def test_alerts_and_the_drift_report_are_escaped_into_the_page(page: str):
    assert "the oldest 30 h) &amp; &lt;counting&gt;" in page
    assert "check the destination is reachable" in page
    assert "What is the notice period? &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script>alert" not in page
    assert "Regression: 15 of 20 saved questions right" in page
    assert "Three months [1]." in page and "Not in your documents." in page
    assert "gemma.gguf" in page and "qwen.gguf" in page
    assert page.index("Who pays the deposit?") > page.index("What is the notice period")  # the same, last
    assert report.NO_CHECK not in page
    assert re.search(r"<td[^>]*>worse</td>", page)


def test_an_empty_history_says_no_data_yet_instead_of_empty_charts(tmp_path: Path):
    empty = {"days": 7, "daily": [], "gauges": {}, "runs": [], "alerts": []}
    page = report.write_html(tmp_path / "r.html", empty, None).read_text()
    assert "data:image/png" not in page
    assert page.count(report.NO_DATA) == 6
    assert "last 7 days" in page and "None." in page and report.NO_CHECK in page


def test_a_rewritten_report_replaces_the_old_one_and_stays_private(tmp_path: Path):
    path = tmp_path / "r.html"
    path.write_text("old")
    path.chmod(0o644)
    report.write_html(path, {"days": 30, "daily": [], "gauges": {}, "runs": [], "alerts": []}, None)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("<!DOCTYPE html>")


def test_importing_the_report_module_does_not_load_matplotlib():
    code = "import sys, sealroom.core.feedback.report\nprint('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_text_report_lists_the_alert_and_the_drift_summary():
    out = report.text(history_with_data(), drift_with_a_worse_item())
    assert "72 questions" in out
    assert (
        "2 exports have waited more than 24 hours (the oldest 30 h) & <counting> — check the destination"
        in out
    )
    assert "Drift report — REGRESSION" in out
    assert "Regression: 15 of 20 saved questions right after chat model → qwen.gguf (were 18)" in out
    assert f"[worse] {SCRIPT_QUESTION}" in out
    assert "Who pays the deposit?" not in out
