"""One mapping from Hugging Face parameter names to Keras variables: all
weights moving between the two (goldens, the converter both ways) go through
`backbone_weight_map` and `assign_hf_weights` / `export_hf_weights`, one place
where a name or a transpose can be wrong. torch `nn.Linear` stores `[out, in]`,
Keras `Dense` `[in, out]`: `transpose=True` entries are transposed both ways.
"""

import contextvars
import operator
from dataclasses import dataclass

import numpy as np

from distilbert_hub.convert.hf_checkpoint import CheckpointError, SafetensorsTensor, to_float32
from distilbert_hub.convert.hf_heads import head_of
from distilbert_hub.layers.initializers import untouched_host_array

# A callable (done, total) told of each assigned weight, e.g. the converter CLI's progress bar.
ASSIGN_PROGRESS = contextvars.ContextVar("assign_progress", default=None)


@dataclass(frozen=True)
class WeightEntry:
    hf_name: str
    variable: object
    transpose: bool = False

    @property
    def hf_shape(self):
        shape = tuple(self.variable.shape)
        return shape[::-1] if self.transpose else shape


def dense_entries(prefix, dense):
    return [WeightEntry(f"{prefix}.weight", dense.kernel, transpose=True), WeightEntry(f"{prefix}.bias", dense.bias)]


def layer_norm_entries(prefix, layer_norm):
    return [WeightEntry(f"{prefix}.weight", layer_norm.gamma), WeightEntry(f"{prefix}.bias", layer_norm.beta)]


def backbone_weight_map(backbone, prefix=""):
    """Entries for every variable of a `DistilBertBackbone`, named as in `transformers.DistilBertModel`
    (with `prefix`, e.g. `"distilbert."`, as in the task models' checkpoints)."""
    embeddings = backbone.embeddings
    entries = [
        WeightEntry(f"{prefix}embeddings.word_embeddings.weight", embeddings.token_embedding),
        WeightEntry(f"{prefix}embeddings.position_embeddings.weight", embeddings.position_embedding),
        *layer_norm_entries(f"{prefix}embeddings.LayerNorm", embeddings.layer_norm),
    ]
    for i, block in enumerate(backbone.transformer_layers):
        hf = f"{prefix}transformer.layer.{i}"
        attention = block.attention
        entries += [
            *dense_entries(f"{hf}.attention.q_lin", attention.query_dense),
            *dense_entries(f"{hf}.attention.k_lin", attention.key_dense),
            *dense_entries(f"{hf}.attention.v_lin", attention.value_dense),
            *dense_entries(f"{hf}.attention.out_lin", attention.output_dense),
            *layer_norm_entries(f"{hf}.sa_layer_norm", block.attention_layer_norm),
            *dense_entries(f"{hf}.ffn.lin1", block.intermediate_dense),
            *dense_entries(f"{hf}.ffn.lin2", block.output_dense),
            *layer_norm_entries(f"{hf}.output_layer_norm", block.output_layer_norm),
        ]
    return entries


def assign_hf_weights(entries, state_dict, source="checkpoint", ignore_unused=()):
    """Assign HF-named arrays to the Keras variables of `entries`, every key and shape checked before any
    variable is written (a bad checkpoint never leaves a half-loaded model). Keys no entry uses raise unless
    they start with a prefix in `ignore_unused`; returns the sorted list of those ignored."""
    names = [entry.hf_name for entry in entries]
    missing = [name for name in names if name not in state_dict]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise CheckpointError(f"{source}: {len(missing)} weight(s) missing: {shown}")
    unused = sorted(set(state_dict) - set(names))
    unexpected = [key for key in unused if not key.startswith(tuple(ignore_unused))]
    if unexpected:
        shown = ", ".join(unexpected[:5]) + (" ..." if len(unexpected) > 5 else "")
        raise CheckpointError(f"{source}: {len(unexpected)} unexpected weight(s): {shown}")

    def value_of(entry):  # a file's tensor as a view of the file: checked, then copied into its variable
        stored = state_dict[entry.hf_name]
        if isinstance(stored, SafetensorsTensor):
            value = stored.mapped()  # already float32
        else:
            value = to_float32(np.asarray(stored), entry.hf_name, source)
        return value.T if entry.transpose else value

    # Two passes: every weight is checked before the first is written. Values are not kept between them:
    # a checkpoint read lazily from disk is never held in memory whole beside the model.
    for entry in entries:
        shape = tuple(np.shape(state_dict[entry.hf_name]))
        if shape != entry.hf_shape:
            raise CheckpointError(
                f"{source}: weight '{entry.hf_name}' has shape {shape}, "
                f"expected {entry.hf_shape} for Keras variable '{entry.variable.path}'."
            )
        if not np.all(np.isfinite(value_of(entry))):
            raise CheckpointError(f"{source}: weight '{entry.hf_name}' holds NaN or infinity.")
    progress = ASSIGN_PROGRESS.get()
    for done, entry in enumerate(entries, start=1):
        entry.variable.assign(backend_tensor(value_of(entry), entry.variable.dtype))
        if progress is not None:
            progress(done, len(entries))
    return unused


def backend_tensor(value, dtype):
    """A float32 numpy array as the backend tensor `Variable.assign` takes in `dtype`, never sharing the
    array's memory with the model (it may be a view of the checkpoint file, or a caller's array). torch gets
    a tensor over the array, which `assign` copies into the variable (Keras' torch `convert_to_tensor` would
    copy it once more first). jax gets a copy of its own in aligned host memory that the array then keeps as
    is: jax may keep a numpy input itself (64-byte-aligned host memory, on CPU), and holds a reference to it
    until the next garbage collection, which would keep the file mapped. tensorflow copies numpy arrays."""
    import keras

    backend = keras.backend.backend()
    if backend == "torch" and value.flags.writeable:  # torch warns on read-only memory
        import torch

        return torch.from_numpy(value)
    if backend == "jax":
        import jax

        owned = untouched_host_array(value.shape, dtype)
        owned[...] = value
        return jax.device_put(owned, may_alias=True)
    return value.astype(dtype, copy=False)


def export_hf_weights(entries):
    """HF-named float arrays (torch layout) for `entries`."""
    import keras

    state = {}
    for entry in entries:
        value = keras.ops.convert_to_numpy(entry.variable)
        state[entry.hf_name] = np.ascontiguousarray(value.T if entry.transpose else value)
    return state


def head_weight_entries(task):
    """Entries of a task's head variables, named as in its `transformers` class (`hf_heads.HEADS`)."""
    entries = []
    for prefix, attribute, kind in head_of(type(task)).weights:
        layer = operator.attrgetter(attribute)(task)
        if kind == "dense":
            entries += dense_entries(prefix, layer)
        elif kind == "layer_norm":
            entries += layer_norm_entries(prefix, layer)
        else:
            entries.append(WeightEntry(prefix, layer))
    return entries


def task_weight_map(task):
    """Entries for a task model: its backbone under `distilbert.`, its head as in its `transformers` class."""
    return backbone_weight_map(task.backbone, prefix="distilbert.") + head_weight_entries(task)
