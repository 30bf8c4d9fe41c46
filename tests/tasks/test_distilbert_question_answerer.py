"""DistilBertQuestionAnswerer and its preprocessor (overflow windows, answers)."""

import numpy as np
import pytest

import distilbert_hub as hub
from harness.testing import HEAD_POLICIES, MODELS, TaskTestCase, head_case_ids, tiny_backbone_for

QUESTIONS = ["who written it ?", "where sat the cat ?"]
CONTEXTS = ["jane written the book in paris", "the cat sat on the mat in london city big"]
ANSWERS = [(0, 4), (19, 25)]


class TestDistilBertQuestionAnswerer(TaskTestCase):
    task = "question_answerer"

    def test_preprocessor(self, tiny_tokenizer):
        preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=14, stride=3)
        x, y = self.run_preprocessor_test(
            preprocessor, (QUESTIONS, CONTEXTS), ANSWERS, {"token_ids": (4, 14), "padding_mask": (4, 14)}
        )
        assert set(y) == {"start_logits", "end_logits"} and (y["start_logits"] <= y["end_logits"]).all()

    def test_task(self, tiny_tokenizer, tmp_path):
        preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=14, stride=3)
        model = self.run_task_test(
            MODELS[self.task], preprocessor, (QUESTIONS, CONTEXTS), ANSWERS, tmp_path, tiny_tokenizer
        )
        for result, context in zip(model.answer(QUESTIONS, CONTEXTS, doc_stride=3), CONTEXTS):
            assert result["answer"] and context[result["start"] : result["end"]] == result["answer"]

    @pytest.mark.parametrize("case_id", head_case_ids("question_answerer"))
    def test_logits_match_transformers(self, case_id):
        self.run_golden_case(case_id)

    def test_layer_names(self, tiny_tokenizer):
        self.run_layer_names_test({"output_dropout", "qa_logits"}, tiny_tokenizer)

    @pytest.mark.parametrize("policy", HEAD_POLICIES)
    def test_every_head_layer_follows_the_backbones_policy(self, policy, tiny_tokenizer):
        self.run_dtype_policy_test(policy, tiny_tokenizer)

    def test_fresh_weights_follow_transformers_init(self, tiny_tokenizer):
        self.run_fresh_weights_test(tiny_tokenizer)

    def test_every_layer_norm_has_distilberts_epsilon(self, tiny_tokenizer):
        self.run_layer_norm_epsilon_test(self.task, tiny_tokenizer)

    def test_every_constructor_argument_survives_the_config_round_trip(self, tiny_tokenizer):
        self.run_constructor_arguments_test(hub.DistilBertQuestionAnswerer, {"dropout": 0.35}, tiny_tokenizer)

    def test_the_head_dropout_comes_from_the_field_transformers_reads(self):
        self.run_head_dropout_field_test(hub.DistilBertQuestionAnswerer, "qa_dropout")

    def test_the_default_loss_is_transformers_cross_entropy(self, tiny_tokenizer):
        self.run_default_loss_test(
            tiny_tokenizer, lambda outputs, rng: {key: rng.integers(0, 5, 2) for key in ("start_logits", "end_logits")}
        )

    def test_labels_out_of_range_are_refused_in_the_tasks_name(self, tiny_tokenizer):
        def bad_labels(x):
            length = x["token_ids"].shape[-1]
            return {"start_logits": np.array([0, length]), "end_logits": np.array([1, length])}

        self.run_bad_labels_test(bad_labels, tiny_tokenizer)

    def test_labels_are_a_start_end_dict_with_start_at_most_end(self, tiny_tokenizer):
        model, x = self.make(tiny_tokenizer)
        model.compile()
        with pytest.raises(ValueError, match="labels are {'start_logits'"):
            model.evaluate(x, {"start": np.array([1, 2]), "end": np.array([1, 2])}, verbose=0)
        with pytest.raises(ValueError, match="row 1 has start 3 after end 2"):
            model.evaluate(x, {"start_logits": np.array([1, 3]), "end_logits": np.array([1, 2])}, verbose=0)
        one_token_answers = {"start_logits": np.array([1, 2]), "end_logits": np.array([1, 2])}
        assert np.isfinite(model.evaluate(x, one_token_answers, verbose=0)).all()

    def test_answer_keeps_the_pipelines_default_span_limit_and_prints_nothing(
        self, tiny_tokenizer, monkeypatch, capsys
    ):
        # transformers' question-answering pipeline: max_answer_len=15 by default.
        preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=32, stride=4)
        model = hub.DistilBertQuestionAnswerer(tiny_backbone_for(tiny_tokenizer, max_sequence_length=32), preprocessor)
        question, context = "who ?", " ".join(tiny_tokenizer.get_vocabulary()[5:25])
        windows = preprocessor.windows([question], [context])
        first = int(np.flatnonzero(windows.model_inputs()["token_ids"][0] == tiny_tokenizer.sep_token_id)[0]) + 1
        start, end = np.zeros((1, 32), "float32"), np.zeros((1, 32), "float32")
        start[0, first], end[0, first + 15], end[0, first + 14] = 10.0, 10.0, 9.0  # a 16-token span scores best
        monkeypatch.setattr(model, "predict_on_batch", lambda x: {"start_logits": start, "end_logits": end})
        words = context.split()
        assert model.answer([question], [context], doc_stride=4)["answer"] == " ".join(words[:15])
        assert model.answer([question], [context], doc_stride=4, max_answer_len=16)["answer"] == " ".join(words[:16])
        with pytest.warns(DeprecationWarning, match="max_answer_length is deprecated; pass max_answer_len"):
            earlier_name = model.answer([question], [context], doc_stride=4, max_answer_length=16)
        assert earlier_name["answer"] == " ".join(words[:16])

        monkeypatch.undo()
        model.answer([question], [context], doc_stride=4)
        assert capsys.readouterr().out == ""

    def test_question_without_room_for_context(self, tiny_tokenizer):
        preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=6, stride=1)
        with pytest.raises(ValueError, match="row 0: the question leaves 0 tokens for the context in 6"):
            preprocessor.windows(["the quick brown fox jumps over"], ["a cat"])

    def test_answer_outside_context(self, tiny_tokenizer):
        preprocessor = hub.DistilBertQuestionAnswererPreprocessor(tiny_tokenizer, sequence_length=12, stride=2)
        with pytest.raises(ValueError, match=r"answer 0: span \(3, 40\) is not inside its context"):
            preprocessor((["who ?"], ["a cat sat"]), [(3, 40)])
