"""SmoothQuant-style int8 (Xiao et al., 2023): per-channel smoothing that
moves a trained encoder's activation outliers into the weights.

Keras' int8 Dense scales each token's input by its largest entry. In a
trained encoder a few hidden channels hold values tens of times the others
(at `[SEP]` most of all), so that scale leaves the other channels a handful of
levels. Dividing input channel j by `s_j` and multiplying kernel row j by
`s_j` leaves the float product unchanged, x @ W = (x / s) @ (s W), and with
`s_j = max|x_j| ** alpha / max|W_j| ** (1 - alpha)` (the largest calibration
input and kernel entry of channel j) both factors quantize with less error.

The division runs in the Dense layer's input quantizer (`SmoothingQuantizer`)
rather than folded into the LayerNorm before it: DistilBERT's LayerNorm
output also feeds the residual, which must stay unscaled. `s` is kept in the
layer's dtype policy (`SmoothedInt8DTypePolicy`), so it travels in
`get_config`, `.keras` archives and presets with the quantized layers'
`DTypePolicyMap`; `restore_smoothing` puts the quantizer back after a model
is rebuilt from its config.
"""

import keras
import numpy as np
from keras.dtype_policies import DTypePolicyMap

SMALLEST_RANGE = 1e-5  # a channel that never fires (or an all-zero kernel row) is not divided by zero


@keras.saving.register_keras_serializable(package="distilbert_hub")
class SmoothingQuantizer(keras.quantizers.AbsMaxQuantizer):
    """Keras' per-token abs-max int8 quantizer of a Dense input, applied to
    `x / smoothing`."""

    def __init__(self, smoothing, **kwargs):
        super().__init__(**kwargs)
        self.smoothing = np.asarray(smoothing, dtype="float32")

    def __call__(self, x, axis=None, to_numpy=False):
        return super().__call__(keras.ops.divide(x, self.smoothing), axis=axis, to_numpy=to_numpy)

    def get_config(self):
        return super().get_config() | {"smoothing": self.smoothing.tolist()}


@keras.saving.register_keras_serializable(package="distilbert_hub")
class SmoothedInt8DTypePolicy(keras.dtype_policies.QuantizedDTypePolicy):
    """Keras' `int8_from_<source>` policy, carrying the layer's smoothing."""

    def __init__(self, mode="int8", source_name=None, smoothing=()):
        super().__init__(mode, source_name)
        self.smoothing = np.asarray(smoothing, dtype="float32")

    def __eq__(self, other):
        return super().__eq__(other) and np.array_equal(self.smoothing, getattr(other, "smoothing", None))

    def get_config(self):
        return super().get_config() | {"smoothing": self.smoothing.tolist()}


def own_policy(layer):
    """The layer's dtype policy (a map given as dtype holds it under the layer's path)."""
    policy = layer.dtype_policy
    return policy[layer.path] if isinstance(policy, DTypePolicyMap) else policy


def smoothed_layers(model):
    """The Dense layers of `model` whose int8 input is smoothed."""
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Dense) and isinstance(own_policy(layer), SmoothedInt8DTypePolicy)
    ]


def restore_smoothing(model):
    """Give each smoothed layer of a model rebuilt from its config the input
    quantizer its policy describes (Keras builds every int8 Dense with the
    plain abs-max one)."""
    for layer in smoothed_layers(model):
        quantizer = SmoothingQuantizer(own_policy(layer).smoothing)
        layer.inputs_quantizer = quantizer
        layer.quantization_config = keras.quantizers.Int8QuantizationConfig(activation_quantizer=quantizer)


def smoothing_factors(input_range, kernel, alpha):
    """Per input channel `max|x_j| ** alpha / max|W_j| ** (1 - alpha)`, for a
    `[in, out]` kernel."""
    kernel_range = np.abs(keras.ops.convert_to_numpy(kernel)).max(axis=1)
    return (
        np.maximum(input_range, SMALLEST_RANGE) ** alpha / np.maximum(kernel_range, SMALLEST_RANGE) ** (1 - alpha)
    ).astype("float32")


class InputRanges:
    """Within the block, every call of the given Dense layers records the
    largest |input| of each channel over the real tokens of its batch (those
    whose `padding_mask` is 1). Run the model eagerly (`model(x)`): the
    layers' `call` is wrapped per instance, which a compiled `predict` would
    trace once."""

    def __init__(self, layers):
        self.layers, self.ranges = layers, {}
        self.real = None  # [rows, length] booleans of the batch being run

    def __enter__(self):
        for layer in self.layers:
            layer.call = self._recording(layer, layer.call)
        return self

    def __exit__(self, *exc_info):
        for layer in self.layers:
            del layer.call

    def _recording(self, layer, call):
        def recording_call(inputs, *args, **kwargs):
            values = np.abs(keras.ops.convert_to_numpy(keras.ops.stop_gradient(inputs)))
            if self.real is not None and values.shape[:-1] == self.real.shape:  # token states, not a pooled head
                values = values[self.real]
            largest = values.reshape(-1, values.shape[-1]).max(axis=0, initial=0.0)
            self.ranges[layer.path] = np.maximum(self.ranges.get(layer.path, 0.0), largest)
            return call(inputs, *args, **kwargs)

        return recording_call
