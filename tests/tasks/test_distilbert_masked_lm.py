"""DistilBertMaskedLM and its preprocessor (dynamic masking)."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from harness.testing import HEAD_POLICIES, MODELS, TaskTestCase, cross_entropy, head_case_ids

TEXTS = ["the quick brown fox", "a cat sat on the mat", "good movie", "terrible book"]


class TestDistilBertMaskedLM(TaskTestCase):
    task = "masked_lm"

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
        self.run_task_test(MODELS[self.task], preprocessor, TEXTS, None, tmp_path, tiny_tokenizer)

    @pytest.mark.parametrize("case_id", head_case_ids("masked_lm"))
    def test_logits_match_transformers(self, case_id):
        self.run_golden_case(case_id)

    def test_layer_names(self, tiny_tokenizer):
        self.run_layer_names_test({"mlm_head"}, tiny_tokenizer)

    @pytest.mark.parametrize("policy", HEAD_POLICIES)
    def test_every_head_layer_follows_the_backbones_policy(self, policy, tiny_tokenizer):
        self.run_dtype_policy_test(policy, tiny_tokenizer)

    def test_fresh_weights_follow_transformers_init(self, tiny_tokenizer):
        self.run_fresh_weights_test(tiny_tokenizer)

    def test_every_layer_norm_has_distilberts_epsilon(self, tiny_tokenizer):
        self.run_layer_norm_epsilon_test(self.task, tiny_tokenizer)

    def test_labels_out_of_range_are_refused_in_the_tasks_name(self, tiny_tokenizer):
        self.run_bad_labels_test(lambda x: np.full(x["mask_positions"].shape, 50), tiny_tokenizer)

    def test_labels_of_the_wrong_shape_are_refused_by_name(self, tiny_tokenizer):
        labels = np.zeros((2, 5), "int32")
        self.run_label_shape_test(labels, r"labels have shape \(2, 5\); expected \(2, 2\)", tiny_tokenizer)

    def test_head_variables_carry_transformers_module_names(self, tiny_tokenizer):
        # DistilBertForMaskedLM: vocab_transform, vocab_layer_norm, vocab_projector (tied; its own bias).
        model, _ = self.make(tiny_tokenizer, activation="relu")
        paths = {variable.path for variable in model.masked_lm_head.weights}
        assert paths == {
            "mlm_head/vocab_transform/kernel",
            "mlm_head/vocab_transform/bias",
            "mlm_head/vocab_layer_norm/gamma",
            "mlm_head/vocab_layer_norm/beta",
            "mlm_head/vocab_bias",
        }, sorted(paths)
        assert model.masked_lm_head.activation == "relu", "the head's activation is the backbone's (HF `activation`)"
        assert keras.backend.standardize_dtype(model.input["mask_positions"].dtype) == "int32"

    def test_the_loss_is_cross_entropy_at_the_masked_positions(self, tiny_tokenizer):
        keras.utils.set_random_seed(0)
        model, x = self.make(tiny_tokenizer, dropout=0.0)
        model.compile()
        logits = keras.ops.convert_to_numpy(model(x)).astype(np.float64)
        labels, weights = np.array([[7, 8], [9, 10]]), np.array([[1.0, 1.0], [1.0, 0.0]])
        result = model.evaluate(x, labels, sample_weight=weights, verbose=0, return_dict=True)
        np.testing.assert_allclose(result["loss"], cross_entropy(logits, labels, weights), rtol=1e-5)
        agreement = (logits.argmax(-1) == labels)[weights > 0].mean()
        np.testing.assert_allclose(result["sparse_categorical_accuracy"], agreement)

    @pytest.mark.parametrize("entry", ["call", "predict"])
    def test_mask_positions_outside_the_sequence_are_refused_in_the_tasks_name(self, tiny_tokenizer, entry):
        # Merged: test_tasks' (call, the whole message) and test_task_contracts'
        # (predict, the task's name first) checked the same refusal.
        model, x = self.make(tiny_tokenizer)
        x["mask_positions"][1, 0] = x["token_ids"].shape[-1]
        message = r"^DistilBertMaskedLM: mask position 7 at index \(1, 0\) is outside the sequence \[0, 7\)"
        with pytest.raises(ValueError, match=message):
            model(x) if entry == "call" else model.predict(x, verbose=0)

    @pytest.mark.parametrize(
        "kwargs, message",
        [
            ({"mask_selection_rate": 1.5}, "mask_selection_rate must be in"),
            ({"mask_token_rate": 0.8, "random_token_rate": 0.3}, "must be <= 1"),
            ({"truncate": "middle"}, "truncate='middle' is not one of"),
            ({"sequence_length": 2}, "sequence_length must be an integer >= 3"),
        ],
    )
    def test_bad_preprocessor_settings(self, tiny_tokenizer, kwargs, message):
        with pytest.raises(ValueError, match=message):
            hub.DistilBertMaskedLMPreprocessor(tiny_tokenizer, **kwargs)
