"""The weight initializer of the library's layers, and a way to skip it.

`from_preset` overwrites every weight right after building the model, so
drawing 66M+ truncated-normal values first only costs time and memory
(figures: `tox -e bench-load`); inside `skip_weight_initialization()` the
layers start from zeros instead.
"""

import contextlib
import contextvars

import keras

_SKIP = contextvars.ContextVar("skip_weight_initialization", default=False)


def weight_initializer(stddev=0.02):
    """HF's N(0, 0.02) truncated at 2 std, or zeros while skipping."""
    return "zeros" if _SKIP.get() else keras.initializers.TruncatedNormal(stddev=stddev)


@contextlib.contextmanager
def skip_weight_initialization():
    token = _SKIP.set(True)
    try:
        yield
    finally:
        _SKIP.reset(token)
