"""The feedback loop as a service: ratings and corrections, the regression set run after anything that can
change answers (the drift check), local metrics over time, alerts, and the figures IT receives."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from sealroom.core.answer.pipeline import AnswerPipeline
from sealroom.core.feedback import alerts, metrics, regression
from sealroom.core.feedback.alerts import Alert
from sealroom.core.feedback.regression import DriftReport
from sealroom.core.ingest.parsers import PARSER_VERSION
from sealroom.core.output.service import Output
from sealroom.core.protocols import AuditLog
from sealroom.core.runtime import logs, tracing
from sealroom.core.runtime.config import Settings, save_user_settings
from sealroom.core.runtime.errors import UsageError, is_disk_full
from sealroom.core.runtime.paths import sealroom_version
from sealroom.core.store import usage
from sealroom.core.store.catalog import Catalog
from sealroom.core.store.ratings import EvalRun, Rating, Ratings

TICK_S = 60.0
#: Trace attributes that list passages by chunk id.
PASSAGE_KEYS = ("kept", "dropped_unrelated")
DAY = 86400.0


class Watcher(Protocol):
    """What the folder watcher is doing (`ingest.service.WatchState`)."""

    @property
    def running(self) -> bool: ...
    @property
    def healthy(self) -> bool: ...
    @property
    def restarts(self) -> int: ...
    @property
    def looping(self) -> bool: ...


class Feedback:
    def __init__(
        self,
        home: Path,
        catalog: Catalog,
        settings: Callable[[], Settings],
        pipeline: Callable[[], AnswerPipeline],
        output: Output,
        audit: AuditLog,
        watcher: Watcher,
        embedding_model: Callable[[], str],
    ) -> None:
        self.home, self.catalog, self.settings, self.pipeline = home, catalog, settings, pipeline
        self.output, self.audit, self.watcher, self.embedding_model = output, audit, watcher, embedding_model
        self.ratings = Ratings(catalog)
        self.metrics = metrics.MetricsStore(home / "metrics.sqlite")
        self.watching = False  # whether the watcher should run here (the engine's `watch` says so)
        self._check_lock = threading.Lock()

    def close(self) -> None:
        self.metrics.close()

    # --- ratings and corrections -----------------------------------------------------------
    def rate(
        self, answer_id: int, good: bool, reason: str = "", passage: str = "", expected: str = ""
    ) -> Rating:
        rating = self.ratings.rate(answer_id, good, reason, passage, expected)
        self.audit.record(
            "answer_rated",
            answer_id=answer_id,
            feedback_id=rating.id,
            rating=rating.rating,
            reason=rating.reason or None,
            passage=rating.passage or None,
            expected_given=bool(rating.expected),
        )
        logs.event("answer rated", answer_id=answer_id, rating=rating.rating, reason=rating.reason)
        return rating

    def remove(self, feedback_id: int) -> Rating:
        rating = self.ratings.remove(feedback_id)
        self.audit.record("feedback_removed", feedback_id=feedback_id, answer_id=rating.answer_id)
        return rating

    def all(self, removed: bool = False) -> list[Rating]:
        return self.ratings.all(removed)

    def ratings_of(self, answer_ids: list[int]) -> dict[int, str]:
        """The standing rating of each answer, as the window marks it: "good", or "bad: <reason>"."""
        return {
            answer_id: r.rating + (f": {r.reason}" if r.reason else "")
            for answer_id, r in self.ratings.for_answers(answer_ids).items()
        }

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The stages of one ask as traced (what "Why this answer?" shows), the passages named by file and
        page as the reader knows them (the trace itself holds chunk ids only)."""
        spans = tracing.read(self.home, trace_id)
        ids = {i for s in spans for k in PASSAGE_KEYS for i in s["attributes"].get(k) or []}
        chunks = self.catalog.chunks_by_id(sorted(ids))
        owners = self.catalog.files_for_content({c.sha256 for c in chunks.values()})

        def name(chunk_id: str) -> str:
            chunk = chunks.get(chunk_id)
            files = owners.get(chunk.sha256) if chunk else None
            if not chunk or not files:
                return f"{chunk_id} (no longer indexed)"
            return Path(files[0].path).name + (f", p. {chunk.page}" if chunk.page else "")

        for s in spans:
            for key in PASSAGE_KEYS:
                if key in s["attributes"]:
                    s["attributes"][key] = [name(i) for i in s["attributes"][key]]
        return spans

    # --- the regression set and the drift check ----------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        return regression.fingerprint(self.settings(), self.embedding_model(), PARSER_VERSION)

    def due(self) -> str:
        """Why the regression set should run now ('' when it need not): something that can change answers
        changed since its last run, or ratings were added since."""
        if not self.settings().drift_check:
            return ""
        items = regression.items(self.ratings.all())
        if not items:
            return ""
        runs = self.ratings.runs(1)
        if not runs:
            return "the first run of your rated answers"
        changes = regression.differences(runs[0].fingerprint, self.fingerprint())
        if changes:
            return regression.describe(changes)
        if {i.id for i in items} - {r["id"] for r in runs[0].results}:
            return "answers rated since the last run"
        return ""

    def check(
        self,
        trigger: str = "you asked",
        progress: Callable[[int, int], None] | None = None,
        stop: threading.Event | None = None,
    ) -> tuple[EvalRun, DriftReport | None]:
        """Run the regression set through today's pipeline and compare it with the last run. A run after a
        change of what answers (or one the user asked for) makes the drift report; a run for new ratings
        alone adds them to the baseline and leaves the report as it was."""
        with self._check_lock:
            set_items = regression.items(self.ratings.all())
            if not set_items:
                raise UsageError(
                    "no rated answers yet: rate answers (`sealroom feedback ID --good` or --bad) to build "
                    "your regression set"
                )
            fp = self.fingerprint()
            previous = (self.ratings.runs(1) or [None])[0]
            known: dict[int, dict[str, Any]] = {}
            if previous is not None and previous.fingerprint == fp and trigger != "you asked":
                # nothing that changes answers changed: only the answers rated since are run
                known = {r["id"]: r for r in previous.results}
            todo = [i for i in set_items if i.id not in known]
            with logs.stage("drift check", items=len(todo)):
                fresh = regression.run(todo, self.pipeline(), self._folders, progress, stop)
            if len(fresh) < len(todo):
                raise UsageError("the check was stopped before it ran every rated answer")
            by_id = {**known, **{r["id"]: r for r in fresh}}
            results = [by_id[i.id] for i in set_items]
            run = self.ratings.add_run(trigger, fp, results)
            report = regression.compare(previous, run) if previous else None
            if report is not None and report.changes:  # the same setup run again says nothing of drift
                self.catalog.set_meta("drift_report", json.dumps(report.to_dict()))
            self.audit.record(
                "drift_checked",
                run=run.id,
                trigger=trigger,
                items=len(results),
                passed=sum(r["passed"] for r in results),
                regression=bool(report and report.regression),
            )
            if report is not None and report.regression:
                logs.problem("drift regression", error=False, detail=report.summary())
            return run, report

    def _folders(self, workspace: str) -> list[str]:
        return [path for _, path in self.catalog.folders(workspace)]

    def drift_report(self) -> dict[str, Any] | None:
        raw = self.catalog.get_meta("drift_report")
        return json.loads(raw) if raw else None

    def dismiss_drift(self, reverted: bool = False) -> None:
        """The user has seen the regression (or went back: nothing is left to go back to)."""
        report = self.drift_report()
        if report:
            report["dismissed"] = True
            if reverted:
                report["reverted"], report["revertible"] = report.get("revertible") or {}, {}
            self.catalog.set_meta("drift_report", json.dumps(report))

    def revert_settings(self) -> dict[str, Any]:
        """The settings the last regression changed, as they were before (what "Go back" applies)."""
        report = self.drift_report()
        if not report or not report.get("regression"):
            raise UsageError("no drift regression to go back from")
        return dict(report.get("revertible") or {})

    def go_back(self, apply: Callable[[Settings], None]) -> dict[str, Any]:
        """Go back to the settings before the last regression: saved in the user's settings file, handed to
        `apply` (the engine's `apply_settings`), the report marked as gone back from. Returns them."""
        back = self.revert_settings()
        apply(save_user_settings(back))
        self.dismiss_drift(reverted=True)
        return back

    # --- metrics ----------------------------------------------------------------------------
    def sample(self, force: bool = False) -> bool:
        """Record the gauges now if the last sample is older than `metrics.SAMPLE_EVERY_S` (or `force`);
        on a full disk no sample is taken (the disk alert says so) and nothing fails."""
        if not force and time.time() - self.metrics.last_at() < metrics.SAMPLE_EVERY_S:
            return False
        try:
            self._sample()
        except Exception as exc:
            if not is_disk_full(exc):
                raise
            return False
        return True

    def _sample(self) -> None:
        counts = self.catalog.count_by_status()
        values: list[tuple[str, str, float]] = [
            ("files", status, counts.get(status, 0)) for status in ("indexed", "pending", "failed", "skipped")
        ]
        values.append(("passages", "", self.catalog.chunk_count()))
        values += [("failures", kind, n) for kind, n in usage.failures_by_kind(self.catalog).items()]
        waiting, failed, oldest = self._outbox()
        values += [
            ("outbox_waiting", "", waiting),
            ("outbox_failed", "", failed),
            ("outbox_oldest_waiting_hours", "", round(oldest, 3)),
            ("disk_free_bytes", "", shutil.disk_usage(self.home).free),
            ("watcher_running", "", float(self.watcher.running and self.watcher.healthy)),
            ("watcher_restarts", "", self.watcher.restarts),
            ("model_load_failures_24h", "", len(usage.model_failures_since(self.catalog, time.time() - DAY))),
        ]
        verified = self.output.audit.verify() if self.settings().audit_enabled else None
        values.append(("audit_ok", "", float(verified is None or verified.ok)))
        self.catalog.set_meta("audit_problem", "" if verified is None or verified.ok else verified.message)
        standing = self.ratings.all()
        values += [("corrections", kind, sum(r.rating == kind for r in standing)) for kind in ("good", "bad")]
        self.metrics.add(values)

    def _outbox(self) -> tuple[int, int, float]:
        items, now = self.output.outbox.items(), time.time()
        waiting = [i for i in items if i.status == "pending"]
        oldest = max((now - i.created_at for i in waiting), default=0.0) / 3600
        return len(waiting), sum(i.status == "failed" for i in items), oldest

    def _daily(self, since: float) -> list[dict[str, Any]]:
        """Per local day since `since`: use from the answer records, and the ratings given."""
        daily = {d["day"]: d for d in usage.answers_by_day(self.catalog, since)}
        for day, rating, n in self.ratings.counts_by_day(since):
            row = daily.setdefault(day, {"day": day, "questions": 0, "declined": 0, "no_model": 0})
            row[f"ratings_{rating}"] = n
        rows = [daily[d] for d in sorted(daily)]
        for row in rows:
            row.setdefault("ratings_good", 0)
            row.setdefault("ratings_bad", 0)
        return rows

    def history(self, days: int = 30) -> dict[str, Any]:
        """What the Health window and `sealroom report` chart: daily use and sampled gauges since `days` ago."""
        since = time.time() - days * DAY
        rows = self._daily(since)
        gauges = {
            "passages": self.metrics.series("passages", since),
            "files_failed": self.metrics.series("files", since, "failed"),
            "files_indexed": self.metrics.series("files", since, "indexed"),
            "outbox_waiting": self.metrics.series("outbox_waiting", since),
            "disk_free_gb": [(t, v / alerts.GB) for t, v in self.metrics.series("disk_free_bytes", since)],
            "watcher_restarts": self.metrics.series("watcher_restarts", since),
        }
        runs = [
            {
                "at": r.at,
                "trigger": r.trigger,
                "items": len(r.results),
                "passed": sum(x["passed"] for x in r.results),
            }
            for r in reversed(self.ratings.runs(50))
            if r.at >= since
        ]
        return {
            "days": days,
            "daily": rows,
            "gauges": gauges,
            "runs": runs,
            "alerts": [a.to_dict() for a in self.alerts()],
        }

    # --- alerts -------------------------------------------------------------------------------
    def watcher_alerts(self) -> list[Alert]:
        """A watcher being started (at start-up, after a folder was added) or restarted by its loop is no
        alert; the loop's end while watching is expected is (a restart shows as watcher_restarting)."""
        w = self.watcher
        return alerts.watcher(w.looping, w.restarts, self.watching)

    def alerts(self) -> list[Alert]:
        s, now = self.settings(), time.time()
        out = self.watcher_alerts()
        failed_now = self.catalog.count_by_status().get("failed", 0)
        day = self.metrics.series("files", now - DAY, "failed")
        out += alerts.failures(failed_now, int(day[0][1]) if day else None)
        waiting, _, oldest = self._outbox()
        out += alerts.exports(oldest, waiting, s.alert_export_hours)
        out += alerts.disk(shutil.disk_usage(self.home).free, s.alert_disk_gb, str(self.home))
        last = usage.last_answer_problem(self.catalog)
        out += alerts.model([last] if last else [])
        problem = self.catalog.get_meta("audit_problem") or ""
        out += alerts.audit(not problem, problem)
        out += alerts.drift(self.drift_report())
        return out

    # --- for IT --------------------------------------------------------------------------------
    def installation(self) -> str:
        ident = self.catalog.get_meta("installation_id")
        if not ident:
            ident = uuid.uuid4().hex
            self.catalog.set_meta("installation_id", ident)
        return ident

    def _seven_days(self) -> tuple[list[dict[str, Any]], dict[str, float]]:
        rows = self._daily(time.time() - 7 * DAY)
        totals = {
            k: float(sum(r.get(k) or 0 for r in rows))
            for k in ("questions", "declined", "no_model", "ratings_good", "ratings_bad")
        }
        return rows, totals

    def prometheus(self) -> str:
        _, totals = self._seven_days()
        return metrics.prometheus_text(self.metrics.latest(), totals)

    def it_metrics(self) -> bytes:
        rows, _ = self._seven_days()
        return metrics.it_file(self.installation(), sealroom_version(), self.metrics.latest(), rows)

    def tick(self) -> None:
        """Sample when due, refresh IT's textfile, deliver IT's metrics file when its interval has passed."""
        s = self.settings()
        if not s.monitoring:
            return
        sampled = self.sample()
        if s.metrics_textfile_dir and (
            sampled or not (Path(s.metrics_textfile_dir) / "sealroom.prom").exists()
        ):
            metrics.write_textfile(Path(s.metrics_textfile_dir), self.prometheus())
        if s.metrics_destination:
            sent = float(self.catalog.get_meta("metrics_sent_at") or 0)
            if time.time() - sent >= s.metrics_interval_hours * 3600:
                name = (
                    time.strftime("%Y-%m-%d-%H%M-", time.gmtime())
                    + f"sealroom-metrics-{self.installation()[:8]}.json"
                )
                self.output.send_metrics(s.metrics_destination, name, self.it_metrics())
                self.catalog.set_meta("metrics_sent_at", str(time.time()))

    def monitor(self, stop: threading.Event) -> None:
        """`tick` every minute until `stop` (run beside `watch`)."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # monitoring never takes the app down; it says why it could not run
                logs.problem("monitoring error", error=True, detail=f"{type(exc).__name__}: {exc}")
            stop.wait(TICK_S)
