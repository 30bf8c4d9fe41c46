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
import sys
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np

from distilbert_hub.convert import h5_checks, keras_hub_preset
from distilbert_hub.convert.hf_checkpoint import (
    CheckpointError,
    checkpoint_file,
    is_checkpoint_file,
    read_json,
    read_state_dict,
    write_json,
    write_safetensors,
)
from distilbert_hub.convert.hf_config import (
    LIMITS,
    backbone_kwargs_from_hf_config,
    check_backbone_sizes,
    check_fraction,
    check_int,
    hf_config_from_backbone,
    parameter_count,
)
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
    config = read_json(CONFIG, "config.json (a preset's or a checkpoint's)", directory=directory)
    if "class_name" in config and "config" in config:
        if not isinstance(config["config"], dict) or not isinstance(config["class_name"], str):
            raise CheckpointError(f"{Path(directory) / CONFIG}: 'class_name' must be a string and 'config' an object.")
        return "keras", config
    if "model_type" in config:
        model_type = config["model_type"]
        if model_type != "distilbert":
            raise CheckpointError(f"{Path(directory) / CONFIG}: model_type is {model_type!r:.60}, not 'distilbert'.")
        return "hf", config
    raise CheckpointError(
        f"{Path(directory) / CONFIG}: neither a Keras preset config (class_name/config) "
        "nor a Hugging Face one (model_type)."
    )


def hf_architecture(config, directory):
    architectures = config.get("architectures") or ["DistilBertModel"]
    if not isinstance(architectures, list) or not isinstance(architectures[0], str):
        raise CheckpointError(
            f"{Path(directory) / CONFIG}: 'architectures' is {architectures!r:.80}, expected a list of class names."
        )
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


def check_dtype_policy(dtype, source):
    """A dtype policy (name, dict or object) as an object, refused unless its
    variables and computations are floating point (a quantized policy stores
    float variables too)."""
    if dtype is None:
        return None
    try:
        policy = keras.dtype_policies.deserialize(dtype) if isinstance(dtype, dict) else keras.dtype_policies.get(dtype)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise CheckpointError(f"{source}: 'dtype' {dtype!r:.80} is not a Keras dtype policy ({error}).") from None
    for what in ("variable_dtype", "compute_dtype"):
        value = getattr(policy, what)
        if "float" not in str(value):
            raise CheckpointError(
                f"{source}: 'dtype' {policy.name!r} gives {what} {value}; DistilBERT runs in a float type."
            )
    return policy


def check_config_against_weights(kwargs, state, source):
    """The config's sizes against the weight file's shapes (read from its
    header, no data), before any layer is built."""
    dim = kwargs["hidden_dim"]
    expected = {
        "embeddings.word_embeddings.weight": (kwargs["vocabulary_size"], dim),
        "embeddings.position_embeddings.weight": (kwargs.get("max_sequence_length", 512), dim),
        "transformer.layer.0.ffn.lin1.weight": (kwargs["intermediate_dim"], dim),
    }
    for name, shape in expected.items():
        if name in state and tuple(np.shape(state[name])) != shape:
            raise CheckpointError(
                f"{source}: weight '{name}' has shape {tuple(np.shape(state[name]))}, but config.json describes "
                f"{shape}; the config does not fit the weights (checked before building the model)."
            )
    layers = {
        int(name.split(".")[2])
        for name in state
        if name.startswith("transformer.layer.") and name.split(".")[2].isdigit()
    }
    if layers and max(layers) + 1 != kwargs["num_layers"]:
        raise CheckpointError(
            f"{source}: the weights hold {max(layers) + 1} transformer layers, config.json says n_layers="
            f"{kwargs['num_layers']}."
        )


KERAS_SIZE_NAMES = {
    "vocab_size": "vocabulary_size",
    "n_layers": "num_layers",
    "n_heads": "num_heads",
    "dim": "hidden_dim",
    "hidden_dim": "intermediate_dim",
    "max_position_embeddings": "max_sequence_length",
}


