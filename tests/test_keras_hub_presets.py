"""KerasHub DistilBERT presets (written by keras_hub's save_to_preset,
`tools/make_keras_hub_presets.py`) load through `from_preset` and compute
what KerasHub computed with them."""

import shutil

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from harness.golden import REPO_ROOT

FIXTURES = REPO_ROOT / "harness" / "fixtures" / "keras_hub_presets"
TEXTS = ["the quick brown fox", "A cat sat on the mat.", "the lazy dog jumped", "foxes, cats"]


def test_a_keras_hub_classifier_preset_gives_keras_hubs_ids_and_logits():
    expected = np.load(FIXTURES / "text_classifier" / "expected.npz")
    classifier = hub.DistilBertTextClassifier.from_preset(str(FIXTURES / "text_classifier"))
    assert classifier.num_classes == 3 and classifier.preprocessor.sequence_length == 10
    np.testing.assert_array_equal(classifier.preprocessor(TEXTS)["token_ids"], expected["token_ids"])
    np.testing.assert_allclose(classifier.predict(TEXTS, verbose=0), expected["logits"], atol=1e-5, rtol=0)

    backbone = hub.DistilBertBackbone.from_preset(str(FIXTURES / "text_classifier"))
    ids = expected["token_ids"][:, :8]
    inputs = {"token_ids": np.array([[2, 5, 6, 7, 8, 3, 0, 0], [2, 11, 12, 13, 14, 5, 15, 3]], np.int32)}
    inputs["padding_mask"] = (inputs["token_ids"] != 0).astype("int32")
    output = keras.ops.convert_to_numpy(backbone(inputs))
    real = inputs["padding_mask"].astype(bool)
    assert np.abs(output - expected["backbone_output"])[real].max() <= 1e-5, ids


def test_a_keras_hub_masked_lm_preset_loads_with_the_hf_epsilon():
    expected = np.load(FIXTURES / "masked_lm" / "expected.npz")
    masked_lm = hub.DistilBertMaskedLM.from_preset(str(FIXTURES / "masked_lm"))
    assert isinstance(masked_lm.preprocessor, hub.DistilBertMaskedLMPreprocessor)
    inputs = {k: expected[k] for k in ("token_ids", "padding_mask", "mask_positions")}
    logits = keras.ops.convert_to_numpy(masked_lm(inputs))
    # KerasHub's MaskedLMHead normalizes with LayerNorm epsilon 1e-5 where
    # DistilBERT (transformers) uses 1e-12; we keep transformers' math, so the
    # logits differ slightly (measured 9.2e-5), and only by that epsilon:
    assert 1e-6 < np.abs(logits - expected["logits"]).max() < 1e-3
    masked_lm.masked_lm_head.layer_norm.epsilon = 1e-5
    np.testing.assert_allclose(keras.ops.convert_to_numpy(masked_lm(inputs)), expected["logits"], atol=1e-5, rtol=0)


def test_a_keras_hub_preset_without_weights_is_named(tmp_path):
    shutil.copytree(FIXTURES / "text_classifier", tmp_path / "preset")
    (tmp_path / "preset" / "model.weights.h5").unlink()
    with pytest.raises(ValueError, match="model.weights.h5: missing weights file"):
        hub.DistilBertBackbone.from_preset(str(tmp_path / "preset"))
