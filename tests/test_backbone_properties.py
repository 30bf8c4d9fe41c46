"""Properties of the backbone that hold for any tiny config and any input."""

import functools

import keras
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from distilbert_hub import DistilBertBackbone
from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config
from distilbert_hub.convert.hf_weights import assign_hf_weights, backbone_weight_map
from harness import strategies
from harness.seeded_weights import seeded_weights
from harness.testing import assert_trees_close, to_numpy

# A few tiny backbones covering both activations, both position kinds and
# 1-4 heads, built once: on jax every new config recompiles, and the inputs,
# not the configs, are what these properties quantify over. Random configs
# are exercised against transformers in tests/crosscheck.
POOL = [
    {"vocab_size": 40, "dim": 8, "n_heads": 2, "n_layers": 2, "hidden_dim": 16, "max_position_embeddings": 12},
    {
        "vocab_size": 30,
        "dim": 12,
        "n_heads": 3,
        "n_layers": 1,
        "hidden_dim": 20,
        "max_position_embeddings": 10,
        "activation": "relu",
    },
    {
        "vocab_size": 50,
        "dim": 16,
        "n_heads": 4,
        "n_layers": 2,
        "hidden_dim": 8,
        "max_position_embeddings": 16,
        "sinusoidal_pos_embds": True,
    },
]


@functools.cache
def pooled_backbone(index):
    backbone = DistilBertBackbone(**backbone_kwargs_from_hf_config(POOL[index]))
    # Deterministic weights without touching the global RNG inside a strategy.
    entries = backbone_weight_map(backbone)
    keep = ("position_embeddings.weight",) if backbone.sinusoidal_position_embedding else ()
    weights = seeded_weights({e.hf_name: e.hf_shape for e in entries}, seed=index, keep=keep)
    assign_hf_weights([e for e in entries if e.hf_name in weights], weights)
    return backbone


class Case:
    """A pooled backbone (built on first use, outside Hypothesis' draws) and inputs."""

    def __init__(self, index, inputs):
        self.index, self.inputs = index, inputs

    def __iter__(self):
        return iter((pooled_backbone(self.index), self.inputs))

    def __repr__(self):
        return f"Case(backbone=POOL[{self.index}], inputs={self.inputs!r})"


@st.composite
def backbones_and_inputs(draw):
    index = draw(st.integers(0, len(POOL) - 1))
    config = POOL[index]
    return Case(index, draw(strategies.token_batches(config["vocab_size"], config["max_position_embeddings"])))


def real_token_outputs(output, padding_mask):
    """Per row, the outputs of its real tokens."""
    output = to_numpy(output)
    return [output[row, : int(mask.sum())] for row, mask in enumerate(np.asarray(padding_mask))]


# Each new input shape recompiles on jax's eager path (~2 s): 10 examples per
# property keep the default tier near a minute on 2 cores.
PROPERTY_EXAMPLES = 10


@settings(max_examples=PROPERTY_EXAMPLES)
@given(case=backbones_and_inputs(), extra=st.integers(1, 5), data=st.data())
def test_extra_padding_never_changes_real_tokens(case, extra, data):
    backbone, inputs = case
    length = inputs["token_ids"].shape[1]
    extra = min(extra, backbone.max_sequence_length - length)
    pad_id = data.draw(st.integers(0, backbone.vocabulary_size - 1), label="id written on padding")
    padded = {
        "token_ids": np.pad(inputs["token_ids"], ((0, 0), (0, extra)), constant_values=pad_id),
        "padding_mask": np.pad(inputs["padding_mask"], ((0, 0), (0, extra))),
    }
    before = real_token_outputs(backbone(inputs), inputs["padding_mask"])
    after = real_token_outputs(backbone(padded), padded["padding_mask"])
    for row, (a, b) in enumerate(zip(after, before)):
        assert_trees_close(a, b, atol=2e-5, what=f"row {row} after {extra} more padding")


@settings(max_examples=PROPERTY_EXAMPLES)
@given(case=backbones_and_inputs())
def test_a_rows_output_does_not_depend_on_other_rows(case):
    backbone, inputs = case
    together = to_numpy(backbone(inputs))
    for row in range(inputs["token_ids"].shape[0]):
        alone = to_numpy(backbone({k: v[row : row + 1] for k, v in inputs.items()}))
        mask = inputs["padding_mask"][row].astype(bool)
        assert_trees_close(alone[0][mask], together[row][mask], atol=2e-5, what=f"row {row} alone vs in batch")


@settings(max_examples=PROPERTY_EXAMPLES)
@given(case=backbones_and_inputs())
def test_compiled_predict_equals_eager_call(case):
    backbone, inputs = case
    mask = inputs["padding_mask"].astype(bool)
    compiled = backbone.predict(inputs, verbose=0)[mask]
    eager = to_numpy(backbone(inputs))[mask]
    assert_trees_close(compiled, eager, atol=2e-5, what="compiled predict vs eager call")


@settings(max_examples=5)
@given(case=backbones_and_inputs())
def test_get_config_from_config_round_trip(case):
    backbone, inputs = case
    restored = DistilBertBackbone.from_config(backbone.get_config())
    assert restored.get_config() == backbone.get_config()
    restored.set_weights(backbone.get_weights())
    assert_trees_close(restored(inputs), backbone(inputs), atol=1e-6, what="from_config round trip")


@settings(max_examples=3)
@given(case=backbones_and_inputs())
def test_keras_file_round_trip(case, tmp_path_factory):
    backbone, inputs = case
    path = tmp_path_factory.mktemp("keras") / "backbone.keras"
    backbone.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == backbone.get_config()
    assert_trees_close(loaded(inputs), backbone(inputs), atol=1e-6, what=".keras round trip")