def check_keras_backbone_config(config, source):
    """A Keras (ours or KerasHub's) backbone config: the same types and caps as an HF config."""
    missing = [name for name in KERAS_SIZE_NAMES.values() if name != "max_sequence_length" and name not in config]
    if missing:
        raise CheckpointError(f"{source}: the backbone config lacks {missing}.")
    sizes = {hf: config[ours] for hf, ours in KERAS_SIZE_NAMES.items() if ours in config}
    check_backbone_sizes(sizes, source, names=KERAS_SIZE_NAMES)
    return sizes


def _sizes(backbone_spec):
    sizes = {hf: backbone_spec["config"].get(ours) for hf, ours in KERAS_SIZE_NAMES.items()}
    return {k: v for k, v in sizes.items() if v is not None}


def weight_bounds(sizes, num_classes=1):
    """(most values one weight of this config holds, most values in all) for
    HDF5 weight files: the backbone's parameters and room for any head."""
    dim = sizes["dim"]
    widest = max(sizes["vocab_size"], sizes.get("max_position_embeddings", 512), sizes["hidden_dim"], dim, num_classes)
    head = 2 * dim * dim + 2 * dim * max(num_classes, 2) + sizes["vocab_size"] + 16 * dim
    return widest * dim, parameter_count(sizes) + head


def load_backbone(source, load_weights=True, **kwargs):
    from distilbert_hub.distilbert_backbone import DistilBertBackbone

    directory = resolve(source)
    kind, config = preset_format(directory)
    kwargs = _check_dtype_argument(dict(kwargs))
    if "dtype" in kwargs:
        kwargs["dtype"] = check_dtype_policy(kwargs["dtype"], "the dtype argument")
    if kind == "keras":
        with initialization(load_weights):
            backbone = _keras_backbone(directory, config, kwargs)
        if load_weights and keras_hub_preset.is_keras_hub_spec(config):
            state = keras_hub_preset.backbone_state(directory, backbone.hidden_dim, backbone_weight_map(backbone))
            assign_hf_weights(backbone_weight_map(backbone), state, source=str(directory / KERAS_WEIGHTS))
        elif load_weights:
            _load_keras_weights(backbone, directory, KERAS_WEIGHTS, config)
        return backbone
    hf_architecture(config, directory)
    backbone_kwargs = backbone_kwargs_from_hf_config(config, str(directory / CONFIG)) | kwargs
    backbone_state = None
    if load_weights:
        backbone_state, _ = split_state_dict(read_state_dict(directory), directory)
        check_config_against_weights(backbone_kwargs, backbone_state, str(directory))
    with initialization(load_weights):
        backbone = DistilBertBackbone(**backbone_kwargs)
    if load_weights:
        assign_hf_weights(backbone_weight_map(backbone), backbone_state, source=str(directory))
    return backbone


def _keras_backbone(directory, config, kwargs):
    from distilbert_hub.distilbert_backbone import DistilBertBackbone

    source = directory / CONFIG
    if config["class_name"] != "DistilBertBackbone":
        raise CheckpointError(f"{source}: holds a {config['class_name']:.80}, not a DistilBertBackbone.")
    backbone_config = dict(config["config"]) | kwargs
    if keras_hub_preset.is_keras_hub_spec(config):
        backbone_config = keras_hub_preset.backbone_config(config) | kwargs
    check_keras_backbone_config(backbone_config, source)
    if backbone_config.get("dtype") is not None:
        backbone_config["dtype"] = check_dtype_policy(backbone_config["dtype"], source)
    try:
        return DistilBertBackbone.from_config(backbone_config)
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise CheckpointError(f"{source}: not a DistilBertBackbone config ({type(error).__name__}: {error}).") from None


