"""keras.distribution on jax with 8 virtual CPU devices: a sharded forward and
a training step under DataParallel and a 2x4 ModelParallel mesh equal the
single-device ones. Keras' distribution API runs on jax only; the other
backends skip (README, "Unsupported combinations")."""

import os
import subprocess
import sys

import keras
import pytest

from harness.golden import REPO_ROOT

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="keras.distribution (DataParallel, ModelParallel) supports jax only"
)

SCRIPT = r"""
import keras
import numpy as np

import distilbert_hub as hub

devices = keras.distribution.list_devices()
assert len(devices) == 8, devices
rng = np.random.default_rng(0)
x = {"token_ids": rng.integers(1, 64, (8, 12)).astype("int32"), "padding_mask": np.ones((8, 12), "int32")}
x["padding_mask"][1, 7:] = 0
y = rng.integers(0, 3, 8)


def classifier():
    backbone = hub.DistilBertBackbone(
        vocabulary_size=64, num_layers=2, num_heads=4, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=12, dropout=0.0,
    )
    model = hub.DistilBertTextClassifier(backbone, num_classes=3, dropout=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    return model


def forward_and_step(model, weights):
    model.set_weights(weights)
    logits = model.predict(x, batch_size=8, verbose=0)
    model.train_on_batch(x, y)
    return logits, [keras.ops.convert_to_numpy(w) for w in model.weights]


keras.utils.set_random_seed(0)
reference_model = classifier()
weights = reference_model.get_weights()
reference = forward_and_step(reference_model, weights)

mesh = keras.distribution.DeviceMesh((2, 4), ("batch", "model"), devices)
distributions = {
    "DataParallel": keras.distribution.DataParallel(devices=devices),
    "ModelParallel 2x4": keras.distribution.ModelParallel(
        layout_map=hub.DistilBertBackbone.get_layout_map(mesh), batch_dim_name="batch"
    ),
}
for name, distribution in distributions.items():
    with distribution.scope():
        model = classifier()
        if name.startswith("ModelParallel"):
            query = model.backbone.transformer_layers[0].attention.query_dense.kernel
            spec = tuple(query.value.sharding.spec)
            assert spec == (None, "model"), f"query kernel sharding {spec}"
            output = model.backbone.transformer_layers[1].output_dense.kernel
            assert tuple(output.value.sharding.spec) == ("model", None), output.value.sharding
        logits, trained = forward_and_step(model, weights)
    forward_error = float(np.abs(logits - reference[0]).max())
    step_error = max(float(np.abs(a - b).max()) for a, b in zip(trained, reference[1]))
    print(f"{name}: forward max abs error {forward_error:.2e}, weights after one step {step_error:.2e}")
    assert forward_error < 1e-5 and step_error < 1e-5, name
"""


def test_sharded_forward_and_training_step_equal_one_device():
    env = dict(
        os.environ,
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",  # eight virtual CPU devices, also where a GPU is present
        XLA_FLAGS="--xla_force_host_platform_device_count=8",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-4000:]
    assert done.stdout.count("forward max abs error") == 2, done.stdout


def test_layout_map_names_a_missing_mesh_axis():
    from distilbert_hub import DistilBertBackbone

    mesh = keras.distribution.DeviceMesh((1,), ("data",), keras.distribution.list_devices()[:1])
    with pytest.raises(ValueError, match="no 'model' axis"):
        DistilBertBackbone.get_layout_map(mesh)
