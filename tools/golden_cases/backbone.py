"""Backbone cases: tiny `DistilBertModel`s × input shapes, every layer's output."""

import numpy as np

from harness.golden import Golden, GoldenOutput
from tools.golden_cases import register, seed_for
from tools.golden_cases.reference import (
    FLOAT32_HIDDEN_ATOL,
    FLOAT32_REASON,
    deterministic_torch,
    padded_token_ids,
    seeded_state_dict,
)

CONFIGS = {
    "gelu": dict(vocab_size=128, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=24),
    "relu": dict(
        vocab_size=64, dim=24, n_layers=3, n_heads=3, hidden_dim=48, max_position_embeddings=20, activation="relu"
    ),
    "sinusoidal": dict(
        vocab_size=96,
        dim=16,
        n_layers=2,
        n_heads=2,
        hidden_dim=40,
        max_position_embeddings=32,
        sinusoidal_pos_embds=True,
    ),
    "single_head": dict(vocab_size=80, dim=20, n_layers=1, n_heads=1, hidden_dim=80, max_position_embeddings=16),
    "deep": dict(vocab_size=100, dim=48, n_layers=4, n_heads=6, hidden_dim=96, max_position_embeddings=24),
}

# name -> (sequence_length or None for the config's maximum, real lengths per row)
INPUTS = {
    "batch1": (11, [11]),
    "padded": (12, [12, 7, 3]),
    "one_token": (6, [1, 6]),
    "full_length": (None, [None, -5]),
}


# Goldens that see every LayerNorm epsilon: at natural scale an epsilon of
# 1e-5 instead of 1e-12 moves outputs by only ~5e-6. Each draws some
# LayerNorms (and the biases) small, so the LayerNorm after each small one
# sees inputs of variance ~1e-3 (harness.seeded_weights, small_norms); "a"
# makes the self-attention norms visible, "b" the output and embedding ones.
SMALL_NORM_CONFIGS = {
    "small_norms_a": ("gelu", r"embeddings\.LayerNorm|output_layer_norm"),
    "small_norms_b": ("gelu", r"sa_layer_norm"),
}


def tiny_model(config_name):
    from transformers import DistilBertConfig, DistilBertModel

    base, small_norms = SMALL_NORM_CONFIGS.get(config_name, (config_name, None))
    options = dict(CONFIGS[base])
    config = DistilBertConfig(attn_implementation="eager", **options)
    deterministic_torch()
    model = DistilBertModel(config).eval()
    # The sinusoidal table is the reference's own, not a random one: it is what we test.
    keep = ("position_embeddings.weight",) if options.get("sinusoidal_pos_embds") else ()
    weights = seeded_state_dict(model, seed_for(f"backbone_{config_name}"), keep=keep, small_norms=small_norms)
    return model, weights


def hidden_state_outputs(model, token_ids, padding_mask, tolerance_reason, atol=FLOAT32_HIDDEN_ATOL):
    """Every hidden state of `model` (embeddings, then each block) as golden outputs."""
    import torch

    with torch.no_grad():
        result = model(
            input_ids=torch.from_numpy(token_ids).long(),
            attention_mask=torch.from_numpy(padding_mask).long(),
            output_hidden_states=True,
        )
    if len(result.hidden_states) != model.config.n_layers + 1:
        raise RuntimeError(f"expected {model.config.n_layers + 1} hidden states, got {len(result.hidden_states)}")
    return {
        f"hidden_states/{i:02d}": GoldenOutput(
            value=state.numpy().astype(np.float32),
            atol=atol,
            rtol=0.0,
            tolerance_reason=tolerance_reason,
            real_token_mask="padding_mask",
        )
        for i, state in enumerate(result.hidden_states)
    }


def hf_config_dict(config):
    """The config as `config.json` holds it, without the writer's version (that is provenance)."""
    values = config.to_diff_dict() | {"model_type": "distilbert"}
    values.pop("transformers_version", None)
    return values


def build_backbone_case(case, config_name, input_name):
    model, weights = tiny_model(config_name)
    config = model.config
    sequence_length, lengths = INPUTS[input_name]
    sequence_length = sequence_length or config.max_position_embeddings
    lengths = [sequence_length if n is None else (sequence_length + n if n < 0 else n) for n in lengths]
    rng = np.random.default_rng(case.seed)
    token_ids, padding_mask = padded_token_ids(rng, config.vocab_size, lengths, sequence_length)
    outputs = hidden_state_outputs(model, token_ids, padding_mask, FLOAT32_REASON)
    return Golden(
        case_id=case.case_id,
        kind=case.kind,
        provenance={},
        config=hf_config_dict(config),
        inputs={"token_ids": token_ids, "padding_mask": padding_mask},
        outputs=outputs,
        weights=weights,
    )


for _config_name in SMALL_NORM_CONFIGS:
    register(
        f"backbone_{_config_name}_padded",
        "backbone",
        lambda case, c=_config_name: build_backbone_case(case, c, "padded"),
    )
for _config_name in CONFIGS:
    for _input_name in INPUTS:
        register(
            f"backbone_{_config_name}_{_input_name}",
            "backbone",
            lambda case, c=_config_name, i=_input_name: build_backbone_case(case, c, i),
        )
