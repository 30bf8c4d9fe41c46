"""Packing, truncation strategies, word-label alignment and QA windows give
the ids transformers gives."""

import pytest

from harness.golden import case_ids
from harness.testing import ModelTestCase


class TestPreprocessorParity(ModelTestCase):
    @pytest.mark.parametrize("case_id", case_ids(kind="preprocessor"))
    def test_ids_match_transformers(self, case_id):
        self.run_golden_case(case_id)
