"""tox inline plugin: where torch comes from.

- This project's machines ship the torch 2.13.0 CPU wheel in /opt/wheels and
  reach only PyPI: uv is pointed at that folder (UV_FIND_LINKS).
- Anywhere else, unless the caller chose (UV_TORCH_BACKEND, UV_INDEX_URL, ...),
  uv takes torch from the PyTorch CPU index (UV_TORCH_BACKEND=cpu), so an
  ordinary machine gets a CPU build instead of a 3 GB CUDA download. The GPU
  envs (`*-gpu`) ask for CUDA wheels by name and are not affected.
"""

import os
from pathlib import Path

MACHINE_WHEELS = Path("/opt/wheels")

if MACHINE_WHEELS.is_dir():
    os.environ.setdefault("UV_FIND_LINKS", str(MACHINE_WHEELS))
elif not any(key in os.environ for key in ("UV_TORCH_BACKEND", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL")):
    os.environ["UV_TORCH_BACKEND"] = "cpu"
