"""Tokenizer ids and offsets equal transformers' on the fixture corpus, per option set."""

import pytest

from harness.golden import case_ids
from harness.testing import ModelTestCase


class TestTokenizerParity(ModelTestCase):
    @pytest.mark.parametrize("case_id", case_ids(kind="tokenizer"))
    def test_ids_and_offsets_match_transformers(self, case_id):
        self.run_golden_case(case_id)
