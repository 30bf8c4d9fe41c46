"""The loss and every parameter's gradient equal transformers' autograd
(gradient goldens: the backbone under a probe loss, each head under its
transformers loss with labels), through the task's compiled default loss."""

import pytest

from harness.golden import case_ids
from harness.testing import ModelTestCase


class TestGradientParity(ModelTestCase):
    @pytest.mark.parametrize("case_id", case_ids(kind="gradients"))
    def test_loss_and_gradients_match_transformers(self, case_id):
        self.run_golden_case(case_id)
