"""The loader is picked from the files (one class per source format), and the
head table (`convert/hf_heads.py`) describes every task and every variable of
its head, so that loaders, exporter, converter and golden generator, which all
read it, cannot drift from the task classes."""

import shutil

import keras
import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub import preset_utils
from distilbert_hub.convert.hf_heads import HEADS, architecture_of
from distilbert_hub.convert.hf_weights import head_weight_entries
from distilbert_hub.convert.loaders import HuggingFaceLoader, KerasHubPresetLoader, KerasPresetLoader, all_finite
from distilbert_hub.task import Task
from harness.golden import REPO_ROOT
from harness.testing import MODELS, tiny_backbone_for

CHECKPOINTS = REPO_ROOT / "harness" / "fixtures" / "checkpoints"
KERAS_HUB = REPO_ROOT / "harness" / "fixtures" / "keras_hub_presets"


@pytest.fixture(scope="module")
def tokenizer():
    return hub.DistilBertTokenizer.from_preset(str(CHECKPOINTS / "backbone"))


def test_the_loader_follows_the_files(tmp_path, tokenizer):
    assert type(preset_utils.get_preset_loader(str(CHECKPOINTS / "head_text_classifier"))) is HuggingFaceLoader
    assert type(preset_utils.get_preset_loader(str(KERAS_HUB / "text_classifier"))) is KerasHubPresetLoader
    tiny_backbone_for(tokenizer).save_to_preset(tmp_path / "backbone")
    assert type(preset_utils.get_preset_loader(str(tmp_path / "backbone"))) is KerasPresetLoader
    # A tokenizer saved alone has no config.json: its tokenizer.json says which format it is.
    tokenizer.save_to_preset(tmp_path / "tokenizer")
    assert type(preset_utils.get_preset_loader(str(tmp_path / "tokenizer"))) is KerasPresetLoader
    (tmp_path / "hf_tokenizer").mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(CHECKPOINTS / "backbone" / name, tmp_path / "hf_tokenizer" / name)
    assert type(preset_utils.get_preset_loader(str(tmp_path / "hf_tokenizer"))) is HuggingFaceLoader
    loaded = hub.DistilBertTokenizer.from_preset(str(tmp_path / "hf_tokenizer"))
    assert loaded.get_vocabulary() == tokenizer.get_vocabulary()


def test_every_task_has_a_row_in_the_head_table():
    tasks = [cls for cls in vars(hub).values() if isinstance(cls, type) and issubclass(cls, Task)]
    assert tasks and sorted(cls.__name__ for cls in tasks) == sorted(HEADS)
    assert architecture_of(hub.DistilBertBackbone) == "DistilBertModel"


@pytest.mark.parametrize("name", [name for name in MODELS if name != "backbone"])
def test_the_head_table_names_every_variable_of_the_head_once(name, tokenizer):
    task = MODELS[name](tiny_backbone_for(tokenizer))
    entries = head_weight_entries(task)
    named = [entry.variable.path for entry in entries]
    backbone = {variable.path for variable in task.backbone.weights}
    head = [variable.path for variable in task.weights if variable.path not in backbone]
    assert sorted(named) == sorted(head), f"{type(task).__name__}: the table and the head's variables differ"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (37, 5), (99, 7)])
def test_the_finite_check_of_a_preset_finds_a_bad_value_in_any_slice_of_rows(bad, where):
    value = np.ones((100, 8), "float32")
    assert all_finite(keras.Variable(value), chunk_elements=64)
    value[where] = bad
    assert not all_finite(keras.Variable(value), chunk_elements=64)
    assert not all_finite(keras.Variable(value))
