import keras


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

    def __call__(self, inputs, *args, **kwargs):
        self.check_inputs(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        self.check_inputs(x)
        return super().predict(x, *args, **kwargs)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable}
