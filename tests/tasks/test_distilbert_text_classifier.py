"""DistilBertTextClassifier and its preprocessor."""

import keras
import numpy as np

import distilbert_hub as hub
from harness.testing import TaskTestCase

TEXTS = ["the quick brown fox", "a cat sat on the mat", "good movie", "terrible book"]
LABELS = np.array([0, 1, 2, 1])


class TestDistilBertTextClassifier(TaskTestCase):
    def test_preprocessor(self, tiny_tokenizer):
        preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=10)
        x, y = self.run_preprocessor_test(preprocessor, TEXTS, LABELS, {"token_ids": (4, 10), "padding_mask": (4, 10)})
        np.testing.assert_array_equal(y, LABELS)
        pairs = preprocessor((TEXTS[:2], TEXTS[2:]))
        assert (pairs["token_ids"] == tiny_tokenizer.sep_token_id).sum() == 4

    def test_task(self, tiny_tokenizer, tmp_path):
        preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=10)
        self.run_task_test(
            lambda b, p: hub.DistilBertTextClassifier(b, num_classes=3, preprocessor=p),
            preprocessor,
            TEXTS,
            LABELS,
            tmp_path,
            tiny_tokenizer,
        )

    def test_regression_head(self, tiny_backbone):
        model = hub.DistilBertTextClassifier(tiny_backbone, num_classes=1)
        assert isinstance(model.compile_defaults()["loss"], keras.losses.MeanSquaredError)
