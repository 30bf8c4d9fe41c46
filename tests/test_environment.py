"""Each tox env installs only its own backend (TensorFlow never on jax or torch)."""

import importlib.util
import os

import keras


def test_keras_runs_the_requested_backend():
    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


def test_only_the_envs_own_backend_is_installed():
    backend = keras.backend.backend()
    if backend in ("jax", "torch"):
        assert importlib.util.find_spec("tensorflow") is None, f"tensorflow is installed in the {backend} env"
    else:
        # transformers with torch aborts the process beside tensorflow (LLVM clash).
        assert importlib.util.find_spec("transformers") is None, "transformers is installed in the tensorflow env"


def test_library_import_loads_no_other_framework():
    import subprocess
    import sys

    backend = keras.backend.backend()
    code = (
        "import sys, distilbert_hub; "
        "print(','.join(m for m in ('transformers', 'tensorflow', 'torch') if m in sys.modules))"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(filter(None, child.stdout.strip().split(",")))
    assert loaded <= {backend}, f"importing distilbert_hub on {backend} loaded {sorted(loaded)}"
