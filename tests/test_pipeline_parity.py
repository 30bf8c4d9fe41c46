"""Every `pipeline` golden: what transformers' pipelines return (labels,
tokens, words, character offsets exactly; scores within 1e-5) from
`classify`, `fill_mask` and `entities` on the model `from_preset` loads."""

import pytest

from harness.golden import case_ids
from harness.testing import ModelTestCase


class TestPipelineParity(ModelTestCase):
    @pytest.mark.parametrize("case_id", case_ids(kind="pipeline"))
    def test_outputs_match_transformers_pipeline(self, case_id):
        self.run_pipeline_golden_case(case_id)
