"""DistilBertMultipleChoice and its preprocessor."""

import distilbert_hub as hub
from harness.testing import TaskTestCase

PROMPTS = ["the cat sat on", "a dog"]
CHOICES = [["the mat", "a city", "blue"], ["good", "bad", "lazy dog"]]


class TestDistilBertMultipleChoice(TaskTestCase):
    def test_preprocessor(self, tiny_tokenizer):
        preprocessor = hub.DistilBertMultipleChoicePreprocessor(tiny_tokenizer, sequence_length=10)
        x, y = self.run_preprocessor_test(
            preprocessor, (PROMPTS, CHOICES), [0, 2], {"token_ids": (2, 3, 10), "padding_mask": (2, 3, 10)}
        )
        assert y.tolist() == [0, 2]

    def test_task(self, tiny_tokenizer, tmp_path):
        preprocessor = hub.DistilBertMultipleChoicePreprocessor(tiny_tokenizer, sequence_length=10)
        self.run_task_test(
            lambda b, p: hub.DistilBertMultipleChoice(b, preprocessor=p),
            preprocessor,
            (PROMPTS, CHOICES),
            [0, 2],
            tmp_path,
            tiny_tokenizer,
        )
