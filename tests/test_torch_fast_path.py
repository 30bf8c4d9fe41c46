"""The eager torch forward skips Keras' per-call bookkeeping where it has
nothing to do (`layers/sublayer_call.py`) and adds each Dense bias inside the
GEMM (`DistilBertDense`); quantized, mixed-precision and rematerialized
sublayers still go through `Layer.__call__`, which dispatches their kernels,
autocasts and rematerializes."""

import keras
import numpy as np
import pytest

from harness.testing import model_inputs, record_calls, tiny_backbone_for

pytestmark = pytest.mark.skipif(keras.backend.backend() != "torch", reason="the eager path exists only on torch")

SUBLAYERS = (
    "attention",
    "attention_layer_norm",
    "intermediate_dense",
    "output_dense",
    "output_dropout",
    "output_layer_norm",
)


@pytest.fixture
def called_layers(monkeypatch):
    """The name of every layer whose `Layer.__call__` runs while the test does."""
    return record_calls(monkeypatch, keras.layers.Layer, "__call__", lambda layer, *args, **kwargs: layer.name)


def sublayer_names(backbone):
    names = set()
    for index in range(backbone.num_layers):
        layer = backbone.get_layer(f"transformer_layer_{index}")
        attention = layer.attention
        names |= {getattr(layer, name).name for name in SUBLAYERS}
        names |= {attention.query_dense.name, attention.key_dense.name, attention.value_dense.name}
    embedding = backbone.get_layer("embeddings")
    return names | {embedding.layer_norm.name, embedding.dropout_layer.name}


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_float_inference_calls_only_the_graphs_layers(tiny_tokenizer, called_layers, dtype):
    backbone = tiny_backbone_for(tiny_tokenizer, dtype=dtype)
    inputs = model_inputs("backbone", backbone.vocabulary_size)
    called_layers.clear()
    backbone.predict_on_batch(inputs)
    graph = {layer.name for layer in backbone.layers}
    assert set(called_layers) <= graph | {backbone.name}, sorted(set(called_layers) - graph)
    assert "transformer_layer_1" in called_layers


@pytest.mark.parametrize("setup", ["mixed_bfloat16", "int8", "remat"])
def test_quantized_mixed_and_remat_sublayers_keep_keras_call(tiny_tokenizer, called_layers, setup):
    if setup == "int8":
        backbone = tiny_backbone_for(tiny_tokenizer)
        backbone.quantize("int8")
        expected = {"query", "key", "value", "attention_output", "intermediate", "output"}
    elif setup == "remat":
        with keras.RematScope(mode="full"):
            backbone = tiny_backbone_for(tiny_tokenizer)
        expected = sublayer_names(backbone)
    else:
        backbone = tiny_backbone_for(tiny_tokenizer, dtype=setup)
        expected = sublayer_names(backbone)
    called_layers.clear()
    backbone.predict_on_batch(model_inputs("backbone", backbone.vocabulary_size))
    missing = expected - set(called_layers)
    assert not missing, f"{setup}: these sublayers bypassed Layer.__call__: {sorted(missing)}"


@pytest.fixture
def linear_calls(monkeypatch):
    """One entry per `torch.nn.functional.linear` call: whether it took a bias."""
    import torch

    return record_calls(monkeypatch, torch.nn.functional, "linear", lambda x, weight, bias: bias is not None)


@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_adds_its_bias_inside_the_gemm(linear_calls, use_bias):
    from distilbert_hub.layers.distilbert_dense import DistilBertDense

    layer = DistilBertDense(5, activation="relu", use_bias=use_bias, bias_initializer="glorot_uniform")
    x = np.random.default_rng(0).normal(size=(3, 4, 8)).astype("float32")
    y = keras.ops.convert_to_numpy(layer(x))
    expected = x @ keras.ops.convert_to_numpy(layer.kernel)
    if use_bias:
        expected += keras.ops.convert_to_numpy(layer.bias)
    np.testing.assert_allclose(y, np.maximum(expected, 0), atol=1e-6)
    assert linear_calls == [use_bias]


def test_every_dense_of_the_backbone_takes_the_fused_gemm(tiny_tokenizer, linear_calls):
    backbone = tiny_backbone_for(tiny_tokenizer)
    backbone.predict_on_batch(model_inputs("backbone", backbone.vocabulary_size))
    assert linear_calls == [True] * 6 * backbone.num_layers, linear_calls
