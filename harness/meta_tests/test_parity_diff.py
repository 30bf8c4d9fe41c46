"""`python -m harness diff` flags a change that made a case worse, even
inside tolerance, and is silent on an unchanged one."""

import json
import subprocess
import sys

import numpy as np

from harness.golden import REPO_ROOT, load_case
from harness.runner import compare_outputs, run_case

CASE = "backbone_gelu_padded"


def parity_json(outputs, golden, backend="torch"):
    comparisons = compare_outputs(golden, outputs, backend=backend)
    return {
        backend: {
            "cases": {
                golden.case_id: {
                    "kind": golden.kind,
                    "outputs": {
                        c.output: {"max_abs_error": c.max_abs_error, "atol": c.atol, "rtol": c.rtol, "passed": c.passed}
                        for c in comparisons
                    },
                }
            }
        }
    }


def run_diff(tmp_path, base, head, *flags):
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    return subprocess.run(
        [sys.executable, "-m", "harness", "diff", str(tmp_path / "base.json"), str(tmp_path / "head.json"), *flags],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )


def test_a_worse_model_within_tolerance_is_flagged(tmp_path):
    golden = load_case(CASE)
    outputs = run_case(golden)
    rng = np.random.default_rng(0)
    # 6e-6 of noise on the last layer: inside the 1e-5 tolerance, past its half.
    worse = dict(outputs)
    last = max(worse)
    worse[last] = outputs[last] + rng.uniform(-6e-6, 6e-6, outputs[last].shape).astype(np.float32)
    base, head = parity_json(outputs, golden), parity_json(worse, golden)
    assert all(o["passed"] for o in head["torch"]["cases"][CASE]["outputs"].values())
    run = run_diff(tmp_path, base, head, "--fail-on-regression")
    assert run.returncode == 1, run.stdout
    assert f"| {CASE} | torch |" in run.stdout and "passed half its tolerance" in run.stdout


def test_an_unchanged_model_is_not_flagged(tmp_path):
    golden = load_case(CASE)
    report = parity_json(run_case(golden), golden)
    run = run_diff(tmp_path, report, report, "--fail-on-regression")
    assert run.returncode == 0, run.stdout
    assert "0 to look at" in run.stdout and "No error grew" in run.stdout


def test_removed_and_added_cases_are_named(tmp_path):
    golden = load_case(CASE)
    report = parity_json(run_case(golden), golden)
    other = json.loads(json.dumps(report).replace(CASE, "backbone_renamed_case"))
    run = run_diff(tmp_path, report, other, "--fail-on-regression")
    assert run.returncode == 1
    assert f"| {CASE} | torch |" in run.stdout and "removed" in run.stdout
    assert "| backbone_renamed_case | torch |" in run.stdout and "added" in run.stdout
