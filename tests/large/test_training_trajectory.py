"""`pytest -m large`: 20 fine-tuning steps of the smallest preset, loaded with
`from_preset` from the offline Hugging Face cache, with the golden's seeded
2-class head, follow transformers' trajectory under the same Trainer recipe
(the loss at every step, within the golden's stated tolerance)."""

import pytest

from distilbert_hub import DistilBertBackbone
from harness.compare import assert_all_match
from harness.golden import case_ids, load_case
from harness.runner import compare_outputs, full_size_training_task, run_training_case
from harness.testing import hub_cache

CASES = case_ids(kind="training", tiers=("large",))


@pytest.mark.parametrize("case_id", CASES)
def test_the_golden_fine_tunes_the_checkpoint_from_preset_loads(case_id):
    # The backbone weights the trajectory starts from are the preset
    # checkpoint's (tools/make_checkpoints.py writes the preset golden's seed).
    golden = load_case(case_id)
    preset = load_case(f"preset_{golden.provenance['preset']}")
    assert golden.provenance["weights_sha256"] == preset.provenance["weights_sha256"]


@pytest.mark.parametrize("case_id", CASES)
def test_full_size_fine_tuning_follows_transformers(case_id):
    golden = load_case(case_id)
    hub_cache()
    # The reference trained with every dropout at 0 (the golden's config): the
    # preset's own 0.1 would draw random masks here.
    no_dropout = {key: golden.config[key] for key in ("dropout", "attention_dropout")}
    backbone = DistilBertBackbone.from_preset(golden.provenance["preset"], **no_dropout)
    task = full_size_training_task(golden, backbone=backbone)
    comparisons = compare_outputs(golden, run_training_case(golden, task=task))
    print("\n".join(f"{c.output}: max abs error {c.max_abs_error:.2e} (atol {c.atol:g})" for c in comparisons))
    assert_all_match(comparisons)
