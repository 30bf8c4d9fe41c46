"""Presets in and out: `from_preset`, `save_to_preset`, `export_to_transformers`.

A source resolves (`sources.resolve`) to a directory in one of two formats:
- a Hugging Face checkpoint: `config.json` with `model_type: distilbert`,
  weights (`hf_checkpoint`), tokenizer files (`hf_tokenizer`);
- a Keras preset, as `save_to_preset` writes it (KerasHub's layout):
  `config.json` (the backbone's Keras config), `model.weights.h5`,
  `tokenizer.json` (the tokenizer's config) with its vocabulary in
  `assets/tokenizer/vocabulary.txt`, `preprocessor.json`, `task.json` and
  `task.weights.h5`, and `metadata.json`.
Loading resolves, reads and validates everything before it assigns a weight;
writing goes to a temporary directory renamed into place at the end, so a
failure never leaves a half-written preset.
"""

import contextlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import keras

from distilbert_hub.convert import keras_hub_preset
from distilbert_hub.convert.hf_checkpoint import (
    CheckpointError,
    read_json,
    read_state_dict,
    write_json,
    write_safetensors,
)
from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config, hf_config_from_backbone
from distilbert_hub.convert.hf_tokenizer import merge_options, read_hf_tokenizer, write_hf_tokenizer
from distilbert_hub.convert.hf_weights import (
    TIED_WEIGHTS,
    assign_hf_weights,
    backbone_weight_map,
    export_hf_weights,
    task_weight_map,
)
from distilbert_hub.convert.sources import resolve
from distilbert_hub.layers.initializers import skip_weight_initialization

CONFIG = "config.json"
KERAS_WEIGHTS = "model.weights.h5"
TASK_CONFIG = "task.json"
TASK_WEIGHTS = "task.weights.h5"
TOKENIZER_CONFIG = "tokenizer.json"
PREPROCESSOR_CONFIG = "preprocessor.json"
METADATA = "metadata.json"
VOCABULARY_ASSET = Path("assets") / "tokenizer" / "vocabulary.txt"
HF_PREFIX = "distilbert."
# Weights of the DistilBertFor* heads (outside the `distilbert.` backbone).
HF_HEAD_PREFIXES = (
    "pre_classifier.",
    "classifier.",
    "qa_outputs.",
    "vocab_transform.",
    "vocab_layer_norm.",
    "vocab_projector.",
)


# --- reading -------------------------------------------------------------------


def preset_format(directory):
    """'keras' or 'hf' for a preset directory, by its config.json."""
    config = read_json(Path(directory) / CONFIG, "config.json (a preset's or a checkpoint's)")
    if "class_name" in config and "config" in config:
        return "keras", config
    if "model_type" in config:
        model_type = config["model_type"]
        if model_type != "distilbert":
            raise CheckpointError(f"{Path(directory) / CONFIG}: model_type is {model_type!r}, not 'distilbert'.")
        return "hf", config
    raise CheckpointError(
        f"{Path(directory) / CONFIG}: neither a Keras preset config (class_name/config) "
        "nor a Hugging Face one (model_type)."
    )


def hf_architecture(config, directory):
    architectures = config.get("architectures") or ["DistilBertModel"]
    architecture = architectures[0]
    from distilbert_hub.task import Task

    known = ["DistilBertModel", *Task.registry]
    if architecture not in known:
        raise CheckpointError(
            f"{Path(directory) / CONFIG}: architectures says {architecture!r}; "
            f"a DistilBERT checkpoint is one of {known}."
        )
    return architecture


def split_state_dict(state, source):
    """(backbone weights under DistilBertModel names, head weights) of an HF
    state dict with or without the `distilbert.` prefix."""
    prefixed = any(name.startswith(HF_PREFIX) for name in state)
    backbone, head = {}, {}
    for name, value in state.items():
        if prefixed and name.startswith(HF_PREFIX):
            backbone[name[len(HF_PREFIX) :]] = value
        elif not prefixed and name.startswith(("embeddings.", "transformer.")):
            backbone[name] = value
        elif name.startswith(HF_HEAD_PREFIXES):
            head[name] = value
        else:
            raise CheckpointError(f"{source}: unexpected weight '{name}' (not a DistilBERT backbone or head weight).")
    if not backbone:
        raise CheckpointError(f"{source}: no DistilBERT backbone weights (embeddings.*, transformer.*).")
    return backbone, head


