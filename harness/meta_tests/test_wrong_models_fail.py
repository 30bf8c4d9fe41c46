"""The parity suite must catch a backbone that is subtly wrong.

Each mutation below is small enough to look plausible in review; the goldens
must reject every one of them on every backend, with a readable report.
"""

import keras
import numpy as np
import pytest

from distilbert_hub.layers import distilbert_attention, distilbert_transformer_layer
from harness.compare import assert_all_match
from harness.golden import case_ids, load_case
from harness.runner import backbone_from_golden, compare_outputs, run_backbone_case

GELU_CASE = "backbone_gelu_padded"


class OpsWithWarmSoftmax:
    """keras.ops, except softmax runs at temperature 1/1.02."""

    def __getattr__(self, name):
        return getattr(keras.ops, name)

    @staticmethod
    def softmax(x, axis=-1):
        return keras.ops.softmax(x * 1.02, axis=axis)


def tanh_gelu(x, activation):
    if activation == "gelu":
        return keras.ops.gelu(x, approximate=True)
    return keras.ops.relu(x)


def run_with_layer_norm_epsilon(golden, epsilon):
    backbone = backbone_from_golden(golden)
    for layer in backbone._flatten_layers():
        if isinstance(layer, keras.layers.LayerNormalization):
            layer.epsilon = epsilon
    return run_backbone_case(golden, backbone)


MUTATIONS = {
    "gelu_tanh_approximation": lambda mp, golden: (
        mp.setattr(distilbert_transformer_layer, "apply_activation", tanh_gelu),
        run_backbone_case(golden),
    )[-1],
    "layer_norm_epsilon_1e-5": lambda mp, golden: run_with_layer_norm_epsilon(golden, 1e-5),
    "softmax_temperature_2_percent": lambda mp, golden: (
        mp.setattr(distilbert_attention, "ops", OpsWithWarmSoftmax()),
        run_backbone_case(golden),
    )[-1],
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_wrong_backbone_fails_with_readable_report(monkeypatch, mutation):
    golden = load_case(GELU_CASE)
    outputs = MUTATIONS[mutation](monkeypatch, golden)
    comparisons = compare_outputs(golden, outputs)
    with pytest.raises(AssertionError) as failure:
        assert_all_match(comparisons)
    report = str(failure.value)
    failed = next(c for c in comparisons if not c.passed)
    index, actual, expected, _ = failed.worst[0]
    for needle in (
        GELU_CASE,
        failed.output,
        "DOES NOT MATCH",
        str(index),
        f"{actual:.8g}",
        f"{expected:.8g}",
        "max abs error",
        "tolerance",
        f'tox -e {failed.backend} -- -k "{GELU_CASE}"',
    ):
        assert needle in report, f"report lacks {needle!r}:\n{report}"


@pytest.mark.parametrize("case_id", [i for i in case_ids(kind="backbone") if "relu" in i][:1])
def test_gelu_mutation_is_invisible_on_relu_models(monkeypatch, case_id):
    # A control: the mutation changes only what it claims to change.
    monkeypatch.setattr(distilbert_transformer_layer, "apply_activation", tanh_gelu)
    golden = load_case(case_id)
    assert_all_match(compare_outputs(golden, run_backbone_case(golden)))


def test_the_rerun_command_names_the_tier_that_holds_the_case():
    from harness.compare import compare

    for tier, env in (("default", "torch"), ("large", "torch-large"), ("extra_large", "torch-extra_large")):
        comparison = compare(
            np.ones(2),
            np.zeros(2),
            atol=0.1,
            rtol=0.0,
            tolerance_reason="test",
            case_id="case_x",
            output="out",
            backend="torch",
            tier=tier,
        )
        assert f'rerun: tox -e {env} -- -k "case_x"' in comparison.report()
