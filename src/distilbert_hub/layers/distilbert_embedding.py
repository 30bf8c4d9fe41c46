import keras
import numpy as np
from keras import ops

from distilbert_hub.layers.initializers import weight_initializer


def sinusoidal_position_table(num_positions, dim):
    """The fixed position table of `transformers`' `create_sinusoidal_embeddings`.

    Computed in float64 like the reference, then rounded to float32 once.
    """
    positions = np.arange(num_positions, dtype=np.float64)[:, None]
    angles = positions / np.power(10000.0, 2 * (np.arange(dim) // 2) / dim)
    table = np.where(np.arange(dim) % 2 == 0, np.sin(angles), np.cos(angles))  # sin at even columns, cos at odd
    return table.astype("float32")


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertEmbedding(keras.layers.Layer):
    """Word + position embeddings, then LayerNorm (eps 1e-12) and dropout.

    Positions are `0 .. length - 1` for every row, as in `transformers`.
    With `sinusoidal_position_embedding=True` the position table is the fixed
    sinusoidal one and is not trained. The row of `padding_token_id` gets no
    gradient, as transformers' `nn.Embedding(padding_idx=pad_token_id)`.
    """

    def __init__(
        self,
        vocabulary_size,
        max_sequence_length,
        hidden_dim,
        dropout=0.0,
        sinusoidal_position_embedding=False,
        padding_token_id=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.max_sequence_length = int(max_sequence_length)
        self.hidden_dim = int(hidden_dim)
        self.dropout = float(dropout)
        self.sinusoidal_position_embedding = bool(sinusoidal_position_embedding)
        self.padding_token_id = int(padding_token_id)
        if self.sinusoidal_position_embedding and self.hidden_dim % 2:
            raise ValueError(
                f"sinusoidal_position_embedding=True needs an even hidden_dim; got hidden_dim={self.hidden_dim}."
            )
        self.layer_norm = keras.layers.LayerNormalization(epsilon=1e-12, dtype=self.dtype_policy, name="layer_norm")
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="dropout")

    def build(self, token_ids_shape):
        self.token_embedding = self.add_weight(
            name="token_embedding", shape=(self.vocabulary_size, self.hidden_dim), initializer=weight_initializer()
        )
        self.position_embedding = self.add_weight(
            name="position_embedding",
            shape=(self.max_sequence_length, self.hidden_dim),
            initializer=(
                keras.initializers.Constant(sinusoidal_position_table(self.max_sequence_length, self.hidden_dim))
                if self.sinusoidal_position_embedding
                else weight_initializer()
            ),
            trainable=not self.sinusoidal_position_embedding,
        )
        self.layer_norm.build(tuple(token_ids_shape) + (self.hidden_dim,))
        self.built = True

    def call(self, token_ids, training=None):
        sequence_length = token_ids.shape[-1]
        # A symbolic length (jax export) cannot be compared; only a known one is checked.
        if isinstance(sequence_length, int) and sequence_length > self.max_sequence_length:
            raise ValueError(
                f"Input sequence length {sequence_length} exceeds "
                f"max_sequence_length={self.max_sequence_length} of this model. "
                "Truncate the input (e.g. with a preprocessor's sequence_length)."
            )
        length = ops.shape(token_ids)[-1]
        token_ids = ops.cast(token_ids, "int32")
        embeddings = ops.take(self.token_embedding, token_ids, axis=0)
        is_padding = ops.expand_dims(ops.equal(token_ids, self.padding_token_id), -1)
        embeddings = ops.where(is_padding, ops.stop_gradient(embeddings), embeddings)
        positions = ops.slice(ops.convert_to_tensor(self.position_embedding), (0, 0), (length, self.hidden_dim))
        embeddings = embeddings + ops.cast(positions, embeddings.dtype)
        embeddings = self.layer_norm(embeddings)
        return self.dropout_layer(embeddings, training=training)

    def compute_output_shape(self, token_ids_shape):
        return tuple(token_ids_shape) + (self.hidden_dim,)

    def get_config(self):
        return super().get_config() | {
            "vocabulary_size": self.vocabulary_size,
            "max_sequence_length": self.max_sequence_length,
            "hidden_dim": self.hidden_dim,
            "dropout": self.dropout,
            "sinusoidal_position_embedding": self.sinusoidal_position_embedding,
            "padding_token_id": self.padding_token_id,
        }
