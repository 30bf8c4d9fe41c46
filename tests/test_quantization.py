"""Keras quantization on the backbone and every task: int8 stays near the
float32 transformers goldens, every mode survives a `.keras` archive reloaded
in a fresh process, and LoRA trains on an int8 backbone (QLoRA)."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
import harness.testing
from harness.precision import QUANTIZATION_MODES, failures, measure
from harness.testing import (
    MODELS,
    assert_reloads_in_a_fresh_process,
    draw_head_at_glorot_scale,
    model_inputs,
    record_calls,
    tiny_backbone_for,
)

INT8_CASES = (
    "backbone_deep_padded",
    "head_masked_lm",
    "head_text_classifier",
    "head_token_classifier",
    "head_question_answerer",
    "head_multiple_choice",
)


@pytest.fixture
def integer_gemm_calls(monkeypatch):
    """One entry per `torch._int_mm` call while the test runs, taken on any CPU."""
    return harness.testing.integer_gemm_calls(monkeypatch)


@pytest.mark.parametrize("case_id", INT8_CASES)
def test_int8_stays_within_its_cosine_bar(case_id):
    results = measure(case_id, "float32", quantize="int8")
    assert all(r.policy == "int8_from_float32" for r in results)
    problems = failures(results)
    assert not problems, "\n".join(problems)


def test_every_mode_and_task_reloads_quantized_in_a_fresh_process(tiny_tokenizer, tmp_path):
    """Every mode on the backbone, int8 on every task (one fresh process for all)."""
    models = []
    for mode in QUANTIZATION_MODES:
        for name, make_model in MODELS.items() if mode == "int8" else [("backbone", MODELS["backbone"])]:
            keras.utils.set_random_seed(0)
            model = make_model(tiny_backbone_for(tiny_tokenizer, dropout=0.0))
            model.quantize(mode)
            quantized = {layer.path for layer in model._flatten_layers() if layer.quantization_mode == mode}
            assert any(path.endswith("attention/query") for path in quantized), f"{name} {mode}: nothing quantized"
            models.append((f"{mode}_{name}", model, model_inputs(name, tiny_tokenizer.vocabulary_size())))
    assert_reloads_in_a_fresh_process(models, tmp_path)


@pytest.mark.parametrize("name", list(MODELS))
def test_an_int8_model_round_trips_through_its_preset(name, tiny_tokenizer, tmp_path):
    """save_to_preset then from_preset gives the same int8 model, its head's
    quantized layers included (config.json carries the task's policy map)."""
    keras.utils.set_random_seed(0)
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer, dropout=0.0))
    model.quantize("int8")
    x = model_inputs(name, tiny_tokenizer.vocabulary_size())
    model.save_to_preset(tmp_path / "preset")
    reloaded = type(model).from_preset(tmp_path / "preset")
    quantized = {layer.path for layer in model._flatten_layers() if layer.quantization_mode == "int8"}
    assert quantized == {layer.path for layer in reloaded._flatten_layers() if layer.quantization_mode == "int8"}
    keras.tree.map_structure(
        lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
        model.predict_on_batch(x),
        reloaded.predict_on_batch(x),
    )


def test_lora_trains_on_an_int8_backbone(tiny_tokenizer):
    keras.utils.set_random_seed(0)
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8)
    classifier = hub.DistilBertTextClassifier(
        tiny_backbone_for(tiny_tokenizer, dropout=0.0), num_classes=2, preprocessor=preprocessor, dropout=0.0
    )
    draw_head_at_glorot_scale(classifier)
    classifier.backbone.quantize("int8")
    classifier.enable_lora(2)
    trainable = {v.path for v in classifier.trainable_weights}
    assert trainable and all("lora_kernel" in p or p.startswith(("pooled_dense", "logits")) for p in trainable), sorted(
        trainable
    )
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    texts, labels = ["a good movie", "a great book", "a bad movie", "a terrible book"], np.array([1, 1, 0, 0])
    history = classifier.fit(texts, labels, epochs=8, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the integer GEMM path exists only on torch's CPU")
def test_int8_inference_on_torch_uses_the_integer_gemm_with_identical_outputs(tiny_tokenizer, integer_gemm_calls):
    """`predict` (no gradients) takes `torch._int_mm`; a call that records
    gradients takes Keras' own int8 path. Both accumulate in int32 and scale
    alike: the outputs agree to float32 rounding. With LoRA on, Keras' path runs (its update
    is not in the integer GEMM)."""
    import torch

    keras.utils.set_random_seed(0)
    backbone = tiny_backbone_for(tiny_tokenizer, dropout=0.0)
    backbone.quantize("int8")
    rng = np.random.default_rng(0)
    for layer in backbone._flatten_layers():
        if isinstance(layer, keras.layers.Dense):  # biases start at zero: make them count
            layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape).astype("float32"))
    x = model_inputs("backbone", tiny_tokenizer.vocabulary_size())
    calls = integer_gemm_calls

    def both_paths():
        calls.clear()
        fast = backbone.predict_on_batch(x)
        used = len(calls)
        with torch.enable_grad():
            reference = keras.ops.convert_to_numpy(backbone(x))
        return fast, used, reference

    fast, used, reference = both_paths()
    assert used == 6 * backbone.num_layers, f"{used} integer GEMMs for {backbone.num_layers} blocks"
    assert len(calls) == used, "the integer GEMM ran while gradients were recorded (it has no gradient)"
    # The same int32 products; the float scaling may round an ulp apart.
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-6)

    backbone.enable_lora(2)
    for layer in backbone._flatten_layers():
        if getattr(layer, "lora_enabled", False):
            layer.lora_kernel_b.assign(rng.normal(0, 0.5, layer.lora_kernel_b.shape).astype("float32"))
    fast, used, reference = both_paths()
    assert used == 4 * backbone.num_layers, f"{used} integer GEMMs with LoRA on query and value"
    np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the integer GEMM path exists only on torch's CPU")
