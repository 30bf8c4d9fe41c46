"""The task attributes the HF head table (`convert.hf_heads.HEADS`) replaced
stay as deprecated aliases: each warns, names its replacement and answers
what the replacement answers. pyproject.toml turns these warnings into errors
everywhere else, so no code of ours reaches them."""

import pytest

from distilbert_hub.convert.hf_config import head_kwargs_from_hf_config, hf_config_from_task
from distilbert_hub.convert.hf_heads import HEADS, architecture_of
from distilbert_hub.convert.hf_weights import head_weight_entries
from harness.testing import MODELS, TASK_NAMES


def deprecated(match):
    return pytest.warns(DeprecationWarning, match=rf"{match} is deprecated; use distilbert_hub\.convert\.")


@pytest.mark.parametrize("name", TASK_NAMES)
def test_each_alias_warns_and_answers_as_the_head_table(tiny_backbone, name):
    task = MODELS[name](tiny_backbone)
    cls = type(task)
    with deprecated(f"{cls.__name__}.hf_architecture"):
        assert cls.hf_architecture == architecture_of(cls) == HEADS[cls.__name__].architecture
    with deprecated("hf_architecture"):
        assert task.hf_architecture == architecture_of(cls)
    with deprecated("head_weight_entries"):
        entries = task.head_weight_entries()
    assert [(e.hf_name, e.variable.path) for e in entries] == [
        (e.hf_name, e.variable.path) for e in head_weight_entries(task)
    ]
    assert entries, "every task here has head weights"
    hf_config = hf_config_from_task(task)
    with deprecated("head_kwargs_from_hf_config"):
        assert cls.head_kwargs_from_hf_config(hf_config) == head_kwargs_from_hf_config(cls, hf_config)
    with deprecated("hf_config_updates"):
        updates = task.hf_config_updates()
    assert updates == hf_config and updates["architectures"] == [architecture_of(cls)]
