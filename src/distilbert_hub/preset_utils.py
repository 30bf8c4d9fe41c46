"""How the model classes reach the code above them in the import layers.

The backbone, tokenizer, preprocessors and tasks sit below
`distilbert_hub.convert` (the preset formats) and `distilbert_hub.export` (ONNX)
in the import layers (the import-linter contract in pyproject.toml), so their
`from_preset`, `save_to_preset`, `export_to_transformers` and
`export(format="onnx")` cannot import them. `distilbert_hub/__init__` registers
those entry points here after it has imported the model classes, so they are in
place before any model class is used: the role of KerasHub's `preset_utils`.
"""

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
