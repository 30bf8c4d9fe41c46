"""Checks on concrete model inputs, so bad ids fail loudly on every backend.

jax clamps out-of-range gather indices and tensorflow on GPU returns zeros, so
an id outside the vocabulary would otherwise give a silent wrong answer.
Symbolic or traced inputs (inside `jit`/`tf.function`) carry no values and
are checked by shape only.
"""

import keras
import numpy as np


def concrete_values(x):
    """`x` as a numpy array, or None when it is symbolic or traced."""
    if isinstance(x, np.ndarray):
        return x
    if keras.backend.is_keras_tensor(x):
        return None
    try:
        return keras.ops.convert_to_numpy(x)
    except Exception:  # a jax tracer or a tf symbolic tensor has no values
        return None


def _static_shape(x):
    shape = getattr(x, "shape", None)
    return None if shape is None else tuple(shape)


def check_token_inputs(inputs, vocabulary_size, max_sequence_length, model_name):
    """Validate a `{"token_ids", "padding_mask"}` dict before it reaches the graph."""
    if not isinstance(inputs, dict):
        return
    token_ids = inputs.get("token_ids")
    padding_mask = inputs.get("padding_mask")
    if token_ids is None:
        raise ValueError(f"{model_name} needs an input named 'token_ids'; got keys {sorted(inputs)}.")
    ids_shape = _static_shape(token_ids)
    mask_shape = _static_shape(padding_mask) if padding_mask is not None else None
    if ids_shape is not None and mask_shape is not None:
        if len(ids_shape) != len(mask_shape) or any(
            a is not None and b is not None and a != b for a, b in zip(ids_shape, mask_shape)
        ):
            raise ValueError(
                f"{model_name}: 'token_ids' has shape {ids_shape} but 'padding_mask' "
                f"has shape {mask_shape}; they must be equal."
            )
    if ids_shape and ids_shape[-1] is not None and ids_shape[-1] > max_sequence_length:
        raise ValueError(
            f"{model_name}: input sequence length {ids_shape[-1]} exceeds "
            f"max_sequence_length={max_sequence_length}. Truncate the input "
            "(e.g. with a preprocessor's sequence_length)."
        )
    values = concrete_values(token_ids)
    if values is None or values.size == 0:
        return
    bad = (values < 0) | (values >= vocabulary_size)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{model_name}: token id {int(values[index])} at index {index} is outside "
            f"[0, vocabulary_size={vocabulary_size}); {int(bad.sum())} id(s) out of range."
        )