def initialization(load_weights):
    """Skip the random initialization of weights about to be overwritten."""
    return skip_weight_initialization() if load_weights else contextlib.nullcontext()


def _check_dtype_argument(kwargs):
    dtype = kwargs.get("dtype")
    if isinstance(dtype, dict):
        kwargs["dtype"] = keras.dtype_policies.deserialize(dtype)
    return kwargs


def load_backbone(source, load_weights=True, **kwargs):
    from distilbert_hub.distilbert_backbone import DistilBertBackbone

    directory = resolve(source)
    kind, config = preset_format(directory)
    kwargs = _check_dtype_argument(dict(kwargs))
    if kind == "keras":
        with initialization(load_weights):
            backbone = _keras_backbone(directory, config, kwargs)
        if load_weights and keras_hub_preset.is_keras_hub_spec(config):
            state = keras_hub_preset.backbone_state(directory, backbone.hidden_dim)
            assign_hf_weights(backbone_weight_map(backbone), state, source=str(directory / KERAS_WEIGHTS))
        elif load_weights:
            _load_keras_weights(backbone, directory / KERAS_WEIGHTS)
        return backbone
    hf_architecture(config, directory)
    with initialization(load_weights):
        backbone = DistilBertBackbone(**(backbone_kwargs_from_hf_config(config, str(directory / CONFIG)) | kwargs))
    if load_weights:
        backbone_state, _ = split_state_dict(read_state_dict(directory), directory)
        assign_hf_weights(backbone_weight_map(backbone), backbone_state, source=str(directory))
    return backbone


def _keras_backbone(directory, config, kwargs):
    from distilbert_hub.distilbert_backbone import DistilBertBackbone

    if config["class_name"] != "DistilBertBackbone":
        raise CheckpointError(f"{directory / CONFIG}: holds a {config['class_name']}, not a DistilBertBackbone.")
    backbone_config = dict(config["config"]) | kwargs
    if keras_hub_preset.is_keras_hub_spec(config):
        backbone_config = keras_hub_preset.backbone_config(config) | kwargs
    for key in ("dtype",):
        if isinstance(backbone_config.get(key), dict):
            backbone_config[key] = keras.dtype_policies.deserialize(backbone_config[key])
    try:
        return DistilBertBackbone.from_config(backbone_config)
    except TypeError as error:
        raise CheckpointError(f"{directory / CONFIG}: not a DistilBertBackbone config ({error}).") from None


def _load_keras_weights(model, path):
    if not path.is_file():
        raise CheckpointError(f"{path}: missing weights file.")
    try:
        model.load_weights(path)
    except Exception as error:
        raise CheckpointError(f"{path}: weights do not fit {type(model).__name__} ({error}).") from None


def load_tokenizer(source, **kwargs):
    from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer

    directory = resolve(source)
    keras_config = directory / TOKENIZER_CONFIG
    if (directory / VOCABULARY_ASSET).is_file() and keras_config.is_file():
        spec = read_json(keras_config, "tokenizer config")
        if "class_name" in spec:
            config = dict(spec.get("config") or {})
            config["vocabulary"] = str(directory / VOCABULARY_ASSET)
            config = {k: v for k, v in config.items() if k in TOKENIZER_ARGUMENTS}
            for name, value in kwargs.items():
                if value is not None and name in config and config[name] is not None and config[name] != value:
                    raise ValueError(
                        f"{name}={value!r} contradicts {keras_config}, which says {name}={config[name]!r}."
                    )
            return DistilBertTokenizer(**(config | {k: v for k, v in kwargs.items() if v is not None}))
    vocabulary, options, where = read_hf_tokenizer(directory)
    return DistilBertTokenizer(vocabulary, **merge_options(options, kwargs, where))


TOKENIZER_ARGUMENTS = (
    "vocabulary",
    "lowercase",
    "strip_accents",
    "tokenize_chinese_chars",
    "special_tokens_in_strings",
    "sequence_length",
)


def has_tokenizer(directory):
    return any((directory / name).is_file() for name in ("tokenizer.json", "vocab.txt", str(VOCABULARY_ASSET)))