def _load_keras_weights(model, directory, name, backbone_spec, num_classes=1):
    """`model.load_weights` from a preset's HDF5 file, after checking the file
    holds no links or external data and declares no more than the config's
    model; every weight must then be finite, as for a Hugging Face checkpoint."""
    path = checkpoint_file(directory, name, "weights file")
    sizes = _sizes(backbone_spec)
    h5_checks.check_h5_weights(path, *weight_bounds(sizes, num_classes))
    try:
        model.load_weights(path)
    except Exception as error:
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: weights do not fit {type(model).__name__} ({reason}).") from None
    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable)
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise CheckpointError(f"{path}: weight '{variable.path}' holds NaN or infinity.")


def load_tokenizer(source, **kwargs):
    from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer

    directory = resolve(source)
    keras_config = directory / TOKENIZER_CONFIG
    spec = (
        read_json(TOKENIZER_CONFIG, "tokenizer config", directory)
        if is_checkpoint_file(directory, TOKENIZER_CONFIG)
        else {}
    )
    if "class_name" in spec:
        config = spec.get("config") or {}
        if not isinstance(config, dict):
            raise CheckpointError(f"{keras_config}: 'config' is {type(config).__name__}, expected an object.")
        config = dict(config)
        if not isinstance(config.get("vocabulary"), list):  # a list: written inline (tokens with line breaks)
            config["vocabulary"] = read_vocabulary_file(
                checkpoint_file(directory, VOCABULARY_ASSET, "vocabulary asset")
            )
        config = {k: v for k, v in config.items() if k in TOKENIZER_ARGUMENTS}
        for name in ("lowercase", "strip_accents", "tokenize_chinese_chars", "special_tokens_in_strings"):
            if config.get(name) is not None and not isinstance(config[name], bool):
                raise CheckpointError(
                    f"{keras_config}: '{name}' is {config[name]!r:.60}, expected true, false or null."
                )
        if config.get("sequence_length") is not None:
            check_int(
                config["sequence_length"], "sequence_length", keras_config, high=LIMITS["max_position_embeddings"]
            )
        for name, value in kwargs.items():
            if value is not None and name in config and config[name] is not None and config[name] != value:
                raise ValueError(f"{name}={value!r} contradicts {keras_config}, which says {name}={config[name]!r}.")
        try:
            return DistilBertTokenizer(**(config | {k: v for k, v in kwargs.items() if v is not None}))
        except TypeError as error:
            raise CheckpointError(f"{keras_config}: not a DistilBertTokenizer config ({error}).") from None
    vocabulary, options, where = read_hf_tokenizer(directory)
    options = merge_options(options, kwargs, where)
    # transformers' BertTokenizer / DistilBertTokenizer lowercase unless told otherwise.
    options.setdefault("lowercase", True)
    return DistilBertTokenizer(vocabulary, **options)


TOKENIZER_ARGUMENTS = (
    "vocabulary",
    "lowercase",
    "strip_accents",
    "tokenize_chinese_chars",
    "special_tokens_in_strings",
    "sequence_length",
)


def has_tokenizer(directory):
    return any(is_checkpoint_file(directory, name) for name in ("tokenizer.json", "vocab.txt", str(VOCABULARY_ASSET)))


def read_vocabulary_file(path):
    """Tokens of a vocabulary asset, one per line, split on "\\n" only (a
    lone "\\r" belongs to its token, as transformers reads vocab.txt); at
    most MAX_VOCABULARY_BYTES."""
    from distilbert_hub.distilbert_tokenizer import read_vocabulary_lines

    return read_vocabulary_lines(path)


