"""Output: export answers, chats and searches to named destinations through the outbox, audited.

The engine owns one `Output`. `export()` checks the IT policy before anything is rendered or
any connection made (a refusal is audited), renders the document into the outbox, and tries
to deliver it at once; an unreachable destination leaves it waiting, and `deliver()` (called
by `watch`, the window's timer, and `sealroom outbox retry`) tries again with backoff.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sealroom.core.output import render as exp
from sealroom.core.output.audit import AuditTrail
from sealroom.core.output.destinations import (
    Destination,
    Destinations,
    Refused,
    allow_host,
    check_policy,
    writer,
)
from sealroom.core.output.outbox import Item, Outbox
from sealroom.core.protocols import Hit
from sealroom.core.runtime import logs
from sealroom.core.runtime.config import Settings, under_policy
from sealroom.core.runtime.errors import UsageError
from sealroom.core.runtime.paths import sealroom_version
from sealroom.core.store.catalog import Catalog
from sealroom.core.store.ratings import Ratings

#: What a search export holds: (query, hits, embedding model, workspace)
SearchExport = tuple[str, list[Hit], str, str]


@dataclass
class ExportResult:
    item: Item
    delivered: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "status": self.item.status,
            "destination": self.item.destination,
            "file_name": self.item.delivered_as or self.item.file_name,
            "sha256": self.item.sha256,
            "size": self.item.size,
            "reason": self.item.reason,
        }


class Output:
    def __init__(self, home: Path, settings: Settings, catalog: Catalog, audit: AuditTrail) -> None:
        self.home, self.settings, self.catalog, self.audit = home, settings, catalog, audit
        self.destinations = Destinations(home)
        self.outbox = Outbox(home)
        self.on_delivered: Callable[[Item], None] = lambda item: None

    # --- destinations ------------------------------------------------------------------
    def add_destination(
        self,
        name: str,
        folder: str | None = None,
        smb: str | None = None,
        user: str = "",
        password: str | None = None,
    ) -> Destination:
        from sealroom.core.output.destinations import parse_smb

        if bool(folder) == bool(smb):
            raise UsageError("give either a folder or an SMB share")
        if folder:
            import os

            dest = Destination(name, "folder", path=os.path.abspath(os.path.expanduser(folder)))
        else:
            host, port, share, path = parse_smb(smb or "")
            dest = Destination(name, "smb", path=path, host=host, share=share, port=port, user=user)
        self._check(dest, "destination_add")  # allowed by what it points at, before it is kept
        self.destinations.add(dest, password)
        self.audit.record(
            "destination_added", name=dest.name, kind=dest.kind, target=dest.target, user=dest.user
        )
        return dest

    def remove_destination(self, name: str) -> Destination:
        dest = self.destinations.remove(name)
        self.audit.record("destination_removed", name=dest.name, target=dest.target)
        return dest

    def test_destination(self, name: str) -> str:
        """Write and remove a small file; one line on what happened."""
        dest = self.destinations.get(name)
        self._check(dest, "destination_test")
        w = writer(dest)
        probe = f".sealroom-test-{int(time.time() * 1000)}.txt"
        try:
            w.existing_sha256(probe)
            if not w.put(probe, b"Sealroom destination test; safe to delete.\n"):
                raise Refused(f"{dest.target}: could not create a test file")
            w.remove(probe)
        finally:
            w.close()
        return f"{dest.name}: OK, can write into {dest.target}"

    def _check(self, dest: Destination, action: str) -> None:
        try:
            check_policy(dest, self.settings)
        except Refused as exc:
            self.audit.record(
                "export_refused", destination=dest.name, target=dest.target, action=action, reason=str(exc)
            )
            logs.event("export refused", destination=dest.name, reason=str(exc))
            raise

    # --- exporting ---------------------------------------------------------------------
    def export(
        self,
        to: str,
        fmt: str = "md",
        chat_id: int | None = None,
        answer_id: int | None = None,
        search: SearchExport | None = None,
    ) -> ExportResult:
        """Queue one export and try to deliver it now; `search` is (query, hits, embedding model, workspace)."""
        dest = self.destinations.get(to)
        if fmt not in exp.FORMATS:
            raise UsageError(f"unknown format '{fmt}': md, docx or json")
        held = under_policy(self.settings)  # the policy as it stands now, not as it was at start
        if fmt not in held.export_formats:
            self.audit.record(
                "export_refused", destination=dest.name, target=dest.target, reason=f"format {fmt}"
            )
            raise Refused(
                f"your IT policy allows exports as {', '.join(held.export_formats) or 'nothing'}, not {fmt}"
            )
        self._check(dest, "export")
        include = held.export_include_passages
        if search is not None:
            query, hits, embedder, workspace = search
            doc = exp.document(
                "search",
                f"Search: {query}",
                workspace,
                include,
                search=exp.search_section(query, hits, embedder, include),
            )
            kind, ident, title = "search", hashlib.sha256(query.encode()).hexdigest()[:8], query
            about = f"search ({len(hits)} hits)"
        else:
            rows = self.catalog.answers(chat_id=chat_id, answer_id=answer_id)
            if not rows:
                what = f"answer {answer_id}" if answer_id is not None else f"chat {chat_id}"
                raise UsageError(f"no {what} (answer ids are in `sealroom ask --json` and the window)")
            rated = Ratings(self.catalog).for_answers([int(r["id"]) for r in rows])
            items = [exp.answer_item(r["record"], r["id"], include, rated.get(int(r["id"]))) for r in rows]
            first = rows[0]
            if answer_id is not None:
                kind, ident, title = (
                    "answer",
                    str(answer_id),
                    first["record"].get("question") or first["title"],
                )
            else:
                kind, ident, title = "chat", str(chat_id), first["title"]
            doc = exp.document(kind, title, first["workspace"], include, answers=items)
            about = f"{kind} {ident}"
        data = exp.render(doc, fmt)
        # a question's words would reach the share's listing, the outbox, the audit trail and the log through
        # the file name: they are in it only where the policy records question text
        name = exp.file_name(kind, ident, title if held.audit_question_text else "", fmt)
        item = self.outbox.add(dest.name, name, data, kind, about)
        self.audit.record(
            "export_queued", destination=dest.name, file=name, sha256=item.sha256, what=about, format=fmt
        )
        if item.status == "pending":
            self.deliver(force=True, only=dest.name)
        item = self.outbox.get(item.id) or item
        return ExportResult(item, item.status == "delivered")

    def export_audit(self, to: str) -> ExportResult:
        """The audit trail as JSON lines, with a manifest of its verification, for a compliance officer."""
        dest = self.destinations.get(to)
        self._check(dest, "audit export")
        result = self.audit.verify()
        lines = self.audit.path.read_bytes() if self.audit.path.exists() else b""
        manifest = {
            "schema": "sealroom-audit-export",
            "schema_version": 1,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "sealroom_version": sealroom_version(),
            "verification": result.to_dict(),
            "head": json.loads(self.audit.head_path.read_text()) if self.audit.head_path.exists() else None,
            "trail_sha256": hashlib.sha256(lines).hexdigest(),
            "records": lines.decode("utf-8", "surrogateescape").splitlines(),
        }
        data = (json.dumps(manifest, ensure_ascii=False, indent=1) + "\n").encode("utf-8", "surrogateescape")
        name = time.strftime("%Y-%m-%d-", time.gmtime()) + f"audit-trail-{self.audit.user}.json"
        name = exp.safe_stem(name.removesuffix(".json")) + ".json"
        item = self.outbox.add(dest.name, name, data, "audit", f"audit trail ({result.records} records)")
        self.audit.record(
            "export_queued", destination=dest.name, file=name, sha256=item.sha256, what="audit trail"
        )
        if item.status == "pending":
            self.deliver(force=True, only=dest.name)
        item = self.outbox.get(item.id) or item
        return ExportResult(item, item.status == "delivered")

    def send_metrics(self, to: str, name: str, data: bytes) -> Item:
        """Queue the metrics file for the destination the IT policy names (`metrics_destination`): no
        user-export check applies (IT asked for it, and it holds no content), and it is audited."""
        dest = self.destinations.get(to)
        item = self.outbox.add(dest.name, name, data, "metrics", "metrics (no content)")
        self.audit.record("metrics_queued", destination=dest.name, file=name, sha256=item.sha256)
        if item.status == "pending":
            self.deliver(force=True, only=dest.name)
        return self.outbox.get(item.id) or item

    # --- delivery ----------------------------------------------------------------------
    def deliver(self, force: bool = False, only: str | None = None) -> list[Item]:
        def result(item: Item, dest: Destination | None) -> None:
            if item.status == "delivered":
                self.audit.record(
                    "export_delivered",
                    destination=item.destination,
                    target=dest.target if dest else "",
                    file=item.delivered_as,
                    sha256=item.sha256,
                    what=item.about,
                )
                logs.event("export delivered", destination=item.destination, file=item.delivered_as)
                self.on_delivered(item)
            elif item.status == "failed":
                self.audit.record(
                    "export_failed", destination=item.destination, file=item.file_name, reason=item.reason
                )
                logs.event("export failed", destination=item.destination, reason=item.reason)
            else:
                logs.event("export waiting", destination=item.destination, reason=item.reason)

        def check(dest: Destination) -> None:
            self._check(dest, "delivery")

        return self.outbox.deliver(self.destinations.get, check, result, force=force, only=only)

    def courier(self, stop: threading.Event, every_s: float = 2.0) -> None:
        """Until `stop`: deliver waiting exports when due, or as soon as their destination answers."""
        while not stop.wait(every_s):
            try:
                pending, now = self.outbox.items("pending"), time.time()
                for name in dict.fromkeys(i.destination for i in pending):
                    due = any(i.next_try <= now for i in pending if i.destination == name)
                    if due or self.reachable(name):
                        self.deliver(force=True, only=name)
            except Exception as exc:
                logs.problem("outbox delivery error", error=True, detail=f"{type(exc).__name__}: {exc}")

    def reachable(self, name: str) -> bool:
        """A cheap probe: the folder exists, or the SMB host takes a TCP connection (only if policy allows)."""
        try:
            dest = self.destinations.get(name)
            check_policy(dest, self.settings)
        except (UsageError, Refused):
            return False
        if dest.kind == "folder":
            return Path(dest.path).is_dir()
        import socket

        try:
            allow_host(dest)
            with socket.create_connection((dest.host, dest.port), timeout=2):
                return True
        except OSError:
            return False

    def retry(self, ident: str | None = None) -> list[Item]:
        if not self.outbox.retry(ident) and ident:
            raise UsageError(f"no waiting or failed export has an id starting with '{ident}'")
        return self.deliver(force=True)

    def state(self) -> list[str]:
        """One line per destination with waiting exports: "2 exports waiting for Legal — offline"."""
        lines = []
        by_dest: dict[str, list[Item]] = {}
        for item in self.outbox.items():
            if item.status != "delivered":
                by_dest.setdefault(item.destination, []).append(item)
        for name, items in by_dest.items():
            waiting = [i for i in items if i.status == "pending"]
            failed = [i for i in items if i.status == "failed"]
            if waiting:
                why = (
                    "offline"
                    if any("reach" in i.reason or "not there" in i.reason for i in waiting)
                    else "queued"
                )
                lines.append(
                    f"{len(waiting)} export{'s' if len(waiting) != 1 else ''} waiting for {name} — {why}"
                )
            if failed:
                lines.append(
                    f"{len(failed)} export{'s' if len(failed) != 1 else ''} to {name} failed: {failed[-1].reason}"
                )
        return lines
