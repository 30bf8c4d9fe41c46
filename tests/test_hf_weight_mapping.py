import os
import re
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from distilbert_hub import DistilBertBackbone
from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config, hf_config_from_backbone
from distilbert_hub.convert.hf_weights import assign_hf_weights, backbone_weight_map, export_hf_weights
from harness.golden import REPO_ROOT, case_ids, load_case


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


def aligned_safetensors(path, tensors):
    """A safetensors file whose data starts 64 bytes into a page, where jax on CPU would keep a view of
    numpy memory as is (the format pads the header only to 8 bytes; metadata pads it further)."""
    from safetensors.numpy import save_file

    for pad in range(0, 64):
        save_file(tensors, str(path), metadata={"format": "pt", "pad": "x" * pad})
        with open(path, "rb") as f:
            if (8 + int.from_bytes(f.read(8), "little")) % 64 == 0:
                return path
    raise AssertionError("no padding aligns the data")


def test_a_loaded_model_keeps_nothing_of_the_checkpoint_file(tmp_path):
    """Every weight is the model's own memory: rewriting the file in place afterwards changes nothing and
    no map of it stays open (jax kept 64-byte-aligned views of the file as its arrays)."""
    from safetensors.numpy import load_file

    source = REPO_ROOT / "harness" / "fixtures" / "checkpoints" / "backbone"
    shutil.copy(source / "config.json", tmp_path)
    path = aligned_safetensors(tmp_path / "model.safetensors", load_file(source / "model.safetensors"))
    loaded = DistilBertBackbone.from_preset(str(tmp_path))
    before = [keras.ops.convert_to_numpy(v).copy() for v in loaded.weights]
    with open(path, "r+b") as f:  # the same file, its data overwritten
        header = 8 + int.from_bytes(f.read(8), "little")
        f.seek(header)
        f.write(b"\x7f" * (path.stat().st_size - header))
    for variable, value in zip(loaded.weights, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value, err_msg=variable.path)
    maps = Path("/proc/self/maps")
    if maps.exists():
        assert str(path) not in maps.read_text(), "a map of the checkpoint outlived the load"


def test_a_checkpoint_replaced_after_its_header_was_read_is_refused(golden, tmp_path):
    """A tensor's offsets belong to the header they came from: a file swapped in under the same name
    (same size, tensors in another order) must not be read at them."""
    from safetensors.numpy import save_file

    from distilbert_hub.convert.hf_checkpoint import CheckpointError, read_state_dict

    weights = {k: np.asarray(v) for k, v in golden.weights.items()}
    save_file(weights, str(tmp_path / "model.safetensors"))
    state = read_state_dict(tmp_path)
    reordered = {k: weights[k] for k in reversed(weights)}
    save_file(reordered, str(tmp_path / "other.safetensors"), metadata={"x": "y"})
    os.replace(tmp_path / "other.safetensors", tmp_path / "model.safetensors")
    name = next(iter(state))
    refusal = (
        rf"^{re.escape(str(tmp_path))}/model.safetensors: "
        rf"the file changed since its header was read \(reading '{name}'\); load it again\.$"
    )
    with pytest.raises(CheckpointError, match=refusal):
        np.asarray(state[name])
    with pytest.raises(CheckpointError, match=refusal):
        state[name].mapped()


def test_a_checkpoint_rewritten_in_place_with_its_times_set_back_is_refused(golden, tmp_path):
    from distilbert_hub.convert.hf_checkpoint import CheckpointError, read_state_dict, write_safetensors

    write_safetensors(tmp_path / "model.safetensors", golden.weights)
    path, state = tmp_path / "model.safetensors", read_state_dict(tmp_path)
    times = os.stat(path)
    with open(path, "r+b") as f:  # same file, same size, other bytes, times put back
        f.seek(-4, os.SEEK_END)
        f.write(np.float32(np.nan).tobytes())
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    name = next(iter(state))
    with pytest.raises(CheckpointError, match="the file changed since its header was read"):
        np.asarray(state[name])


def test_a_read_tensor_is_a_copy_of_its_own(golden, tmp_path):
    from distilbert_hub.convert.hf_checkpoint import read_state_dict, write_safetensors

    write_safetensors(tmp_path / "model.safetensors", golden.weights)
    name, tensor = next(iter(read_state_dict(tmp_path).items()))
    value = np.asarray(tensor)
    assert value.flags.owndata and not isinstance(value, np.memmap)
    np.testing.assert_array_equal(value, golden.weights[name])
