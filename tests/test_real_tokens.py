"""The classifiers' `predict` runs the real tokens only on torch (`RealTokens`):
it must give what `__call__` (the reference's padded path) gives, in every
precision and setup, and skip exactly the work nobody reads."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from harness.testing import assert_trees_close, model_inputs, record_calls, tiny_backbone_for

LENGTHS = (9, 4, 1, 6)  # a full row, padded rows, and a row of the first token alone

TASKS = {
    "text_classifier": lambda backbone: hub.DistilBertTextClassifier(backbone, num_classes=3),
    "multiple_choice": lambda backbone: hub.DistilBertMultipleChoice(backbone),
}


def mixed_length_inputs(vocabulary_size, lengths=LENGTHS, width=9):
    rng = np.random.default_rng(1)
    mask = (np.arange(width)[None, :] < np.array(lengths)[:, None]).astype("int32")
    return {"token_ids": rng.integers(5, vocabulary_size, mask.shape).astype("int32") * mask, "padding_mask": mask}


def task_with_spread_weights(tokenizer, name, setup):
    """Kernels and embeddings drawn wide (N(0, 0.5)), gains near 1 and small
    biases, so that every token moves the logits."""
    keras.utils.set_random_seed(0)
    dtype = "mixed_bfloat16" if setup == "mixed_bfloat16" else None
    task = TASKS[name](tiny_backbone_for(tokenizer, num_layers=3, dtype=dtype))
    rng = np.random.default_rng(0)
    for variable in task.weights:
        kind = variable.path.rsplit("/", 1)[-1]
        mean, std = {"gamma": (1.0, 0.1), "beta": (0.0, 0.1), "bias": (0.0, 0.1)}.get(kind, (0.0, 0.5))
        variable.assign(rng.normal(mean, std, variable.shape))
    if setup == "int8":
        task.quantize("int8")
    if setup == "lora":
        task.enable_lora(2)
        for variable in task.backbone.trainable_weights:
            if "lora" in variable.path:
                variable.assign(rng.normal(0, 0.5, variable.shape))
    return task


def task_inputs(name, vocabulary_size):
    x = mixed_length_inputs(vocabulary_size)
    if name == "multiple_choice":  # 2 examples of 2 choices
        x = {key: value.reshape(2, 2, -1) for key, value in x.items()}
    return x


@pytest.mark.parametrize("setup", ["float32", "mixed_bfloat16", "int8", "lora"])
@pytest.mark.parametrize("name", sorted(TASKS))
def test_predict_equals_call_on_mixed_lengths(tiny_tokenizer, name, setup):
    task = task_with_spread_weights(tiny_tokenizer, name, setup)
    x = task_inputs(name, task.backbone.vocabulary_size)
    called = task(x, training=False)
    # bfloat16 keeps 8 bits of mantissa, and the packed GEMMs may sum in
    # another order than the padded ones: one ulp of a logit near 4 is 1.6e-2.
    assert_trees_close(
        task.predict_on_batch(x), called, atol=2e-2 if setup == "mixed_bfloat16" else 1e-5, what=f"{name} {setup}"
    )
    assert np.ptp(keras.ops.convert_to_numpy(called).astype("float32")) > 0.1, "the logits must differ between rows"


def test_predict_sees_every_token(tiny_tokenizer):
    """Each real token, and each layer but the last, reaches the logits."""
    task = task_with_spread_weights(tiny_tokenizer, "text_classifier", "float32")
    x = mixed_length_inputs(task.backbone.vocabulary_size)
    before = task.predict_on_batch(x)
    x["token_ids"][0, 8] += 1  # the last token of the full row
    after = task.predict_on_batch(x)
    assert np.abs(after[0] - before[0]).max() > 1e-3 and np.abs(after[1:] - before[1:]).max() < 1e-6


# --- which rows the backbone's GEMMs see (torch only) ---

torch_only = pytest.mark.skipif(keras.backend.backend() != "torch", reason="RealTokens runs only on torch")


@pytest.fixture
def gemm_rows(monkeypatch):
    """The rows of every `torch.nn.functional.linear` (the backbone's Dense layers)."""
    import torch

    return record_calls(monkeypatch, torch.nn.functional, "linear", lambda x, weight, bias: x.numel() // x.shape[-1])


@torch_only
def test_only_real_tokens_reach_the_gemms_and_the_last_layer_runs_the_first_tokens(tiny_tokenizer, gemm_rows):
    task = task_with_spread_weights(tiny_tokenizer, "text_classifier", "float32")
    task.predict_on_batch(mixed_length_inputs(task.backbone.vocabulary_size))
    real, batch = sum(LENGTHS), len(LENGTHS)
    # query, key, value, attention output, intermediate, output
    every_token = [real] * 6
    last_layer = [batch, real, real, batch, batch, batch]
    assert gemm_rows == every_token * (task.backbone.num_layers - 1) + last_layer


@torch_only
@pytest.mark.parametrize(
    "case", ["call", "fit", "backbone", "token_classifier", "first_token_padded"], ids=lambda case: case
)
def test_every_other_path_runs_the_padded_batch(tiny_tokenizer, gemm_rows, case):
    backbone = tiny_backbone_for(tiny_tokenizer)
    x = mixed_length_inputs(backbone.vocabulary_size)
    if case == "first_token_padded":  # left padding: no first token to read
        x = {key: value[:, ::-1].copy() for key, value in x.items()}
    model = {"backbone": backbone, "token_classifier": hub.DistilBertTokenClassifier(backbone, num_classes=2)}.get(
        case, hub.DistilBertTextClassifier(backbone, num_classes=2)
    )
    if case == "call":
        model(x, training=False)
    elif case == "fit":
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, np.zeros(len(LENGTHS), "int32"), batch_size=len(LENGTHS), epochs=1, verbose=0)
    else:
        model.predict_on_batch(x)
    assert set(gemm_rows) == {x["token_ids"].size}, gemm_rows


@torch_only
def test_a_batch_without_padding_packs_only_the_last_layer(tiny_tokenizer, gemm_rows):
    backbone = tiny_backbone_for(tiny_tokenizer)
    task = hub.DistilBertTextClassifier(backbone, num_classes=2)
    x = model_inputs("backbone", backbone.vocabulary_size)
    x["padding_mask"][:] = 1
    task.predict_on_batch(x)
    batch, tokens = x["token_ids"].shape[0], x["token_ids"].size
    assert gemm_rows == [tokens] * 6 + [batch, tokens, tokens, batch, batch, batch]
