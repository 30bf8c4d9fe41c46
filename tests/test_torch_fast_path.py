"""`predict` on torch runs the backbone's blocks in torch's kernels
(`distilbert_hub.inference.TorchKernels`): no `Layer.__call__` inside the
blocks, each Dense bias inside the GEMM; the sublayers it does not cover
(mixed-precision LayerNorms, other quantization modes) still go through
`Layer.__call__`, which autocasts and dispatches their kernels."""

import keras
import numpy as np
import pytest

from harness.testing import model_inputs, record_calls, tiny_backbone_for

pytestmark = pytest.mark.skipif(keras.backend.backend() != "torch", reason="the eager path exists only on torch")


@pytest.fixture
def called_layers(monkeypatch):
    """The name of every layer whose `Layer.__call__` runs while the test does."""
    return record_calls(monkeypatch, keras.layers.Layer, "__call__", lambda layer, *args, **kwargs: layer.name)


def block_sublayers(backbone, kinds):
    """The names of the blocks' Dense and LayerNorm sublayers of these Keras classes."""
    names = set()
    for index in range(backbone.num_layers):
        block = backbone.get_layer(f"transformer_layer_{index}")
        attention = block.attention
        for layer in (
            attention.query_dense,
            attention.key_dense,
            attention.value_dense,
            attention.output_dense,
            block.attention_layer_norm,
            block.intermediate_dense,
            block.output_dense,
            block.output_layer_norm,
        ):
            if isinstance(layer, kinds):
                names.add(layer.name)
    return names


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_float_inference_calls_no_dense_or_layer_norm_of_the_blocks(tiny_tokenizer, called_layers, dtype):
    backbone = tiny_backbone_for(tiny_tokenizer, dtype=dtype)
    called_layers.clear()
    backbone.predict_on_batch(model_inputs("backbone", backbone.vocabulary_size))
    inside = block_sublayers(backbone, (keras.layers.Dense, keras.layers.LayerNormalization))
    assert inside and not inside & set(called_layers), sorted(inside & set(called_layers))
    assert "embeddings" in called_layers


@pytest.mark.parametrize("setup", ["mixed_bfloat16", "int4"])
def test_sublayers_the_kernels_do_not_cover_keep_keras_call(tiny_tokenizer, called_layers, setup):
    if setup == "int4":
        backbone = tiny_backbone_for(tiny_tokenizer)
        backbone.quantize("int4")
        expected = block_sublayers(backbone, keras.layers.Dense)
    else:
        backbone = tiny_backbone_for(tiny_tokenizer, dtype=setup)
        expected = block_sublayers(backbone, keras.layers.LayerNormalization)
    called_layers.clear()
    backbone.predict_on_batch(model_inputs("backbone", backbone.vocabulary_size))
    missing = expected - set(called_layers)
    assert expected and not missing, f"{setup}: these sublayers bypassed Layer.__call__: {sorted(missing)}"


@pytest.fixture
def linear_calls(monkeypatch):
    """One entry per `torch.nn.functional.linear` call: whether it took a bias."""
    import torch

    return record_calls(monkeypatch, torch.nn.functional, "linear", lambda x, weight, bias: bias is not None)


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_adds_its_bias_inside_the_gemm(linear_calls, use_bias):
    from distilbert_hub.inference import TorchKernels

    layer = keras.layers.Dense(5, use_bias=use_bias, bias_initializer="glorot_uniform")
    x = np.random.default_rng(0).normal(size=(3, 4, 8)).astype("float32")
    layer.build(x.shape)
    y = keras.ops.convert_to_numpy(TorchKernels().dense(layer, keras.ops.convert_to_tensor(x)))
    expected = x @ keras.ops.convert_to_numpy(layer.kernel)
    if use_bias:
        expected += keras.ops.convert_to_numpy(layer.bias)
    np.testing.assert_allclose(y, expected, atol=1e-6)
    assert linear_calls == [use_bias]


def test_every_dense_of_the_backbone_takes_the_fused_gemm(tiny_tokenizer, linear_calls):
    backbone = tiny_backbone_for(tiny_tokenizer)
    backbone.predict_on_batch(model_inputs("backbone", backbone.vocabulary_size))
    assert linear_calls == [True] * 6 * backbone.num_layers, linear_calls


@pytest.mark.parametrize("onednn", [True, False])
def test_bfloat16_dense_hands_torch_the_weight_layout_its_gemm_reads_fast(monkeypatch, onednn):
    """Below AVX-512 torch's own bf16 GEMM runs, ten times faster over
    contiguous weight rows (torch.nn.Linear's layout) than over the transposed
    view of Keras' kernel; oneDNN reads either."""
    import torch

    from distilbert_hub.inference import TorchKernels, torch_kernels

    monkeypatch.setattr(torch_kernels, "torch_reduced_precision_gemm_is_onednn", lambda: onednn)
    layer = keras.layers.Dense(5, dtype="bfloat16", bias_initializer="glorot_uniform")
    x = keras.ops.convert_to_tensor(np.random.default_rng(0).normal(size=(3, 4, 8)), "bfloat16")
    layer.build(x.shape)
    expected = keras.ops.convert_to_numpy(keras.ops.cast(layer(x), "float32"))
    contiguous = record_calls(
        monkeypatch, torch.nn.functional, "linear", lambda x, weight, bias: weight.is_contiguous()
    )
    y = keras.ops.convert_to_numpy(keras.ops.cast(TorchKernels().dense(layer, x), "float32"))
    np.testing.assert_allclose(y, expected, rtol=2e-2, atol=2e-2)  # two bf16 GEMMs, 8-bit mantissa
    assert contiguous == [not onednn]
