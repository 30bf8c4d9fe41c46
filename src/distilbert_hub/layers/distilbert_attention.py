import warnings

import keras
import numpy as np
from keras import ops

from distilbert_hub.layers.distilbert_dense import DistilBertDense
from distilbert_hub.layers.first_token_read import EVERY_TOKEN
from distilbert_hub.layers.initializers import weight_initializer
from distilbert_hub.layers.sublayer_call import call_sublayer


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertAttention(keras.layers.Layer):
    """Multi-head self-attention of `transformers`' `DistilBertSelfAttention`.

    Queries are scaled by `1 / sqrt(head_dim)`; keys at padding positions get a
    score of the dtype's lowest value before the softmax, which is what the
    reference's additive mask does. The softmax runs in float32 under mixed
    precision.
    """

    def __init__(self, num_heads, hidden_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.dropout = float(dropout)
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide hidden_dim={self.hidden_dim} evenly.")
        self.head_dim = self.hidden_dim // self.num_heads

        def dense(name):
            return DistilBertDense(
                self.hidden_dim,
                kernel_initializer=weight_initializer(),
                dtype=self.dtype_policy,
                name=name,
            )

        self.query_dense = dense("query")
        self.key_dense = dense("key")
        self.value_dense = dense("value")
        self.output_dense = dense("attention_output")
        self.dropout_layer = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="attention_dropout")

    def build(self, hidden_states_shape, padding_mask_shape=None):
        for layer in (self.query_dense, self.key_dense, self.value_dense, self.output_dense):
            layer.build(hidden_states_shape)
        self.built = True

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.head_dim))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, hidden_states, padding_mask=None, training=None, tokens=EVERY_TOKEN):
        """`tokens` (from `first_token_read.tokens_for`): `hidden_states` are
        `tokens.pack(...)`'s, and the outputs are at `tokens.queries(...)`."""
        query = tokens.unpack_queries(call_sublayer(self.query_dense, tokens.queries(hidden_states)))
        key = tokens.unpack(call_sublayer(self.key_dense, hidden_states))
        value = tokens.unpack(call_sublayer(self.value_dense, hidden_states))
        if tokens.fused_attention and self.compute_dtype == "float32":
            context = tokens.attend(query, key, value, self.num_heads, self.head_dim**-0.5)
        else:  # the reference's attention; reduced precision keeps its float32 softmax
            context = self._attend(query, key, value, padding_mask, training)
        return call_sublayer(self.output_dense, tokens.pack_queries(context))

    def _attend(self, query, key, value, padding_mask, training):
        """`[batch, query_length, hidden]` contexts of the projected queries over the keys and values."""
        batch, query_length = ops.shape(query)[0], ops.shape(query)[1]
        query, key, value = self._split_heads(query), self._split_heads(key), self._split_heads(value)
        scores = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))
        scores = ops.cast(scores, "float32") * (self.head_dim**-0.5)
        if padding_mask is not None:
            key_is_real = ops.cast(padding_mask, "bool")[:, None, None, :]
            scores = ops.where(key_is_real, scores, np.finfo("float32").min)
        with warnings.catch_warnings():
            # Keras warns on a softmax over one element; one key is a valid
            # (one-token) sequence here.
            warnings.filterwarnings("ignore", "You are using a softmax over axis")
            weights = ops.softmax(scores, axis=-1)
        weights = call_sublayer(self.dropout_layer, ops.cast(weights, value.dtype), training=training)

        context = ops.matmul(weights, value)
        context = ops.transpose(context, (0, 2, 1, 3))
        return ops.reshape(context, (batch, query_length, self.hidden_dim))

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None):
        return hidden_states_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "dropout": self.dropout,
            }
        )
        return config
