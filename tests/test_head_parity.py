"""Every task head equals its transformers class (logits on real tokens)."""

import pytest

from harness.golden import case_ids
from harness.testing import ModelTestCase


class TestHeadParity(ModelTestCase):
    @pytest.mark.parametrize("case_id", case_ids(kind="head"))
    def test_logits_match_transformers(self, case_id):
        self.run_golden_case(case_id)
