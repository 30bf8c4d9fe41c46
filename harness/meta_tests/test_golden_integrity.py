"""A tampered, missing or unlisted golden is refused, never trusted or recreated."""

import shutil

import h5py
import numpy as np
import pytest

from harness.compare import compare
from harness.golden import DEFAULT_GOLDENS_DIR, MANIFEST_NAME, GoldenError, case_ids, load_case, read_golden_file

CASE = "backbone_gelu_batch1"


@pytest.fixture
def goldens_copy(tmp_path):
    target = tmp_path / "goldens"
    shutil.copytree(DEFAULT_GOLDENS_DIR, target)
    return target


def test_committed_goldens_match_their_manifest():
    for case_id in case_ids():
        load_case(case_id)


def test_tampered_output_is_refused(goldens_copy):
    with h5py.File(goldens_copy / f"{CASE}.h5", "r+") as f:
        f["outputs/hidden_states/01"][0, 0, 0] += 1e-4
    with pytest.raises(GoldenError, match="does not match the manifest"):
        load_case(CASE, goldens_copy)


def test_tampered_tolerance_is_refused(goldens_copy):
    with h5py.File(goldens_copy / f"{CASE}.h5", "r+") as f:
        f["outputs/hidden_states/01"].attrs["atol"] = 1.0
    with pytest.raises(GoldenError, match="does not match the manifest"):
        load_case(CASE, goldens_copy)


def test_missing_golden_fails_and_is_not_recreated(goldens_copy):
    (goldens_copy / f"{CASE}.h5").unlink()
    with pytest.raises(GoldenError, match="is missing"):
        load_case(CASE, goldens_copy)
    assert not (goldens_copy / f"{CASE}.h5").exists()


def test_unlisted_case_and_missing_manifest_fail(goldens_copy):
    with pytest.raises(GoldenError, match="not in"):
        load_case("backbone_that_does_not_exist", goldens_copy)
    (goldens_copy / MANIFEST_NAME).unlink()
    with pytest.raises(GoldenError, match="no golden manifest"):
        load_case(CASE, goldens_copy)
    assert not (goldens_copy / MANIFEST_NAME).exists()


def test_comparison_ignores_padding_and_reports_worst_real_token():
    golden = read_golden_file(DEFAULT_GOLDENS_DIR / "backbone_gelu_padded.h5")
    output = golden.outputs["hidden_states/02"]
    mask = golden.inputs["padding_mask"]
    actual = output.value.copy()
    actual[mask == 0] = 123.0  # garbage on padding must not count
    actual[2, 1, 5] += 3e-5  # row 2 has 3 real tokens
    result = compare(
        actual,
        output.value,
        atol=1e-5,
        rtol=0.0,
        tolerance_reason="r",
        case_id="c",
        output="o",
        backend="b",
        real_token_mask=mask,
    )
    assert result.mismatched == 1 and result.worst[0][0] == (2, 1, 5)
    assert result.compared == int(mask.sum()) * output.value.shape[-1]
    assert np.isclose(result.max_abs_error, 3e-5, rtol=1e-2)


def test_nan_output_is_a_mismatch():
    expected = np.zeros((1, 2, 2), np.float32)
    actual = expected.copy()
    actual[0, 1, 1] = np.nan
    result = compare(
        actual,
        expected,
        atol=1e-5,
        rtol=0,
        tolerance_reason="r",
        case_id="c",
        output="o",
        backend="b",
        real_token_mask=np.ones((1, 2)),
    )
    assert not result.passed and result.worst[0][0] == (0, 1, 1)


def test_shape_mismatch_is_explained():
    result = compare(
        np.zeros((1, 3)), np.zeros((1, 2)), atol=1, rtol=0, tolerance_reason="r", case_id="c", output="o", backend="b"
    )
    assert not result.passed and "shape (1, 3) differs from the golden's (1, 2)" in result.report()
