"""Checkpoints on every backend. `harness/fixtures/checkpoints` holds what
`transformers` wrote (`tools/make_checkpoints.py`) for the models behind the
goldens, so each must load through `from_preset` and reproduce its golden;
exporting back must give the same tensors, and a preset round trip the same
outputs. The live two-way tests against transformers are in
`tests/crosscheck/test_checkpoints_vs_transformers.py`."""

import importlib.util
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.convert.hf_checkpoint import read_json, read_state_dict
from distilbert_hub.convert.hf_heads import TASK_NAMES
from distilbert_hub.convert.hf_weights import backbone_weight_map
from distilbert_hub.layers.initializers import Unset
from harness.compare import assert_all_match
from harness.golden import REPO_ROOT, load_case
from harness.runner import compare_outputs, run_backbone_case, run_head_case
from harness.testing import assert_trees_close

FIXTURES = REPO_ROOT / "harness" / "fixtures" / "checkpoints"
CHECKPOINTS = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
FLOAT32_CHECKPOINTS = [name for name in CHECKPOINTS if name != "backbone_bf16"]


def model_class(directory):
    architecture = read_json(Path(directory) / "config.json")["architectures"][0]
    return getattr(hub, TASK_NAMES[architecture]) if architecture in TASK_NAMES else hub.DistilBertBackbone


def golden_of(directory):
    return load_case((Path(directory) / "golden_case.txt").read_text().strip())


def run_golden(golden, model):
    if golden.kind == "backbone":
        return run_backbone_case(golden, model)
    return run_head_case(golden, model)


def test_every_checkpoint_variant_is_there():
    assert {"backbone", "backbone_sharded", "backbone_pytorch_bin", "backbone_bf16"} <= set(CHECKPOINTS)
    assert {
        f"head_{t}"
        for t in ("text_classifier", "masked_lm", "token_classifier", "question_answerer", "multiple_choice")
    } <= set(CHECKPOINTS)


@pytest.mark.parametrize("name", FLOAT32_CHECKPOINTS)
def test_a_transformers_checkpoint_reproduces_its_golden(name):
    directory = FIXTURES / name
    if name == "backbone_pytorch_bin" and importlib.util.find_spec("torch") is None:
        with pytest.raises(
            ValueError, match="needs torch to read .*weights_only=True.*convert the checkpoint to safetensors"
        ):
            hub.DistilBertBackbone.from_preset(str(directory))
        return
    model = model_class(directory).from_preset(str(directory))
    golden = golden_of(directory)
    assert_all_match(compare_outputs(golden, run_golden(golden, model)))


def bf16_round(values):
    """float32 -> bfloat16 -> float32, round to nearest even (as torch's .to(bfloat16))."""
    bits = np.ascontiguousarray(values, np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return rounded.astype(np.uint32).view(np.float32)


@pytest.mark.parametrize("source", ["hf", "keras_preset"])
@pytest.mark.parametrize(
    "name", ["backbone", "backbone_sharded", "backbone_bf16", "head_masked_lm", "head_text_classifier"]
)
def test_every_weight_built_unset_is_overwritten(tmp_path, monkeypatch, name, source):
    """Loading builds weights as `Unset` placeholders (uninitialized memory on torch); NaN placeholders
    prove every one is then written from the checkpoint."""
    directory, cls = FIXTURES / name, model_class(FIXTURES / name)
    if source == "keras_preset":
        cls.from_preset(str(directory)).save_to_preset(tmp_path / "preset")
        directory = tmp_path / "preset"
    placed = []

    def nan_placeholder(self, shape, dtype=None):
        placed.append(shape)
        return keras.ops.full(shape, np.nan, dtype=dtype)

    monkeypatch.setattr(Unset, "__call__", nan_placeholder)
    model = cls.from_preset(str(directory))
    assert placed, "no weight was built as a placeholder"
    unset = [v.path for v in model.weights if not np.all(np.isfinite(keras.ops.convert_to_numpy(v)))]
    assert not unset, f"weights left as placeholders: {unset}"


def test_a_loaded_layer_rebuilt_from_its_config_draws_fresh_weights():
    """The placeholder initializer a loaded layer keeps is the truncated normal it stands for once the load
    is over: a clone gets HF's N(0, 0.02) truncated at 2 std, not uninitialized memory."""
    dense = hub.DistilBertBackbone.from_preset(str(FIXTURES / "backbone")).transformer_layers[0].attention.query_dense
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(dense))
    kernel = keras.ops.convert_to_numpy(clone.kernel)
    assert np.abs(kernel).max() <= 0.04 and 0.01 < kernel.std() < 0.03


