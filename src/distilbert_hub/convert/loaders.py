"""One loader per source format, picked from the files as KerasHub's
`get_preset_loader` does: `HuggingFaceLoader` (a `transformers` checkpoint),
`KerasPresetLoader` (a directory `save_to_preset` wrote) and `KerasHubPresetLoader`
(one `keras_hub` wrote). Each reads and validates everything before it assigns a weight.
"""

import contextlib
import inspect
import math
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
)
from distilbert_hub.convert.hf_config import (
    HF_TO_BACKBONE,
    LIMITS,
    backbone_kwargs_from_hf_config,
    check_backbone_sizes,
    check_fraction,
    check_int,
    head_kwargs_from_hf_config,
    parameter_count,
)
from distilbert_hub.convert.hf_heads import BACKBONE_ARCHITECTURE, HEAD_PREFIXES, TASK_NAMES, TIED_WEIGHTS, head_of
from distilbert_hub.convert.hf_tokenizer import merge_options, read_hf_tokenizer
from distilbert_hub.convert.hf_weights import (
    assign_hf_weights,
    backbone_weight_map,
    head_weight_entries,
    task_weight_map,
)
from distilbert_hub.convert.preset import (
    CONFIG,
    KERAS_WEIGHTS,
    PREPROCESSOR_CONFIG,
    TASK_CONFIG,
    TASK_WEIGHTS,
    TOKENIZER_CONFIG,
    VOCABULARY_ASSET,
)
from distilbert_hub.convert.sources import resolve
from distilbert_hub.distilbert_backbone import DistilBertBackbone
from distilbert_hub.distilbert_tokenizer import DistilBertTokenizer, read_vocabulary_lines
from distilbert_hub.layers.initializers import skip_weight_initialization

HF_PREFIX = "distilbert."
# No real head has this many weights (a 30522-label head on dim 768 has 23M).
MAX_HEAD_PARAMETERS = 200_000_000
TOKENIZER_ARGUMENTS = (
    "vocabulary",
    "lowercase",
    "strip_accents",
    "tokenize_chinese_chars",
    "special_tokens_in_strings",
    "sequence_length",
)
# The backbone's size arguments by their HF names (those LIMITS caps).
KERAS_SIZE_NAMES = {hf: ours for hf, ours in HF_TO_BACKBONE.items() if hf in LIMITS}
MAX_POSITIONS = LIMITS["max_position_embeddings"]


def get_preset_loader(preset):
    """The loader for the files `preset` resolves to, by `config.json` (`tokenizer.json` for a tokenizer alone)."""
    directory = resolve(preset)
    if is_checkpoint_file(directory, CONFIG):
        kind, config = preset_format(directory)
        if kind == "hf":
            return HuggingFaceLoader(directory, config)
        if keras_hub_preset.is_keras_hub_spec(config):
            return KerasHubPresetLoader(directory, config)
        return KerasPresetLoader(directory, config)
    if "class_name" in read_optional_json(directory, TOKENIZER_CONFIG, "tokenizer config"):
        return KerasPresetLoader(directory, None)
    return HuggingFaceLoader(directory, None)


def read_optional_json(directory, name, what):
    """The JSON object of the file `name` in `directory`, {} where there is none."""
    return read_json(name, what, directory) if is_checkpoint_file(directory, name) else {}


def preset_format(directory):
    """'keras' or 'hf' for a preset directory, and its config.json."""
    config = read_json(CONFIG, "config.json (a preset's or a checkpoint's)", directory=directory)
    path = Path(directory) / CONFIG
    if "class_name" in config and "config" in config:
        if not isinstance(config["config"], dict) or not isinstance(config["class_name"], str):
            raise CheckpointError(f"{path}: 'class_name' must be a string and 'config' an object.")
        return "keras", config
    if "model_type" in config:
        model_type = config["model_type"]
        if model_type != "distilbert":
            raise CheckpointError(f"{path}: model_type is {model_type!r:.60}, not 'distilbert'.")
        return "hf", config
    raise CheckpointError(
        f"{path}: neither a Keras preset config (class_name/config) nor a Hugging Face one (model_type)."
    )


def hf_architecture(config, directory):
    """The checked `architectures[0]` of an HF config."""
    path = Path(directory) / CONFIG
    architectures = config.get("architectures") or [BACKBONE_ARCHITECTURE]
    if not isinstance(architectures, list) or not isinstance(architectures[0], str):
        raise CheckpointError(f"{path}: 'architectures' is {architectures!r:.80}, expected a list of class names.")
    architecture, known = architectures[0], [BACKBONE_ARCHITECTURE, *TASK_NAMES]
    if architecture not in known:
        raise CheckpointError(
            f"{path}: architectures says {architecture!r}; a DistilBERT checkpoint is one of {known}."
        )
    return architecture


