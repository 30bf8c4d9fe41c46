"""Every private Keras API the library still uses, one guard each: a Keras
release that renames or changes it fails here, naming the use, rather than
somewhere far downstream. Each use says beside it why no public API does it."""

import keras
import numpy as np
import pytest

from harness.testing import tiny_backbone_for


def test_layer_tracker_unlock_lets_merge_lora_weights_delete_the_lora_variables(tiny_tokenizer):
    """distilbert_backbone.merge_lora_weights: `Layer._tracker.unlock()/lock()`;
    Keras has `enable_lora` but no public way to take LoRA off a Dense."""
    backbone = tiny_backbone_for(tiny_tokenizer)
    backbone.enable_lora(2)
    dense = backbone.lora_layers()[0]
    assert callable(dense._tracker.unlock) and callable(dense._tracker.lock)
    backbone.merge_lora_weights()
    assert not any("lora" in v.path for v in backbone.weights), [v.path for v in backbone.weights]
    assert not backbone.lora_layers()


def test_flatten_layers_reaches_every_nested_dense(tiny_tokenizer):
    """distilbert_backbone (enable_lora, lora_layers, get_config) and task.get_config:
    `Layer._flatten_layers()`; `Model.layers` lists only the top level."""
    backbone = tiny_backbone_for(tiny_tokenizer)
    dense = [layer for layer in backbone._flatten_layers(include_self=False) if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 6 * backbone.num_layers


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="only jax variables detach their values")
def test_jax_variables_keep_their_value_in_value():
    """data.batch_errors: `Variable._value` on jax, where Keras detaches the
    values during fit/evaluate/predict; `assign` needs a value to be there."""
    variable = keras.Variable(np.ones(3, "float32"))
    assert variable._value is not None
    saved, variable._value = variable._value, None
    variable._value = saved
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), np.ones(3))


def test_safe_mode_is_readable_while_deserializing():
    """distilbert_tokenizer._in_safe_mode: `keras.src.saving.serialization_lib.in_safe_mode`;
    `keras.config` can enable unsafe deserialization but not read the mode."""
    from keras.src.saving.serialization_lib import in_safe_mode

    assert in_safe_mode() in (None, True, False)


def test_the_tensorflow_probe_is_a_lazy_module_with_an_availability_flag():
    """convert/preset.no_tensorflow_probe: `keras.src.utils.module_utils.tensorflow._available`;
    Keras imports tensorflow to test for a tf.TensorShape whenever it is
    installed, and has no public switch for it (tensorflow beside jax or
    transformers' torch aborts the process)."""
    from keras.src.utils import module_utils

    assert hasattr(module_utils.tensorflow, "_available"), "Keras' lazy tensorflow module changed"


def test_optimizer_hooks_of_the_training_recipe():
    """training.py's AdamW: `_get_current_learning_rate`, `_learning_rate` and
    `_get_variable_index`, the hooks Keras' own optimizers are written with;
    there is no public per-update schedule hook."""
    optimizer = keras.optimizers.Adam(1e-3)
    assert hasattr(optimizer, "_learning_rate")
    assert float(optimizer._get_current_learning_rate()) == pytest.approx(1e-3)
    variable = keras.Variable(np.zeros(2, "float32"))
    optimizer.build([variable])
    assert optimizer._get_variable_index(variable) == 0


def test_int8_dense_quantizes_its_input_through_inputs_quantizer_and_filters_match_keras():
    """functional_model.quantize(calibration=...): Keras' int8 Dense quantizes
    its input by calling `self.inputs_quantizer(inputs, axis=-1)`, which
    `layers.int8_smoothing.restore_smoothing` replaces after a rebuild (Keras
    has no public way to give a layer built from a dtype policy a quantizer),
    and `keras.src.quantizers.utils.should_quantize_layer` is `Model.quantize`'s
    own reading of `filters` (regex on the name, or a callable)."""
    from keras.src.quantizers.utils import should_quantize_layer

    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    dense.quantize("int8")
    seen = []

    class Spy(keras.quantizers.AbsMaxQuantizer):
        def __call__(self, x, axis=None, to_numpy=False):
            seen.append(axis)
            return super().__call__(x, axis=axis, to_numpy=to_numpy)

    dense.inputs_quantizer = Spy()
    dense(np.ones((2, 4), "float32"))
    assert seen == [-1]
    assert should_quantize_layer(dense, "^dense") and not should_quantize_layer(dense, ["query", "key"])
    assert should_quantize_layer(dense, lambda layer: layer is dense) and should_quantize_layer(dense, None)
