import keras
from keras import ops

from distilbert_hub.layers.distilbert_transformer_layer import apply_activation, check_activation
from distilbert_hub.layers.initializers import weight_initializer


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertMaskedLMHead(keras.layers.Layer):
    """The masked-LM head of `DistilBertForMaskedLM` at chosen positions:
    Dense -> activation -> LayerNorm (eps 1e-12) -> projection onto the token
    embedding (tied, as HF ties `vocab_projector.weight`) plus its own bias.

    The tied embedding layer is given at construction and deliberately not
    tracked here: its variable belongs to the backbone.
    """

    def __init__(self, vocabulary_size, hidden_dim, activation="gelu", embedding_layer=None, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.hidden_dim = int(hidden_dim)
        self.activation = check_activation(activation)
        object.__setattr__(self, "_embedding_layer", embedding_layer)
        self.transform_dense = keras.layers.Dense(
            self.hidden_dim, dtype=self.dtype_policy, name="vocab_transform", kernel_initializer=weight_initializer()
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-12, dtype=self.dtype_policy, name="vocab_layer_norm"
        )

    def build(self, hidden_states_shape, mask_positions_shape=None):
        if self._embedding_layer is None:
            raise ValueError("DistilBertMaskedLMHead needs the backbone's embedding layer to tie weights.")
        feature_shape = (None, None, self.hidden_dim)
        self.transform_dense.build(feature_shape)
        self.layer_norm.build(feature_shape)
        self.bias = self.add_weight(name="vocab_bias", shape=(self.vocabulary_size,), initializer="zeros")
        self.built = True

    def call(self, hidden_states, mask_positions):
        positions = ops.expand_dims(ops.cast(mask_positions, "int32"), axis=-1)
        x = ops.take_along_axis(hidden_states, positions, axis=1)
        x = self.transform_dense(x)
        x = apply_activation(x, self.activation)
        x = self.layer_norm(x)
        embedding = ops.cast(self._embedding_layer.token_embedding, x.dtype)
        logits = ops.matmul(x, ops.transpose(embedding))
        return logits + ops.cast(self.bias, logits.dtype)

    def compute_output_shape(self, hidden_states_shape, mask_positions_shape):
        return tuple(mask_positions_shape) + (self.vocabulary_size,)

    def get_config(self):
        return super().get_config() | {
            "vocabulary_size": self.vocabulary_size,
            "hidden_dim": self.hidden_dim,
            "activation": self.activation,
        }
