"""int8 with calibrated smoothing (`quantize("int8", calibration=...)`):
it keeps outlier channels from costing the others their precision, travels
through configs, archives and presets, runs the same through `predict`, and
refuses what it cannot do with one clear error each."""

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.layers.int8_smoothing import SmoothingQuantizer, smoothed_layers
from harness.testing import (
    MODELS,
    assert_reloads_in_a_fresh_process,
    integer_gemm_calls,
    model_inputs,
    tiny_backbone_for,
)


def random_batch(vocabulary_size, rows, seed, length=12):
    rng = np.random.default_rng(seed)
    mask = np.zeros((rows, length), "int32")
    for row, real in enumerate(rng.integers(3, length + 1, rows)):
        mask[row, :real] = 1
    token_ids = (rng.integers(0, vocabulary_size, (rows, length)) * mask).astype("int32")
    return {"token_ids": token_ids, "padding_mask": mask}


OUTLIER_CHANNELS = (1, 5)


def with_outlier_channels(scale, vocabulary_size=40):
    """A small backbone with a trained encoder's flaw planted: every LayerNorm
    writes two hidden channels `scale` times larger than the rest. Its Dense
    kernels are drawn at unit gain, so that each block's output counts beside
    the residual (the seeded N(0, 0.02) kernels barely move it)."""
    keras.utils.set_random_seed(0)
    backbone = hub.DistilBertBackbone(
        vocabulary_size, num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64, max_sequence_length=16
    )
    rng = np.random.default_rng(0)
    for layer in backbone._flatten_layers():
        if isinstance(layer, keras.layers.LayerNormalization):
            gamma = keras.ops.convert_to_numpy(layer.gamma).copy()
            gamma[list(OUTLIER_CHANNELS)] *= scale
            layer.gamma.assign(gamma)
        if isinstance(layer, keras.layers.Dense):
            fan_in = layer.kernel.shape[0]
            layer.kernel.assign(rng.normal(0, fan_in**-0.5, layer.kernel.shape).astype("float32"))
    return backbone


def worst_token_cosine(actual, expected, mask):
    """Over the real tokens' ordinary channels (the outliers alone would make every cosine 1)."""
    ordinary = [channel for channel in range(np.shape(actual)[-1]) if channel not in OUTLIER_CHANNELS]
    actual, expected = (np.asarray(v)[mask.astype(bool)][:, ordinary] for v in (actual, expected))
    cosine = (actual * expected).sum(-1) / np.linalg.norm(actual, axis=-1) / np.linalg.norm(expected, axis=-1)
    return cosine.min()


@pytest.mark.parametrize("scale", [20.0, 40.0])
def test_smoothing_recovers_the_precision_outlier_channels_take(scale):
    calibration = [random_batch(40, 8, seed) for seed in range(3)]
    held_out = random_batch(40, 8, seed=99)
    expected = with_outlier_channels(scale).predict_on_batch(held_out)
    errors = {}
    for label, options in [
        ("plain", {"filters": "query|key|value|attention_output|intermediate"}),
        ("smoothed", {"calibration": calibration}),
    ]:
        model = with_outlier_channels(scale)
        model.quantize("int8", **options)
        errors[label] = 1 - worst_token_cosine(model.predict_on_batch(held_out), expected, held_out["padding_mask"])
    # The same layers are int8 in both (the FFN output Dense stays float by default). Measured (scale 20, 40):
    # jax 2.5e-2 -> 1.2e-3 and 1.6e-3 -> 1.4e-4; tensorflow 1.8e-2 -> 6.7e-3 and 8.9e-3 -> 3.4e-3; torch
    # 4.8e-3 -> 2.0e-3 at 40 (each backend draws its own weights). Smoothing that divided on the wrong axis, or
    # not at all, would leave the error far above plain int8's.
    assert errors["smoothed"] < errors["plain"] / 2, errors


def test_by_default_the_ffn_output_stays_float_and_every_other_dense_is_smoothed(tiny_tokenizer):
    backbone = tiny_backbone_for(tiny_tokenizer, dropout=0.0)
    backbone.quantize("int8", calibration=model_inputs("backbone", tiny_tokenizer.vocabulary_size()))
    dense = [layer for layer in backbone._flatten_layers() if isinstance(layer, keras.layers.Dense)]
    ffn_outputs = {block.output_dense.path for block in backbone.transformer_layers}
    assert {layer.path for layer in dense if layer.quantization_mode is None} == ffn_outputs
    assert {layer.path for layer in smoothed_layers(backbone)} == {layer.path for layer in dense} - ffn_outputs
    assert all(isinstance(layer.inputs_quantizer, SmoothingQuantizer) for layer in smoothed_layers(backbone))


def compute_dtypes(model):
    dense = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dense)]
    return {layer.path: layer.compute_dtype for layer in dense}


