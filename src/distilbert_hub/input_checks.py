"""Checks on concrete model inputs and labels, shared by every entry point.

jax clamps out-of-range gather indices and tensorflow on GPU returns zeros, a
float id is silently truncated and a padding mask of 2 counts as 1: without
these checks each would be a silent wrong answer. They run on concrete values
(numpy arrays, eager tensors) before they reach the graph: `__call__`,
`predict`, `fit`, `evaluate`, the `*_on_batch` methods and each batch that a
generator or `PyDataset` yields. Values traced inside `jit`/`tf.function`
carry no numbers and are checked by shape only.
"""

import keras
import numpy as np


def concrete_values(x):
    """`x` as a numpy array, or None when it is symbolic or traced."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (list, tuple, int, float, bool, np.generic)):
        return np.asarray(x)
    if keras.backend.is_keras_tensor(x):
        return None
    try:
        return keras.ops.convert_to_numpy(x)
    except Exception:  # a jax tracer or a tf symbolic tensor has no values
        return None


def _static_shape(x):
    """The known dimensions; None for unknown and symbolic ones (export traces
    with a symbolic dim per input, which compare unequal to each other)."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return None
    return tuple(int(d) if isinstance(d, (int, np.integer)) else None for d in shape)


def _first(bad):
    return tuple(int(i) for i in np.argwhere(bad)[0])


def check_integer_array(values, name, model_name):
    if values.dtype.kind not in "iu":
        shown = ""
        if values.dtype.kind == "f" and values.size:
            fractional = values != np.round(values)
            if fractional.any():
                shown = f" (e.g. {values[_first(fractional)].item()!r} at index {_first(fractional)})"
        raise TypeError(
            f"{model_name}: '{name}' must hold integers; got dtype {values.dtype}{shown}. Cast with .astype('int32')."
        )


def check_token_inputs(inputs, vocabulary_size, max_sequence_length, model_name):
    """Validate a `{"token_ids", "padding_mask"}` dict before it reaches the graph."""
    if not isinstance(inputs, dict):
        raise TypeError(f"{model_name} takes a dict with 'token_ids' and 'padding_mask'; got {type(inputs).__name__}.")
    for key in ("token_ids", "padding_mask"):
        if inputs.get(key) is None:
            raise ValueError(f"{model_name} needs an input named '{key}'; got keys {sorted(inputs)}.")
    token_ids, padding_mask = inputs["token_ids"], inputs["padding_mask"]
    ids_shape, mask_shape = _static_shape(token_ids), _static_shape(padding_mask)
    if (
        ids_shape is not None
        and mask_shape is not None
        and (
            len(ids_shape) != len(mask_shape)
            or any(a is not None and b is not None and a != b for a, b in zip(ids_shape, mask_shape))
        )
    ):
        raise ValueError(
            f"{model_name}: 'token_ids' has shape {ids_shape} but 'padding_mask' "
            f"has shape {mask_shape}; they must be equal."
        )
    if ids_shape is not None and len(ids_shape) < 2:
        raise ValueError(f"{model_name}: 'token_ids' must be batched, [batch, length]; got shape {ids_shape}.")
    if ids_shape and ids_shape[-1] is not None and ids_shape[-1] > max_sequence_length:
        raise ValueError(
            f"{model_name}: input sequence length {ids_shape[-1]} exceeds "
            f"max_sequence_length={max_sequence_length}. Truncate the input "
            "(e.g. with a preprocessor's sequence_length)."
        )
    if ids_shape and any(d == 0 for d in ids_shape):
        raise ValueError(f"{model_name}: empty input of shape {ids_shape}; there is nothing to run.")
    values = concrete_values(token_ids)
    if values is not None:
        check_integer_array(values, "token_ids", model_name)
        bad = (values < 0) | (values >= vocabulary_size)
        if bad.any():
            index = _first(bad)
            raise ValueError(
                f"{model_name}: token id {int(values[index])} at index {index} is outside "
                f"[0, vocabulary_size={vocabulary_size}); {int(bad.sum())} id(s) out of range."
            )
    mask = concrete_values(padding_mask)
    if mask is not None:
        if mask.dtype.kind not in "iub":
            raise TypeError(f"{model_name}: 'padding_mask' must hold 0/1 integers or booleans; got dtype {mask.dtype}.")
        bad = (mask != 0) & (mask != 1)
        if bad.any():
            index = _first(bad)
            raise ValueError(
                f"{model_name}: 'padding_mask' holds {int(mask[index])} at index {index}; only 0 and 1 are allowed."
            )
        empty = mask.sum(axis=-1) == 0
        if empty.any():
            raise ValueError(f"{model_name}: row {_first(empty)} of 'padding_mask' has no real token (all zeros).")


def check_mask_positions(inputs, model_name):
    """`mask_positions` are integers on real tokens of their own row."""
    positions = concrete_values(inputs.get("mask_positions"))
    mask = concrete_values(inputs["padding_mask"])
    if positions is None:
        return
    check_integer_array(positions, "mask_positions", model_name)
    if positions.ndim != 2 or (mask is not None and positions.shape[0] != mask.shape[0]):
        raise ValueError(
            f"{model_name}: 'mask_positions' must be [batch, num_positions] with the batch of "
            f"'token_ids'; got shape {positions.shape}."
        )
    length = np.shape(inputs["token_ids"])[-1]
    outside = (positions < 0) | (positions >= length)
    if outside.any():
        raise ValueError(
            f"{model_name}: mask position {int(positions[_first(outside)])} at index "
            f"{_first(outside)} is outside the sequence [0, {length})."
        )
    if mask is not None:
        on_padding = np.take_along_axis(mask, positions, axis=1) == 0
        if on_padding.any():
            row, column = _first(on_padding)
            raise ValueError(
                f"{model_name}: mask position {int(positions[row, column])} of row {row} is a padding "
                "token (padding_mask 0)."
            )


def leading_shape(x, name, rank):
    """The first `rank` dimensions of input `name` of `x` (None if unknown):
    the shape a task's labels must have."""
    values = concrete_values(x.get(name)) if isinstance(x, dict) else None
    return None if values is None else tuple(int(d) for d in values.shape[:rank])


def check_class_labels(y, num_classes, model_name, shape=None):
    """Integer labels in [0, num_classes), of `shape` when it is given (a
    trailing axis of 1 is allowed for one label per example)."""
    if y is None:
        return
    labels = concrete_values(y)
    if labels is None:
        return
    if shape is not None and tuple(labels.shape) not in (tuple(shape), tuple(shape) + (1,)):
        raise ValueError(
            f"{model_name}: labels have shape {tuple(labels.shape)}; expected {tuple(shape)} (one label per "
            + ("example" if len(shape) == 1 else "position")
            + " of the batch)."
        )
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{model_name}: class labels must be integers in [0, {num_classes}); got dtype "
            f"{labels.dtype}"
            + (f" (e.g. {labels.flat[0].item()!r})" if labels.size else "")
            + ". Cast with .astype('int32')."
        )
    valid = (labels >= 0) & (labels < num_classes)
    if not valid.all():
        index = _first(~valid)
        raise ValueError(
            f"{model_name}: label {int(labels[index])} at index {index} is outside [0, num_classes={num_classes})."
            + (
                " For positions without a loss (transformers' -100), pass any valid label with sample_weight 0."
                if int(labels[index]) == -100
                else ""
            )
        )
