"""How the model classes reach the code above them in the import layers.

The backbone, tokenizer, preprocessors and tasks sit below
`distilbert_hub.convert` (the preset formats) and `distilbert_hub.export` (ONNX)
in the import layers (the import-linter contract in pyproject.toml), so their
`from_preset`, `save_to_preset`, `export_to_transformers` and
`export(format="onnx")` cannot import them. `distilbert_hub/__init__` registers
those entry points here after it has imported the model classes, so they are in
place before any model class is used: the role of KerasHub's `preset_utils`.
"""

import functools
import warnings

_registered = {}


def register(**entries):
    _registered.update(entries)


def _entry(name):
    if name not in _registered:
        raise RuntimeError(f"no {name} registered: import distilbert_hub (its __init__ registers it).")
    return _registered[name]


def get_preset_loader(preset):
    """The loader (`convert.loaders`) for the format of the files `preset` names."""
    return _entry("get_preset_loader")(preset)


def get_preset_saver(preset_dir):
    """The writer (`convert.preset.PresetSaver`) of a new preset directory."""
    return _entry("get_preset_saver")(preset_dir)


def export_to_transformers(model, path):
    _entry("export_to_transformers")(model, path)


def export_onnx(model, filepath, **kwargs):
    return _entry("export_onnx")(model, filepath, **kwargs)


class DeprecatedAlias:
    """A task attribute from before the per-task HF head table
    (`convert.hf_heads.HEADS`): it warns and runs the registered replacement
    (registered under the attribute's name) on the task class (`kind="value"`
    or `"classmethod"`) or on the task (`"method"`)."""

    def __init__(self, replacement, kind):
        self.replacement, self.kind = replacement, kind

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, instance, owner):
        warnings.warn(
            f"{owner.__name__}.{self.name} is deprecated; use distilbert_hub.{self.replacement}.",
            DeprecationWarning,
            stacklevel=2,
        )
        function = _entry(self.name)
        if self.kind == "value":
            return function(owner)
        if self.kind == "classmethod":
            return functools.partial(function, owner)
        return function if instance is None else functools.partial(function, instance)