def load_preprocessor(cls, source, **kwargs):
    directory = resolve(source)
    tokenizer = kwargs.pop("tokenizer", None) or load_tokenizer(directory)
    config_path = directory / PREPROCESSOR_CONFIG
    config = {}
    if is_checkpoint_file(directory, PREPROCESSOR_CONFIG):
        spec = read_json(PREPROCESSOR_CONFIG, "preprocessor config", directory)
        if spec.get("class_name") == cls.__name__:
            arguments = _init_arguments(cls)
            stored = spec.get("config") or {}
            if not isinstance(stored, dict):
                raise CheckpointError(f"{config_path}: 'config' is {type(stored).__name__}, expected an object.")
            config = {k: v for k, v in stored.items() if k in arguments and k != "tokenizer"}
            for key in ("sequence_length", "stride", "num_choices"):
                if config.get(key) is not None:
                    check_int(config[key], key, config_path, high=LIMITS["max_position_embeddings"])
    elif is_checkpoint_file(directory, CONFIG):
        kind, model_config = preset_format(directory)
        defaults = _init_arguments(cls)
        if kind == "hf" and "sequence_length" in defaults:
            # The class defaults (512, 384 for QA) capped by the model's positions.
            length = min(defaults["sequence_length"], model_config.get("max_position_embeddings", 512))
            config["sequence_length"] = length
            if "stride" in defaults:
                config["stride"] = min(defaults["stride"], length // 3)
    try:
        return cls(tokenizer, **(config | kwargs))
    except TypeError as error:
        raise CheckpointError(f"{config_path}: not a {cls.__name__} config ({error}).") from None


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
    if load_weights:
        backbone_state, head_state = split_state_dict(read_state_dict(directory), directory)
        check_config_against_weights(
            backbone_kwargs_from_hf_config(config, str(directory / CONFIG)), backbone_state, str(directory)
        )
    with initialization(load_weights):
        backbone = load_backbone(directory, load_weights=False, **backbone_kwargs)
    head_kwargs = cls.head_kwargs_from_hf_config(config) if architecture == cls.hf_architecture else {}
    head_kwargs = head_kwargs | kwargs
    if load_weights and "classifier.weight" in head_state and head_kwargs.get("num_classes") is not None:
        rows = np.shape(head_state["classifier.weight"])[0]
        if rows != head_kwargs["num_classes"] and architecture == cls.hf_architecture:
            raise CheckpointError(
                f"{directory}: 'classifier.weight' has {rows} rows, but config.json declares "
                f"{head_kwargs['num_classes']} labels (checked before building the head)."
            )
    task = make_task(cls, backbone, head_kwargs, directory / CONFIG)
    if not load_weights:
        return task
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


def make_task(cls, backbone, kwargs, source):
    """`cls(backbone, **kwargs)`, with the head's sizes checked first and a
    missing or wrong argument named."""
    num_classes = kwargs.get("num_classes")
    if num_classes is not None:
        check_int(num_classes, "num_classes", source, high=LIMITS["num_labels"])
        if num_classes * backbone.hidden_dim > MAX_HEAD_PARAMETERS:
            raise CheckpointError(
                f"{source}: num_classes={num_classes} with hidden_dim {backbone.hidden_dim} is a head of "
                f"{num_classes * backbone.hidden_dim:,} weights, more than {MAX_HEAD_PARAMETERS:,}."
            )
    for key in ("hidden_dim",):
        if kwargs.get(key) is not None:
            check_int(kwargs[key], key, source, high=LIMITS["dim"])
    for key in ("dropout",):
        if kwargs.get(key) is not None:
            check_fraction(kwargs[key], key, source)
    try:
        return cls(backbone, **kwargs)
    except TypeError as error:
        if "num_classes" in str(error):
            raise CheckpointError(
                f"{source}: {cls.__name__} needs num_classes, and this checkpoint does not say how many "
                "(no id2label or num_labels): pass num_classes=N."
            ) from None
        raise CheckpointError(f"{source}: not a {cls.__name__} config ({error}).") from None
    except CheckpointError:
        raise
    except ValueError as error:  # the constructor's own checks (id2label against num_classes, ...)
        raise CheckpointError(f"{source}: {error}") from None


# No real head has this many weights (a 30522-label head on dim 768 has 23M).
MAX_HEAD_PARAMETERS = 200_000_000


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
    if is_checkpoint_file(directory, TASK_CONFIG):
        spec = read_json(TASK_CONFIG, "task config", directory)
        if spec.get("class_name") == cls.__name__:
            if not isinstance(spec.get("config"), dict):
                raise CheckpointError(f"{directory / TASK_CONFIG}: 'config' is not an object.")
            arguments = _init_arguments(cls)
            task_config = {
                k: v
                for k, v in spec["config"].items()
                if (k in arguments or k == "name") and k not in ("backbone", "preprocessor")
            }
            if "dtype" in task_config and task_config["dtype"] is not None:
                task_config["dtype"] = check_dtype_policy(task_config["dtype"], directory / TASK_CONFIG)
    task = make_task(cls, backbone, task_config | kwargs, directory / TASK_CONFIG)
    backbone_spec = read_json(CONFIG, "config.json", directory)
    if load_weights and keras_hub_preset.is_keras_hub_spec(spec) and spec.get("class_name") == cls.__name__:
        entries = task_weight_map(task)
        state = keras_hub_preset.backbone_state(directory, backbone.hidden_dim, backbone_weight_map(backbone))
        state = {f"{HF_PREFIX}{k}": v for k, v in state.items()} | keras_hub_preset.head_state(
            directory, cls.__name__, task.head_weight_entries()
        )
        assign_hf_weights(entries, state, source=str(directory))
    elif load_weights and keras_hub_preset.is_keras_hub_spec(backbone_spec):
        assign_hf_weights(
            backbone_weight_map(backbone),
            keras_hub_preset.backbone_state(directory, backbone.hidden_dim, backbone_weight_map(backbone)),
            source=str(directory / KERAS_WEIGHTS),
        )
        warnings.warn(f"{directory}: no {cls.__name__} in this preset; the head is freshly initialized.", stacklevel=3)
    elif load_weights:
        num_classes = getattr(task, "num_classes", 1) or 1
        if task_config:
            _load_keras_weights(task, directory, TASK_WEIGHTS, backbone_spec, num_classes)
            if is_checkpoint_file(directory, KERAS_WEIGHTS):
                model_path = checkpoint_file(directory, KERAS_WEIGHTS, "weights file")
                h5_checks.check_h5_weights(model_path, *weight_bounds(_sizes(backbone_spec)))
                difference = h5_checks.backbone_datasets_differ(model_path, directory / TASK_WEIGHTS)
                if difference:
                    raise CheckpointError(
                        f"{directory}: {KERAS_WEIGHTS} and {TASK_WEIGHTS} disagree on the backbone ({difference}); "
                        "a preset holds one backbone."
                    )
        else:
            _load_keras_weights(backbone, directory, KERAS_WEIGHTS, backbone_spec)
            warnings.warn(
                f"{directory}: no {cls.__name__} in this preset; the head is freshly initialized.", stacklevel=3
            )
    return task


# --- writing -------------------------------------------------------------------


STAGING_MARK = ".partial-"


def _check_output_path(path):
    text = os.fspath(path)
    if "\x00" in text:
        raise CheckpointError(f"{text!r}: an output path with a NUL byte.")
    if any(len(part.encode("utf-8", "surrogateescape")) > 255 - 40 for part in Path(text).parts):
        raise CheckpointError(f"{text}: a path component too long for the file system (with the staging suffix).")
    for parent in Path(text).absolute().parents:
        if parent.exists() and not parent.is_dir():
            raise CheckpointError(f"{text}: cannot write there: {parent} is a file, not a directory.")


def _remove_stale_staging(path):
    """Remove `.NAME.partial-PID-*` siblings left by a writer that no longer runs (killed mid-write)."""
    prefix = f".{path.name}{STAGING_MARK}"
    for candidate in path.parent.glob(f"{glob_escape(prefix)}*"):
        pid = candidate.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def glob_escape(text):
    import glob

    return glob.escape(text)


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def _rename_no_replace(source, target):
    """Rename `source` to `target`, refusing (FileExistsError) a target that
    appeared meanwhile, atomically where Linux' renameat2 is available."""
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        at_fdcwd, rename_noreplace = -100, 1
        if renameat2(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), rename_noreplace) == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(f"{target} appeared while it was being written; nothing was written to it.")
        if code not in (errno.EINVAL, errno.ENOSYS):  # e.g. a file system without RENAME_NOREPLACE
            raise OSError(code, os.strerror(code), os.fspath(target))
    if os.path.lexists(target):
        raise FileExistsError(f"{target} appeared while it was being written; nothing was written to it.")
    os.rename(source, target)


