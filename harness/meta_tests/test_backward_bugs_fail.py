"""The gradient goldens must catch a model whose forward pass is right and
whose backward pass or loss is wrong. Each bug below leaves every forward
golden passing; a gradient golden must fail with a report that names the
parameter (`gradients/<HF name>`), its worst element and both values.
Dropout bugs are invisible to goldens made at dropout 0: the dropout-site
check (harness/dropout_sites.py, run by tests/test_dropout_sites.py) must
catch those."""

import keras
import pytest
from keras.ops import take_along_axis

from distilbert_hub.distilbert_masked_lm import DistilBertMaskedLM
from distilbert_hub.distilbert_question_answerer import DistilBertQuestionAnswerer
from distilbert_hub.layers.distilbert_attention import DistilBertAttention
from distilbert_hub.layers.distilbert_masked_lm_head import DistilBertMaskedLMHead
from distilbert_hub.layers.distilbert_transformer_layer import DistilBertTransformerLayer, apply_activation
from harness.compare import assert_all_match
from harness.dropout_sites import check_dropout_sites
from harness.golden import load_case
from harness.gradients import model_from_golden, run_gradients_case
from harness.runner import compare_outputs


def stop_gradient_on_attention_output(monkeypatch):
    call = DistilBertAttention.call

    # The signature of DistilBertAttention.call (Keras inspects it on jax).
    def attention_without_backward(self, hidden_states, padding_mask=None, training=None, tokens=None):
        tokens = {} if tokens is None else {"tokens": tokens}
        return keras.ops.stop_gradient(
            call(self, hidden_states, padding_mask=padding_mask, training=training, **tokens)
        )

    monkeypatch.setattr(DistilBertAttention, "call", attention_without_backward)


def lora_scaled_twice(monkeypatch, model):
    for layer in model.lora_layers():  # W + s * A B with s applied twice: s^2 = alpha^2 / r^2
        monkeypatch.setattr(layer, "lora_alpha", layer.lora_alpha**2 / layer.lora_rank)


