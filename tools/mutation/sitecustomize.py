"""Imported at start-up by every Python process of `tox -e mutation` (it is on
PYTHONPATH there): mutmut trampolines that Keras can inspect, and the mutated
library in the subprocesses that tests start.

mutmut wraps every mutated function in a `(*args, **kwargs)` trampoline with
`functools.wraps`. `inspect.signature` follows `__wrapped__`, but Keras reads
constructor arguments with `inspect.getfullargspec`, which does not, so every
Layer's `__init__` would look argument-less and Keras fails before any test
runs. Setting `__signature__` on a constructor's trampoline restores the real
one for both. Only constructors: Keras re-wraps `build` with `functools.wraps`,
which would copy an unbound `__signature__` (with `self`) onto a bound method.

Tests that run `python -m distilbert_hub...` in a subprocess import the library
through PYTHONPATH, and mutmut only puts `mutants/src` on its own `sys.path`.
"""

import functools
import inspect
import os
from pathlib import Path

import mutmut.mutation.trampoline as trampoline

_wrap_in_trampoline = trampoline.wrap_in_trampoline


@functools.wraps(_wrap_in_trampoline)
def _wrap_keeping_signature(*args, **kwargs):
    decorate = _wrap_in_trampoline(*args, **kwargs)

    def decorate_keeping_signature(function):
        wrapped = decorate(function)
        if function.__name__.endswith("__init__"):
            wrapped.__signature__ = inspect.signature(function)
        return wrapped

    return decorate_keeping_signature


trampoline.wrap_in_trampoline = _wrap_keeping_signature

_mutated_sources = Path(__file__).resolve().parents[2] / "mutants" / "src"
os.environ["PYTHONPATH"] = os.pathsep.join([os.environ["PYTHONPATH"], str(_mutated_sources)])
