import keras
import numpy as np
import pytest

from distilbert_hub import DistilBertBackbone
from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config, hf_config_from_backbone
from distilbert_hub.convert.hf_weights import assign_hf_weights, backbone_weight_map, export_hf_weights
from harness.golden import case_ids, load_case


@pytest.fixture
def golden():
    return load_case(case_ids(kind="backbone")[0])


def test_every_variable_is_mapped_once(tiny_backbone_kwargs):
    backbone = DistilBertBackbone(**tiny_backbone_kwargs)
    entries = backbone_weight_map(backbone)
    assert sorted(e.variable.path for e in entries) == sorted(v.path for v in backbone.weights)
    assert len({e.hf_name for e in entries}) == len(entries)


def test_golden_weights_round_trip_exactly(golden):
    backbone = DistilBertBackbone(**backbone_kwargs_from_hf_config(golden.config))
    assign_hf_weights(backbone_weight_map(backbone), golden.weights)
    exported = export_hf_weights(backbone_weight_map(backbone))
    assert sorted(exported) == sorted(golden.weights)
    for name, value in golden.weights.items():
        np.testing.assert_array_equal(exported[name], value, err_msg=name)
    config = hf_config_from_backbone(backbone)
    assert backbone_kwargs_from_hf_config(config) == backbone_kwargs_from_hf_config(golden.config)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda w: w.pop("transformer.layer.0.ffn.lin1.weight"), "missing: transformer.layer.0.ffn.lin1.weight"),
        (
            lambda w: w.update({"transformer.layer.9.extra": np.zeros(1)}),
            "unexpected weight(s): transformer.layer.9.extra",
        ),
        (
            lambda w: w.update({"embeddings.LayerNorm.bias": np.zeros(3, "float32")}),
            "'embeddings.LayerNorm.bias' has shape (3,), expected",
        ),
        (
            lambda w: w["transformer.layer.1.attention.q_lin.bias"].__setitem__(0, np.nan),
            "'transformer.layer.1.attention.q_lin.bias' holds NaN",
        ),
    ],
)
def test_bad_checkpoints_fail_without_partial_write(golden, damage, message):
    backbone = DistilBertBackbone(**backbone_kwargs_from_hf_config(golden.config))
    before = [keras.ops.convert_to_numpy(v) for v in backbone.weights]
    weights = {name: value.copy() for name, value in golden.weights.items()}
    damage(weights)
    with pytest.raises(ValueError) as error:
        assign_hf_weights(backbone_weight_map(backbone), weights, source="ckpt.safetensors")
    assert message in str(error.value) and "ckpt.safetensors" in str(error.value)
    for variable, value in zip(backbone.weights, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"vocab_size": 5, "n_layers": 1, "n_heads": 1, "dim": 4}, "lacks required key(s) ['hidden_dim']"),
        ({"vocab_size": 5, "n_layers": 1, "n_heads": 1, "dim": 4, "hidden_dim": 8, "model_type": "bert"}, "'bert'"),
        ({"vocab_size": 5, "n_layers": 1, "n_heads": 1, "dim": 4, "hidden_dim": 8, "activation": "silu"}, "'silu'"),
    ],
)
def test_bad_hf_configs_are_named(config, message):
    with pytest.raises(ValueError) as error:
        backbone_kwargs_from_hf_config(config, source="config.json")
    assert message in str(error.value) and "config.json" in str(error.value)


def test_loading_reads_lazily_and_holds_one_weight_at_a_time(golden, tmp_path):
    """A checkpoint is never held whole beside the model: the reader returns
    unread tensors, and the check pass (every weight, before the first write)
    keeps no weight alive past its own turn. (In the write pass a backend may
    keep the array as the variable's own storage: jax on CPU can.)"""
    import weakref

    from distilbert_hub.convert.hf_checkpoint import SafetensorsTensor, read_state_dict, write_safetensors

    write_safetensors(tmp_path / "model.safetensors", golden.weights)
    state = read_state_dict(tmp_path)
    assert all(isinstance(value, SafetensorsTensor) for value in state.values())

    class Tracked(np.ndarray):
        pass

    alive, read, most_alive_while_checking = [], set(), 0

    class Watching(dict):
        def __getitem__(self, name):
            nonlocal most_alive_while_checking
            stored = np.asarray(super().__getitem__(name))
            value = Tracked(stored.shape, stored.dtype)  # owns its memory: views keep it alive
            value[...] = stored
            if name not in read:  # the check pass reads each weight once, then the writes begin
                read.add(name)
                alive[:] = [ref for ref in alive if ref() is not None] + [weakref.ref(value)]
                most_alive_while_checking = max(most_alive_while_checking, len(alive))
            return value

    backbone = DistilBertBackbone(**backbone_kwargs_from_hf_config(golden.config))
    assign_hf_weights(backbone_weight_map(backbone), Watching(state))
    assert most_alive_while_checking <= 2, f"{most_alive_while_checking} weights were alive at once while checking"
    for name, value in golden.weights.items():
        np.testing.assert_array_equal(np.asarray(state[name]), value, err_msg=name)