def test_unquantized_dtype_bfloat16_runs_the_dense_layers_left_float_in_bfloat16(tiny_tokenizer, monkeypatch):
    from distilbert_hub import hardware

    monkeypatch.setattr(hardware, "_warned", True)  # the CPU's bf16 warning has its own test
    x = model_inputs("backbone", tiny_tokenizer.vocabulary_size())
    outputs = {}
    for unquantized_dtype in ("float32", "bfloat16"):
        keras.utils.set_random_seed(0)
        backbone = tiny_backbone_for(tiny_tokenizer, dropout=0.0)
        backbone.quantize("int8", calibration=x, unquantized_dtype=unquantized_dtype)
        outputs[unquantized_dtype] = backbone.predict_on_batch(x)
    ffn_outputs = {block.output_dense.path for block in backbone.transformer_layers}
    assert {path for path, dtype in compute_dtypes(backbone).items() if dtype == "bfloat16"} == ffn_outputs
    assert all(block.output_dense.kernel.dtype == "float32" for block in backbone.transformer_layers)
    # Rounding the FFN outputs' inputs and kernels to bf16 (8 significant bits) moves the hidden states by
    # about 1e-3 of their scale; float32 there would leave them bitwise equal, int8 would move them by 1e-2.
    difference = np.abs(np.asarray(outputs["bfloat16"]) - np.asarray(outputs["float32"]))[x["padding_mask"] == 1]
    assert 0 < difference.max() < 2e-2, difference.max()


def test_unquantized_dtype_bfloat16_warns_on_a_cpu_without_native_bf16(tiny_tokenizer, monkeypatch):
    from distilbert_hub import hardware

    monkeypatch.setattr(hardware, "_warned", False)
    monkeypatch.setattr(hardware, "accelerator_present", lambda: False)
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    backbone, x = calibrated(tiny_tokenizer)
    with pytest.warns(UserWarning, match="no native bf16 instructions"):
        backbone.quantize("int8", calibration=x, unquantized_dtype="bfloat16")


@pytest.mark.parametrize("unquantized_dtype", [None, "bfloat16"])
@pytest.mark.parametrize("name", list(MODELS))
def test_a_smoothed_model_round_trips_through_its_preset_and_config(name, unquantized_dtype, tiny_tokenizer, tmp_path):
    keras.utils.set_random_seed(0)
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer, dropout=0.0))
    x = model_inputs(name, tiny_tokenizer.vocabulary_size())
    model.quantize("int8", calibration=x, unquantized_dtype=unquantized_dtype)
    assert smoothed_layers(model)
    assert ("bfloat16" in compute_dtypes(model).values()) == (unquantized_dtype == "bfloat16")
    model.save_to_preset(tmp_path / "preset")
    from_config = type(model).from_config(model.get_config())
    from_config.set_weights(model.get_weights())
    for reloaded in (type(model).from_preset(tmp_path / "preset"), from_config):
        assert [(layer.path, layer.inputs_quantizer.smoothing.tolist()) for layer in smoothed_layers(reloaded)] == [
            (layer.path, layer.inputs_quantizer.smoothing.tolist()) for layer in smoothed_layers(model)
        ]
        assert compute_dtypes(reloaded) == compute_dtypes(model)
        keras.tree.map_structure(
            lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
            model.predict_on_batch(x),
            reloaded.predict_on_batch(x),
        )


def test_a_classifier_calibrates_on_raw_text_and_reloads_in_a_fresh_process(tiny_tokenizer, tmp_path):
    keras.utils.set_random_seed(0)
    preprocessor = hub.DistilBertTextClassifierPreprocessor(tiny_tokenizer, sequence_length=8)
    classifier = hub.DistilBertTextClassifier(
        tiny_backbone_for(tiny_tokenizer, dropout=0.0), num_classes=2, preprocessor=preprocessor, dropout=0.0
    )
    classifier.quantize("int8", calibration=["a good movie", "a bad book"] * 20)  # two batches of 32 and 8
    assert "pooled_dense" in {layer.path for layer in smoothed_layers(classifier)}
    x = model_inputs("text_classifier", tiny_tokenizer.vocabulary_size())
    assert_reloads_in_a_fresh_process([("smoothed_classifier", classifier, x)], tmp_path)


