"""Meta-test of the import layers contract (pyproject.toml, `tox -e lint`):
`lint-imports` must pass on the tree as it is and fail, naming the import, on a
copy where a lower layer imports a higher one (at module level, and inside a
function, which is where the old cycles hid). Exits 1 when the contract would
let a cycle through.

    python tools/check_import_layers.py
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (file, line appended, the import lint-imports must name)
UPWARD_IMPORTS = [
    (
        "distilbert_hub/layers/distilbert_attention.py",
        "from distilbert_hub.distilbert_backbone import DistilBertBackbone  # noqa\n",
        "distilbert_hub.layers.distilbert_attention -> distilbert_hub.distilbert_backbone",
    ),
    (
        "distilbert_hub/distilbert_backbone.py",
        "\n\ndef _load(preset):\n    from distilbert_hub.convert.loaders import get_preset_loader\n\n"
        "    return get_preset_loader(preset)\n",
        "distilbert_hub.distilbert_backbone -> distilbert_hub.convert.loaders",
    ),
    (
        "distilbert_hub/task.py",
        "\n\ndef _head(cls):\n    from distilbert_hub.convert import hf_weights\n\n    return hf_weights\n",
        "distilbert_hub.task -> distilbert_hub.convert.hf_weights",
    ),
]


def lint_imports(source_root):
    environment = dict(os.environ, PYTHONPATH=str(source_root))
    command = ["lint-imports", "--no-cache", "--config", str(ROOT / "pyproject.toml")]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)


def main():
    failures = []
    result = lint_imports(ROOT / "src")
    if result.returncode != 0:
        failures.append(f"the tree as it is breaks the contract:\n{result.stdout[-3000:]}")
    for relative, line, expected in UPWARD_IMPORTS:
        with tempfile.TemporaryDirectory() as scratch:
            shutil.copytree(ROOT / "src" / "distilbert_hub", Path(scratch) / "distilbert_hub")
            with open(Path(scratch) / relative, "a", encoding="utf-8") as file:
                file.write(line)
            result = lint_imports(scratch)
        output = " ".join(result.stdout.split())  # lint-imports wraps long lines
        if result.returncode == 0 or expected not in output:
            failures.append(f"an upward import ({expected}) was not reported:\n{result.stdout[-3000:]}")
        else:
            print(f"refused as it should be: {expected}")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
