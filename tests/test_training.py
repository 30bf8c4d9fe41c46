"""`trainer_optimizer` is transformers' Trainer recipe: N steps of it on fixed
batches reproduce the `training` goldens (losses, learning rates, every
parameter), its update is torch's AdamW, its weight-decay rule is Trainer's,
and gradient accumulation over k micro-batches is one k-times-larger batch."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.convert.hf_weights import task_weight_map
from harness.golden import case_ids, load_case
from harness.runner import task_from_golden, training_recipe
from harness.testing import ModelTestCase

TRAINING_CASES = case_ids(kind="training")


class TestTrainingParity(ModelTestCase):
    @pytest.mark.parametrize("case_id", TRAINING_CASES)
    def test_training_steps_match_transformers(self, case_id):
        self.run_golden_case(case_id)


@pytest.mark.parametrize("case_id", TRAINING_CASES)
def test_weight_decay_skips_what_trainer_skips(case_id):
    # The golden records `Trainer.get_decay_parameter_names` of the reference
    # model; the tied `vocab_projector.weight` is the word embeddings here.
    golden = load_case(case_id)
    task = task_from_golden(golden)
    optimizer = hub.trainer_optimizer(**training_recipe(golden))
    optimizer.build(task.trainable_variables)
    decayed = {e.hf_name for e in task_weight_map(task) if optimizer._use_weight_decay(e.variable)}
    assert decayed == set(golden.provenance["decayed_parameters"].split(","))


def torch_adamw_reference(initial, gradients, learning_rates, weight_decay, betas=(0.9, 0.999), eps=1e-8):
    """torch.optim.AdamW's `_single_tensor_adam` (torch 2.13, decoupled weight
    decay, not amsgrad) transcribed in float64 numpy."""
    param, m, v = initial.astype(np.float64), np.zeros_like(initial, np.float64), np.zeros_like(initial, np.float64)
    for step, (grad, lr) in enumerate(zip(gradients, learning_rates), start=1):
        param = param * (1 - lr * weight_decay)
        m = m + (1 - betas[0]) * (grad - m)
        v = v * betas[1] + (1 - betas[1]) * grad * grad
        denominator = np.sqrt(v) / np.sqrt(1 - betas[1] ** step) + eps
        param = param - lr / (1 - betas[0] ** step) * m / denominator
    return param


def test_the_update_is_torch_adamw_where_keras_adamw_is_not():
    # Gradients of the order of eps: where eps enters the bias-corrected
    # denominator decides the step. Keras' AdamW adds eps to the uncorrected
    # sqrt(v) (an eps sqrt(1 - b2^t) times smaller); measured on this case it
    # moves the weights by up to 9x torch's update.
    rng = np.random.default_rng(0)
    initial = rng.normal(size=(6, 5)).astype(np.float32)
    gradients = [(1e-8 * rng.normal(size=(6, 5))).astype(np.float32) for _ in range(8)]
    rates = [float(keras.ops.convert_to_numpy(hub.LinearWarmupDecay(1e-3, 10, 2)(i))) for i in range(8)]
    expected = torch_adamw_reference(initial, gradients, rates, 0.01)

    def run(optimizer):
        variable = keras.Variable(initial, name="kernel")
        for gradient in gradients:
            optimizer.apply([keras.ops.convert_to_tensor(gradient)], [variable])
        return keras.ops.convert_to_numpy(variable)

    ours = run(hub.trainer_optimizer(10, learning_rate=1e-3, warmup_steps=2, weight_decay=0.01, max_grad_norm=None))
    keras_adamw = run(keras.optimizers.AdamW(hub.LinearWarmupDecay(1e-3, 10, 2), weight_decay=0.01, epsilon=1e-8))
    # float32 weights of order 1 (ulp 1.2e-7), updated 8 times.
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    assert np.abs(keras_adamw - expected).max() > 1e-4


def test_the_schedule_is_transformers_linear_warmup():
    # transformers' _get_linear_schedule_with_warmup_lr_lambda, written out.
    def reference(step, warmup, total):
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    for warmup, total in [(0, 5), (3, 7), (4, 4)]:
        schedule = hub.LinearWarmupDecay(2e-5, total, warmup)
        ours = [float(keras.ops.convert_to_numpy(schedule(step))) for step in range(total + 2)]
        np.testing.assert_allclose(ours, [2e-5 * reference(s, warmup, total) for s in range(total + 2)], rtol=1e-6)


@pytest.mark.parametrize("case_id", ["training_text_classifier", "training_token_classifier"])
def test_gradient_accumulation_equals_one_larger_batch(case_id):
    # Batches of 4 on 4 steps, against the same batches as 2 micro-batches of
    # 2 with accumulation: the Keras accumulator averages the micro-batches'
    # gradients, which is the larger batch's gradient when each micro-batch's
    # loss is a mean over the same number of terms (the text classifier's
    # examples) - and not otherwise: the token classifier averages over
    # labelled tokens, so micro-batches with different label counts weigh
    # their tokens differently, and its padding rows are given equal counts
    # below by labelling every slot.
    golden = load_case(case_id)
    steps, recipe = 4, training_recipe(golden) | {"total_steps": 4, "warmup_steps": 1}
    inputs = golden.inputs

    def batch(step):
        x = {"token_ids": inputs["token_ids"][step], "padding_mask": np.ones_like(inputs["padding_mask"][step])}
        return x, np.maximum(inputs["labels"][step], 0)

    def train(accumulation):
        task = task_from_golden(golden)
        optimizer = hub.trainer_optimizer(**recipe, gradient_accumulation_steps=accumulation)
        task.compile(optimizer=optimizer)
        for step in range(steps):
            for x, y, _ in hub.micro_batches(*batch(step), gradient_accumulation_steps=accumulation):
                task.train_on_batch(x, y)
        assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == steps
        return {e.hf_name: keras.ops.convert_to_numpy(e.variable) for e in task_weight_map(task)}

    whole, accumulated = train(1), train(2)
    for name in whole:
        # The key biases' gradient is 0 in exact arithmetic (softmax is
        # shift-invariant): Adam turns their rounding noise into steps of up
        # to lr, so they are no test of the sum (see the training goldens).
        if not name.endswith("k_lin.bias"):
            # Measured 6e-8: one rounding of the averaged gradient.
            np.testing.assert_allclose(accumulated[name], whole[name], rtol=0, atol=1e-6, err_msg=name)


def test_micro_batches_split_evenly():
    x = {"token_ids": np.arange(12).reshape(6, 2)}
    parts = hub.micro_batches(x, np.arange(6), None, gradient_accumulation_steps=3)
    assert [p[0]["token_ids"].tolist() for p in parts] == [[[0, 1], [2, 3]], [[4, 5], [6, 7]], [[8, 9], [10, 11]]]
    assert [p[1].tolist() for p in parts] == [[0, 1], [2, 3], [4, 5]] and parts[0][2] is None


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: hub.trainer_optimizer(10, warmup_steps=11), r"warmup_steps \(11\) exceeds total_steps \(10\)"),
        (lambda: hub.trainer_optimizer(0), "total_steps must be an integer >= 1"),
        (lambda: hub.trainer_optimizer(10, warmup_steps=-1), "warmup_steps must be an integer >= 0"),
        (lambda: hub.trainer_optimizer(10, max_grad_norm=0.0), "max_grad_norm must be > 0"),
        (lambda: hub.trainer_optimizer(10, max_grad_norm=-1.0), "max_grad_norm must be > 0"),
        (lambda: hub.trainer_optimizer(10, gradient_accumulation_steps=0), "gradient_accumulation_steps must be"),
        (
            lambda: hub.micro_batches({"token_ids": np.zeros((5, 3))}, np.zeros(5), gradient_accumulation_steps=2),
            r"gradient_accumulation_steps \(2\) does not divide the batch size \(5\)",
        ),
        (
            lambda: hub.micro_batches({"token_ids": np.zeros((4, 3))}, np.zeros(5), gradient_accumulation_steps=2),
            "different batch sizes",
        ),
    ],
)
def test_bad_recipe_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_optimizer_round_trips_through_its_config():
    optimizer = hub.trainer_optimizer(20, learning_rate=3e-5, warmup_steps=4, weight_decay=0.01)
    clone = hub.TorchAdamW.from_config(optimizer.get_config())
    assert clone.get_config() == optimizer.get_config()
    assert clone.get_config()["learning_rate"]["class_name"] == "LinearWarmupDecay"
