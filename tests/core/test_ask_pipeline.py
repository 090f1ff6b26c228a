"""The answer pipeline with a fake model: evidence first, verified sentences only, honest abstention."""

from __future__ import annotations

import threading

import pytest

from sealroom.core.answer.evidence import Evidence
from sealroom.core.answer.pipeline import TEMPLATE_TOKENS, AnswerPipeline, ModelInfo
from sealroom.core.answer.prompts import (
    EXAMPLE_QUESTION,
    NOT_IN_SOURCES,
    STOP,
    chat_messages,
    completion_prompt,
    shared_start,
)
from sealroom.core.runtime.errors import ModelError
from tests.fakes import FakeEmbedder, FakeModel, FakeRetriever


def pipeline(reply: str) -> tuple[AnswerPipeline, FakeModel, FakeRetriever]:
    model, retriever = FakeModel(reply), FakeRetriever()
    return (
        AnswerPipeline(retriever, FakeEmbedder(), lambda: (model, ModelInfo("fake.gguf", "f" * 64))),
        model,
        retriever,
    )


def test_evidence_comes_first_then_only_verified_sentences():
    p, model, _ = pipeline(
        "Audit logs are kept for ten years [1]. Audit logs stay for ten years once the contract ends [1]. "
        "They are kept for seven years [1]."
    )
    shown: list[str] = []
    answer = p.run("How long are audit logs kept?", on_text=shown.append)
    assert shown[0].startswith("What the sources say:\n“Audit logs are kept for ten years")
    assert answer.text == "".join(shown)
    assert answer.text.endswith("\n\nAudit logs stay for ten years once the contract ends [1].")
    # the short restatement resting on the best quote is the direct answer candidate (measured by eval)
    assert answer.direct is not None and answer.direct.text == "Audit logs are kept for ten years [1]."
    assert "seven" not in answer.text
    assert answer.generated[0].verified and answer.generated[0].repeats_evidence
    assert [s.text for s in answer.dropped] == ["They are kept for seven years."]
    assert answer.citations[0]["path"] == "/docs/policy.pdf" and answer.citations[0]["page"] == 2
    assert answer.to_dict()["verification"]["dropped"][0]["reason"].startswith("not in the evidence")
    assert answer.model.sha256 == "f" * 64 and not answer.abstained
    # the model saw the evidence, not the passages around it
    assert "Backups" not in model.prompts[0].split("Evidence:")[-1]


def test_when_nothing_generated_survives_the_evidence_is_the_answer():
    p, _, _ = pipeline("The patient ID is PX-20418 [2].")
    answer = p.run("What is the patient ID on the referral?")
    assert "PX-20417" in answer.text and "PX-20418" not in answer.text
    assert answer.shown == [] and len(answer.dropped) == 1


def test_the_examples_own_question_is_not_answered_from_the_example():
    p, _, _ = pipeline("The annual rent is 12,000 euros [1].")
    answer = p.run(EXAMPLE_QUESTION)
    assert "12,000" not in answer.text
    assert answer.abstained or all(s.scaffolding for s in answer.generated)


def test_abstains_without_the_model_and_says_what_is_pending():
    p, model, _ = pipeline("anything")
    answer = p.run("What is the rent of the Berlin office?", pending_files=3)
    assert answer.abstained and answer.text.startswith(NOT_IN_SOURCES)
    assert "3 files are not indexed yet" in answer.text
    assert model.calls == 0 and not answer.called_model


def test_a_model_that_declines_does_not_hide_strong_evidence():
    p, _, _ = pipeline(NOT_IN_SOURCES)
    answer = p.run("Who signed the referral?")
    assert not answer.abstained and "Miriam Okafor" in answer.text and NOT_IN_SOURCES not in answer.text


def test_follow_ups_search_with_the_earlier_question_but_the_prompt_has_no_history():
    p, model, retriever = pipeline("It was signed on 3 May 2024 [1].")
    answer = p.run(
        "And when was it signed?", earlier_questions=["Who signed the referral for patient PX-20417?"]
    )
    assert "PX-20417" in retriever.queries[0]
    assert "Who signed" not in model.prompts[0]
    assert "3 May 2024" in answer.text


def test_stop_before_generation_keeps_the_evidence():
    p, model, _ = pipeline("Audit logs are kept for ten years [1].")
    stop = threading.Event()
    stop.set()
    answer = p.run("How long are audit logs kept?", stop=stop)
    assert "ten years" in answer.text and model.calls == 0 and answer.finish_reason == "cancelled"


def test_a_model_that_cannot_be_loaded_leaves_the_quotes_as_the_answer_and_says_why():
    """Refused by the IT policy's allow-list, missing or damaged: the cited evidence still answers."""
    reason = "other.gguf is not on the list of models your organisation allows"

    def refused() -> tuple[FakeModel, ModelInfo]:
        raise ModelError(reason)

    shown: list[str] = []
    answer = AnswerPipeline(FakeRetriever(), FakeEmbedder(), refused).run(
        "How long are audit logs kept?", on_text=shown.append
    )
    assert answer.finish_reason == "no_model" and answer.model_problem == reason
    assert answer.text == "".join(shown) and "Audit logs are kept for ten years" in answer.text
    assert not answer.abstained and answer.citations and not answer.called_model
    record = answer.to_dict()
    assert record["model_problem"] == reason and record["model"] == ""


def test_a_prompt_longer_than_the_models_context_leaves_the_quotes_as_the_answer():
    p, model, _ = pipeline("Audit logs are kept for ten years [1].")
    model.n_ctx = 256  # FakeModel counts 4 characters a token: the prompt alone is longer than this
    shown: list[str] = []
    answer = p.run("How long are audit logs kept?", on_text=shown.append)
    assert answer.finish_reason == "too_long" and model.calls == 0
    assert answer.timings["prompt_tokens"] + TEMPLATE_TOKENS + p.max_answer_tokens > 256
    assert answer.text == "".join(shown) and "Audit logs are kept for ten years" in answer.text
    assert not answer.abstained and answer.citations  # the evidence stands, cited
    model.n_ctx = 4096
    assert p.run("How long are audit logs kept?").finish_reason == "stop" and model.calls == 1


@pytest.mark.parametrize("chat", [True, False])
def test_the_start_primed_at_model_load_is_the_start_of_every_prompt(chat: bool):
    quote = Evidence(1, "Audit logs are kept for ten years.", "/docs/policy.pdf", 2, "a" * 64, 0, 0, 34, 0.9)
    start = shared_start(chat)
    for question, evidence in (("How long are audit logs kept?", [quote]), ("Anything?", [])):
        if chat:
            messages = chat_messages(question, evidence)
            assert messages[0] == start["messages"][0]  # the rules, whole
            assert messages[1]["role"] == start["messages"][1]["role"] == "user"
            assert messages[1]["content"].startswith(start["messages"][1]["content"])
        else:
            assert completion_prompt(question, evidence).startswith(start["prompt"])
            assert start["stop"] == STOP
