"""`predict` skips the positions its caller does not read
(`distilbert_hub.inference`, `Task.reads`): for the classifiers the last layer
runs the first token only on every backend, the other layers the real tokens
only on torch; the embedder and the pipeline methods run the real tokens only
on torch. It must give what `__call__` (the reference layers) gives, in every
precision and setup, and skip exactly that work."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.convert.hf_weights import assign_hf_weights, task_weight_map
from harness.seeded_weights import seeded_weights
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
    """The goldens' seeded weights (`harness.seeded_weights`: every parameter
    at a scale where it shows), so that every token moves the logits."""
    keras.utils.set_random_seed(0)
    dtype = "mixed_bfloat16" if setup == "mixed_bfloat16" else None
    task = TASKS[name](tiny_backbone_for(tokenizer, num_layers=3, dtype=dtype))
    entries = task_weight_map(task)
    assign_hf_weights(entries, seeded_weights({e.hf_name: e.hf_shape for e in entries}, seed=0))
    if setup == "int8":
        task.quantize("int8")
    if setup == "lora":
        task.enable_lora(2)
        rng = np.random.default_rng(0)
        for variable in task.backbone.trainable_weights:
            if "lora" in variable.path:
                variable.assign(rng.normal(0, 0.5, variable.shape))
    return task


def task_inputs(name, vocabulary_size):
    x = mixed_length_inputs(vocabulary_size)
    if name == "multiple_choice":  # 2 examples of 2 choices
        x = {key: value.reshape(2, 2, -1) for key, value in x.items()}
    return x


def predict_reading_every_token(task, x):
    """`task.predict_on_batch(x)` as if its head read every token."""
    task.predict_function = None
    try:
        with task._reading("every_token"):
            return task.predict_on_batch(x)
    finally:
        task.predict_function = None


@pytest.mark.parametrize("setup", ["float32", "mixed_bfloat16", "int8", "lora"])
@pytest.mark.parametrize("name", sorted(TASKS))
def test_predict_equals_the_padded_path_on_mixed_lengths(tiny_tokenizer, name, setup):
    task = task_with_spread_weights(tiny_tokenizer, name, setup)
    x = task_inputs(name, task.backbone.vocabulary_size)
    expected = predict_reading_every_token(task, x)
    # bfloat16 keeps 8 bits of mantissa, and GEMMs over fewer rows may sum in
    # another order: one ulp of a logit near 4 is 1.6e-2.
    atol = 2e-2 if setup == "mixed_bfloat16" else 1e-5
    assert_trees_close(task.predict_on_batch(x), expected, atol=atol, what=f"{name} {setup}")
    assert np.ptp(np.asarray(expected, "float32")) > 0.1, "the logits must differ between rows"
    if setup != "mixed_bfloat16":  # jax's jit fuses bfloat16 steps that __call__ rounds one by one
        assert_trees_close(expected, task(x, training=False), atol=1e-5, what=f"{name} {setup}: predict vs call")


def test_predict_sees_every_token(tiny_tokenizer):
    """Each real token, and each layer but the last, reaches the logits."""
    task = task_with_spread_weights(tiny_tokenizer, "text_classifier", "float32")
    x = mixed_length_inputs(task.backbone.vocabulary_size)
    before = task.predict_on_batch(x)
    x["token_ids"][0, 8] += 1  # the last token of the full row
    after = task.predict_on_batch(x)
    assert np.abs(after[0] - before[0]).max() > 1e-3 and np.abs(after[1:] - before[1:]).max() < 1e-6


# --- which rows each Dense of the backbone sees ---


@pytest.fixture
def dense_rows(monkeypatch):
    """(layer path, rows of its input) for every Dense of the backbone, traced
    or eager: Keras' `Dense.call` or the torch strategy's kernel."""
    from distilbert_hub.inference import TorchKernels
    from distilbert_hub.layers.distilbert_dense import DistilBertDense

    def record(layer, x, **kwargs):
        return layer.path, int(np.prod(x.shape[:-1]))

    calls, kernel = record_calls(monkeypatch, DistilBertDense, "call", record), TorchKernels.dense

    def dense(strategy, layer, x):
        calls.append(record(layer, x))
        return kernel(strategy, layer, x)

    monkeypatch.setattr(TorchKernels, "dense", dense)
    return calls


SUBLAYERS = ("query", "key", "value", "attention_output", "intermediate", "output")


def rows_by_sublayer(calls, layer):
    return [rows for path, rows in calls if f"transformer_layer_{layer}/" in path]


def test_the_last_layer_runs_the_first_tokens_only(tiny_tokenizer, dense_rows):
    task = task_with_spread_weights(tiny_tokenizer, "text_classifier", "float32")
    task.predict_on_batch(mixed_length_inputs(task.backbone.vocabulary_size))
    batch, padded = len(LENGTHS), len(LENGTHS) * max(LENGTHS)
    last = task.backbone.num_layers - 1
    # The keys and values of the last layer: every position of the padded batch.
    assert rows_by_sublayer(dense_rows, last) == [batch, padded, padded, batch, batch, batch], dense_rows
    # The layers before it: the real tokens on torch, the padded batch elsewhere.
    every_token = sum(LENGTHS) if keras.backend.backend() == "torch" else padded
    for layer in range(last):
        assert rows_by_sublayer(dense_rows, layer) == [every_token] * len(SUBLAYERS), (layer, dense_rows)


@pytest.mark.parametrize("case", ["call", "fit", "backbone", "token_classifier"])
def test_every_other_path_runs_the_padded_batch(tiny_tokenizer, dense_rows, case):
    backbone = tiny_backbone_for(tiny_tokenizer)
    x = mixed_length_inputs(backbone.vocabulary_size)
    model = {"backbone": backbone, "token_classifier": hub.DistilBertTokenClassifier(backbone, num_classes=2)}.get(
        case, hub.DistilBertTextClassifier(backbone, num_classes=2)
    )
    dense_rows.clear()
    if case == "call":
        model(x, training=False)
    elif case == "fit":
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.fit(x, np.zeros(len(LENGTHS), "int32"), batch_size=len(LENGTHS), epochs=1, verbose=0)
    else:
        model.predict_on_batch(x)
    assert dense_rows and {rows for _, rows in dense_rows} == {x["token_ids"].size}, dense_rows


torch_only = pytest.mark.skipif(keras.backend.backend() != "torch", reason="RealTokens runs only on torch")


@torch_only
def test_a_batch_whose_first_token_is_padding_keeps_the_padded_batch_but_the_first_token(tiny_tokenizer, dense_rows):
    task = task_with_spread_weights(tiny_tokenizer, "text_classifier", "float32")
    x = {key: value[:, ::-1].copy() for key, value in mixed_length_inputs(task.backbone.vocabulary_size).items()}
    called = task(x, training=False)
    dense_rows.clear()
    assert_trees_close(task.predict_on_batch(x), called, atol=1e-5, what="left padding")
    batch, padded = len(LENGTHS), x["token_ids"].size
    assert rows_by_sublayer(dense_rows, 0) == [padded] * len(SUBLAYERS)
    assert rows_by_sublayer(dense_rows, task.backbone.num_layers - 1) == [batch, padded, padded, batch, batch, batch]


@torch_only
def test_a_batch_without_padding_packs_nothing(tiny_tokenizer, dense_rows, monkeypatch):
    from distilbert_hub.inference.torch_kernels import RealTokens

    packed = record_calls(monkeypatch, RealTokens, "pack")
    task = hub.DistilBertTextClassifier(tiny_backbone_for(tiny_tokenizer), num_classes=2)
    x = model_inputs("backbone", task.backbone.vocabulary_size)
    x["padding_mask"][:] = 1
    dense_rows.clear()
    task.predict_on_batch(x)
    assert {rows for _, rows in dense_rows if "transformer_layer_1/" not in _} == {x["token_ids"].size}
    assert not packed, "a batch without padding has nothing to pack"


@torch_only
@pytest.mark.parametrize("setup", ["float32", "mixed_bfloat16"])
def test_attention_is_torchs_flash_kernel_in_float32_and_mixed_bfloat16(tiny_tokenizer, monkeypatch, setup):
    """Only the flash kernel is allowed: attention (the real tokens' and the
    last layer's single query) must not fall back to the MATH one, in
    float32 and in bf16, where the flash kernel's softmax accumulates in
    float32 as the reference's does."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fused = record_calls(monkeypatch, torch.nn.functional, "scaled_dot_product_attention", lambda *a, **k: 1)
    task = task_with_spread_weights(tiny_tokenizer, "text_classifier", setup)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        task.predict_on_batch(mixed_length_inputs(task.backbone.vocabulary_size))
    assert len(fused) == task.backbone.num_layers


TEXTS = ["the cat sat on the mat.", "jane", "who wrote the good book in paris?"]

PIPELINE_METHODS = {
    "entities": (
        lambda backbone, tokenizer: hub.DistilBertTokenClassifier(
            backbone, num_classes=4, preprocessor=hub.DistilBertTokenClassifierPreprocessor(tokenizer)
        ),
        lambda task: task.entities(TEXTS, ignore_labels=[]),
    ),
    "fill_mask": (
        lambda backbone, tokenizer: hub.DistilBertMaskedLM(
            backbone, preprocessor=hub.DistilBertMaskedLMPreprocessor(tokenizer)
        ),
        lambda task: task.fill_mask([f"{text} [MASK]" for text in TEXTS], top_k=3),
    ),
}


def real_token_count(tokenizer, texts):
    return sum(len(tokenizer.encode_packed(text, special_tokens_in_strings=True).ids) for text in texts)


@torch_only
@pytest.mark.parametrize("name", sorted(PIPELINE_METHODS))
def test_the_pipeline_methods_predict_the_real_tokens_only(tiny_tokenizer, dense_rows, monkeypatch, name):
    from distilbert_hub import task as task_module

    make, run = PIPELINE_METHODS[name]
    task = make(tiny_backbone_for(tiny_tokenizer), tiny_tokenizer)
    dense_rows.clear()
    packed = run(task)
    texts = [f"{text} [MASK]" for text in TEXTS] if name == "fill_mask" else TEXTS
    assert {rows for _, rows in dense_rows} == {real_token_count(tiny_tokenizer, texts)}, dense_rows
    padded_path = task_module.strategy_for("every_token")
    monkeypatch.setattr(task_module, "strategy_for", lambda reads: padded_path)
    assert _close(run(task), packed), (run(task), packed)


def _close(actual, expected):
    """Equal structure and strings; scores within float32 summation order."""
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(_close(actual[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(_close, actual, expected))
    if isinstance(expected, float):
        return abs(actual - expected) <= 1e-6
    return actual == expected


@torch_only
@pytest.mark.parametrize("pooling", ["mean", "max", "cls"])
def test_the_embedder_runs_the_real_tokens_only(tiny_tokenizer, dense_rows, pooling):
    backbone = tiny_backbone_for(tiny_tokenizer)
    embedder = hub.DistilBertTextEmbedder(backbone, pooling=pooling, normalize=False)
    x = mixed_length_inputs(backbone.vocabulary_size)
    expected = embedder(x, training=False)
    dense_rows.clear()
    assert_trees_close(embedder.predict_on_batch(x), expected, atol=1e-5, what=f"{pooling} pooling")
    assert {rows for _, rows in dense_rows} == {sum(LENGTHS)}, dense_rows
