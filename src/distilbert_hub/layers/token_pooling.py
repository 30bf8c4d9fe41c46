import keras

POOLING_MODES = ("mean", "cls", "max")


@keras.saving.register_keras_serializable(package="distilbert_hub")
class TokenPooling(keras.layers.Layer):
    """One vector per text from the backbone's token states, as
    sentence-transformers' `Pooling` (and `Normalize`) compute it: `mean`
    over real tokens (the count clamped at 1e-9), `cls` (the first token) or
    `max` over real tokens (padding set to -1e9 first); then, with
    `normalize`, divided by its L2 norm clamped at 1e-12 (torch's
    `F.normalize`)."""

    def __init__(self, pooling="mean", normalize=True, **kwargs):
        super().__init__(**kwargs)
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES}; got {pooling!r}.")
        self.pooling, self.normalize = pooling, bool(normalize)

    def call(self, hidden_states, padding_mask):
        mask = keras.ops.cast(keras.ops.expand_dims(padding_mask, -1), hidden_states.dtype)
        if self.pooling == "cls":
            pooled = hidden_states[:, 0, :]
        elif self.pooling == "mean":
            counts = keras.ops.maximum(keras.ops.sum(mask, axis=1), 1e-9)
            pooled = keras.ops.sum(hidden_states * mask, axis=1) / counts
        else:
            pooled = keras.ops.max(keras.ops.where(mask > 0, hidden_states, -1e9), axis=1)
        if self.normalize:
            norm = keras.ops.sqrt(keras.ops.sum(keras.ops.square(pooled), axis=-1, keepdims=True))
            pooled = pooled / keras.ops.maximum(norm, 1e-12)
        return pooled

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None):
        return (hidden_states_shape[0], hidden_states_shape[-1])

    def get_config(self):
        return super().get_config() | {"pooling": self.pooling, "normalize": self.normalize}