def test_the_integer_gemm_survives_rows_at_the_quantizers_epsilon(integer_gemm_calls):
    """A zero row and rows a few times the abs-max quantizer's epsilon (a
    padded position, a dead unit) scale as in Keras' int8 Dense, compared
    relative to their size (zero biases keep them small)."""
    import torch

    from distilbert_hub.inference import TorchKernels

    rng = np.random.default_rng(0)
    layer = keras.layers.Dense(5)
    layer.build((None, 8))
    layer.set_weights([rng.normal(0, 0.5, (8, 5)).astype("float32"), np.zeros(5, "float32")])
    layer.quantize("int8")
    x = rng.normal(0, 1, (4, 8)).astype("float32")
    x[1] = 0.0
    x[2] = 3 * keras.config.epsilon() * np.sign(x[2])
    with torch.no_grad():
        fast = keras.ops.convert_to_numpy(TorchKernels().dense(layer, keras.ops.convert_to_tensor(x)))
    reference = keras.ops.convert_to_numpy(layer(x))
    assert integer_gemm_calls, "the integer GEMM did not run"
    assert np.isfinite(fast).all() and (fast[1] == 0).all() and (fast[2] != 0).any()
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-12)


@pytest.mark.skipif(
    not hasattr(keras.quantizers, "Int8QuantizationConfig"), reason="weight-only int8 needs Keras' QuantizationConfig"
)
def test_weight_only_int8_takes_keras_path(tiny_tokenizer, monkeypatch):
    """Without an activation quantizer the inputs stay float: no integer GEMM
    applies, and the outputs are Keras' own."""
    keras.utils.set_random_seed(0)
    backbone = tiny_backbone_for(tiny_tokenizer, dropout=0.0)
    x = model_inputs("backbone", tiny_tokenizer.vocabulary_size())
    float_outputs = backbone.predict_on_batch(x)
    backbone.quantize("int8", config=keras.quantizers.Int8QuantizationConfig(activation_quantizer=None))
    if keras.backend.backend() == "torch":
        import torch

        monkeypatch.setattr(torch, "_int_mm", lambda *args: pytest.fail("integer GEMM on float inputs"))
    outputs = backbone.predict_on_batch(x)
    cosine = (
        (outputs * float_outputs).sum(-1) / np.linalg.norm(outputs, axis=-1) / np.linalg.norm(float_outputs, axis=-1)
    )
    assert cosine.min() > 0.99, cosine.min()


def test_a_quantized_backbones_config_keeps_its_own_policy(tiny_tokenizer):
    plain = tiny_backbone_for(tiny_tokenizer, dtype="mixed_bfloat16")
    assert plain.get_config()["dtype"] == keras.dtype_policies.serialize(plain.dtype_policy)
    plain.quantize("int8")
    for _ in range(2):  # the second round trip starts from a backbone whose policy is a map
        plain = hub.DistilBertBackbone.from_config(plain.get_config())
        assert isinstance(plain.dtype_policy, keras.dtype_policies.DTypePolicyMap)
        assert plain.dtype_policy.default_policy.name == "mixed_bfloat16"
        quantized = [layer for layer in plain._flatten_layers() if layer.quantization_mode == "int8"]
        assert len(quantized) == 6 * plain.num_layers, [layer.path for layer in quantized]
        assert {layer.compute_dtype for layer in quantized} == {"bfloat16"}


def test_lora_is_not_merged_into_int8_kernels(tiny_tokenizer):
    backbone = tiny_backbone_for(tiny_tokenizer)
    backbone.quantize("int8")
    backbone.enable_lora(2)
    with pytest.raises(ValueError, match=r"cannot merge LoRA into quantized kernels \['transformer_layer_0/attention/"):
        backbone.merge_lora_weights()


@pytest.mark.parametrize("operation", ["quantize", "merge_lora_weights"])
def test_deleting_variables_walks_only_new_objects_then_collects_once(tiny_tokenizer, monkeypatch, operation):
    """Keras runs a full gc.collect() per deleted variable; within
    `one_garbage_collection` the objects alive before are frozen out of its
    reach, and one collection at the end sees everything."""
    import gc

    frozen = record_calls(monkeypatch, gc, "collect", lambda *args: gc.get_freeze_count() > 0)
    backbone = tiny_backbone_for(tiny_tokenizer)
    if operation == "quantize":
        backbone.quantize("int8")
    else:
        backbone.enable_lora(2)
        backbone.merge_lora_weights()
    assert len(frozen) > 1 and all(frozen[:-1]) and frozen[-1] is False, frozen
    assert gc.get_freeze_count() == 0, "gc.unfreeze was not called"


def quantized_paths(model):
    return {layer.path for layer in model._flatten_layers() if getattr(layer, "quantization_mode", None)}


@pytest.mark.parametrize("name", ["backbone", "text_classifier"])
def test_quantizing_with_lora_enabled_or_twice_is_refused_before_any_layer_changes(tiny_tokenizer, name):
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer))
    model.enable_lora(2)
    with pytest.raises(ValueError, match=r"quantize\('int8'\): LoRA is enabled on 4 layers .*merge_lora_weights\(\)"):
        model.quantize("int8")
    assert not quantized_paths(model)
    model.merge_lora_weights()
    model.quantize("int8")
    before = quantized_paths(model)
    with pytest.raises(ValueError, match=r"quantize\('int4'\): the model is already quantized \('int8' at "):
        model.quantize("int4")
    assert quantized_paths(model) == before and {layer.quantization_mode for layer in model._flatten_layers()} <= {
        None,
        "int8",
    }
