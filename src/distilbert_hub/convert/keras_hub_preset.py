"""Read a KerasHub DistilBERT preset (as keras-hub 0.32 with keras 3.15 writes it), so KerasHub users
can move over. Its layers differ from ours (`EinsumDense` projections of shape `[in, heads, head_dim]`),
so its weight files are read with h5py and translated to Hugging Face names for `hf_weights`.
"""

import re

import numpy as np

from distilbert_hub.convert import h5_checks
from distilbert_hub.convert.hf_checkpoint import CheckpointError, checkpoint_file

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
# Our attention projections' HF names -> KerasHub's.
PROJECTIONS = {"q_lin": "query_dense", "k_lin": "key_dense", "v_lin": "value_dense", "out_lin": "output_dense"}


def is_keras_hub_spec(spec):
    return str(spec.get("registered_name") or "").startswith("keras_hub>")


class _Reader:
    """Reads a KerasHub weights file as Keras' loader would (no links, no external storage) into `state`
    under HF names, each dataset's size checked against its weight map entry's before it is read."""

    def __init__(self, directory, name, entries):
        self.path = checkpoint_file(directory, name, "weights file")
        self.expected = {entry.hf_name: int(np.prod(entry.hf_shape)) for entry in entries}
        self.file = h5_checks.open_h5(self.path)
        self.state = {}

    def var(self, group, index, hf_name):
        key = f"{group}/vars/{index}"
        parent = self.file
        for part in key.split("/"):
            if part not in parent:
                raise CheckpointError(f"{self.path}: no '{key}' (not a KerasHub DistilBERT preset of this layout).")
            h5_checks.check_link(self.path, parent, part, key)
            parent = parent[part]
        if not hasattr(parent, "dtype"):
            raise CheckpointError(f"{self.path}: '{key}' is a group, expected a weight.")
        h5_checks.check_dataset(self.path, key, parent, expected_size=self.expected.get(hf_name))
        return np.asarray(parent, dtype=np.float32)

    def weight(self, hf_name, group):
        self.state[hf_name] = self.var(group, 0, hf_name)

    def dense(self, hf_name, group, shape=None):
        kernel = self.var(group, 0, f"{hf_name}.weight")
        kernel = kernel.reshape(shape) if shape else kernel
        self.state[f"{hf_name}.weight"] = np.ascontiguousarray(kernel.T)
        self.state[f"{hf_name}.bias"] = self.var(group, 1, f"{hf_name}.bias").reshape(-1)

    def layer_norm(self, hf_name, group):
        self.state[f"{hf_name}.weight"] = self.var(group, 0, f"{hf_name}.weight")
        self.state[f"{hf_name}.bias"] = self.var(group, 1, f"{hf_name}.bias")


def backbone_state(directory, hidden_dim, entries):
    """DistilBertModel-named float32 weights from `model.weights.h5`, sized as `entries` (the weight map) say."""
    reader = _Reader(directory, "model.weights.h5", entries)
    with reader.file:
        embedding = "layers/token_and_position_embedding"
        reader.weight("embeddings.word_embeddings.weight", f"{embedding}/token_embedding")
        reader.weight("embeddings.position_embeddings.weight", f"{embedding}/position_embedding")
        reader.layer_norm("embeddings.LayerNorm", "layers/layer_normalization")
        encoders = sorted(
            (name for name in reader.file.get("layers", {}) if name.startswith("transformer_encoder")),
            key=lambda name: int(re.sub(r"\D", "", name) or 0),
        )
        layers = {e.hf_name.split(".")[2] for e in entries if e.hf_name.startswith("transformer.layer.")}
        if len(encoders) != len(layers):
            raise CheckpointError(
                f"{reader.path}: holds {len(encoders)} transformer encoders, the config describes {len(layers)}."
            )
        for i, name in enumerate(encoders):
            group, hf = f"layers/{name}", f"transformer.layer.{i}"
            for hf_name, keras_name in PROJECTIONS.items():
                attention = f"{group}/_self_attention_layer/{keras_name}"
                reader.dense(f"{hf}.attention.{hf_name}", attention, shape=(hidden_dim, hidden_dim))
            reader.layer_norm(f"{hf}.sa_layer_norm", f"{group}/_self_attention_layer_norm")
            reader.dense(f"{hf}.ffn.lin1", f"{group}/_feedforward_intermediate_dense")
            reader.dense(f"{hf}.ffn.lin2", f"{group}/_feedforward_output_dense")
            reader.layer_norm(f"{hf}.output_layer_norm", f"{group}/_feedforward_layer_norm")
    return reader.state


def head_state(directory, task_class_name, entries):
    """HF-named head weights from `task.weights.h5`."""
    if task_class_name not in HEADS:
        raise CheckpointError(
            f"{directory}: KerasHub has no {task_class_name}; its DistilBERT tasks are {sorted(HEADS)}."
        )
    reader = _Reader(directory, "task.weights.h5", entries)
    with reader.file:
        for hf_name, group in HEADS[task_class_name]:
            if hf_name.endswith("layer_norm"):
                reader.layer_norm(hf_name, group)
            else:
                reader.dense(hf_name, group)
        if task_class_name == "DistilBertMaskedLM":
            reader.weight("vocab_projector.bias", "layers/masked_lm_head")
    return reader.state
