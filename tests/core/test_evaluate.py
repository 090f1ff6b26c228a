"""Scoring logic of `sealroom eval` (no engine): what counts as stating the answer, splits and their gap."""

from sealroom.core.answer import evaluate
from sealroom.core.answer.evaluate import Result, states_answer, summarise_splits


def test_a_sentence_states_the_answer_when_it_holds_the_facts_the_question_lacks():
    patterns = [r"default value is replica"]
    quotes = "wal_level (enum) … The default value is replica, which writes enough data."
    question = "wal_level default?"
    assert states_answer(patterns, question, "The default value of wal_level is replica [1].", quotes)
    assert not states_answer(patterns, question, "The default value of wal_level is minimal [1].", quotes)
    # a figure must be there: "port 113" is not stated by a sentence that only names the port
    assert states_answer(
        [r"TCP port 113"], "Which port?", "It listens on port 113 [1].", "on TCP port 113 by default"
    )
    assert not states_answer(
        [r"TCP port 113"], "Which port?", "It listens on a TCP port [1].", "on TCP port 113"
    )


def _result(split: str, correct: bool, unanswerable: bool = False) -> Result:
    return Result(
        f"q-{split}-{correct}",
        "?",
        unanswerable,
        True,
        correct,
        correct,
        False,
        False,
        unanswerable and correct,
        False,
        0,
        0,
        False,
        False,
        10.0,
        100.0,
        "",
        0.5,
        split,
        "c",
    )


def test_splits_are_summarised_apart_and_their_gap_is_a_missed_target():
    results = [_result("dev", True), _result("dev", True), _result("test", True), _result("test", False)]
    results += [_result("dev", True, unanswerable=True), _result("test", True, unanswerable=True)]
    splits = summarise_splits(results)
    assert splits["dev"]["correct_and_cited"] == 1.0 and splits["test"]["correct_and_cited"] == 0.5
    assert splits["gap"]["correct_and_cited"] == 0.5
    missed = evaluate.missed_real_targets(splits)
    assert any("gap on correct_and_cited" in m for m in missed)
    assert any(
        m.startswith("correct_and_cited 0.5") for m in missed
    )  # the test split's figure is the one judged
