"""Verification: a generated sentence is shown only when its evidence states what it says."""

from sealroom.core.answer.evidence import Evidence
from sealroom.core.answer.prompts import EXAMPLE_ANSWER
from sealroom.core.answer.verify import Verifier, complete_prefix, split_generated


def ev(n: int, quote: str, path: str = "/docs/policy.pdf") -> Evidence:
    return Evidence(n, quote, path, 1, "s" * 64, 0, 0, len(quote), 1.0)


EVIDENCE = [
    ev(1, "Audit logs are kept for ten years after the end of the contract."),
    ev(2, "The patient ID of the referral is PX-20417.", "/docs/referral.docx"),
]
PASSAGES = {1: "Retention policy of Acme Health. " + EVIDENCE[0].quote, 2: EVIDENCE[1].quote}


def verifier(question: str = "How long are audit logs kept?") -> Verifier:
    return Verifier(question, EVIDENCE, PASSAGES, [EXAMPLE_ANSWER])


def test_a_faithful_sentence_is_shown_with_its_citation():
    check = verifier().check("Audit logs are kept for 10 years [1].")
    assert check.verified and check.cites == [1] and check.text == "Audit logs are kept for 10 years [1]."


def test_a_changed_figure_is_dropped_even_when_the_wording_matches():
    check = verifier().check("Audit logs are kept for seven years [1].")
    assert not check.verified and "7" in check.reason


def test_a_changed_identifier_is_dropped():
    check = verifier("Is the patient ID PX-20418?").check("The patient ID of the referral is PX-20418 [2].")
    assert not check.verified and "px-20418" in check.reason


def test_an_uncited_sentence_gets_the_one_source_holding_its_facts():
    check = verifier().check("The referral's patient ID is PX-20417.")
    assert check.verified and check.cites == [2] and check.matched


def test_a_sentence_citing_the_wrong_source_is_dropped():
    check = verifier().check("Audit logs are kept for ten years [2].")
    assert not check.verified


def test_our_prompt_never_passes_as_an_answer():
    v = verifier("How much is the annual rent?")
    assert v.check(EXAMPLE_ANSWER).scaffolding
    assert not v.check("Conversation so far: Q: rent? A: ten years [1].").verified
    assert not v.check("Question: How long are audit logs kept?").verified
    assert (
        v.check("Audit logs are kept for ten years [n] [1].").text == "Audit logs are kept for ten years [1]."
    )


def test_a_denial_the_evidence_does_not_make_is_dropped():
    check = verifier().check("Audit logs are not kept for ten years [1].")
    assert not check.verified and "denies" in check.reason


def test_mostly_new_words_are_dropped():
    check = verifier().check("Audit logs are encrypted, replicated offsite and shredded by auditors [1].")
    assert not check.verified and "words" in check.reason


def test_invalid_citations_are_reported():
    check = verifier().check("Audit logs are kept for ten years [1][7].")
    assert check.verified and check.invalid == [7] and check.cites == [1]


def test_sentences_split_after_their_citations_and_stream_in_whole_sentences():
    assert split_generated("It is ten years [1]. The ID is PX-20417 [2].") == [
        "It is ten years [1].",
        "The ID is PX-20417 [2].",
    ]
    done, rest = complete_prefix("It is ten years [1]. The ID is PX")
    assert done == ["It is ten years [1]."] and rest == "The ID is PX"
    assert complete_prefix("It is 3.5 per") == ([], "It is 3.5 per")


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.integers(min_value=0, max_value=10**6).filter(lambda n: n != 10 and n != 20417))
def test_no_figure_absent_from_the_evidence_is_ever_shown(n: int):
    for sentence in (f"Audit logs are kept for {n} years [1].", f"Audit logs are kept for {n:,} years."):
        assert not verifier().check(sentence).verified


def test_a_figure_from_another_quote_of_the_same_source_is_not_vouched_for():
    from sealroom.core.answer.evidence import Evidence

    quotes = [
        Evidence(
            1, "The types smallint, integer, and bigint store whole numbers.", "/d.pdf", 3, "s", 0, 0, 10, 0.9
        ),
        Evidence(
            1,
            "So the number 23.5141 has a precision of 6 and a scale of 4.",
            "/d.pdf",
            3,
            "s",
            0,
            20,
            40,
            0.8,
        ),
    ]
    v = Verifier("What's the biggest number a bigint column can store?", quotes, {1: ""})
    wrong = v.check("The biggest number a bigint column can store is 23.5141 [1].")
    assert not wrong.verified and "one quote" in wrong.reason
    right = v.check("The number 23.5141 has a precision of 6 [1].")
    assert right.verified and right.unit == 1


def test_a_figure_is_not_given_to_another_parameter_than_the_one_it_is_listed_under():
    from sealroom.core.answer.evidence import Evidence

    quote = Evidence(
        1,
        "Users can set this value from zero to 2.1 billion, no less than autovacuum_freeze_max_age.",
        "/d.pdf",
        83,
        "s",
        0,
        0,
        10,
        0.9,
        label="vacuum_failsafe_age (integer)",
    )
    v = Verifier("What is the default autovacuum_freeze_max_age?", [quote], {1: quote.quote})
    assert not v.check("The default autovacuum_freeze_max_age is 2.1 billion [1].").verified
    assert v.check("The vacuum_failsafe_age can be set up to 2.1 billion [1].").verified


def test_a_figure_tied_to_other_words_than_its_quotes_is_dropped():
    """Seen with the default model on GPL-3: every word and the figure are in the quote, the relation is not."""
    quote = (
        "Moreover, your license from a particular copyright holder is reinstated permanently if the copyright "
        "holder notifies you of the violation by some reasonable means, this is the first time you have "
        "received notice of violation of this License (for any work) from that copyright holder, and you cure "
        "the violation prior to 30 days after your receipt of the notice."
    )
    v = Verifier(
        "How long does a licensee have to cure a violation before the licence is terminated permanently?",
        [ev(1, quote, "/docs/gpl-3.txt")],
        {1: quote},
        [EXAMPLE_ANSWER],
    )
    wrong = v.check(
        "The licensee has to cure the violation before 30 days after termination of the license [1]."
    )
    assert not wrong.verified and "next to it" in wrong.reason
    right = v.check("The violation must be cured within 30 days after receipt of the notice [1].")
    assert right.verified, right.reason
