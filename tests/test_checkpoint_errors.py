"""Every bad checkpoint or preset gets one clear error naming the file, key or
name, and a failed write leaves nothing behind."""

import json
import shutil

import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.convert.hf_checkpoint import write_safetensors
from harness.golden import REPO_ROOT

FIXTURES = REPO_ROOT / "harness" / "fixtures" / "checkpoints"


def edit_json(path, **changes):
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])


def rewrite_weights(directory, change):
    from distilbert_hub.convert.hf_checkpoint import read_state_dict

    state = {k: np.array(v) for k, v in read_state_dict(directory).items()}
    change(state)
    write_safetensors(directory / "model.safetensors", state)


DAMAGES = {
    "no config.json": (lambda d: (d / "config.json").unlink(), "config.json.*missing"),
    "config.json not JSON": (lambda d: (d / "config.json").write_text("{oops"), "config.json: not valid JSON"),
    "another model type": (lambda d: edit_json(d / "config.json", model_type="bert"), "model_type is 'bert'"),
    "another architecture": (
        lambda d: edit_json(d / "config.json", architectures=["BertForMaskedLM"]),
        "architectures says 'BertForMaskedLM'",
    ),
    "no weights": (lambda d: (d / "model.safetensors").unlink(), "no weights found"),
    "truncated safetensors": (lambda d: truncate(d / "model.safetensors", -100), "file truncated or corrupt"),
    "safetensors of 5 bytes": (lambda d: truncate(d / "model.safetensors", 5), "not a safetensors file"),
    "corrupt header": (
        lambda d: (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json!!!!!!}"),
        "corrupt safetensors header",
    ),
    "wrong shape": (
        lambda d: rewrite_weights(
            d, lambda s: s.update({"transformer.layer.1.ffn.lin1.weight": np.zeros((64, 31), np.float32)})
        ),
        "'transformer.layer.1.ffn.lin1.weight' has shape \\(64, 31\\), expected \\(64, 32\\)",
    ),
    "missing key": (
        lambda d: rewrite_weights(d, lambda s: s.pop("transformer.layer.0.attention.q_lin.bias")),
        "missing: transformer.layer.0.attention.q_lin.bias",
    ),
    "unexpected key": (
        lambda d: rewrite_weights(d, lambda s: s.update({"pooler.dense.weight": np.zeros(2, np.float32)})),
        "unexpected weight 'pooler.dense.weight'",
    ),
    "float64 beyond float32": (lambda d: rewrite_weights_f64(d), "beyond float32's range"),
    "NaN weight": (
        lambda d: rewrite_weights(d, lambda s: s["embeddings.LayerNorm.bias"].__setitem__(0, np.nan)),
        "'embeddings.LayerNorm.bias' holds NaN",
    ),
    "tokenizer.json of another model": (
        lambda d: edit_json(d / "tokenizer.json", model={"type": "BPE", "vocab": {}}),
        "tokenizer.json: a BPE tokenizer",
    ),
}


def rewrite_weights_f64(directory):
    from safetensors.numpy import save_file

    from distilbert_hub.convert.hf_checkpoint import read_state_dict

    state = {k: np.array(v, np.float64) for k, v in read_state_dict(directory).items()}
    state["embeddings.word_embeddings.weight"][3, 4] = 1e39
    save_file(state, str(directory / "model.safetensors"))


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_bad_checkpoint_is_refused_with_a_clear_error(tmp_path, damage):
    directory = tmp_path / "checkpoint"
    shutil.copytree(FIXTURES / "backbone", directory)
    apply, message = DAMAGES[damage]
    apply(directory)
    with pytest.raises(ValueError, match=message):
        hub.DistilBertTextClassifier.from_preset(str(directory), num_classes=2) if "tokenizer" in damage else (
            hub.DistilBertBackbone.from_preset(str(directory))
        )


@pytest.mark.parametrize(
    "source, message",
    [
        ("distil_bert_base_en_uncasd", "Did you mean 'distil_bert_base_en_uncased'"),
        ("hf://a/b/c", "expected hf://org/name"),
        ("/no/such/directory", "neither a preset name"),
    ],
)
def test_an_unknown_source_is_named(source, message):
    with pytest.raises(ValueError, match=message):
        hub.DistilBertBackbone.from_preset(source)


def test_an_explicit_option_that_contradicts_the_tokenizer_files_raises():
    with pytest.raises(ValueError, match="lowercase=False contradicts .*tokenizer.json"):
        hub.DistilBertTokenizer.from_preset(str(FIXTURES / "backbone"), lowercase=False)


def test_untied_masked_lm_weights_are_refused(tmp_path):
    directory = tmp_path / "checkpoint"
    shutil.copytree(FIXTURES / "head_masked_lm", directory)
    rewrite_weights(
        directory, lambda s: s.update({"vocab_projector.weight": s["distilbert.embeddings.word_embeddings.weight"] + 1})
    )
    with pytest.raises(ValueError, match="'vocab_projector.weight' differs from"):
        hub.DistilBertMaskedLM.from_preset(str(directory))


def test_writing_into_an_existing_directory_fails_and_writes_nothing(tmp_path):
    backbone = hub.DistilBertBackbone.from_preset(str(FIXTURES / "backbone"))
    (tmp_path / "taken").mkdir()
    for write in (backbone.save_to_preset, backbone.export_to_transformers):
        with pytest.raises(FileExistsError, match="taken already exists"):
            write(tmp_path / "taken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"] and not any((tmp_path / "taken").iterdir())


def test_a_failed_write_leaves_no_partial_directory(tmp_path, monkeypatch):
    backbone = hub.DistilBertBackbone.from_preset(str(FIXTURES / "backbone"))

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(type(backbone), "save_weights", disk_full)
    with pytest.raises(OSError, match="No space left"):
        backbone.save_to_preset(tmp_path / "preset")
    assert list(tmp_path.iterdir()) == []
