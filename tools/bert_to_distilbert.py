"""A BERT checkpoint whose token types are all 0 and whose pooler is unused
(all-MiniLM-L6-v2, for one) as the DistilBERT checkpoint that computes the
same hidden states.

BERT adds `token_type_embeddings[0]` to every token when all token types are
0, so that row is folded into the position embeddings; the rest is renaming
(`attention.self.query` -> `attention.q_lin`, `intermediate.dense` ->
`ffn.lin1`, ...). The pooler is dropped. Both use LayerNorm epsilon 1e-12 and
post-LayerNorm blocks, so the maths is the same.

    python tools/bert_to_distilbert.py BERT_DIR OUT_DIR
"""

import json
import shutil
import sys
from pathlib import Path

import numpy as np

TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
LAYER_NAMES = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}


def distilbert_config(bert):
    """The DistilBERT `config.json` of a BERT one; refuses what DistilBERT cannot express."""
    if bert.get("model_type") != "bert":
        raise ValueError(f"model_type is {bert.get('model_type')!r}, not 'bert'.")
    if bert.get("layer_norm_eps", 1e-12) != 1e-12:
        raise ValueError(f"layer_norm_eps is {bert['layer_norm_eps']}; DistilBERT's LayerNorms use 1e-12.")
    if bert.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"position_embedding_type {bert['position_embedding_type']!r}: DistilBERT's are absolute.")
    return {
        "architectures": ["DistilBertModel"],
        "model_type": "distilbert",
        "vocab_size": bert["vocab_size"],
        "dim": bert["hidden_size"],
        "n_layers": bert["num_hidden_layers"],
        "n_heads": bert["num_attention_heads"],
        "hidden_dim": bert["intermediate_size"],
        "max_position_embeddings": bert["max_position_embeddings"],
        "activation": bert.get("hidden_act", "gelu"),
        "pad_token_id": bert.get("pad_token_id", 0),
        "sinusoidal_pos_embds": False,
        "dropout": bert.get("hidden_dropout_prob", 0.1),
        "attention_dropout": bert.get("attention_probs_dropout_prob", 0.1),
        "initializer_range": bert.get("initializer_range", 0.02),
        "dtype": "float32",
    }


def distilbert_weights(state):
    """DistilBertModel weights (`distilbert.` names) from a BertModel state dict (with or without `bert.`)."""
    state = {name.removeprefix("bert."): np.asarray(value, np.float32) for name, value in state.items()}
    out = {
        "distilbert.embeddings.word_embeddings.weight": state["embeddings.word_embeddings.weight"],
        "distilbert.embeddings.position_embeddings.weight": state["embeddings.position_embeddings.weight"]
        + state["embeddings.token_type_embeddings.weight"][0],
        "distilbert.embeddings.LayerNorm.weight": state["embeddings.LayerNorm.weight"],
        "distilbert.embeddings.LayerNorm.bias": state["embeddings.LayerNorm.bias"],
    }
    used = {
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
        "embeddings.position_ids",
    }
    for name, value in state.items():
        if not name.startswith("encoder.layer."):
            continue
        index, rest = name[len("encoder.layer.") :].split(".", 1)
        module, parameter = rest.rsplit(".", 1)
        if module not in LAYER_NAMES:
            raise ValueError(f"'{name}': no DistilBERT counterpart for '{module}'.")
        out[f"distilbert.transformer.layer.{index}.{LAYER_NAMES[module]}.{parameter}"] = value
        used.add(name)
    left = sorted(name for name in state if name not in used and not name.startswith("pooler."))
    if left:
        raise ValueError(f"weights with no DistilBERT counterpart: {left[:5]}.")
    return out


def convert(bert_dir, out_dir):
    """Write the DistilBERT checkpoint of the BERT checkpoint in `bert_dir` to the new directory `out_dir`."""
    from safetensors.numpy import load_file, save_file

    bert_dir, out_dir = Path(bert_dir), Path(out_dir)
    config = distilbert_config(json.loads((bert_dir / "config.json").read_text()))
    weights = distilbert_weights(load_file(bert_dir / "model.safetensors"))
    out_dir.mkdir(parents=True)
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, out_dir / "model.safetensors", {"format": "pt"})
    for name in TOKENIZER_FILES:
        if (bert_dir / name).is_file():
            shutil.copy(bert_dir / name, out_dir / name)
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(convert(sys.argv[1], sys.argv[2]))
