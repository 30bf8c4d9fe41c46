import contextlib
import gc
import warnings

import keras
import numpy as np
from keras.src.quantizers.utils import should_quantize_layer

from distilbert_hub import preset_utils
from distilbert_hub.hardware import warn_if_bf16_is_emulated
from distilbert_hub.layers.distilbert_transformer_layer import DistilBertTransformerLayer
from distilbert_hub.layers.int8_smoothing import (
    InputRanges,
    SmoothedInt8DTypePolicy,
    own_policy,
    restore_smoothing,
    smoothed_layers,
    smoothing_factors,
)


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
        restore_smoothing(self)

    def check_inputs(self, inputs):
        """Raise a clear error on bad concrete inputs (subclasses define it)."""

    def check_labels(self, y, x):
        """Raise a clear error on labels the model cannot produce (tasks define it)."""

    def quantize(self, mode, calibration=None, migration_strength=0.5, unquantized_dtype=None, **kwargs):
        """Keras' `quantize` ("int8", "int4", "float8", ...) on every Dense
        layer, without a warning for each layer that has nothing to quantize
        (LayerNorm, Dropout, inputs). The choice survives `get_config` and
        `.keras` archives through a `DTypePolicyMap`.

        `calibration` (int8 only): batches of this model's inputs, or raw
        texts for a task with a preprocessor, run once to measure each Dense
        input's largest value per channel; each int8 Dense then quantizes
        `x / s` against `s W` (SmoothQuant, `layers.int8_smoothing`, with
        `migration_strength` as its alpha), which keeps a trained encoder's
        outlier channels from costing the others their precision. Without
        `filters`, the FFN output Dense layers stay in float: their GELU
        input is where smoothing helps least (README, int8 on trained
        weights). `unquantized_dtype="bfloat16"` runs the Dense layers the
        filters leave out in bfloat16 (their weights stay float32): faster
        where the CPU has native bf16 (avx512_bf16, amx_bf16) or on a GPU,
        for a little of float's precision. A smoothed model does not train
        (Keras' int8 gradient would skip the division).

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
        if unquantized_dtype is not None and not (
            isinstance(unquantized_dtype, str) and unquantized_dtype in ("float32", "bfloat16")
        ):
            raise ValueError(
                f"{type(self).__name__}.quantize: unquantized_dtype must be None, 'float32' or 'bfloat16'; "
                f"got {unquantized_dtype!r}."
            )
        if calibration is not None:
            return self._smoothed_int8(mode, calibration, migration_strength, unquantized_dtype, **kwargs)
        if unquantized_dtype is not None:
            raise ValueError(
                f"{type(self).__name__}.quantize({mode!r}): unquantized_dtype applies to calibrated int8 only "
                "(quantize('int8', calibration=...)); got no calibration."
            )
        with warnings.catch_warnings(), one_garbage_collection():
            warnings.filterwarnings("ignore", "Layer .* does not have a `quantize` method implemented")
            super().quantize(mode, **kwargs)
        self.predict_function = self.train_function = self.test_function = None

    def _smoothed_int8(
        self, mode, calibration, migration_strength, unquantized_dtype, filters=None, config=None, **kwargs
    ):
        name = f"{type(self).__name__}.quantize"
        if mode != "int8":
            raise ValueError(f"{name}({mode!r}, calibration=...): calibration smooths int8 only; got mode {mode!r}.")
        if isinstance(migration_strength, bool) or not 0 < migration_strength <= 1:
            raise ValueError(f"{name}: migration_strength must be in (0, 1]; got {migration_strength!r}.")
        # Keras' quantize wrapper passes the mode's default config; smoothing brings its own quantizers.
        default_config = (
            config is None
            or config.weight_quantizer is None
            and type(config.activation_quantizer) is keras.quantizers.AbsMaxQuantizer
        )
        if kwargs or not default_config:
            given = sorted(kwargs) + ([] if default_config else ["config"])
            raise ValueError(f"{name}(calibration=...) takes filters and migration_strength; got {given}.")
        if filters is None:
            ffn_outputs = [
                layer.output_dense for layer in self._flatten_layers() if isinstance(layer, DistilBertTransformerLayer)
            ]
            filters = lambda layer: not any(layer is kept for kept in ffn_outputs)  # noqa: E731
        layers = [
            layer
            for layer in self._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.Dense)
            and getattr(layer, "quantization_mode", None) is None
            and should_quantize_layer(layer, filters)
        ]
        if not layers:
            raise ValueError(f"{name}: the filters select no float Dense layer to quantize.")
        batches = self._calibration_batches(calibration)
        with InputRanges(layers) as ranges:
            for batch in batches:
                mask = batch.get("padding_mask")
                ranges.real = None if mask is None else np.asarray(mask).reshape(-1, np.shape(mask)[-1]).astype(bool)
                self(batch)
        unseen = [layer.path for layer in layers if layer.path not in ranges.ranges]
        if unseen:
            raise ValueError(f"{name}: the calibration batches never reached Dense layer(s) {unseen}.")
        factors = {
            layer.path: smoothing_factors(ranges.ranges[layer.path], layer.kernel, migration_strength)
            for layer in layers
        }
        for layer in layers:
            layer.kernel.assign(layer.kernel * factors[layer.path][:, None])
        with warnings.catch_warnings(), one_garbage_collection():
            warnings.filterwarnings("ignore", "Layer .* does not have a `quantize` method implemented")
            super().quantize("int8", filters=lambda layer: any(layer is chosen for chosen in layers))
        for layer in layers:
            source = own_policy(layer).get_config()["source_name"]
            layer.dtype_policy = SmoothedInt8DTypePolicy("int8", source, factors[layer.path])
        if unquantized_dtype == "bfloat16":
            self._compute_unquantized_dense_in_bfloat16()
        restore_smoothing(self)
        self.predict_function = self.train_function = self.test_function = None

    def _compute_unquantized_dense_in_bfloat16(self):
        """Each float32 Dense left out of int8 computes in bfloat16 from its
        float32 weights (Keras' `mixed_bfloat16`); `get_config` keeps the
        choice in the layers' `DTypePolicyMap`."""
        mixed = keras.DTypePolicy("mixed_bfloat16")
        warn_if_bf16_is_emulated(mixed)
        for layer in self._flatten_layers(include_self=False):
            if (
                isinstance(layer, keras.layers.Dense)
                and layer.quantization_mode is None
                and layer.compute_dtype == "float32"
            ):
                layer.dtype_policy = mixed

    def _calibration_batches(self, calibration):
        """Calibration data as a list of input batches: one batch (a dict), or
        an iterable of them."""
        batches = [calibration] if isinstance(calibration, dict) else list(calibration)
        if not batches:
            raise ValueError(f"{type(self).__name__}.quantize: the calibration set is empty.")
        if not all(isinstance(batch, dict) for batch in batches):
            raise ValueError(
                f"{type(self).__name__}.quantize: calibration must be a batch of inputs (a dict such as "
                "{'token_ids': ..., 'padding_mask': ...}) or a list of them; raw text needs a task with a preprocessor."
            )
        return batches

    def make_train_function(self, force=False):
        smoothed = smoothed_layers(self)
        if smoothed:
            raise ValueError(
                f"{type(self).__name__}: {len(smoothed)} Dense layers (first: {smoothed[0].path}) are int8 with "
                "calibrated smoothing, which does not train (Keras' int8 gradient skips the division). Train the "
                "float model, or quantize without calibration for QLoRA."
            )
        return super().make_train_function(force)

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
