import numpy as np

from harness.devices import PROFILES, ToleranceProfile
from harness.golden import load_case
from harness.runner import compare_outputs


def test_accelerator_profiles_only_raise_float_tolerances_and_say_why():
    golden = load_case("tokenizer_uncased")
    backbone = load_case("backbone_gelu_batch1")
    loose = ToleranceProfile("gpu", 1.0, "test reason")
    # Integer outputs stay exact under any profile.
    exact = {name: out.value.copy() for name, out in golden.outputs.items()}
    exact["token_ids"][0, 0] += 1
    failed = [c for c in compare_outputs(golden, exact, profile=loose) if not c.passed]
    assert [c.output for c in failed] == ["token_ids"] and failed[0].atol == 0.0
    # Float outputs get the floor, with the profile's reason in the report.
    shifted = {name: out.value + np.float32(0.5) for name, out in backbone.outputs.items()}
    comparisons = compare_outputs(backbone, shifted, profile=loose)
    assert all(c.passed and c.atol == 1.0 and "gpu profile: test reason" in c.tolerance_reason for c in comparisons)
    assert not any(c.passed for c in compare_outputs(backbone, shifted, profile=PROFILES["cpu"]))


def test_every_profile_is_at_least_as_strict_as_cpu_reasons_given():
    for profile in PROFILES.values():
        assert profile.atol_floor >= 0 and profile.reason
