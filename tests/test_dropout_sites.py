"""Dropout in training is where transformers has it, at its rate, scaled by
1/(1-p) (harness/dropout_sites.py): after the embeddings' LayerNorm, on the
attention probabilities, on the feed-forward output before the residual sum,
and in each head before its last Dense, at the head's own rate."""

import keras
import numpy as np
import pytest

from harness.dropout_sites import TASKS, check_dropout_sites, inputs_for


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_dropout_site_is_where_transformers_has_it(monkeypatch, name):
    check_dropout_sites(monkeypatch, name)


def test_no_dropout_outside_training(monkeypatch):
    keras.utils.set_random_seed(0)
    model = TASKS["text_classifier"]()
    x = inputs_for("text_classifier")
    first = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x, training=False)), first)
    assert not np.allclose(keras.ops.convert_to_numpy(model(x, training=True)), first)