@contextlib.contextmanager
def no_tensorflow_probe():
    """Keras' serialize_keras_object (behind every get_config, through the
    dtype policy) imports tensorflow whenever it is installed, to test for a
    tf.TensorShape; tensorflow beside jax, or beside transformers' torch, in
    one process aborts it. Off the tensorflow backend, and while tensorflow is
    not imported, no object can be a tf.TensorShape: Keras' lazy module is
    told tensorflow is unavailable for the duration of a save, then reset."""
    from keras.src.utils import module_utils

    lazy = getattr(module_utils, "tensorflow", None)
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules or not hasattr(lazy, "_available"):
        yield
        return
    saved = lazy._available
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = saved


@contextlib.contextmanager
def new_directory(path):
    """A temporary sibling of `path` (`.NAME.partial-PID-*`, with the umask's
    permissions) that becomes `path` on success; an existing target, or one
    that appears meanwhile, is refused. Staging folders of a killed writer are
    removed by the next write to the same target."""
    _check_output_path(path)
    path = Path(path)
    if os.path.lexists(path):
        raise FileExistsError(f"{path} already exists; choose a new directory (nothing was written).")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(path)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}{STAGING_MARK}{os.getpid()}-", dir=path.parent))
    except OSError as error:
        raise CheckpointError(f"{path}: cannot create the output directory ({error.strerror or error}).") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)  # mkdtemp makes 0700
    try:
        yield staging
        _rename_no_replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _spec(obj, config):
    return {"module": type(obj).__module__, "class_name": type(obj).__name__, "config": config}


