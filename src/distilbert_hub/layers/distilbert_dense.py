import keras


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertDense(keras.layers.Dense):
    """The Dense of DistilBERT's blocks: `keras.layers.Dense`, under its own
    registered name so that models saved with it keep loading. The backend
    kernels of inference live in `distilbert_hub.inference`."""

    def quantize(self, mode=None, **kwargs):
        # `type_check` (a public argument) refuses subclasses of Dense; this
        # one changes no weight and no quantization rule.
        super().quantize(mode, **(kwargs | {"type_check": False}))
