"""Words, figures and names in text: what retrieval, evidence and verification compare.

`facts()` is the heart of verification: the numbers (digits or words), dates,
identifiers and proper names a sentence states. A generated sentence may only state
facts that its evidence states too.
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "she",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "after",
        "all",
        "also",
        "any",
        "been",
        "before",
        "being",
        "both",
        "could",
        "each",
        "few",
        "more",
        "most",
        "other",
        "over",
        "same",
        "should",
        "some",
        "such",
        "than",
        "too",
        "under",
        "until",
        "very",
        "just",
        "tell",
        "give",
        "show",
        "please",
        # prepositions and pronouns: a question may start with one ("Within …", "Upon …"); no passage need hold it
        "within",
        "upon",
        "per",
        "via",
        "across",
        "between",
        "through",
        "throughout",
        "during",
        "against",
        "among",
        "around",
        "without",
        "toward",
        "towards",
        "onto",
        "regarding",
        "concerning",
        "besides",
        "whether",
        "while",
        "he",
        "him",
        "his",
        "her",
        "hers",
        "us",
        "those",
        "here",
        "der",
        "die",
        "das",
        "und",
        "ist",
        "ein",
        "eine",
        "zu",
        "den",
        "von",
        "mit",
    ]
)
NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
} | {"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "hundred": "100", "thousand": "1000"}
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
]
MONTH_NUMBER = {m: f"month:{(i % 12) + 1}" for i, m in enumerate(MONTHS[:12])} | {
    m: f"month:{n}" for m, n in zip(MONTHS[12:], [1, 2, 3, 4, 6, 7, 8, 9, 9, 10, 11, 12], strict=True)
}
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
DATE = re.compile(
    r"\b(?:\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|(?:1[5-9]|20)\d\d|"
    r"\d{1,2}\s+(?:" + "|".join(MONTHS) + r")\b|(?:" + "|".join(MONTHS) + r")\.?\s+\d{1,2})",
    re.IGNORECASE,
)
IDENTIFIER = re.compile(r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[-_./][A-Za-z0-9]+)*\b")
NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|cannot|without)\b|n't\b", re.IGNORECASE)
# capitalised words that are not names even in mid-sentence
NOT_NAMES = frozenset(["I", "The", "A", "An", "It", "This", "That", "These", "Those", "In", "On", "At", "Of"])


ABBREVIATIONS = frozenset(
    [
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "no",
        "nr",
        "fig",
        "vs",
        "etc",
        "inc",
        "ltd",
        "co",
        "jr",
        "sr",
        "e.g",
        "i.e",
        "approx",
        "dept",
        "art",
        "sec",
        "para",
        "ca",
        "bzw",
        "z.b",
    ]
)


def is_abbreviation(text: str, dot: int) -> bool:
    """Whether the full stop at `dot` ends an abbreviation or an initial ("Dr.", "John X. Doe")."""
    start = dot
    while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "."):
        start -= 1
    word = text[start:dot].lower()
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def stem(word: str) -> str:
    """A light English stem: enough that 'rents' meets 'rent' and 'signed' meets 'signing'."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _term(word: str) -> str:
    if word in MONTH_NUMBER:
        return MONTH_NUMBER[word]
    return stem(NUMBER_WORDS.get(word, word))


def content_terms(text: str) -> set[str]:
    """Stemmed words that carry meaning (no stop words, no single letters); months as 'month:N'."""
    terms = {_term(w) for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())}
    return terms | {f"field:{f.lower()}" for f in FIELD.findall(text)}


FIELD = re.compile(r"(?m)^\s*([A-Za-z][A-Za-z-]{1,30}):")  # "From:", "Date:" at a line's start
# What a question's words point at in documents that label them (e-mail headers above all).
RELATED = {
    "sent": ["field:from", "field:date"],
    "send": ["field:from"],
    "sender": ["field:from"],
    "wrote": ["field:from"],
    "recipient": ["field:to"],
    "received": ["field:to", "field:date"],
    "attached": ["field:attachments"],
    "attachment": ["field:attachments"],
    "file": ["field:attachments"],
    "title": ["field:subject"],
    "subject": ["field:subject"],
}


def expansions(question: str) -> set[str]:
    """Labelled fields the question's words point at (weighted lower than the words themselves)."""
    return {r for w in words(question) for r in RELATED.get(w, [])}


def _number(token: str) -> str:
    """'12,000' and '12000' and '12.000' compare equal; '3.5' stays '3.5'."""
    if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", token):
        return re.sub(r"[.,]", "", token)
    return token.replace(",", ".")


def numbers(text: str) -> set[str]:
    found = {_number(m.group(0)) for m in NUMBER.finditer(text)}
    found |= {NUMBER_WORDS[w] for w in words(text) if w in NUMBER_WORDS}
    return found


def proper_names(text: str) -> set[str]:
    """Capitalised words that are not the first word of a sentence (lower-cased)."""
    names = set()
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n", text):
        tokens = re.findall(r"[\w'’-]+", sentence)
        for tok in tokens[1:]:
            if (tok[:1].isupper() and not tok.isupper() and tok not in NOT_NAMES and len(tok) > 1) or (
                tok.isupper() and len(tok) > 1 and tok.isalpha()
            ):
                names.add(tok.lower())
    return names


def has_proper_name(text: str) -> bool:
    return bool(proper_names(text))


def figures(text: str) -> set[str]:
    """The numbers (digits or words) and identifiers a text states, normalised for comparison."""
    return numbers(text) | {m.group(0).lower() for m in IDENTIFIER.finditer(text)}


def facts(text: str) -> set[str]:
    """The checkable claims of a sentence: its figures and its proper names (as 'name:…')."""
    return figures(text) | {f"name:{n}" for n in proper_names(text)}


def facts_in(fact: str, evidence: str) -> bool:
    """Whether one fact (from `facts`) is stated in `evidence`."""
    if fact.startswith("name:"):
        return fact[5:] in set(words(evidence)) | {w.lower() for w in re.findall(r"[\w'’-]+", evidence)}
    return fact in figures(evidence)
