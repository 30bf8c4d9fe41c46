"""How the model classes reach the preset formats without importing them.

The backbone, tokenizer, preprocessors and tasks sit below
`distilbert_hub.convert` in the import layers (the import-linter contract in
pyproject.toml), so their `from_preset` / `save_to_preset` /
`export_to_transformers` cannot import it. `convert.loaders` registers its
entry points here, and `distilbert_hub/__init__` imports it, so they are in
place before any model class is used: the role of KerasHub's `preset_utils`.
"""

_registered = {}


def register_preset_io(get_preset_loader, get_preset_saver, export_to_transformers):
    _registered.update(
        get_preset_loader=get_preset_loader,
        get_preset_saver=get_preset_saver,
        export_to_transformers=export_to_transformers,
    )


def _entry(name):
    if name not in _registered:
        raise RuntimeError("distilbert_hub.convert is not imported; import distilbert_hub first.")
    return _registered[name]


def get_preset_loader(preset):
    """The loader (`convert.loaders`) for the format of the files `preset` names."""
    return _entry("get_preset_loader")(preset)


def get_preset_saver(preset_dir):
    """The writer (`convert.preset.PresetSaver`) of a new preset directory."""
    return _entry("get_preset_saver")(preset_dir)


def export_to_transformers(model, path):
    _entry("export_to_transformers")(model, path)