class PresetLoader:
    """A source: `directory` and its `config.json` (None for a tokenizer or preprocessor saved alone)."""

    def __init__(self, directory, config):
        self.directory, self.config = Path(directory), config

    def load_tokenizer(self, cls, **kwargs):  # a Hugging Face checkpoint's tokenizer files
        vocabulary, options, where = read_hf_tokenizer(self.directory)
        # transformers' BertTokenizer / DistilBertTokenizer lowercase unless told otherwise.
        return cls(vocabulary, **({"lowercase": True} | merge_options(options, kwargs, where)))

    def require_model(self):  # refuse, naming the missing config.json, a directory holding only a tokenizer
        if self.config is None:
            preset_format(self.directory)

    def load_preprocessor(self, cls, **kwargs):
        tokenizer = kwargs.pop("tokenizer", None) or self.load_tokenizer(DistilBertTokenizer)
        try:
            return cls(tokenizer, **(self.preprocessor_config(cls) | kwargs))
        except TypeError as error:
            raise CheckpointError(
                f"{self.directory / PREPROCESSOR_CONFIG}: not a {cls.__name__} config ({error})."
            ) from None

    def preprocessor_config(self, cls):
        return {}

    def _task_arguments(self, cls, kwargs):
        """(backbone arguments, task arguments with the default preprocessor)."""
        kwargs = dict(kwargs)
        backbone_kwargs = {"dtype": kwargs.pop("dtype")} if "dtype" in kwargs else {}
        if "preprocessor" not in kwargs:
            tokenizer_files = ("tokenizer.json", "vocab.txt", str(VOCABULARY_ASSET))
            has_tokenizer = any(is_checkpoint_file(self.directory, name) for name in tokenizer_files)
            kwargs["preprocessor"] = self.load_preprocessor(cls.preprocessor_cls) if has_tokenizer else None
        return backbone_kwargs, kwargs