def test_a_bf16_checkpoint_loads_as_exact_float32_values():
    directory = FIXTURES / "backbone_bf16"
    backbone = hub.DistilBertBackbone.from_preset(str(directory))
    golden = golden_of(directory)
    for entry in backbone_weight_map(backbone):
        value = keras.ops.convert_to_numpy(entry.variable)
        np.testing.assert_array_equal(
            value.T if entry.transpose else value, bf16_round(golden.weights[entry.hf_name]), err_msg=entry.hf_name
        )


@pytest.mark.parametrize("name", ["backbone", "backbone_sharded"] + [n for n in CHECKPOINTS if n.startswith("head_")])
def test_export_gives_back_the_checkpoint(tmp_path, name):
    directory = FIXTURES / name
    model = model_class(directory).from_preset(str(directory))
    model.export_to_transformers(tmp_path / "export")
    original, exported = read_state_dict(directory), read_state_dict(tmp_path / "export")
    assert sorted(exported) == sorted(original)
    for key, value in original.items():
        np.testing.assert_array_equal(exported[key], value, err_msg=key)
    config, new_config = read_json(directory / "config.json"), read_json(tmp_path / "export" / "config.json")
    for key in (
        "architectures",
        "vocab_size",
        "dim",
        "n_layers",
        "n_heads",
        "hidden_dim",
        "max_position_embeddings",
        "activation",
        "sinusoidal_pos_embds",
        "id2label",
        "model_type",
    ):
        assert new_config.get(key) == config.get(key), key
    if name.startswith("head_"):
        tokenizer = hub.DistilBertTokenizer.from_preset(str(tmp_path / "export"))
        original_tokenizer = hub.DistilBertTokenizer.from_preset(str(directory))
        assert tokenizer.get_config() == original_tokenizer.get_config()


@pytest.mark.parametrize("name", ["backbone"] + [n for n in CHECKPOINTS if n.startswith("head_")])
def test_save_to_preset_round_trips(tmp_path, name):
    directory = FIXTURES / name
    cls = model_class(directory)
    model = cls.from_preset(str(directory))
    model.save_to_preset(tmp_path / "preset")
    assert (tmp_path / "preset" / "assets" / "tokenizer" / "vocabulary.txt").is_file() or cls is hub.DistilBertBackbone
    metadata = read_json(tmp_path / "preset" / "metadata.json")
    assert (
        metadata["parameter_count"]
        == model_class(directory).from_preset(str(directory), load_weights=False).count_params()
        or cls is not hub.DistilBertBackbone
    )
    restored = cls.from_preset(str(tmp_path / "preset"))
    golden = golden_of(directory)
    assert_trees_close(run_golden(golden, restored), run_golden(golden, model), atol=0.0, what="preset round trip")
    assert restored.get_config() == model.get_config()