def load_preprocessor(cls, source, **kwargs):
    directory = resolve(source)
    tokenizer = kwargs.pop("tokenizer", None) or load_tokenizer(directory)
    config_path = directory / PREPROCESSOR_CONFIG
    config = {}
    if config_path.is_file():
        spec = read_json(config_path, "preprocessor config")
        if spec.get("class_name") == cls.__name__:
            arguments = _init_arguments(cls)
            config = {k: v for k, v in (spec.get("config") or {}).items() if k in arguments and k != "tokenizer"}
    elif (directory / CONFIG).is_file():
        kind, model_config = preset_format(directory)
        defaults = _init_arguments(cls)
        if kind == "hf" and "sequence_length" in defaults:
            # The class defaults (512, 384 for QA) capped by the model's positions.
            length = min(defaults["sequence_length"], model_config.get("max_position_embeddings", 512))
            config["sequence_length"] = length
            if "stride" in defaults:
                config["stride"] = min(defaults["stride"], length // 3)
    return cls(tokenizer, **(config | kwargs))


def _init_arguments(cls):
    import inspect

    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()}


def load_task(cls, source, load_weights=True, **kwargs):
    directory = resolve(source)
    kind, config = preset_format(directory)
    kwargs = _check_dtype_argument(dict(kwargs))
    backbone_kwargs = {k: kwargs.pop(k) for k in ("dtype",) if k in kwargs}
    if "preprocessor" not in kwargs:
        kwargs["preprocessor"] = (
            load_preprocessor(cls.preprocessor_cls, directory) if has_tokenizer(directory) else None
        )
    if kind == "keras":
        return _load_keras_task(cls, directory, load_weights, backbone_kwargs, kwargs)
    architecture = hf_architecture(config, directory)
    with initialization(load_weights):
        backbone = load_backbone(directory, load_weights=False, **backbone_kwargs)
    head_kwargs = cls.head_kwargs_from_hf_config(config) if architecture == cls.hf_architecture else {}
    task = cls(backbone, **(head_kwargs | kwargs))
    if not load_weights:
        return task
    backbone_state, head_state = split_state_dict(read_state_dict(directory), directory)
    entries = backbone_weight_map(backbone)
    head_entries = task.head_weight_entries()
    head_names = {e.hf_name for e in head_entries}
    if not head_entries:  # a task without weights of its own (the embedder): the backbone is all
        assign_hf_weights(entries, backbone_state, source=str(directory))
    elif architecture == cls.hf_architecture and head_names <= set(head_state):
        head_state = drop_tied_copies(head_state, backbone_state, directory)
        assign_hf_weights(entries + head_entries, backbone_state | head_state, source=str(directory))
    else:
        assign_hf_weights(entries, backbone_state, source=str(directory))
        warnings.warn(
            f"{directory}: a {architecture} checkpoint has no {cls.hf_architecture} head; "
            f"the {cls.__name__} head is freshly initialized and needs training.",
            stacklevel=3,
        )
    return task


def drop_tied_copies(head_state, backbone_state, directory):
    """`head_state` without the copies of tied weights, each checked equal to its original."""
    import numpy as np

    kept = dict(head_state)
    for name, original in TIED_WEIGHTS.items():
        if name in kept:
            value = kept.pop(name)
            original = original[len(HF_PREFIX) :]
            if original in backbone_state and not np.array_equal(value, backbone_state[original]):
                raise CheckpointError(
                    f"{directory}: '{name}' differs from '{HF_PREFIX}{original}'; this model ties them, so an "
                    "untied checkpoint cannot be loaded exactly."
                )
    return kept


def _load_keras_task(cls, directory, load_weights, backbone_kwargs, kwargs):
    with initialization(load_weights):
        backbone = load_backbone(directory, load_weights=False, **backbone_kwargs)
    task_config, spec = {}, {}
    if (directory / TASK_CONFIG).is_file():
        spec = read_json(directory / TASK_CONFIG, "task config")
        if spec.get("class_name") == cls.__name__:
            arguments = _init_arguments(cls)
            task_config = {
                k: v
                for k, v in spec["config"].items()
                if (k in arguments or k == "name") and k not in ("backbone", "preprocessor")
            }
    task = cls(backbone, **(task_config | kwargs))
    if load_weights and keras_hub_preset.is_keras_hub_spec(spec) and spec.get("class_name") == cls.__name__:
        state = keras_hub_preset.backbone_state(directory, backbone.hidden_dim)
        state = {f"{HF_PREFIX}{k}": v for k, v in state.items()} | keras_hub_preset.head_state(directory, cls.__name__)
        assign_hf_weights(task_weight_map(task), state, source=str(directory))
    elif load_weights and keras_hub_preset.is_keras_hub_spec(read_json(directory / CONFIG)):
        assign_hf_weights(
            backbone_weight_map(backbone),
            keras_hub_preset.backbone_state(directory, backbone.hidden_dim),
            source=str(directory / KERAS_WEIGHTS),
        )
        warnings.warn(f"{directory}: no {cls.__name__} in this preset; the head is freshly initialized.", stacklevel=3)
    elif load_weights:
        if task_config:
            _load_keras_weights(task, directory / TASK_WEIGHTS)
        else:
            _load_keras_weights(backbone, directory / KERAS_WEIGHTS)
            warnings.warn(
                f"{directory}: no {cls.__name__} in this preset; the head is freshly initialized.", stacklevel=3
            )
    return task