class HuggingFaceLoader(PresetLoader):
    """A `transformers` DistilBERT checkpoint directory; `state` (HF names ->
    arrays) stands in for its weight files where given (the harness's goldens)."""

    def __init__(self, directory, config, state=None):
        super().__init__(directory, config)
        self._state = state

    @classmethod
    def from_state(cls, config, state, source, architecture=None):
        """A checkpoint in memory: an HF config dict (`architecture` as `architectures`) and state dict."""
        config = {"model_type": "distilbert"} | dict(config)
        if architecture is not None:
            config["architectures"] = [architecture]
        return cls(Path(source), config, state)

    def state(self):
        """(backbone weights under DistilBertModel names, head weights), checked against the config's sizes."""
        state = read_state_dict(self.directory) if self._state is None else self._state
        prefixed = any(name.startswith(HF_PREFIX) for name in state)  # a task's checkpoint, or DistilBertModel's
        backbone_state, head_state = {}, {}
        for name, value in state.items():
            if prefixed and name.startswith(HF_PREFIX):
                backbone_state[name[len(HF_PREFIX) :]] = value
            elif not prefixed and name.startswith(("embeddings.", "transformer.")):
                backbone_state[name] = value
            elif name.startswith(HEAD_PREFIXES):
                head_state[name] = value
            else:
                raise CheckpointError(
                    f"{self.directory}: unexpected weight '{name}' (not a DistilBERT backbone or head weight)."
                )
        if not backbone_state:
            raise CheckpointError(f"{self.directory}: no DistilBERT backbone weights (embeddings.*, transformer.*).")
        check_config_against_weights(self.backbone_kwargs(), backbone_state, str(self.directory))
        return backbone_state, head_state

    def load_backbone(self, cls, load_weights=True, **kwargs):
        self.require_model()
        hf_architecture(self.config, self.directory)
        backbone_kwargs = self.backbone_kwargs() | _checked_dtype(kwargs)
        backbone_state = self.state()[0] if load_weights else None
        with initialization(load_weights):
            backbone = cls(**backbone_kwargs)
        if load_weights:
            assign_hf_weights(backbone_weight_map(backbone), backbone_state, source=str(self.directory))
        return backbone

    def backbone_kwargs(self):
        return backbone_kwargs_from_hf_config(self.config, str(self.directory / CONFIG))

    def preprocessor_config(self, cls):
        defaults = _init_arguments(cls)
        if self.config is None or "sequence_length" not in defaults:
            return {}
        # The class defaults (512, 384 for QA) capped by the model's positions.
        length = min(defaults["sequence_length"], self.config.get("max_position_embeddings", 512))
        config = {"sequence_length": length}
        if "stride" in defaults:
            config["stride"] = min(defaults["stride"], length // 3)
        return config

    def load_task(self, cls, load_weights=True, **kwargs):
        self.require_model()
        backbone_kwargs, kwargs = self._task_arguments(cls, kwargs)
        directory = self.directory
        architecture = hf_architecture(self.config, directory)
        head = head_of(cls)
        if load_weights:
            backbone_state, head_state = self.state()
        with initialization(load_weights):
            backbone = self.load_backbone(DistilBertBackbone, load_weights=False, **backbone_kwargs)
        matches = architecture == head.architecture
        head_kwargs = (head_kwargs_from_hf_config(cls, self.config) if matches else {}) | kwargs
        if load_weights and "classifier.weight" in head_state and head_kwargs.get("num_classes") is not None:
            rows = np.shape(head_state["classifier.weight"])[0]
            if rows != head_kwargs["num_classes"] and matches:
                raise CheckpointError(
                    f"{directory}: 'classifier.weight' has {rows} rows, but config.json declares "
                    f"{head_kwargs['num_classes']} labels (checked before building the head)."
                )
        task = make_task(cls, backbone, head_kwargs, directory / CONFIG)
        if not load_weights:
            return task
        entries, head_entries = backbone_weight_map(backbone), head_weight_entries(task)
        if head_entries and matches and {e.hf_name for e in head_entries} <= set(head_state):
            head_state = drop_tied_copies(head_state, backbone_state, directory)
            assign_hf_weights(entries + head_entries, backbone_state | head_state, source=str(directory))
            return task
        assign_hf_weights(entries, backbone_state, source=str(directory))
        if head_entries:  # a task without weights of its own (the embedder) needs only the backbone
            warnings.warn(
                f"{directory}: a {architecture} checkpoint has no {head.architecture} head; "
                f"the {cls.__name__} head is freshly initialized and needs training.",
                stacklevel=3,
            )
        return task


class KerasPresetLoader(PresetLoader):
    """A directory `save_to_preset` wrote."""

    def load_backbone(self, cls, load_weights=True, **kwargs):
        self.require_model()
        kwargs, source = _checked_dtype(kwargs), self.directory / CONFIG
        if self.config["class_name"] != "DistilBertBackbone":
            raise CheckpointError(f"{source}: holds a {self.config['class_name']:.80}, not a DistilBertBackbone.")
        config = self.backbone_config() | kwargs
        # The same types and caps as an HF config's.
        missing = [name for name in KERAS_SIZE_NAMES.values() if name != "max_sequence_length" and name not in config]
        if missing:
            raise CheckpointError(f"{source}: the backbone config lacks {missing}.")
        sizes = {hf: config[ours] for hf, ours in KERAS_SIZE_NAMES.items() if ours in config}
        check_backbone_sizes(sizes, source, names=KERAS_SIZE_NAMES)
        config = _checked_dtype(config, source)
        with initialization(load_weights):
            try:
                backbone = cls.from_config(config)
            except (TypeError, ValueError, KeyError, AttributeError) as error:
                raise CheckpointError(
                    f"{source}: not a DistilBertBackbone config ({type(error).__name__}: {error})."
                ) from None
        if load_weights:
            self._load_backbone_weights(backbone)
        return backbone

    def backbone_config(self):
        return dict(self.config["config"])

    def _load_backbone_weights(self, backbone):
        load_keras_weights(backbone, self.directory, KERAS_WEIGHTS, self.config)

    def load_tokenizer(self, cls, **kwargs):
        keras_config = self.directory / TOKENIZER_CONFIG
        spec = read_optional_json(self.directory, TOKENIZER_CONFIG, "tokenizer config")
        if "class_name" not in spec:  # a preset holding a Hugging Face tokenizer's files
            return super().load_tokenizer(cls, **kwargs)
        config = spec.get("config") or {}
        if not isinstance(config, dict):
            raise CheckpointError(f"{keras_config}: 'config' is {type(config).__name__}, expected an object.")
        config = {k: v for k, v in config.items() if k in TOKENIZER_ARGUMENTS}
        if not isinstance(config.get("vocabulary"), list):  # a list: written inline (tokens with line breaks)
            path = checkpoint_file(self.directory, VOCABULARY_ASSET, "vocabulary asset")
            config["vocabulary"] = read_vocabulary_lines(path)
        for name in ("lowercase", "strip_accents", "tokenize_chinese_chars", "special_tokens_in_strings"):
            if config.get(name) is not None and not isinstance(config[name], bool):
                raise CheckpointError(
                    f"{keras_config}: '{name}' is {config[name]!r:.60}, expected true, false or null."
                )
        if config.get("sequence_length") is not None:
            check_int(config["sequence_length"], "sequence_length", keras_config, high=MAX_POSITIONS)
        config = merge_options(config, kwargs, keras_config)
        try:
            return cls(**config)
        except TypeError as error:
            raise CheckpointError(f"{keras_config}: not a DistilBertTokenizer config ({error}).") from None

    def preprocessor_config(self, cls):
        config_path = self.directory / PREPROCESSOR_CONFIG
        spec = read_optional_json(self.directory, PREPROCESSOR_CONFIG, "preprocessor config")
        if spec.get("class_name") != cls.__name__:
            return {}
        stored = spec.get("config") or {}
        if not isinstance(stored, dict):
            raise CheckpointError(f"{config_path}: 'config' is {type(stored).__name__}, expected an object.")
        arguments = _init_arguments(cls)
        config = {k: v for k, v in stored.items() if k in arguments and k != "tokenizer"}
        for key in ("sequence_length", "stride", "num_choices"):
            if config.get(key) is not None:
                check_int(config[key], key, config_path, high=MAX_POSITIONS)
        return config

    def task_spec(self, cls):
        """(task.json, the constructor arguments it holds for `cls`: empty when it holds another class)."""
        spec = read_optional_json(self.directory, TASK_CONFIG, "task config")
        if spec.get("class_name") != cls.__name__:
            return spec, {}
        if not isinstance(spec.get("config"), dict):
            raise CheckpointError(f"{self.directory / TASK_CONFIG}: 'config' is not an object.")
        arguments = _init_arguments(cls)
        task_config = {
            k: v
            for k, v in spec["config"].items()
            if (k in arguments or k == "name") and k not in ("backbone", "preprocessor")
        }
        return spec, _checked_dtype(task_config, self.directory / TASK_CONFIG)

    def load_task(self, cls, load_weights=True, **kwargs):
        self.require_model()
        backbone_kwargs, kwargs = self._task_arguments(cls, kwargs)
        with initialization(load_weights):
            backbone = self.load_backbone(DistilBertBackbone, load_weights=False, **backbone_kwargs)
        spec, task_config = self.task_spec(cls)
        task = make_task(cls, backbone, task_config | kwargs, self.directory / TASK_CONFIG)
        if load_weights:
            self._load_task_weights(task, spec, task_config)
        return task

    def _load_task_weights(self, task, spec, task_config):
        directory = self.directory
        if not task_config:
            return self._fresh_head(task)
        load_keras_weights(task, directory, TASK_WEIGHTS, self.config, getattr(task, "num_classes", 1) or 1)
        if is_checkpoint_file(directory, KERAS_WEIGHTS):
            model_path = checkpoint_file(directory, KERAS_WEIGHTS, "weights file")
            h5_checks.check_h5_weights(model_path, *weight_bounds(self.config))
            difference = h5_checks.backbone_datasets_differ(model_path, directory / TASK_WEIGHTS)
            if difference:
                raise CheckpointError(
                    f"{directory}: {KERAS_WEIGHTS} and {TASK_WEIGHTS} disagree on the backbone ({difference}); "
                    "a preset holds one backbone."
                )

    def _fresh_head(self, task):
        self._load_backbone_weights(task.backbone)
        warnings.warn(
            f"{self.directory}: no {type(task).__name__} in this preset; the head is freshly initialized.", stacklevel=5
        )


class KerasHubPresetLoader(KerasPresetLoader):
    """A preset `keras_hub` wrote: our files, KerasHub's configs and layers (`keras_hub_preset` reads them)."""

    def backbone_config(self):
        return {k: v for k, v in self.config["config"].items() if k in keras_hub_preset.BACKBONE_ARGUMENTS}

    def _load_backbone_weights(self, backbone):
        entries = backbone_weight_map(backbone)
        state = keras_hub_preset.backbone_state(self.directory, backbone.hidden_dim, entries)
        assign_hf_weights(entries, state, source=str(self.directory / KERAS_WEIGHTS))

    def _load_task_weights(self, task, spec, task_config):
        if not (keras_hub_preset.is_keras_hub_spec(spec) and task_config):
            return self._fresh_head(task)
        backbone = task.backbone
        state = keras_hub_preset.backbone_state(self.directory, backbone.hidden_dim, backbone_weight_map(backbone))
        head_state = keras_hub_preset.head_state(self.directory, type(task).__name__, head_weight_entries(task))
        state = {f"{HF_PREFIX}{k}": v for k, v in state.items()} | head_state
        assign_hf_weights(task_weight_map(task), state, source=str(self.directory))


def drop_tied_copies(head_state, backbone_state, directory):
    """`head_state` without the copies of tied weights, each checked equal to its original."""
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


def initialization(load_weights):
    """Skip the random initialization of weights about to be overwritten."""
    return skip_weight_initialization() if load_weights else contextlib.nullcontext()


def _checked_dtype(kwargs, source="the dtype argument"):
    """`kwargs` with its `dtype` (a name, dict or policy) checked and made a policy."""
    if "dtype" in kwargs:
        kwargs = dict(kwargs, dtype=check_dtype_policy(kwargs["dtype"], source))
    return kwargs


def check_dtype_policy(dtype, source):
    """A dtype policy (name, dict or object) as an object, refused unless its variables and computations are
    floating point (a quantized policy stores float variables too)."""
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
    """The config's sizes against the weights' shapes (from the file's header), before any layer is built."""
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
    layers = [name.split(".")[2] for name in state if name.startswith("transformer.layer.")]
    layers = {int(index) for index in layers if index.isdigit()}
    if layers and max(layers) + 1 != kwargs["num_layers"]:
        raise CheckpointError(
            f"{source}: the weights hold {max(layers) + 1} transformer layers, config.json says n_layers="
            f"{kwargs['num_layers']}."
        )


def weight_bounds(backbone_spec, num_classes=1):
    """(most values one weight of this config holds, most in all: the backbone and room for any head) for HDF5."""
    config = backbone_spec["config"]
    sizes = {hf: config[ours] for hf, ours in KERAS_SIZE_NAMES.items() if config.get(ours) is not None}
    dim = sizes["dim"]
    widest = max(sizes["vocab_size"], sizes.get("max_position_embeddings", 512), sizes["hidden_dim"], dim, num_classes)
    head = 2 * dim * dim + 2 * dim * max(num_classes, 2) + sizes["vocab_size"] + 16 * dim
    return widest * dim, parameter_count(sizes) + head


def load_keras_weights(model, directory, name, backbone_spec, num_classes=1):
    """`model.load_weights` from a preset's HDF5 file, checked first (no links or external data, no more than
    the config's model declared); every weight must then be finite, as for a Hugging Face checkpoint."""
    path = checkpoint_file(directory, name, "weights file")
    h5_checks.check_h5_weights(path, *weight_bounds(backbone_spec, num_classes))
    try:
        model.load_weights(path)
    except Exception as error:
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: weights do not fit {type(model).__name__} ({reason}).") from None
    for variable in model.weights:
        if keras.backend.is_float_dtype(variable.dtype) and not all_finite(variable):
            raise CheckpointError(f"{path}: weight '{variable.path}' holds NaN or infinity.")


def all_finite(variable, chunk_elements=1 << 22):
    """Whether a variable holds no NaN or infinity, checked in the backend a slice of rows at a time (a numpy
    copy, or one `isfinite` over the whole word table, set a preset load's peak memory)."""
    if len(variable.shape) == 0:
        return bool(keras.ops.all(keras.ops.isfinite(variable)))
    rows = max(1, chunk_elements // max(1, math.prod(variable.shape[1:])))
    return all(
        bool(keras.ops.all(keras.ops.isfinite(variable[start : start + rows])))
        for start in range(0, variable.shape[0], rows)
    )


def make_task(cls, backbone, kwargs, source):
    """`cls(backbone, **kwargs)`, with the head's sizes checked first and a missing or wrong argument named."""
    num_classes = kwargs.get("num_classes")
    if num_classes is not None:
        check_int(num_classes, "num_classes", source, high=LIMITS["num_labels"])
        if num_classes * backbone.hidden_dim > MAX_HEAD_PARAMETERS:
            raise CheckpointError(
                f"{source}: num_classes={num_classes} with hidden_dim {backbone.hidden_dim} is a head of "
                f"{num_classes * backbone.hidden_dim:,} weights, more than {MAX_HEAD_PARAMETERS:,}."
            )
    if kwargs.get("hidden_dim") is not None:
        check_int(kwargs["hidden_dim"], "hidden_dim", source, high=LIMITS["dim"])
    if kwargs.get("dropout") is not None:
        check_fraction(kwargs["dropout"], "dropout", source)
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


def _init_arguments(cls):
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()}