def test_tokenizer_and_preprocessor_presets_round_trip(tmp_path):
    tokenizer = hub.DistilBertTokenizer.from_preset(str(FIXTURES / "head_text_classifier"))
    preprocessor = hub.DistilBertTextClassifierPreprocessor.from_preset(
        str(FIXTURES / "head_text_classifier"), sequence_length=9, truncate="longest_first"
    )
    assert preprocessor.sequence_length == 9 and tokenizer.lowercase
    preprocessor.save_to_preset(tmp_path / "preprocessor")
    config = read_json(tmp_path / "preprocessor" / "tokenizer.json")
    assert config["config"]["vocabulary"] is None, "the vocabulary is an asset, not inlined config"
    restored = hub.DistilBertTextClassifierPreprocessor.from_preset(str(tmp_path / "preprocessor"))
    assert restored.get_config() == preprocessor.get_config()
    texts = ["the quick brown fox", "a movie, a book!"]
    np.testing.assert_array_equal(restored(texts)["token_ids"], preprocessor(texts)["token_ids"])


def test_dtype_is_honoured():
    backbone = hub.DistilBertBackbone.from_preset(str(FIXTURES / "backbone"), dtype="bfloat16")
    assert backbone.dtype_policy.name == "bfloat16"
    assert all(v.dtype == "bfloat16" for v in backbone.weights)


def test_a_task_gets_num_classes_from_id2label():
    classifier = hub.DistilBertTextClassifier.from_preset(str(FIXTURES / "head_text_classifier"))
    assert classifier.num_classes == 3
    assert isinstance(classifier.preprocessor, hub.DistilBertTextClassifierPreprocessor)
    tagger = hub.DistilBertTokenClassifier.from_preset(str(FIXTURES / "head_token_classifier"), preprocessor=None)
    assert tagger.num_classes == 5 and tagger.preprocessor is None


def test_a_task_from_a_bare_backbone_gets_a_fresh_head_and_says_so_once():
    with pytest.warns(UserWarning, match="head is freshly initialized") as caught:
        classifier = hub.DistilBertTextClassifier.from_preset(str(FIXTURES / "backbone"), num_classes=2)
    assert len(caught) == 1
    # Drawn as transformers draws a new head (N(0, 0.02)), not left at the zeros of a skipped initialization.
    for layer in (classifier.pooled_dense, classifier.output_dense):
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        assert 0 < np.abs(kernel).max() <= 0.04, f"{layer.name}: |kernel| up to {np.abs(kernel).max()}"


def test_a_preset_name_resolves_offline_from_the_hugging_face_cache(tmp_path, monkeypatch):
    snapshot = tmp_path / "models--distilbert--distilbert-base-uncased" / "snapshots" / ("a" * 40)
    snapshot.parent.mkdir(parents=True)
    shutil.copytree(FIXTURES / "backbone", snapshot)
    (tmp_path / "models--distilbert--distilbert-base-uncased" / "refs").mkdir()
    (tmp_path / "models--distilbert--distilbert-base-uncased" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    for source in ("distil_bert_base_en_uncased", "hf://distilbert/distilbert-base-uncased"):
        backbone = hub.DistilBertBackbone.from_preset(source)
        assert backbone.vocabulary_size == 128
    with pytest.raises(ValueError, match="distilbert/distilbert-base-cased is not available here.*hf download"):
        hub.DistilBertBackbone.from_preset("distil_bert_base_en")


def convert(*args):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "distilbert_hub.convert", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_the_converter_cli_goes_both_ways(tmp_path):
    source = FIXTURES / "head_question_answerer"
    to_preset = convert(source, tmp_path / "preset")
    assert to_preset.returncode == 0, to_preset.stderr
    assert "loading DistilBertQuestionAnswerer" in to_preset.stdout
    back = convert(tmp_path / "preset", tmp_path / "hf", "--to", "transformers")
    assert back.returncode == 0, back.stderr
    original, exported = read_state_dict(source), read_state_dict(tmp_path / "hf")
    assert sorted(original) == sorted(exported)
    for key in original:
        np.testing.assert_array_equal(exported[key], original[key], err_msg=key)
    again = convert(source, tmp_path / "preset")
    assert again.returncode == 2 and "already exists" in again.stderr
    missing = convert(tmp_path / "nowhere", tmp_path / "out")
    assert missing.returncode == 2 and "neither a preset name" in missing.stderr
