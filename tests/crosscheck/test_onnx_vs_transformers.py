"""The converter's `--to onnx --verify` against live transformers: every
checkpoint that transformers wrote for the goldens' models (each head, bf16,
sharded, pytorch_model.bin) exported to ONNX and run in ONNX Runtime within
1e-4 of transformers on real tokens."""

import re

import pytest

from distilbert_hub.convert.__main__ import main
from harness.golden import REPO_ROOT

CHECKPOINTS = REPO_ROOT / "harness" / "fixtures" / "checkpoints"


@pytest.mark.parametrize("name", sorted(p.name for p in CHECKPOINTS.iterdir() if p.is_dir()))
def test_the_onnx_export_of_every_checkpoint_verifies_against_transformers(name, tmp_path, capsys):
    code = main([str(CHECKPOINTS / name), str(tmp_path / "model.onnx"), "--to", "onnx", "--verify"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "in ONNX Runtime against transformers" in out
    errors = [float(e) for e in re.findall(r"max abs error on real tokens (\S+)", out)]
    assert errors and max(errors) <= 1e-4, out
