"""The library's table of task heads (`distilbert_hub.convert.hf_heads`: which
`transformers` class each task equals, which weights are tied), loaded from its
file: the generator runs without Keras, which importing the package would pull
in. That module imports only the standard library."""

import importlib.util
import sys
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "src" / "distilbert_hub" / "convert" / "hf_heads.py"
_spec = importlib.util.spec_from_file_location("_golden_cases_hf_heads", PATH)
hf_heads = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = hf_heads  # dataclasses resolve their module by name
_spec.loader.exec_module(hf_heads)

# The tied weights a seeded state dict draws once (transformers ties them on load).
TIED_WEIGHTS = tuple(hf_heads.TIED_WEIGHTS)


def architecture(task_class_name):
    """The `transformers` class the library's task `task_class_name` equals."""
    return hf_heads.HEADS[task_class_name].architecture
