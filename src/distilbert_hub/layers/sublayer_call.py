import keras


def call_sublayer(layer, *args, **kwargs):
    """`layer(*args, **kwargs)` from inside another layer's `call`, without
    Keras' per-call bookkeeping where that has nothing to do.

    The torch backend runs eagerly, and `Layer.__call__` costs about 0.2 ms of
    Python per call (signature binding, name scopes, masks, autocast): with 70
    sublayer calls per forward it was a third of the time of a batch of 8
    short texts (46 ms against transformers' 25 ms, AVX-512 Xeon, 2 cores).
    Its work is empty when the layer is not quantized (`__call__` dispatches
    the quantized kernels), not rematerialized (a `keras.RematScope` at
    construction), its dtype policy is not mixed (the caller's `__call__`
    entered no autocast scope for it) and the input already has its compute
    dtype; then `call` runs directly (torch forward hooks on such a sublayer do
    not fire). Every other case, and every other backend (which compile the
    model once per shape), takes `__call__`.
    """
    if (
        keras.backend.backend() == "torch"
        and layer.quantization_mode is None
        and not layer._remat_mode
        and layer.compute_dtype == layer.variable_dtype == keras.backend.standardize_dtype(args[0].dtype)
    ):
        return layer.call(*args, **kwargs)
    return layer(*args, **kwargs)
