"""The README's fine-tuning demo runs, and its loss goes down."""

import re

from harness.golden import REPO_ROOT


def test_readme_fine_tuning_demo(monkeypatch, capsys):
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    code = re.search(r"<!-- readme-demo -->\n```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(REPO_ROOT)
    namespace = {}
    exec(compile(code, "README.md demo", "exec"), namespace)
    losses = namespace["history"].history["loss"]
    assert losses[-1] < 0.6 * losses[0], f"loss did not go down: {losses}"
    assert namespace["classifier"].predict(["a wonderful movie", "a boring film"], verbose=0).argmax(-1).tolist() == [
        1,
        0,
    ]
