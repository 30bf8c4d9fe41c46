"""The parity gate fails when it would check nothing or cannot trust what it
checks: no backend, no case, a manifest that differs from the registry, an
unknown file among the goldens, a malformed manifest."""

import json
import shutil
import subprocess
import sys

import pytest

from harness.golden import (
    DEFAULT_GOLDENS_DIR,
    MANIFEST_NAME,
    REPO_ROOT,
    GoldenError,
    read_manifest,
    verify_goldens_directory,
)
from tools.golden_cases import load_all


@pytest.fixture
def goldens_copy(tmp_path):
    target = tmp_path / "goldens"
    shutil.copytree(DEFAULT_GOLDENS_DIR, target)
    return target


def edit_manifest(directory, change):
    path = directory / MANIFEST_NAME
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def report(*args):
    return subprocess.run(
        [sys.executable, "-m", "harness", "report", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_committed_goldens_are_exactly_the_registry():
    assert verify_goldens_directory(registered=set(load_all())) == []


def test_no_backend_fails():
    run = report("--backend", ",")
    assert run.returncode != 0 and "no backend given" in run.stderr


def test_a_manifest_without_cases_fails(goldens_copy):
    edit_manifest(goldens_copy, lambda m: m.update(cases={}))
    with pytest.raises(GoldenError, match="lists no cases"):
        read_manifest(goldens_copy)
    run = report("--goldens", str(goldens_copy), "--backend", "torch")
    assert run.returncode == 1 and "lists no cases" in run.stderr and "Traceback" not in run.stderr


def test_a_case_deleted_from_the_manifest_fails(goldens_copy):
    edit_manifest(goldens_copy, lambda m: m["cases"].pop("backbone_gelu_batch1"))
    problems = verify_goldens_directory(goldens_copy, registered=set(load_all()))
    assert any("backbone_gelu_batch1" in p and "missing from MANIFEST.json" in p for p in problems), problems
    assert any("backbone_gelu_batch1.h5: not listed" in p for p in problems), problems


def test_a_case_no_longer_registered_fails(goldens_copy):
    problems = verify_goldens_directory(goldens_copy, registered=set(load_all()) - {"tokenizer_cased"})
    assert problems == ["case 'tokenizer_cased' is in MANIFEST.json but not registered in tools/golden_cases"]


def test_an_unknown_file_among_the_goldens_fails(goldens_copy):
    shutil.copy(goldens_copy / "backbone_gelu_batch1.h5", goldens_copy / "sneaky.h5")
    problems = verify_goldens_directory(goldens_copy)
    assert len(problems) == 1 and "sneaky.h5: not listed in MANIFEST.json" in problems[0]
    run = report("--goldens", str(goldens_copy), "--backend", "torch")
    assert run.returncode == 1 and "sneaky.h5" in run.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "schema_version 'list'"),
        ('{"schema_version": 1, "cases": {"x": {}}}', "lacks file, kind or digest"),
    ],
)
def test_a_malformed_manifest_fails_with_a_message(goldens_copy, text, message):
    (goldens_copy / MANIFEST_NAME).write_text(text)
    with pytest.raises(GoldenError, match=message):
        read_manifest(goldens_copy)
    run = report("--goldens", str(goldens_copy), "--backend", "torch")
    assert run.returncode == 1 and message in run.stderr and "Traceback" not in run.stderr
