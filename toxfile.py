"""tox inline plugin: let uv see the torch CPU wheel that this project's
machines ship in /opt/wheels (a missing folder would make uv fail, so it is
added only where it exists). Elsewhere uv takes torch from PyPI as usual."""

import os
from pathlib import Path

MACHINE_WHEELS = Path("/opt/wheels")

if MACHINE_WHEELS.is_dir() and "UV_FIND_LINKS" not in os.environ:
    os.environ["UV_FIND_LINKS"] = str(MACHINE_WHEELS)
