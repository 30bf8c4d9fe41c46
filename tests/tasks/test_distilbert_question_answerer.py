"""DistilBertQuestionAnswerer and its preprocessor (overflow windows, answers)."""

import distilbert_hub as hub
from harness.testing import TaskTestCase

QUESTIONS = ["who written it ?", "where sat the cat ?"]
CONTEXTS = ["jane written the book in paris", "the cat sat on the mat in london city big"]
ANSWERS = [(0, 4), (19, 25)]


class TestDistilBertQuestionAnswerer(TaskTestCase):
    def test_preprocessor(self, tiny_tokenizer):
        preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=14, stride=3)
        x, y = self.run_preprocessor_test(
            preprocessor, (QUESTIONS, CONTEXTS), ANSWERS, {"token_ids": (4, 14), "padding_mask": (4, 14)}
        )
        assert set(y) == {"start_logits", "end_logits"} and (y["start_logits"] <= y["end_logits"]).all()

    def test_task(self, tiny_tokenizer, tmp_path):
        preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=14, stride=3)
        model = self.run_task_test(
            lambda b, p: hub.DistilBertQuestionAnswerer(b, preprocessor=p),
            preprocessor,
            (QUESTIONS, CONTEXTS),
            ANSWERS,
            tmp_path,
            tiny_tokenizer,
        )
        for result, context in zip(model.answer(QUESTIONS, CONTEXTS, doc_stride=3), CONTEXTS):
            assert result["answer"] and context[result["start"] : result["end"]] == result["answer"]