def masked_lm_loss_over_padding_slots(monkeypatch):
    defaults = DistilBertMaskedLM.compile_defaults

    def averaged_over_every_slot(self):
        return defaults(self) | {"loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}

    monkeypatch.setattr(DistilBertMaskedLM, "compile_defaults", averaged_over_every_slot)


def tied_embedding_counts_only_its_input_use(monkeypatch):
    def projection_without_gradient(self, hidden_states, mask_positions):
        # DistilBertMaskedLMHead.call, with the tied projection cut from the backward pass.
        positions = keras.ops.expand_dims(keras.ops.cast(mask_positions, "int32"), axis=-1)
        x = self.layer_norm(
            apply_activation(self.transform_dense(take_along_axis(hidden_states, positions, 1)), "gelu")
        )
        embedding = keras.ops.stop_gradient(self._embedding_layer.token_embedding)
        return keras.ops.matmul(x, keras.ops.transpose(embedding)) + self.bias

    monkeypatch.setattr(DistilBertMaskedLMHead, "call", projection_without_gradient)


def question_answerer_sums_start_and_end_losses(monkeypatch):
    defaults = DistilBertQuestionAnswerer.compile_defaults
    monkeypatch.setattr(
        DistilBertQuestionAnswerer,
        "compile_defaults",
        lambda self: defaults(self) | {"loss_weights": {"start_logits": 1.0, "end_logits": 1.0}},
    )


# bug -> (golden case, patch before the model is built, patch of the built model)
BUGS = {
    "stop_gradient_on_attention_output": ("gradients_backbone", stop_gradient_on_attention_output, None),
    "lora_update_scaled_twice": ("gradients_lora_backbone", None, lora_scaled_twice),
    "masked_lm_loss_averaged_over_padding_slots": ("gradients_masked_lm", masked_lm_loss_over_padding_slots, None),
    "tied_embedding_gradient_counts_one_use": ("gradients_masked_lm", tied_embedding_counts_only_its_input_use, None),
    "loss_reduction_sum_instead_of_mean": (
        "gradients_question_answerer",
        question_answerer_sums_start_and_end_losses,
        None,
    ),
}
# The parameter each bug must be reported on (it shows in that gradient, among others).
EXPECTED_FAILURES = {
    "stop_gradient_on_attention_output": "gradients/transformer.layer.0.attention.q_lin.weight",
    "lora_update_scaled_twice": "gradients/transformer.layer.0.attention.q_lin.lora_A.weight",
    "masked_lm_loss_averaged_over_padding_slots": "gradients/vocab_projector.bias",
    "tied_embedding_gradient_counts_one_use": "gradients/distilbert.embeddings.word_embeddings.weight",
    "loss_reduction_sum_instead_of_mean": "gradients/qa_outputs.weight",
}


@pytest.mark.parametrize("bug", sorted(BUGS))
def test_backward_bug_fails_a_gradient_golden_with_a_readable_report(monkeypatch, bug):
    case_id, before_build, after_build = BUGS[bug]
    golden = load_case(case_id)
    if before_build:
        before_build(monkeypatch)
    model = model_from_golden(golden)
    if after_build:
        after_build(monkeypatch, model)
    comparisons = compare_outputs(golden, run_gradients_case(golden, model))
    with pytest.raises(AssertionError) as failure:
        assert_all_match(comparisons)
    report = str(failure.value)
    failed = {c.output: c for c in comparisons if not c.passed}
    assert EXPECTED_FAILURES[bug] in failed, f"{bug}: {EXPECTED_FAILURES[bug]} passed; failed: {sorted(failed)}"
    reported = failed[EXPECTED_FAILURES[bug]]
    index, actual, expected, _ = reported.worst[0]
    for needle in (
        case_id,
        reported.output,
        "DOES NOT MATCH",
        str(index),
        f"{actual:.8g}",
        f"{expected:.8g}",
        "of the golden's L2 norm",
        f'tox -e {reported.backend} -- -k "{case_id}"',
    ):
        assert needle in report, f"report lacks {needle!r}:\n{report}"


def test_without_a_bug_every_gradient_golden_of_the_meta_tests_passes():
    for case_id in sorted({case_id for case_id, _, _ in BUGS.values()}):
        golden = load_case(case_id)
        assert_all_match(compare_outputs(golden, run_gradients_case(golden)))


def dropout_left_unscaled(monkeypatch):
    call = keras.layers.Dropout.call
    monkeypatch.setattr(
        keras.layers.Dropout, "call", lambda self, x, training=False: call(self, x, training) * (1 - self.rate)
    )


def feed_forward_dropout_after_the_residual_sum(monkeypatch):
    def call(self, hidden_states, padding_mask=None, training=None):
        attended = self.attention(hidden_states, padding_mask=padding_mask, training=training)
        hidden_states = self.attention_layer_norm(attended + hidden_states)
        feed_forward = self.output_dense(apply_activation(self.intermediate_dense(hidden_states), self.activation))
        return self.output_layer_norm(self.output_dropout(feed_forward + hidden_states, training=training))

    monkeypatch.setattr(DistilBertTransformerLayer, "call", call)


def attention_dropout_removed(monkeypatch):
    monkeypatch.setattr(DistilBertAttention, "__init__", dropless_attention_init(DistilBertAttention.__init__))


def dropless_attention_init(init):
    def without_dropout(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.dropout_layer.rate = 0.0  # keeps the layer, drops nothing: the site's rate is wrong

    return without_dropout


DROPOUT_BUGS = {
    "dropout_left_unscaled": (dropout_left_unscaled, "kept values"),
    "ffn_dropout_after_the_residual_sum": (feed_forward_dropout_after_the_residual_sum, "before the residual sum"),
    "attention_dropout_removed": (attention_dropout_removed, "0.35"),
}


@pytest.mark.parametrize("bug", sorted(DROPOUT_BUGS))
def test_dropout_bug_fails_the_dropout_site_check(monkeypatch, bug):
    inject, message = DROPOUT_BUGS[bug]
    inject(monkeypatch)
    with pytest.raises(AssertionError, match=message):
        check_dropout_sites(monkeypatch, "backbone")