@pytest.mark.skipif(keras.backend.backend() != "torch", reason="the integer GEMM path exists only on torch's CPU")
@pytest.mark.parametrize("unquantized_dtype", [None, "bfloat16"])
def test_predict_on_torch_smooths_in_the_integer_gemm_as_keras_does(unquantized_dtype, monkeypatch):
    import torch

    from distilbert_hub import hardware

    monkeypatch.setattr(hardware, "_warned", True)
    calls = integer_gemm_calls(monkeypatch)
    backbone = with_outlier_channels(20.0)
    x = random_batch(40, 4, seed=1)
    backbone.quantize("int8", calibration=x, unquantized_dtype=unquantized_dtype)
    fast = backbone.predict_on_batch(x)
    assert len(calls) == 5 * backbone.num_layers, f"{len(calls)} integer GEMMs"
    with torch.enable_grad():  # Keras' own int8 path
        reference = keras.ops.convert_to_numpy(backbone(x))
    # The fast path's attention rounds apart from Keras' by float32 ulps; where that moves an input across an
    # int8 rounding boundary the output moves by one level of a coarse (outlier-scaled) grid: measured 3e-6
    # relative at most, a missing or misplaced division moves it by orders more. With the FFN output Dense in
    # bf16 both paths round the same float32 inputs to bf16; a fast path that kept them float32 would differ by
    # bf16's rounding, about 1e-3.
    np.testing.assert_allclose(fast, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kept", ["query", "key", "value"])
def test_an_attention_projection_left_in_bfloat16_beside_int8_ones_predicts_as_the_reference(
    kept, tiny_tokenizer, monkeypatch
):
    from distilbert_hub import hardware

    monkeypatch.setattr(hardware, "_warned", True)
    backbone, x = calibrated(tiny_tokenizer)
    backbone.quantize("int8", calibration=x, unquantized_dtype="bfloat16", filters=lambda layer: kept not in layer.path)
    assert {getattr(block.attention, f"{kept}_dense").compute_dtype for block in backbone.transformer_layers} == {
        "bfloat16"
    }
    fast = backbone.predict_on_batch(x)
    reference = keras.ops.convert_to_numpy(backbone(x))  # __call__ runs the reference layers
    # torch's SDPA had refused a float32 query beside a bf16 key; the reference promotes them to float32. The
    # tolerance is the integer GEMM test's (an input moved across an int8 rounding boundary by float32 ulps);
    # attention in bf16 throughout would move the outputs by about 1e-2.
    real = x["padding_mask"] == 1
    np.testing.assert_allclose(np.asarray(fast)[real], reference[real], rtol=1e-5, atol=1e-5)


def calibrated(tokenizer):
    backbone = tiny_backbone_for(tokenizer, dropout=0.0)
    return backbone, model_inputs("backbone", tokenizer.vocabulary_size())


@pytest.mark.parametrize(
    "arguments, message",
    [
        (lambda x: ("int8", []), "the calibration set is empty"),
        (lambda x: ("int8", ["some raw text"]), "raw text needs a task with a preprocessor"),
        (lambda x: ("int4", x), "calibration smooths int8 only; got mode 'int4'"),
        (lambda x: ("int8", x, {"migration_strength": 0}), "migration_strength must be in (0, 1]; got 0"),
        (lambda x: ("int8", x, {"migration_strength": True}), "migration_strength must be in (0, 1]; got True"),
        (lambda x: ("int8", x, {"type_check": False}), "takes filters and migration_strength; got ['type_check']"),
        (
            lambda x: ("int8", x, {"config": keras.quantizers.Int8QuantizationConfig(activation_quantizer=None)}),
            "got ['config']",
        ),
        (lambda x: ("int8", x, {"filters": "no_such_layer"}), "the filters select no float Dense layer"),
        (
            lambda x: ("int8", x, {"unquantized_dtype": "int8"}),
            "unquantized_dtype must be None, 'float32' or 'bfloat16'; got 'int8'",
        ),
        (
            lambda x: ("int8", None, {"unquantized_dtype": "bfloat16"}),
            "unquantized_dtype applies to calibrated int8 only",
        ),
        (
            lambda x: ("int8", None, {"unquantized_dtype": "float16"}),
            "unquantized_dtype must be None, 'float32' or 'bfloat16'; got 'float16'",
        ),
        (
            lambda x: ("int8", x, {"unquantized_dtype": np.array(["bfloat16"])}),
            "unquantized_dtype must be None, 'float32' or 'bfloat16'; got array(['bfloat16']",
        ),
    ],
)
def test_bad_calibrated_quantization_is_refused_before_any_layer_changes(tiny_tokenizer, arguments, message):
    backbone, x = calibrated(tiny_tokenizer)
    mode, calibration, *options = arguments(x)
    before = [keras.ops.convert_to_numpy(w) for w in backbone.weights]
    with pytest.raises(ValueError) as error:
        backbone.quantize(mode, calibration=calibration, **(options[0] if options else {}))
    assert message in str(error.value)
    assert all(layer.quantization_mode is None for layer in backbone._flatten_layers())
    for weight, value in zip(backbone.weights, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(weight), value)


def test_a_smoothed_model_refuses_to_train(tiny_tokenizer):
    backbone, x = calibrated(tiny_tokenizer)
    backbone.quantize("int8", calibration=x)
    with pytest.raises(ValueError, match="calibrated smoothing, which does not train"):
        backbone.enable_lora(2)
    backbone.compile(loss="mse")
    target = np.zeros((*x["token_ids"].shape, backbone.hidden_dim), "float32")
    with pytest.raises(ValueError, match="calibrated smoothing, which does not train"):
        backbone.fit(x, target, verbose=0)
    with pytest.raises(ValueError, match="calibrated smoothing, which does not train"):
        backbone.train_on_batch(x, target)
    with pytest.raises(ValueError, match="already quantized"):
        backbone.quantize("int8", calibration=x)
