"""Read a KerasHub DistilBERT preset (as `keras_hub`'s `save_to_preset`
writes it), so KerasHub users can move over.

KerasHub's layer structure differs from ours (a `TransformerEncoder` with
`EinsumDense` projections of shape `[in, heads, head_dim]`), so its
`model.weights.h5` / `task.weights.h5` are read with h5py and translated to
Hugging Face names; they then go through the one name mapping
(`hf_weights`) like any Hugging Face checkpoint. Layout as written by
keras-hub 0.32 with keras 3.15.
"""

import re
from pathlib import Path

import h5py
import numpy as np

from distilbert_hub.convert.hf_checkpoint import CheckpointError

BACKBONE_ARGUMENTS = (
    "vocabulary_size",
    "num_layers",
    "num_heads",
    "hidden_dim",
    "intermediate_dim",
    "dropout",
    "max_sequence_length",
    "dtype",
)
# Our task class name -> (its head's HF names, KerasHub task.weights.h5 groups in the same order)
HEADS = {
    "DistilBertTextClassifier": [("pre_classifier", "layers/dense"), ("classifier", "layers/dense_1")],
    "DistilBertMaskedLM": [
        ("vocab_transform", "layers/masked_lm_head/_intermediate_dense"),
        ("vocab_layer_norm", "layers/masked_lm_head/_intermediate_layer_norm"),
    ],
}


def is_keras_hub_spec(spec):
    return str(spec.get("registered_name") or "").startswith("keras_hub>")


def backbone_config(spec):
    return {k: v for k, v in spec["config"].items() if k in BACKBONE_ARGUMENTS}


class _Reader:
    def __init__(self, path):
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: missing weights file.")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as error:
            raise CheckpointError(f"{self.path}: not a readable HDF5 weights file ({error}).") from None

    def var(self, group, index):
        key = f"{group}/vars/{index}"
        if key not in self.file:
            raise CheckpointError(f"{self.path}: no '{key}' (not a KerasHub DistilBERT preset of this layout).")
        return np.asarray(self.file[key], dtype=np.float32)

    def dense(self, hf_name, group, state, shape=None):
        kernel = self.var(group, 0)
        kernel = kernel.reshape(shape) if shape else kernel
        state[f"{hf_name}.weight"] = np.ascontiguousarray(kernel.T)
        state[f"{hf_name}.bias"] = self.var(group, 1).reshape(-1)

    def layer_norm(self, hf_name, group, state):
        state[f"{hf_name}.weight"] = self.var(group, 0)
        state[f"{hf_name}.bias"] = self.var(group, 1)


def backbone_state(directory, hidden_dim):
    """HF-named float32 weights (DistilBertModel names) from `model.weights.h5`."""
    reader = _Reader(Path(directory) / "model.weights.h5")
    state = {}
    with reader.file:
        state["embeddings.word_embeddings.weight"] = reader.var(
            "layers/token_and_position_embedding/token_embedding", 0
        )
        state["embeddings.position_embeddings.weight"] = reader.var(
            "layers/token_and_position_embedding/position_embedding", 0
        )
        reader.layer_norm("embeddings.LayerNorm", "layers/layer_normalization", state)
        encoders = sorted(
            (name for name in reader.file["layers"] if name.startswith("transformer_encoder")),
            key=lambda name: int(re.sub(r"\D", "", name) or 0),
        )
        square = (hidden_dim, hidden_dim)
        for i, name in enumerate(encoders):
            group, hf = f"layers/{name}", f"transformer.layer.{i}"
            for hf_projection, projection in (
                ("q_lin", "query_dense"),
                ("k_lin", "key_dense"),
                ("v_lin", "value_dense"),
                ("out_lin", "output_dense"),
            ):
                reader.dense(
                    f"{hf}.attention.{hf_projection}",
                    f"{group}/_self_attention_layer/{projection}",
                    state,
                    shape=square,
                )
            reader.layer_norm(f"{hf}.sa_layer_norm", f"{group}/_self_attention_layer_norm", state)
            reader.dense(f"{hf}.ffn.lin1", f"{group}/_feedforward_intermediate_dense", state)
            reader.dense(f"{hf}.ffn.lin2", f"{group}/_feedforward_output_dense", state)
            reader.layer_norm(f"{hf}.output_layer_norm", f"{group}/_feedforward_layer_norm", state)
    return state


def head_state(directory, task_class_name):
    """HF-named head weights from `task.weights.h5`."""
    if task_class_name not in HEADS:
        raise CheckpointError(
            f"{directory}: KerasHub has no {task_class_name}; its DistilBERT tasks are {sorted(HEADS)}."
        )
    reader = _Reader(Path(directory) / "task.weights.h5")
    state = {}
    with reader.file:
        for hf_name, group in HEADS[task_class_name]:
            if hf_name.endswith("layer_norm"):
                reader.layer_norm(hf_name, group, state)
            else:
                reader.dense(hf_name, group, state)
        if task_class_name == "DistilBertMaskedLM":
            state["vocab_projector.bias"] = reader.var("layers/masked_lm_head", 0)
    return state