def _write_tokenizer(tokenizer, directory):
    from distilbert_hub.distilbert_tokenizer import survives_vocabulary_file

    tokens = tokenizer.get_vocabulary()
    if all(survives_vocabulary_file(token) for token in tokens):
        (directory / VOCABULARY_ASSET).parent.mkdir(parents=True, exist_ok=True)
        (directory / VOCABULARY_ASSET).write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
        write_json(directory / TOKENIZER_CONFIG, _spec(tokenizer, tokenizer.get_config() | {"vocabulary": None}))
    else:  # a token with a line break or trailing space cannot be a line of vocabulary.txt: keep the list
        write_json(directory / TOKENIZER_CONFIG, _spec(tokenizer, tokenizer.get_config()))


def _write_preprocessor(preprocessor, directory):
    _write_tokenizer(preprocessor.tokenizer, directory)
    write_json(directory / PREPROCESSOR_CONFIG, _spec(preprocessor, preprocessor.get_config() | {"tokenizer": None}))


def _write_backbone(backbone, directory):
    spec = keras.saving.serialize_keras_object(backbone)
    write_json(directory / CONFIG, spec)
    backbone.save_weights(directory / KERAS_WEIGHTS)


def save_to_preset(obj, preset_dir):
    from distilbert_hub import __version__
    from distilbert_hub.distilbert_backbone import DistilBertBackbone
    from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer
    from distilbert_hub.preprocessor import Preprocessor
    from distilbert_hub.task import Task

    with no_tensorflow_probe(), new_directory(preset_dir) as directory:
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
