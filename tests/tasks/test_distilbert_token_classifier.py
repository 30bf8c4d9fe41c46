"""DistilBertTokenClassifier and its preprocessor (word-label alignment)."""

import numpy as np
import pytest

import distilbert_hub as hub
from harness.testing import HEAD_POLICIES, MODELS, TaskTestCase, head_case_ids, model_inputs, tiny_backbone_for

WORDS = [t.split() for t in ["the quick brown fox", "a cat sat on the mat", "good movie", "terrible book"]]
LABELS = [[i % 4 for i in range(len(w))] for w in WORDS]


class TestDistilBertTokenClassifier(TaskTestCase):
    task = "token_classifier"

    def test_preprocessor(self, tiny_tokenizer):
        preprocessor = hub.DistilBertTokenClassifierPreprocessor(tiny_tokenizer, sequence_length=10)
        x, y, w = self.run_preprocessor_test(
            preprocessor, WORDS, LABELS, {"token_ids": (4, 10), "padding_mask": (4, 10)}
        )
        assert y.shape == w.shape == (4, 10) and w[:, 0].sum() == 0  # [CLS] carries no label

    def test_task(self, tiny_tokenizer, tmp_path):
        preprocessor = hub.DistilBertTokenClassifierPreprocessor(tiny_tokenizer, sequence_length=10)
        self.run_task_test(MODELS[self.task], preprocessor, WORDS, LABELS, tmp_path, tiny_tokenizer)

    @pytest.mark.parametrize("case_id", head_case_ids("token_classifier"))
    def test_logits_match_transformers(self, case_id):
        self.run_golden_case(case_id)

    def test_layer_names(self, tiny_tokenizer):
        self.run_layer_names_test({"output_dropout", "logits"}, tiny_tokenizer)

    @pytest.mark.parametrize("policy", HEAD_POLICIES)
    def test_every_head_layer_follows_the_backbones_policy(self, policy, tiny_tokenizer):
        self.run_dtype_policy_test(policy, tiny_tokenizer)

    def test_fresh_weights_follow_transformers_init(self, tiny_tokenizer):
        self.run_fresh_weights_test(tiny_tokenizer)

    def test_every_layer_norm_has_distilberts_epsilon(self, tiny_tokenizer):
        self.run_layer_norm_epsilon_test(self.task, tiny_tokenizer)

    def test_every_constructor_argument_survives_the_config_round_trip(self, tiny_tokenizer):
        arguments = {"num_classes": 5, "dropout": 0.35}
        self.run_constructor_arguments_test(hub.DistilBertTokenClassifier, arguments, tiny_tokenizer)

    def test_the_head_dropout_comes_from_the_field_transformers_reads(self):
        self.run_head_dropout_field_test(hub.DistilBertTokenClassifier, "dropout")

    def test_compile_defaults_report_accuracy(self, tiny_tokenizer):
        self.run_compile_defaults_test(tiny_tokenizer)

    def test_the_default_loss_is_transformers_cross_entropy(self, tiny_tokenizer):
        self.run_default_loss_test(tiny_tokenizer)

    def test_labels_out_of_range_are_refused_in_the_tasks_name(self, tiny_tokenizer):
        self.run_bad_labels_test(lambda x: np.full(x["token_ids"].shape[:2], 7), tiny_tokenizer)

    def test_labels_of_the_wrong_shape_are_refused_by_name(self, tiny_tokenizer):
        labels = np.zeros((2,), "int32")
        self.run_label_shape_test(labels, r"labels have shape \(2,\); expected \(2, \d+\)", tiny_tokenizer)

    def test_labels_that_are_all_ignored_are_refused(self, tiny_tokenizer):
        labels = np.full(np.shape(model_inputs(self.task, 10)["token_ids"]), -100, "int32")
        self.run_label_shape_test(labels, "label -100 .* sample_weight 0", tiny_tokenizer)

    def test_the_number_of_classes(self, tiny_tokenizer):
        backbone = tiny_backbone_for(tiny_tokenizer)
        with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
            hub.DistilBertTokenClassifier(backbone, num_classes=1)
        assert hub.DistilBertTokenClassifier(backbone, num_classes=2).num_classes == 2
