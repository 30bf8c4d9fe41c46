"""Hugging Face `DistilBertConfig` fields <-> `DistilBertBackbone` arguments."""

from distilbert_hub.convert.hf_checkpoint import CheckpointError
from distilbert_hub.convert.hf_heads import head_of
from distilbert_hub.layers.distilbert_transformer_layer import ACTIVATIONS

HF_TO_BACKBONE = {
    "vocab_size": "vocabulary_size",
    "n_layers": "num_layers",
    "n_heads": "num_heads",
    "dim": "hidden_dim",
    "hidden_dim": "intermediate_dim",
    "dropout": "dropout",
    "max_position_embeddings": "max_sequence_length",
    "attention_dropout": "attention_dropout",
    "activation": "activation",
    "sinusoidal_pos_embds": "sinusoidal_position_embedding",
}
REQUIRED_HF_KEYS = ("vocab_size", "n_layers", "n_heads", "dim", "hidden_dim")
# Upper bounds no real DistilBERT reaches (the largest, multilingual, has a 119547-token vocabulary, 6 layers,
# dim 768, hidden_dim 3072, 512 positions): a config past them is refused before a layer is built, so a
# hostile config.json cannot make the loader allocate gigabytes.
LIMITS = {
    "vocab_size": 1_000_000,
    "n_layers": 48,
    "n_heads": 128,
    "dim": 8192,
    "hidden_dim": 32768,
    "max_position_embeddings": 65536,
    "num_labels": 100_000,
}
# And on the whole: at most this many parameters (4 GiB of float32).
MAX_PARAMETERS = 1_000_000_000


