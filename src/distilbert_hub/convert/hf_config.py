"""Hugging Face `DistilBertConfig` fields <-> `DistilBertBackbone` arguments."""

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


def backbone_kwargs_from_hf_config(hf_config, source="config"):
    """`DistilBertBackbone` keyword arguments from an HF config dict."""
    missing = [key for key in REQUIRED_HF_KEYS if key not in hf_config]
    if missing:
        raise ValueError(f"{source}: DistilBERT config lacks required key(s) {missing}.")
    model_type = hf_config.get("model_type", "distilbert")
    if model_type != "distilbert":
        raise ValueError(f"{source}: model_type is {model_type!r}, expected 'distilbert'.")
    activation = hf_config.get("activation", "gelu")
    if activation not in ACTIVATIONS:
        raise ValueError(f"{source}: activation {activation!r} is not supported; expected one of {ACTIVATIONS}.")
    return {backbone_key: hf_config[hf_key] for hf_key, backbone_key in HF_TO_BACKBONE.items() if hf_key in hf_config}


def hf_config_from_backbone(backbone):
    """An HF `config.json` dict describing `backbone`."""
    config = {hf_key: getattr(backbone, key) for hf_key, key in HF_TO_BACKBONE.items()}
    config.update(
        {
            "model_type": "distilbert",
            "architectures": ["DistilBertModel"],
            "pad_token_id": 0,
            "initializer_range": 0.02,
            "qa_dropout": 0.1,
            "seq_classif_dropout": 0.2,
        }
    )
    return config