# --- writing -------------------------------------------------------------------


@contextlib.contextmanager
def new_directory(path):
    """A temporary sibling of `path` that becomes `path` on success."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} already exists; choose a new directory (nothing was written).")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    try:
        yield staging
        os.rename(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _spec(obj, config):
    return {"module": type(obj).__module__, "class_name": type(obj).__name__, "config": config}


def _write_tokenizer(tokenizer, directory):
    (directory / VOCABULARY_ASSET).parent.mkdir(parents=True, exist_ok=True)
    (directory / VOCABULARY_ASSET).write_text("".join(f"{t}\n" for t in tokenizer.get_vocabulary()), encoding="utf-8")
    write_json(directory / TOKENIZER_CONFIG, _spec(tokenizer, tokenizer.get_config() | {"vocabulary": None}))


def _write_preprocessor(preprocessor, directory):
    _write_tokenizer(preprocessor.tokenizer, directory)
    write_json(directory / PREPROCESSOR_CONFIG, _spec(preprocessor, preprocessor.get_config() | {"tokenizer": None}))


def _write_backbone(backbone, directory):
    write_json(directory / CONFIG, keras.saving.serialize_keras_object(backbone))
    backbone.save_weights(directory / KERAS_WEIGHTS)


def save_to_preset(obj, preset_dir):
    from distilbert_hub import __version__
    from distilbert_hub.distilbert_backbone import DistilBertBackbone
    from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer
    from distilbert_hub.preprocessor import Preprocessor
    from distilbert_hub.task import Task

    with new_directory(preset_dir) as directory:
        metadata = {"distilbert_hub_version": __version__, "keras_version": keras.__version__}
        if isinstance(obj, DistilBertTokenizer):
            _write_tokenizer(obj, directory)
        elif isinstance(obj, Preprocessor):
            _write_preprocessor(obj, directory)
        elif isinstance(obj, (DistilBertBackbone, Task)):
            backbone = obj if isinstance(obj, DistilBertBackbone) else obj.backbone
            _write_backbone(backbone, directory)
            metadata["parameter_count"] = int(backbone.count_params())
            if isinstance(obj, Task):
                config = obj.get_config() | {"backbone": None, "preprocessor": None}
                write_json(directory / TASK_CONFIG, _spec(obj, config))
                obj.save_weights(directory / TASK_WEIGHTS)
                metadata["task_parameter_count"] = int(obj.count_params())
                if obj.preprocessor is not None:
                    _write_preprocessor(obj.preprocessor, directory)
        else:
            raise TypeError(
                f"save_to_preset takes a tokenizer, preprocessor, backbone or task; got {type(obj).__name__}."
            )
        write_json(directory / METADATA, metadata)


def export_to_transformers(obj, path):
    from distilbert_hub.distilbert_backbone import DistilBertBackbone

    if isinstance(obj, DistilBertBackbone):
        backbone, entries, updates, tokenizer = obj, backbone_weight_map(obj), {}, None
    else:
        backbone, entries, updates = obj.backbone, task_weight_map(obj), obj.hf_config_updates()
        tokenizer = obj.preprocessor.tokenizer if obj.preprocessor is not None else None
    config = hf_config_from_backbone(backbone) | updates | {"dtype": "float32"}
    if tokenizer is not None and tokenizer.vocabulary_size() != backbone.vocabulary_size:
        raise ValueError(
            f"the tokenizer has {tokenizer.vocabulary_size()} tokens but the backbone {backbone.vocabulary_size}."
        )
    weights = export_hf_weights(entries)
    with new_directory(path) as directory:
        write_json(directory / CONFIG, config)
        write_safetensors(directory / "model.safetensors", weights)
        if tokenizer is not None:
            write_hf_tokenizer(tokenizer, directory, backbone.max_sequence_length)
