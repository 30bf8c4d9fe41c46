"""Inference export: a `.keras` archive of the backbone and every task reloads
in a fresh process on each backend, and `model.export()` gives a SavedModel
(tensorflow) that its own runtime serves in a fresh process within 1e-5.
ONNX export has its own tests (tests/test_onnx_export.py)."""

import keras
import numpy as np
import pytest

from harness.testing import (
    MODELS,
    assert_reloads_in_a_fresh_process,
    model_inputs,
    outputs_as_dict,
    run_in_fresh_process,
    tiny_backbone_for,
)


def test_every_model_reloads_from_a_keras_archive_in_a_fresh_process(tiny_tokenizer, tmp_path):
    models = []
    for name, make_model in MODELS.items():
        keras.utils.set_random_seed(0)
        model = make_model(tiny_backbone_for(tiny_tokenizer, dropout=0.0))
        models.append((name, model, model_inputs(name, tiny_tokenizer.vocabulary_size())))
    assert_reloads_in_a_fresh_process(models, tmp_path)


SERVE_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
x = dict(np.load(sys.argv[2]))
y = served.serve(x)
y = y if isinstance(y, dict) else {"output": y}
np.savez(sys.argv[3], **{k: v.numpy() for k, v in y.items()})
"""


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModel export is tensorflow's format")
@pytest.mark.parametrize("name", ["backbone", "text_classifier", "question_answerer"])
def test_a_saved_model_serves_the_same_outputs_in_a_fresh_process(name, tiny_tokenizer, tmp_path):
    keras.utils.set_random_seed(0)
    model = MODELS[name](tiny_backbone_for(tiny_tokenizer, dropout=0.0))
    x = model_inputs(name, tiny_tokenizer.vocabulary_size())
    y = outputs_as_dict(model(x))
    model.export(str(tmp_path / "saved_model"), format="tf_saved_model", verbose=False)
    np.savez(tmp_path / "inputs.npz", **x)
    paths = [str(tmp_path / name) for name in ("saved_model", "inputs.npz", "out.npz")]
    run_in_fresh_process(SERVE_SCRIPT, *paths)
    served = np.load(tmp_path / "out.npz")
    for key, value in y.items():
        np.testing.assert_allclose(served[key], value, atol=1e-5, err_msg=key)
