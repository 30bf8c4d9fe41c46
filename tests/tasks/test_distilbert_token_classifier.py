"""DistilBertTokenClassifier and its preprocessor (word-label alignment)."""

import distilbert_hub as hub
from harness.testing import TaskTestCase

WORDS = [t.split() for t in ["the quick brown fox", "a cat sat on the mat", "good movie", "terrible book"]]
LABELS = [[i % 4 for i in range(len(w))] for w in WORDS]


class TestDistilBertTokenClassifier(TaskTestCase):
    def test_preprocessor(self, tiny_tokenizer):
        preprocessor = hub.DistilBertTokenClassifierPreprocessor(tiny_tokenizer, sequence_length=10)
        x, y, w = self.run_preprocessor_test(
            preprocessor, WORDS, LABELS, {"token_ids": (4, 10), "padding_mask": (4, 10)}
        )
        assert y.shape == w.shape == (4, 10) and w[:, 0].sum() == 0  # [CLS] carries no label

    def test_task(self, tiny_tokenizer, tmp_path):
        preprocessor = hub.DistilBertTokenClassifierPreprocessor(tiny_tokenizer, sequence_length=10)
        self.run_task_test(
            lambda b, p: hub.DistilBertTokenClassifier(b, num_classes=4, preprocessor=p),
            preprocessor,
            WORDS,
            LABELS,
            tmp_path,
            tiny_tokenizer,
        )
