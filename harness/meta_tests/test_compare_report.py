"""The comparison report reads right: a pass says so without a table of
errors, a failure says DOES NOT MATCH with the worst elements and the rerun
command, and a shape problem is named."""

import numpy as np

from harness.compare import compare


def comparison(actual, expected=(1.0, 2.0, 3.0), **kwargs):
    return compare(
        np.asarray(actual),
        np.asarray(expected),
        atol=1e-5,
        rtol=0.0,
        tolerance_reason="float32 parity",
        case_id="case_x",
        output="hidden_states/01",
        backend="jax",
        **kwargs,
    )


def test_a_pass_reads_as_a_match_without_the_worst_elements():
    report = comparison([1.0, 2.0, 3.0]).report()
    assert "case 'case_x', output 'hidden_states/01', backend jax matches the transformers golden" in report
    assert "worst elements" not in report and "rerun" not in report


def test_a_failure_names_the_worst_element_and_the_rerun_command():
    result = comparison([1.0, 2.5, 3.0])
    report = result.report()
    assert "DOES NOT MATCH the transformers golden" in report
    assert "1 outside tolerance" in report and "max abs error 5.000e-01" in report
    assert "  worst elements:" in report and "index" in report and "(1,)" in report
    assert 'rerun: tox -e jax -- -k "case_x"' in report


def test_padding_is_not_compared():
    result = comparison([1.0, 9.0, 3.0], real_token_mask=[1, 0, 1])
    assert result.passed and result.compared == 2


def test_a_shape_problem_is_named():
    report = comparison([1.0, 2.0]).report()
    assert "shape (2,) differs from the golden's (3,)" in report and "rerun" in report
