"""Alerts: what needs someone's attention, each with what to do. Shown by `sealroom status`, the window's
tray and its Health window; computed from live state and the latest metrics sample."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sealroom.core.feedback.regression import settings_text

GB = 1024**3
#: The failed count rising this much within a day is an alert.
FAILURES_RISE = 5


@dataclass
class Alert:
    kind: str  # watcher_stopped, watcher_restarting, failures_rising, export_waiting, disk_low,
    #            model_failed, audit_failed, drift_regression
    message: str
    fix: str

    def line(self) -> str:
        return f"{self.message} — {self.fix}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def watcher(running: bool, restarts: int, expected: bool) -> list[Alert]:
    """`running`: the watch loop runs (it starts a watcher again by itself, counted in `restarts`)."""
    if not expected:
        return []
    if not running:
        return [
            Alert(
                "watcher_stopped",
                "the folder watcher is not running: changes to your documents are not being indexed",
                "use Rescan (or restart Sealroom); if it stops again, see Help › Diagnostics",
            )
        ]
    if restarts:
        return [
            Alert(
                "watcher_restarting",
                f"the folder watcher stopped and was restarted {restarts} time{'s' if restarts != 1 else ''}",
                "nothing was missed (a rescan follows each restart); if it keeps happening, see Help › Diagnostics",
            )
        ]
    return []


def failures(now_failed: int, day_ago_failed: int | None) -> list[Alert]:
    if day_ago_failed is None or now_failed - day_ago_failed < FAILURES_RISE:
        return []
    return [
        Alert(
            "failures_rising",
            f"{now_failed - day_ago_failed} more files failed to index in the last day ({now_failed} now)",
            "see the failed files and their reasons (sidebar › Not indexed, or `sealroom status`)",
        )
    ]


def exports(oldest_waiting_hours: float, waiting: int, limit_hours: float) -> list[Alert]:
    if not waiting or oldest_waiting_hours < limit_hours:
        return []
    return [
        Alert(
            "export_waiting",
            f"{waiting} export{'s have' if waiting != 1 else ' has'} waited more than {limit_hours:g} hours "
            f"(the oldest {oldest_waiting_hours:.0f} h)",
            "check the destination is reachable (Export › Outbox, or `sealroom outbox`); they are kept and go "
            "out when it is",
        )
    ]


def disk(free_bytes: int, limit_gb: float, where: str) -> list[Alert]:
    if free_bytes >= limit_gb * GB:
        return []
    return [
        Alert(
            "disk_low",
            f"the disk holding {where} has {free_bytes / GB:.2f} GB free (below {limit_gb:g} GB)",
            "free space there; indexing waits when the disk is full and resumes by itself",
        )
    ]


def model(problems: list[str]) -> list[Alert]:
    if not problems:
        return []
    return [
        Alert(
            "model_failed",
            f"the chat model failed to load ({problems[-1]}); answers are quotes only",
            "choose another model in Settings › Model, or ask IT (the policy's model allow-list)",
        )
    ]


def audit(ok: bool, problem: str) -> list[Alert]:
    if ok:
        return []
    return [
        Alert(
            "audit_failed",
            f"the audit trail does not verify: {problem}",
            "tell IT at once and do not delete anything in the data folder; run `sealroom audit verify`",
        )
    ]


def drift(report: dict[str, Any] | None) -> list[Alert]:
    if not report or not report.get("regression") or report.get("dismissed"):
        return []
    back = report.get("revertible") or {}
    return [
        Alert(
            "drift_regression",
            report.get("summary", "answers got worse"),
            ("go back (Health › Go back, or `sealroom eval --feedback --revert`) to " + settings_text(back))
            if back
            else "see the drift report (Help › Health, or `sealroom eval --feedback`) and tell IT",
        )
    ]
