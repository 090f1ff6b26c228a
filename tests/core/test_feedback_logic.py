"""The feedback loop's logic on a real catalog with fakes for the model: ratings and corrections, when two
questions are the same, a correction applied, the regression set and its drift report, metrics that hold
numbers only (Prometheus' own parser reads them), alerts and their thresholds, traces of each stage."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sealroom.core.answer import corrections
from sealroom.core.answer.pipeline import AnswerPipeline, ModelInfo
from sealroom.core.feedback import alerts, metrics, regression
from sealroom.core.runtime import tracing
from sealroom.core.runtime.config import Settings
from sealroom.core.runtime.errors import UsageError
from sealroom.core.store import usage
from sealroom.core.store.catalog import Catalog, Chunk, chunk_id
from sealroom.core.store.ratings import EvalRun, Ratings
from tests.fakes import FakeEmbedder, FakeModel, FakeRetriever

SHA = "a" * 64
QUESTION = "How long are audit logs kept after the contract?"


def catalog_with_answer(tmp_path: Path) -> tuple[Catalog, int]:
    """A catalog with one indexed file of two passages under /docs, and one stored answer citing the first."""
    catalog = Catalog(tmp_path / "catalog.sqlite")
    catalog.add_folder("/docs")
    catalog.upsert_file(catalog.folders()[0][0], "/docs/policy.pdf", 10, 1, SHA, "pending")
    chunks = [
        Chunk(chunk_id(SHA, 0), SHA, 0, "Backups are kept for two years.", 1, None, 0, 31),
        Chunk(
            chunk_id(SHA, 1),
            SHA,
            1,
            "Audit logs are kept for ten years after the contract ends.",
            2,
            None,
            0,
            58,
        ),
    ]
    catalog.finish_content(SHA, "indexed", None, 2, chunks)
    record = {
        "question": QUESTION,
        "abstained": False,
        "citations": [{"n": 1, "sha256": SHA, "seq": 0, "path": "/docs/policy.pdf"}],
    }
    chat = catalog.record_answer(None, QUESTION, "Backups are kept for two years. [1]", [], record)
    return catalog, catalog.last_answer_id(chat)


def test_a_rating_is_checked_stored_replaced_and_removed(tmp_path: Path):
    catalog, answer_id = catalog_with_answer(tmp_path)
    ratings = Ratings(catalog)
    with pytest.raises(UsageError, match="no answer with id 99"):
        ratings.rate(99, True)
    with pytest.raises(UsageError, match="say why"):
        ratings.rate(answer_id, False, "bored")
    with pytest.raises(UsageError, match="no passage"):
        ratings.rate(answer_id, False, "wrong", passage="nope-1")
    with pytest.raises(UsageError, match="needs no reason"):
        ratings.rate(answer_id, True, "wrong")
    good = ratings.rate(answer_id, True)
    assert good.cited == [chunk_id(SHA, 0)] and good.question == QUESTION and not good.is_correction
    bad = ratings.rate(answer_id, False, "wrong_source", passage=chunk_id(SHA, 1), expected="ten years")
    assert bad.is_correction
    # a later rating of the same answer replaces the earlier one
    assert [r.id for r in ratings.all()] == [bad.id]
    assert [r.id for r in ratings.all(removed=True)] == [good.id, bad.id]
    assert ratings.for_answers([answer_id])[answer_id].reason == "wrong_source"
    ratings.remove(bad.id)
    assert ratings.all() == [] and ratings.for_answers([answer_id]) == {}
    # the rating outlives its chat (a copy of the question is kept), until its user removes it
    ratings.rate(answer_id, True)
    catalog.delete_chat(catalog.answers(answer_id=answer_id)[0]["chat_id"])
    assert [r.question for r in ratings.all()] == [QUESTION]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (QUESTION, "how long are audit logs kept after the contract", True),
        (QUESTION, "After the contract, how long are the audit logs kept?", True),
        (QUESTION, "How long are backups kept after the contract?", False),
        ("Who signed it?", "who signed it", True),
        ("Who signed it?", "Who wrote it?", False),
        ("What is the rent?", "What is the rent of the Berlin office?", False),
    ],
)
def test_the_same_question_is_the_same_in_other_words_order_and_case_only(a: str, b: str, same: bool):
    assert corrections.same_question(a, b) is same


def test_a_correction_is_found_for_the_same_question_in_folders_that_hold_its_passage(tmp_path: Path):
    catalog, answer_id = catalog_with_answer(tmp_path)
    ratings = Ratings(catalog)
    assert corrections.find(catalog, QUESTION, None) is None
    rating = ratings.rate(answer_id, False, "wrong", passage=chunk_id(SHA, 1))
    found = corrections.find(catalog, "how long are audit logs kept after the contract", ["/docs"])
    assert found is not None and found.passage is not None
    assert found.passage.path == "/docs/policy.pdf" and found.passage.seq == 1 and not found.abstain
    assert found.date == corrections.when(rating.created_at)  # the answer's note names it (see below)
    assert corrections.find(catalog, QUESTION, ["/elsewhere"]) is None  # not in the folders asked
    assert corrections.find(catalog, "How long are backups kept?", None) is None
    ratings.remove(rating.id)
    assert corrections.find(catalog, QUESTION, None) is None
    ratings.rate(answer_id, False, "should_abstain")
    declined = corrections.find(catalog, QUESTION, None)
    assert declined is not None and declined.abstain and declined.passage is None


def pipeline(reply: str = "") -> tuple[AnswerPipeline, FakeModel]:
    model = FakeModel(reply)
    return AnswerPipeline(
        FakeRetriever(), FakeEmbedder(), lambda: (model, ModelInfo("fake.gguf", "f" * 64))
    ), model


def test_a_corrected_passage_is_the_evidence_and_the_answer_says_so(tmp_path: Path):
    catalog, answer_id = catalog_with_answer(tmp_path)
    Ratings(catalog).rate(answer_id, False, "wrong_source", passage=chunk_id(SHA, 1), expected="ten years")
    correction = corrections.find(catalog, QUESTION, None)
    p, _ = pipeline()
    plain = p.run("What is the canteen's opening time on weekdays?")
    corrected = p.run("What is the canteen's opening time on weekdays?", correction=correction)
    assert "ten years" not in plain.text
    # the user's passage is source 1 and its sentence the quote, whatever it scores against the question
    assert corrected.sources[0].chunk_id == chunk_id(SHA, 1) and not corrected.abstained
    assert "Audit logs are kept for ten years" in corrected.text
    record = corrected.to_dict()
    assert record["correction"]["feedback_id"] and record["correction"]["passage"] == chunk_id(SHA, 1)
    assert corrected.notes()[0].startswith("Answered from your correction of ")
    assert "Your expected answer: ten years" in corrected.notes()


def test_a_correction_that_nothing_answers_declines(tmp_path: Path):
    catalog, answer_id = catalog_with_answer(tmp_path)
    Ratings(catalog).rate(answer_id, False, "should_abstain")
    p, model = pipeline("Audit logs are kept for ten years [1].")
    answer = p.run("How long are audit logs kept?", correction=corrections.find(catalog, QUESTION, None))
    assert answer.abstained and model.calls == 0
    assert "nothing in your documents answers this" in answer.notes()[0]


def _run(run_id: int, fp: dict, passed: dict[int, bool]) -> EvalRun:
    results = [
        {"id": i, "question": f"q{i}", "expect": "passage", "passed": ok, "abstained": not ok, "cited": [],
         "answer_sha256": "x" if ok else "y", "answer": "a" if ok else "not found", "model": "m", "total_ms": 1.0}
        for i, ok in passed.items()
    ]  # fmt: skip
    return EvalRun(run_id, time.time(), "t", fp, results)


def test_the_regression_set_says_what_each_rating_expects_and_checks_it(tmp_path: Path):
    catalog, answer_id = catalog_with_answer(tmp_path)
    ratings = Ratings(catalog)
    ratings.rate(answer_id, False, "wrong", passage=chunk_id(SHA, 1))
    [item] = regression.items(ratings.all())
    assert (item.expect, item.chunks, item.question) == ("passage", [chunk_id(SHA, 1)], QUESTION)
    ratings.rate(answer_id, True)
    [item] = regression.items(ratings.all())
    assert (item.expect, item.chunks) == ("cited", [chunk_id(SHA, 0)])
    p, _ = pipeline()
    answer = p.run("How long are audit logs kept?")  # the fake's passages: none is the rated one
    result = regression.check(item, answer)
    assert result["passed"] is False and result["cited"] == regression.cited_chunks(answer)
    ratings.rate(answer_id, False, "should_abstain")
    [item] = regression.items(ratings.all())
    assert regression.check(item, p.run("What is the rent in Madrid?"))["passed"] is True
    assert regression.check(item, answer)["passed"] is False


def test_the_drift_report_compares_item_by_item_and_knows_what_to_go_back_to():
    before_fp = regression.fingerprint(Settings(), "emb", "6")
    after_fp = regression.fingerprint(Settings(min_evidence=0.9), "emb", "6")
    report = regression.compare(
        _run(1, before_fp, {1: True, 2: True, 3: False, 4: True}),
        _run(2, after_fp, {1: False, 2: True, 3: True, 5: False}),
    )
    assert report.changes == {"min_evidence": [0.3, 0.9]}
    assert [i["status"] for i in report.items] == ["worse", "same", "better"]  # item 5 is new, 4 is gone
    assert (report.figures["passed_before"], report.figures["passed_after"]) == (2, 2)
    assert not report.regression  # one better, one worse: no net loss
    worse = regression.compare(_run(1, before_fp, {1: True, 2: True}), _run(2, after_fp, {1: False, 2: True}))
    assert worse.regression and worse.revertible == {"min_evidence": 0.3}
    assert worse.summary().startswith("Regression: 1 of 2 saved questions right after min evidence 0.3 → 0.9")
    json.dumps(worse.to_dict())  # stored as JSON
    assert regression.describe(regression.differences(before_fp, before_fp)) == "nothing that changes answers"


def test_metrics_keep_only_documented_names_and_numbers(tmp_path: Path):
    store = metrics.MetricsStore(tmp_path / "m.sqlite")
    store.add([("files", "failed", 2), ("passages", "", 10)], at=1000.0)
    store.add([("files", "failed", 5), ("passages", "", 12)], at=2000.0)
    assert store.latest() == {("files", "failed"): 5.0, ("passages", ""): 12.0}
    assert store.series("files", 0, "failed") == [(1000.0, 2.0), (2000.0, 5.0)]
    with pytest.raises(ValueError, match="unknown metric"):
        store.add([("contract_of_smith.pdf", "", 1)])


def test_the_prometheus_text_parses_with_prometheus_clients_own_parser():
    from prometheus_client.parser import text_string_to_metric_families

    text = metrics.prometheus_text(
        {("files", "indexed"): 7, ("files", "failed"): 1, ("disk_free_bytes", ""): 5e9, ("audit_ok", ""): 1},
        {"questions": 12, "declined": 2},
    )
    families = {f.name: f for f in text_string_to_metric_families(text)}
    files = {s.labels["status"]: s.value for s in families["sealroom_files"].samples}
    assert files == {"indexed": 7.0, "failed": 1.0}
    assert families["sealroom_questions_7d"].samples[0].value == 12.0
    assert families["sealroom_disk_free_bytes"].samples[0].value == 5e9


def test_failure_reasons_become_a_fixed_word_never_the_reasons_own_text():
    assert usage.failure_kind("encrypted (password required)") == "encrypted"
    assert usage.failure_kind("unsupported type (ELF executable)") == "unsupported"
    assert usage.failure_kind("parser crashed (exit code -9; memory limit 480 MB)") == "crashed"
    assert usage.failure_kind("damaged spreadsheet (BadZipFile)") == "damaged"
    assert usage.failure_kind("Smith v Jones settlement.pdf is odd") == "other"
    assert {k for k, _ in usage.FAILURE_KINDS} | {"other"} >= {usage.failure_kind(r) for r in ["", None, "x"]}


def test_alerts_fire_at_their_thresholds_each_with_what_to_do():
    assert alerts.watcher(True, 0, expected=True) == []
    assert alerts.watcher(False, 0, expected=False) == []
    assert alerts.watcher(False, 0, expected=True)[0].kind == "watcher_stopped"
    assert alerts.watcher(True, 2, expected=True)[0].message.endswith("restarted 2 times")
    assert alerts.failures(9, 5) == [] and alerts.failures(10, 5)[0].kind == "failures_rising"
    assert alerts.failures(50, None) == []
    assert alerts.exports(23.9, 1, 24) == [] and alerts.exports(30, 2, 24)[0].message.startswith("2 exports")
    assert alerts.disk(3 * alerts.GB, 2, "/d") == [] and alerts.disk(alerts.GB, 2, "/d")[0].kind == "disk_low"
    assert alerts.model(["the file is missing"])[0].fix.startswith("choose another model")
    assert alerts.audit(False, "record 4 was edited")[0].kind == "audit_failed"
    report = {"regression": True, "summary": "Regression: 1 of 2", "revertible": {"chat_model": ""}}
    [drift] = alerts.drift(report)
    assert "chat_model = default" in drift.fix and alerts.drift({**report, "dismissed": True}) == []
    assert all(a.fix for a in alerts.disk(0, 1, "/d") + alerts.exports(99, 1, 1))


def test_each_stage_of_an_ask_is_traced_into_the_data_folder(tmp_path: Path):
    tracing.setup(tmp_path, enabled=True)
    try:
        p, _ = pipeline("Audit logs are kept for ten years [1].")
        with tracing.ask(follow_up=False) as (_, trace_id):
            p.run("How long are audit logs kept?")
        spans = tracing.read(tmp_path, trace_id)
        names = [s["name"] for s in spans]
        assert names[0] == "ask" and set(names) == {
            "ask",
            "retrieve",
            "evidence",
            "model_load",
            "generate",
            "verify",
        }
        stage = {s["name"]: s for s in spans}
        assert stage["retrieve"]["attributes"]["kept"] == ["c0"]
        assert stage["evidence"]["attributes"]["declined"] is False
        assert stage["verify"]["attributes"]["shown"] + stage["verify"]["attributes"]["repeats_quotes"] == 1
        assert all(s["parent_id"] == stage["ask"]["span_id"] for s in spans[1:])
        assert (tmp_path / "traces.jsonl").stat().st_mode & 0o777 == 0o600
        tracing.setup(tmp_path, enabled=False)
        with tracing.ask() as (_, off):
            p.run("How long are audit logs kept?")
        assert off == "" and tracing.read(tmp_path, off) == []
    finally:
        tracing.setup(tmp_path, enabled=False)


def test_a_watcher_being_started_by_its_loop_is_no_alert():
    from sealroom.core.feedback.service import Feedback
    from sealroom.core.ingest.service import WatchState

    state = WatchState()
    feedback = Feedback.__new__(Feedback)  # only what watcher_alerts() reads
    feedback.watcher, feedback.watching = state, True
    state.looping = True  # the loop runs; its first watcher is not started yet (start-up, a folder added)
    assert state.watcher is None and feedback.watcher_alerts() == []
    state.restarts = 1
    assert [a.kind for a in feedback.watcher_alerts()] == ["watcher_restarting"]
    state.looping = False  # the loop ended while watching was expected
    assert [a.kind for a in feedback.watcher_alerts()] == ["watcher_stopped"]
    feedback.watching = False  # stopped as asked
    assert feedback.watcher_alerts() == []
