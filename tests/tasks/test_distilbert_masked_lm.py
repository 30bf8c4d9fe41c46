"""DistilBertMaskedLM and its preprocessor (dynamic masking)."""

import numpy as np

import distilbert_hub as hub
from harness.testing import TaskTestCase

TEXTS = ["the quick brown fox", "a cat sat on the mat", "good movie", "terrible book"]


class TestDistilBertMaskedLM(TaskTestCase):
    def test_preprocessor(self, tiny_tokenizer):
        preprocessor = hub.DistilBertMaskedLMPreprocessor(
            tiny_tokenizer, sequence_length=10, mask_selection_length=4, seed=1
        )
        x, y, w = self.run_preprocessor_test(
            preprocessor, TEXTS, None, {"token_ids": (4, 10), "padding_mask": (4, 10), "mask_positions": (4, 4)}
        )
        assert y.shape == w.shape == (4, 4)
        original = preprocessor.tokenize_and_pack(TEXTS)[0]["token_ids"]
        chosen = w > 0
        assert chosen.any()
        np.testing.assert_array_equal(np.take_along_axis(original, x["mask_positions"], 1)[chosen], y[chosen])

    def test_task(self, tiny_tokenizer, tmp_path):
        preprocessor = hub.DistilBertMaskedLMPreprocessor(
            tiny_tokenizer, sequence_length=10, mask_selection_rate=0.5, mask_selection_length=4, seed=1
        )
        self.run_task_test(
            lambda b, p: hub.DistilBertMaskedLM(b, preprocessor=p), preprocessor, TEXTS, None, tmp_path, tiny_tokenizer
        )
