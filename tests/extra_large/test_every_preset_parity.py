"""`pytest -m extra_large`: every preset's architecture at full size, every layer."""

import pytest

from harness.golden import case_ids
from harness.testing import ModelTestCase


class TestEveryPresetParity(ModelTestCase):
    @pytest.mark.parametrize("case_id", case_ids(kind="backbone", tiers=("large", "extra_large")))
    def test_full_size_hidden_states_match_transformers(self, case_id):
        self.run_golden_case(case_id)

    @pytest.mark.parametrize("case_id", case_ids(kind="backbone", tiers=("large", "extra_large")))
    def test_from_preset_offline_reproduces_transformers(self, case_id):
        self.run_preset_checkpoint_case(case_id)