def check_int(value, key, source, low=1, high=None):
    """`value` if it is an int (not a bool, not a float) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CheckpointError(f"{source}: '{key}' is {value!r:.60} ({type(value).__name__}), expected an integer.")
    high = LIMITS.get(key, high) if high is None else high
    if value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise CheckpointError(f"{source}: '{key}' is {value}, outside {bound} (no DistilBERT has that).")
    return value


def check_fraction(value, key, source):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise CheckpointError(f"{source}: '{key}' is {value!r:.60}, expected a number in [0, 1).")
    return float(value)


def check_backbone_sizes(sizes, source, names=None):
    """Refuse sizes (HF key -> value) of the wrong type, past LIMITS, or beyond MAX_PARAMETERS together;
    `names` maps HF keys to the names shown."""
    names = names or {}
    for key in ("vocab_size", "n_layers", "n_heads", "dim", "hidden_dim", "max_position_embeddings"):
        if key in sizes:
            check_int(sizes[key], names.get(key, key), source, high=LIMITS[key])
    dim, heads = sizes.get("dim"), sizes.get("n_heads")
    if dim is not None and heads is not None and dim % heads:
        raise CheckpointError(
            f"{source}: '{names.get('dim', 'dim')}' {dim} is not divisible by "
            f"'{names.get('n_heads', 'n_heads')}' {heads}."
        )
    count = parameter_count(sizes)
    if count > MAX_PARAMETERS:
        raise CheckpointError(
            f"{source}: the config describes {count:,} parameters, more than the {MAX_PARAMETERS:,} "
            "this loader accepts."
        )


def parameter_count(sizes):
    """Parameters of the backbone `sizes` (HF keys) describe, without building it."""
    d, h = sizes.get("dim", 768), sizes.get("hidden_dim", 3072)
    embeddings = (sizes.get("vocab_size", 30522) + sizes.get("max_position_embeddings", 512)) * d + 2 * d
    layer = 4 * (d * d + d) + 2 * d + (d * h + h) + (h * d + d) + 2 * d
    return embeddings + sizes.get("n_layers", 6) * layer


def backbone_kwargs_from_hf_config(hf_config, source="config"):
    """`DistilBertBackbone` keyword arguments from an HF config dict."""
    missing = [key for key in REQUIRED_HF_KEYS if key not in hf_config]
    if missing:
        raise CheckpointError(f"{source}: DistilBERT config lacks required key(s) {missing}.")
    model_type = hf_config.get("model_type", "distilbert")
    if model_type != "distilbert":
        raise CheckpointError(f"{source}: model_type is {model_type!r:.60}, expected 'distilbert'.")
    check_backbone_sizes(hf_config, source)
    for key in ("dropout", "attention_dropout"):
        if key in hf_config:
            check_fraction(hf_config[key], key, source)
    if "sinusoidal_pos_embds" in hf_config and not isinstance(hf_config["sinusoidal_pos_embds"], bool):
        raise CheckpointError(
            f"{source}: 'sinusoidal_pos_embds' is {hf_config['sinusoidal_pos_embds']!r:.60}, expected true or false."
        )
    activation = hf_config.get("activation", "gelu")
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise CheckpointError(f"{source}: activation {activation!r} is not supported; expected one of {ACTIVATIONS}.")
    return {backbone_key: hf_config[hf_key] for hf_key, backbone_key in HF_TO_BACKBONE.items() if hf_key in hf_config}


def hf_config_from_backbone(backbone):
    """An HF `config.json` dict describing `backbone`."""
    return {hf_key: getattr(backbone, key) for hf_key, key in HF_TO_BACKBONE.items()} | {
        "model_type": "distilbert",
        "architectures": ["DistilBertModel"],
        "pad_token_id": 0,
        "initializer_range": 0.02,
        "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2,
    }


def head_kwargs_from_hf_config(cls, hf_config):
    """The task constructor's arguments an HF config fixes (labels, dropout), per `hf_heads.HEADS`."""
    head = head_of(cls)
    kwargs = {}
    if head.labels:  # the number of labels: id2label's, else num_labels
        id2label = hf_config.get("id2label")
        if id2label and not isinstance(id2label, dict):
            raise ValueError(
                f"config.json: 'id2label' is {type(id2label).__name__}, expected an object of id -> label."
            )
        if id2label:
            kwargs["num_classes"] = check_int(len(id2label), "id2label (its length)", "config.json", high=100_000)
        elif hf_config.get("num_labels") is not None:
            kwargs["num_classes"] = check_int(hf_config["num_labels"], "num_labels", "config.json")
        kwargs["id2label"] = {str(key): value for key, value in id2label.items()} if id2label else None
    if head.dropout_key is not None:
        kwargs["dropout"] = hf_config.get(head.dropout_key)
    if head.problem_type:
        kwargs["problem_type"] = hf_config.get("problem_type")
    return {k: v for k, v in kwargs.items() if v is not None}


def hf_config_from_task(task):
    """An HF `config.json` dict describing a task: the backbone's and its head's fields, per `hf_heads.HEADS`."""
    head = head_of(type(task))
    config = hf_config_from_backbone(task.backbone) | {"architectures": [head.architecture]}
    # Our classifier's pre-classifier can be narrower, or add an activation; transformers' cannot.
    activation, width = getattr(task, "activation", None), getattr(task, "hidden_dim", task.backbone.hidden_dim)
    if activation is not None or width != task.backbone.hidden_dim:
        raise ValueError(
            f"{head.architecture} returns logits from a pre-classifier as wide as the "
            f"backbone; this classifier has activation={activation!r}, hidden_dim={width}."
        )
    if head.labels:  # transformers' LABEL_i names where the task has none
        id2label = task.id2label or {str(i): f"LABEL_{i}" for i in range(task.num_classes)}
        config["id2label"] = {str(i): id2label[str(i)] for i in range(task.num_classes)}
        config["label2id"] = {label: int(i) for i, label in config["id2label"].items()}
    if head.dropout_key not in (None, "dropout"):  # "dropout" is the backbone's, written above
        config[head.dropout_key] = task.dropout
    if head.problem_type:
        config["problem_type"] = task.problem_type or (
            "regression" if task.num_classes == 1 else "single_label_classification"
        )
    return config
