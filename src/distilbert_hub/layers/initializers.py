"""The weight initializer of the library's layers, and a way to skip it.

`from_preset` overwrites every weight right after building the model, so
drawing 66M+ truncated-normal values first only costs time and memory
(figures: `tox -e bench-load`); inside `skip_weight_initialization()` the
layers' weights start as `Unset` placeholders in untouched memory instead,
which the checkpoint's values then fill in one pass.
"""

import contextlib
import contextvars
import math

import keras
import numpy as np

_SKIP = contextvars.ContextVar("skip_weight_initialization", default=False)


@keras.saving.register_keras_serializable(package="distilbert_hub")
class Unset(keras.initializers.TruncatedNormal):
    """While skipping, placeholder values for weights about to be overwritten, in memory never touched, so a
    load's peak is the model plus one tensor in flight (a loader that left one would leave garbage:
    `tests/test_checkpoints.py` fills them with NaN to prove none is left). torch: `torch.empty`; jax: an
    array aliasing untouched host memory (`device_put(may_alias=True)` aliases 64-byte-aligned numpy memory
    on CPU); tensorflow: `Empty`. Outside `skip_weight_initialization()` (a layer rebuilt from its config, a
    clone) it draws the truncated normal it stands for."""

    def __call__(self, shape, dtype=None):
        if not _SKIP.get():
            return super().__call__(shape, dtype=dtype)
        dtype = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        backend = keras.backend.backend()
        if backend == "torch":
            import torch
            from keras.src.backend.torch.core import get_device, to_torch_dtype

            return torch.empty(shape, dtype=to_torch_dtype(dtype), device=get_device())
        if backend == "jax" and keras.distribution.distribution() is None:
            import jax

            if jax.default_backend() == "cpu":
                return jax.device_put(untouched_host_array(shape, dtype), may_alias=True)
        if backend == "tensorflow":
            import tensorflow as tf

            return tf.raw_ops.Empty(shape=shape, dtype=dtype, init=False)
        return keras.ops.zeros(shape, dtype=dtype)


def untouched_host_array(shape, dtype, alignment=64):
    """An uninitialized numpy array at a 64-byte boundary (the pages stay unmapped until written)."""
    size = math.prod(shape) * np.dtype(dtype).itemsize
    raw = np.empty(size + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start : start + size].view(dtype).reshape(shape)


def weight_initializer(stddev=0.02):
    """HF's N(0, 0.02) truncated at 2 std (`Unset` while skipping)."""
    return Unset(stddev=stddev) if _SKIP.get() else keras.initializers.TruncatedNormal(stddev=stddev)


@contextlib.contextmanager
def skip_weight_initialization():
    token = _SKIP.set(True)
    try:
        yield
    finally:
        _SKIP.reset(token)
