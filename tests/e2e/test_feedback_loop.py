"""The feedback loop with the real engine, the default model, Chroma on disk and the sample corpus:
a correction answers the same question next time; `sealroom eval --feedback` runs the rated answers; a
deliberately worse setting is caught as a regression on a 20-item set, with an alert and the way back;
alerts for a stopped watcher, a full small disk and an export waiting past its limit; what IT receives
holds no word of any document, question or file name."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest

from sealroom.core.answer import evaluate
from sealroom.core.engine import Engine
from sealroom.core.runtime.config import save_user_settings
from sealroom.core.runtime.errors import SealroomError
from tests.conftest import CORPUS, ROOT, cli, cli_json
from tests.e2e.test_disk_full import small_disk

QUESTION = "Why could the message to jangel1 not be delivered?"


def docs(home: Path, *subs: str) -> list[str]:
    return [str(evaluate.documents_only(CORPUS / sub, home.parent / "corpus")) for sub in subs]


def passage_holding(engine: Engine, query: str, words: str) -> str:
    """The chunk id of a passage a search for `query` finds that holds `words` (as a user would pick it)."""
    for hit in engine.search(query, k=20):
        if words.lower() in " ".join(hit.text.split()).lower():
            return hit.chunk_id
    raise AssertionError(f"no passage for {query!r} holds {words!r}")


def test_a_corrected_answer_is_given_from_the_correction_next_time_and_eval_counts_it(home: Path):
    with Engine() as engine:
        for folder in docs(home, "docx-samples", "email-samples"):
            engine.add_folder(folder)
        engine.index()
        first = engine.ask(QUESTION)
        passage = passage_holding(engine, "jangel1 disk quota", "quota")
        rating = engine.feedback.rate(first.answer_id, False, "wrong_source", passage, "over its disk quota")
        again = engine.ask("why could the message to jangel1 not be delivered")  # the same, typed again
        assert again.correction["feedback_id"] == rating.id and again.sources[0].chunk_id == passage
        assert again.notes()[0].startswith("Answered from your correction of ")
        assert not again.abstained and again.citations[0]["seq"] == int(passage.rsplit("-", 1)[1])
        other = engine.ask("Who sent the message with the subject 'yeah for Ians!!'?")
        assert not other.correction  # another question is answered as before
        # exported like the answer it rates: the rating and its correction go with it
        (home.parent / "share").mkdir()
        engine.output.add_destination("Review", str(home.parent / "share"))
        assert engine.output.export("Review", "json", answer_id=first.answer_id).delivered
        [exported] = json.loads(next((home.parent / "share").glob("*.json")).read_text())["answers"]
        assert exported["feedback"]["reason"] == "wrong_source" and exported["feedback"]["passage"] == passage
        assert any(n.startswith("Rated not helpful on ") and passage in n for n in exported["notes"])
        # the window and exports read the correction from the stored record
        assert (
            engine.catalog.answers(answer_id=again.answer_id)[0]["record"]["correction"]["passage"] == passage
        )
    result = cli_json(home, "eval", "--feedback")
    assert result["items"] == 1 and result["results"][0]["id"] == rating.id
    assert result["results"][0]["expect"] == "passage"  # measured without the correction: the pipeline itself
    for args, said in (
        (("feedback", "999", "--good"), "no answer with id 999"),
        (("feedback", str(first.answer_id)), "say which answer and how"),
        (("feedback", str(first.answer_id), "--good", "--passage", passage), "go with --bad"),
        (("feedback", str(first.answer_id), "--bad", "wrong", "--passage", "nope-3"), "no passage nope-3"),
    ):
        proc = cli(home, *args, check=False)
        assert proc.returncode == 2 and said in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    listed = cli_json(home, "feedback", "--list")["feedback"]
    assert [(f["id"], f["reason"], f["passage"]) for f in listed] == [(rating.id, "wrong_source", passage)]
    with Engine() as engine:
        engine.feedback.remove(rating.id)
        assert not engine.ask(QUESTION).correction  # removed: no longer used
        kinds = [json.loads(line)["event"] for line in engine.audit.path.read_text().splitlines()]
    assert {"answer_rated", "drift_checked", "feedback_removed"} <= set(kinds)


def rate_like_a_user(engine: Engine, questions: list[evaluate.Question], most: int) -> int:
    """Ask each question and rate its answer as a careful user would; returns how many were rated."""
    rated = 0
    for q in questions:
        if rated == most or q.follow_up:
            continue
        answer = engine.ask(q.question)
        result = evaluate.score(q, answer)
        if q.unanswerable:
            engine.feedback.rate(
                answer.answer_id, answer.abstained, "" if answer.abstained else "should_abstain"
            )
        elif result.correct:
            engine.feedback.rate(answer.answer_id, True)
        else:
            engine.feedback.rate(answer.answer_id, False, "wrong", expected=q.answers[0].replace("\\", ""))
        rated += 1
    return rated


@pytest.mark.slow
def test_a_worse_setting_is_caught_on_a_20_item_set_as_a_regression_with_an_alert_and_a_way_back(home: Path):
    questions = evaluate.load_questions(ROOT / "bench" / "eval" / "corpus.jsonl")
    with Engine() as engine:
        for folder in docs(home, "pdf-samples", "docx-samples", "email-samples"):
            engine.add_folder(folder)
        engine.index()
        assert rate_like_a_user(engine, questions, 20) == 20
        assert engine.feedback.due() == "the first run of your rated answers"
        baseline, none = engine.feedback.check("first run")
        assert none is None and len(baseline.results) == 20
        assert engine.feedback.due() == ""
        # a deliberately worse setting: nearly nothing clears the evidence bar
        engine.apply_settings(save_user_settings({"min_evidence": 0.95}))
        assert engine.feedback.due() == "min evidence 0.3 → 0.95"
        _, report = engine.feedback.check(engine.feedback.due())
        assert report is not None and report.regression, report and report.summary()
        print("\n" + report.summary())
        assert report.worse and report.figures["passed_after"] < report.figures["passed_before"]
        assert report.changes == {"min_evidence": [0.3, 0.95]} and report.revertible == {"min_evidence": 0.3}
        assert all(i["before"]["passed"] and not i["after"]["passed"] for i in report.worse)
        [alert] = [a for a in engine.feedback.alerts() if a.kind == "drift_regression"]
        assert "min_evidence = 0.3" in alert.fix
        assert engine.feedback.go_back(engine.apply_settings) == {"min_evidence": 0.3}
        assert engine.settings.min_evidence == 0.3
        assert not [a for a in engine.feedback.alerts() if a.kind == "drift_regression"]
        again, after = engine.feedback.check("you asked")
        assert after is not None and not after.regression
        assert sum(r["passed"] for r in again.results) == sum(r["passed"] for r in baseline.results)


def test_a_watcher_that_stopped_is_an_alert_and_one_that_restarted_says_so(home: Path, tmp_path: Path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The canteen opens at noon.")
    with Engine() as engine:
        engine.add_folder(str(folder))
        stop, ready = threading.Event(), threading.Event()
        watch = threading.Thread(target=engine.watch, kwargs={"on_ready": ready.set, "stop": stop})
        watch.start()
        assert ready.wait(120)
        assert [a.kind for a in engine.feedback.alerts() if a.kind.startswith("watcher")] == []
        engine.watch_state.watcher._observers[0].stop()  # the observer thread dies (an inotify limit, say)
        deadline = time.monotonic() + 30
        while engine.watch_state.restarts == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        kinds = [a.kind for a in engine.feedback.alerts()]
        assert "watcher_restarting" in kinds
        stop.set()
        watch.join(30)
        assert not [k for k in (a.kind for a in engine.feedback.alerts()) if k.startswith("watcher")]

        def broken(*args: object, **kwargs: object) -> None:
            raise SealroomError("the catalog cannot be written")

        engine.indexing.index = broken  # type: ignore[method-assign]
        crashed = threading.Thread(target=lambda: _swallow(engine.watch, threading.Event()))
        crashed.start()
        crashed.join(60)
        [alert] = [a for a in engine.feedback.alerts() if a.kind == "watcher_stopped"]
        assert "not being indexed" in alert.message and alert.fix


def _swallow(watch: object, stop: threading.Event) -> None:
    with contextlib.suppress(SealroomError):
        watch(stop=stop)  # type: ignore[operator]


def test_a_full_small_data_disk_is_an_alert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with small_disk(tmp_path / "disk", "6m") as disk:
        monkeypatch.setenv("SEALROOM_HOME", str(disk / "home"))
        monkeypatch.setenv("SEALROOM_POLICY", str(tmp_path / "none.toml"))
        with Engine() as engine:
            engine.apply_settings(dataclasses.replace(engine.settings, alert_disk_gb=0.002))  # 2 MB
            assert [a for a in engine.feedback.alerts() if a.kind == "disk_low"] == []
            with (disk / "filler").open("wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * (1 << 16))
                except OSError:
                    pass
            [alert] = [a for a in engine.feedback.alerts() if a.kind == "disk_low"]
            assert "GB free" in alert.message and "indexing waits" in alert.fix
            assert engine.feedback.sample(force=True) is False  # no sample on a full disk, and no failure


def test_an_export_waiting_past_its_limit_is_an_alert(home: Path, tmp_path: Path):
    share = tmp_path / "share"
    share.mkdir()
    with Engine() as engine:
        engine.output.add_destination("Legal", str(share))
        answer_id = _an_answer(engine, tmp_path)
        share.rename(tmp_path / "gone")  # the share is unplugged: the export waits in the outbox
        result = engine.output.export("Legal", "md", answer_id=answer_id)
        assert not result.delivered
        assert [a for a in engine.feedback.alerts() if a.kind == "export_waiting"] == []  # 24 h by default
        engine.apply_settings(dataclasses.replace(engine.settings, alert_export_hours=0.0002))  # < 1 s
        time.sleep(1.0)
        [alert] = [a for a in engine.feedback.alerts() if a.kind == "export_waiting"]
        assert alert.message.startswith("1 export has waited") and "Outbox" in alert.fix
    # the command line says so too, with what to do; and the report lists it
    save_user_settings({"alert_export_hours": 0.0002})
    lines = cli(home, "status").stdout.splitlines()
    assert any(line.startswith("alert: 1 export has waited more than") for line in lines), lines
    assert cli_json(home, "status")["alerts"][0]["kind"] == "export_waiting"
    text = cli(home, "report").stdout
    assert "1 questions" in text and "export has waited" in text
    cli(home, "report", "--html", str(tmp_path / "health.html"))
    assert (tmp_path / "health.html").read_text().count("data:image/png;base64,") >= 1


def _an_answer(engine: Engine, tmp_path: Path, words: str = "The canteen opens at noon on weekdays.") -> int:
    folder = tmp_path / "docs"
    folder.mkdir(exist_ok=True)
    (folder / "canteen.txt").write_text(words)
    engine.add_folder(str(folder))
    engine.index()
    return engine.ask("When does the canteen open?").answer_id


CANARY = ["zorbaquint", "vellichor", "Maplethorpe", "quintessa-dossier"]


def test_what_it_receives_holds_numbers_only_and_parses_as_prometheus(home: Path, tmp_path: Path):
    from prometheus_client.parser import text_string_to_metric_families

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "quintessa-dossier.txt").write_text(
        "The zorbaquint clause binds Maplethorpe Holdings for vellichor years.\n"
    )
    (folder / "Maplethorpe-locked.pdf").write_bytes(
        b"%PDF-1.4\n%%EOF"
    )  # a failed file: its name must not leak
    share, prom = tmp_path / "it-share", tmp_path / "textfile"
    share.mkdir()
    policy = tmp_path / "policy.toml"
    policy.write_text(f'metrics_destination = "IT"\nmetrics_textfile_dir = "{prom}"\n')
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEALROOM_POLICY", str(policy))
        with Engine() as engine:
            engine.output.add_destination("IT", str(share))
            engine.add_folder(str(folder))
            engine.index()
            answer = engine.ask("What does the zorbaquint clause bind Maplethorpe to?")
            engine.feedback.rate(answer.answer_id, False, "wrong", expected="vellichor years, zorbaquint")
            engine.feedback.tick()
            local = engine.feedback.it_metrics()
    [sent] = list(share.iterdir())
    text = (prom / "sealroom.prom").read_text()
    for data in (sent.read_text(), local.decode(), text):
        for word in CANARY:
            assert word.lower() not in data.lower()
        assert str(folder) not in data and "txt" not in data
    metrics = json.loads(sent.read_text())
    assert metrics["gauges"]["files"] == {"indexed": 1, "failed": 1, "pending": 0, "skipped": 0}
    assert metrics["daily"][-1]["questions"] == 1 and metrics["daily"][-1]["ratings_bad"] == 1
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {s.labels["status"]: s.value for s in families["sealroom_files"].samples}["indexed"] == 1.0
    assert families["sealroom_questions_7d"].samples[0].value == 1.0
    assert (prom / "sealroom.prom").stat().st_mode & 0o777 == 0o644


def test_an_audit_trail_that_no_longer_verifies_is_an_alert(home: Path, tmp_path: Path):
    (tmp_path / "docs").mkdir()
    with Engine() as engine:
        engine.add_folder(str(tmp_path / "docs"))
        engine.feedback.sample(force=True)
        assert [a for a in engine.feedback.alerts() if a.kind == "audit_failed"] == []
        lines = engine.audit.path.read_text().splitlines()
        lines[0] = lines[0].replace('"folder_added"', '"folder_removed"')  # someone edits the trail
        engine.audit.path.write_text("\n".join(lines) + "\n")
        engine.feedback.sample(force=True)
        [alert] = [a for a in engine.feedback.alerts() if a.kind == "audit_failed"]
        assert "does not verify" in alert.message and "tell IT" in alert.fix
        assert engine.feedback.metrics.latest()[("audit_ok", "")] == 0.0
