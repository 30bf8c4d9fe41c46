"""`DistilBertTextEmbedder`: pooling maths, config and preset round trips,
loading any DistilBERT checkpoint. Equality with sentence-transformers on
the real all-MiniLM-L6-v2: tests/large/test_text_embedder_minilm.py; with
transformers' hidden states: tests/crosscheck/test_bert_to_distilbert.py."""

import numpy as np
import pytest

import distilbert_hub as hub
from harness.testing import ModelTestCase, to_numpy

TEXTS = ["the quick brown fox", "a cat sat on the mat", "good movie"]


def embedder(backbone, tokenizer, **kwargs):
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tokenizer, sequence_length=12)
    return hub.DistilBertTextEmbedder(backbone, preprocessor=preprocessor, **kwargs)


def reference_pooling(states, mask, pooling, normalize):
    """sentence-transformers' Pooling and Normalize, in numpy."""
    mask = mask[..., None].astype(np.float64)
    states = states.astype(np.float64)
    if pooling == "cls":
        pooled = states[:, 0]
    elif pooling == "mean":
        pooled = (states * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
    else:
        pooled = np.where(mask > 0, states, -1e9).max(1)
    if normalize:
        pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
    return pooled


class TestDistilBertTextEmbedder(ModelTestCase):
    @pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
    @pytest.mark.parametrize("normalize", [True, False])
    def test_pooling_over_real_tokens(self, tiny_backbone, tiny_tokenizer, pooling, normalize):
        model = embedder(tiny_backbone, tiny_tokenizer, pooling=pooling, normalize=normalize)
        x = model.preprocessor(TEXTS)
        states = to_numpy(tiny_backbone(x))
        expected = reference_pooling(states, x["padding_mask"], pooling, normalize)
        np.testing.assert_allclose(model.predict(TEXTS, verbose=0), expected, atol=1e-5)
        # Padding never counts: one text alone gives the same vector as in the padded batch.
        np.testing.assert_allclose(model.predict(TEXTS[2:], verbose=0)[0], expected[2], atol=1e-5)

    def test_model_contract(self, tiny_backbone, tiny_tokenizer, token_inputs, tmp_path):
        x = {k: v % tiny_tokenizer.vocabulary_size() if k == "token_ids" else v for k, v in token_inputs.items()}
        self.run_model_test(
            hub.DistilBertTextEmbedder,
            {"backbone": tiny_backbone, "pooling": "max", "normalize": False},
            x,
            (2, 8),
            tmp_path,
        )

    def test_presets(self, tiny_backbone, tiny_tokenizer, tmp_path):
        model = embedder(tiny_backbone, tiny_tokenizer, pooling="cls", normalize=False)
        model.save_to_preset(tmp_path / "preset")
        restored = hub.DistilBertTextEmbedder.from_preset(str(tmp_path / "preset"))
        assert (restored.pooling, restored.normalize) == ("cls", False)
        np.testing.assert_allclose(restored.predict(TEXTS, verbose=0), model.predict(TEXTS, verbose=0), atol=1e-6)
        assert hub.DistilBertTextEmbedder.from_preset(str(tmp_path / "preset"), pooling="mean").pooling == "mean"
        model.export_to_transformers(tmp_path / "hf")
        from_hf = hub.DistilBertTextEmbedder.from_preset(str(tmp_path / "hf"), pooling="cls", normalize=False)
        np.testing.assert_allclose(from_hf.predict(TEXTS, verbose=0), model.predict(TEXTS, verbose=0), atol=1e-6)
        assert hub.DistilBertTextEmbedder.from_preset(str(tmp_path / "hf")).pooling == "mean"

    def test_any_task_checkpoint_gives_its_backbone(self, tiny_backbone, tiny_tokenizer, tmp_path):
        classifier = hub.DistilBertTextClassifier(
            tiny_backbone, num_classes=2, preprocessor=hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, 12)
        )
        classifier.export_to_transformers(tmp_path / "hf")
        model = hub.DistilBertTextEmbedder.from_preset(str(tmp_path / "hf"))
        x = model.preprocessor(TEXTS)
        expected = reference_pooling(to_numpy(tiny_backbone(x)), x["padding_mask"], "mean", True)
        np.testing.assert_allclose(model.predict(TEXTS, verbose=0), expected, atol=1e-5)

    def test_bad_arguments(self, tiny_backbone, tiny_tokenizer):
        with pytest.raises(ValueError, match="pooling"):
            hub.DistilBertTextEmbedder(tiny_backbone, pooling="sum")
        with pytest.raises(ValueError, match="labels"):
            embedder(tiny_backbone, tiny_tokenizer).check_labels(np.zeros(2), None)
