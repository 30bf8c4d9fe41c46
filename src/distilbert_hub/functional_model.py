import contextlib
import gc
import warnings

import keras

from distilbert_hub import preset_utils


class FunctionalModel(keras.Model):
    """Base of the library's models: functional Keras models whose layers are
    created (and kept as attributes) before `super().__init__` builds the graph.

    On the torch backend a `keras.Model` is a `torch.nn.Module`, which refuses
    attributes before its `__init__`; the functional graph already tracks every
    layer, so such attributes are set plainly (as KerasHub's `Backbone` does).
    """

    def __setattr__(self, name, value):
        initializing = "_functional_model_ready" not in self.__dict__
        is_property = isinstance(getattr(type(self), name, None), property)
        if keras.backend.backend() == "torch" and (initializing or is_property):
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, value)

    def _finish_init(self):
        object.__setattr__(self, "_functional_model_ready", True)

    def check_inputs(self, inputs):
        """Raise a clear error on bad concrete inputs (subclasses define it)."""

    def check_labels(self, y, x):
        """Raise a clear error on labels the model cannot produce (tasks define it)."""

    def quantize(self, mode, **kwargs):
        """Keras' `quantize` ("int8", "int4", "float8", ...) on every Dense
        layer, without a warning for each layer that has nothing to quantize
        (LayerNorm, Dropout, inputs). The choice survives `get_config` and
        `.keras` archives through a `DTypePolicyMap`.

        Refused before any layer changes: a model with LoRA enabled (Keras
        would quantize the base kernel and keep the adapters beside it
        unmerged; merge first, or enable LoRA after quantizing for QLoRA), and
        a model already quantized (Keras refuses layer by layer, after it may
        have quantized others)."""
        lora = self.lora_layers()
        if lora:
            raise ValueError(
                f"{type(self).__name__}.quantize({mode!r}): LoRA is enabled on {len(lora)} layers (first: "
                f"{lora[0].path}). Call merge_lora_weights() first, then quantize; for LoRA on a quantized model "
                "(QLoRA), call enable_lora after quantize."
            )
        quantized = [
            layer
            for layer in self._flatten_layers(include_self=False)
            if getattr(layer, "quantization_mode", None) is not None
        ]
        if quantized and "filters" not in kwargs:
            raise ValueError(
                f"{type(self).__name__}.quantize({mode!r}): the model is already quantized "
                f"({quantized[0].quantization_mode!r} at {quantized[0].path}). Quantize a float model once; to "
                "change the mode, load the float weights again."
            )
        with warnings.catch_warnings(), one_garbage_collection():
            warnings.filterwarnings("ignore", "Layer .* does not have a `quantize` method implemented")
            super().quantize(mode, **kwargs)
        self.predict_function = self.train_function = self.test_function = None

    def lora_layers(self):
        """The layers with LoRA enabled."""
        return [layer for layer in self._flatten_layers(include_self=False) if getattr(layer, "lora_enabled", False)]

    def export(self, filepath, format="tf_saved_model", verbose=None, input_signature=None, **kwargs):
        """Keras' `export`, except `format="onnx"`: the library's own ONNX
        graph (`distilbert_hub.export.export_onnx`; needs the `onnx` extra),
        which runs in ONNX Runtime as transformers computes, on any backend.
        Its options: `int8=True` (ONNX Runtime's dynamic int8 quantization)
        and, for the backbone, `hidden_states=True` (every layer's output)."""
        if format != "onnx":
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)
        if input_signature is not None:
            raise ValueError("export(format='onnx') takes no input_signature: batch and length are dynamic axes.")
        return preset_utils.export_onnx(self, filepath, **kwargs)

    def __call__(self, inputs, *args, **kwargs):
        self.check_inputs(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_inputs(x)
        return super().predict(x, *args, **kwargs)

    def train_on_batch(self, x=None, y=None, sample_weight=None, *args, **kwargs):
        self.check_inputs(x)
        self.check_labels(y, x)
        return super().train_on_batch(x, y, sample_weight, *args, **kwargs)

    def test_on_batch(self, x=None, y=None, sample_weight=None, *args, **kwargs):
        self.check_inputs(x)
        self.check_labels(y, x)
        return super().test_on_batch(x, y, sample_weight, *args, **kwargs)

    def predict_on_batch(self, x):
        self.check_inputs(x)
        return super().predict_on_batch(x)


@contextlib.contextmanager
def attribute_set_to(owner, name, value):
    """`owner.name` is `value` within the block, set past Keras' attribute
    tracking (a plain flag, not a layer or variable)."""
    previous = getattr(owner, name)
    object.__setattr__(owner, name, value)
    try:
        yield
    finally:
        object.__setattr__(owner, name, previous)


@contextlib.contextmanager
def one_garbage_collection():
    """Keras' `Layer.__delattr__` runs a full `gc.collect()` for every variable
    deleted (`quantize` and `merge_lora_weights` delete some per Dense layer).
    `gc.freeze()` puts the objects alive now out of the collector's reach, so
    those collections walk only the objects made since; one full collection
    follows. Nothing is replaced: other threads' collections run as usual."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.collect()


class CheckedFunctional(FunctionalModel):
    """A functional model over another model's layers (e.g. the backbone's
    `hidden_states_model()`) that checks its inputs as that model does."""

    def __init__(self, inputs, outputs, check_inputs, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        object.__setattr__(self, "check_inputs", check_inputs)
        self._finish_init()

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}
