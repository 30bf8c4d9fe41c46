import warnings

import keras
import numpy as np
from keras import ops

from distilbert_hub.layers.distilbert_dense import DistilBertDense
from distilbert_hub.layers.initializers import weight_initializer


def eager_attention_forward(module, query, key, value, padding_mask, training=None):
    """transformers' `eager_attention_forward`: `[batch, heads, query_length,
    head_dim]` queries over `[batch, heads, key_length, head_dim]` keys and
    values -> `[batch, query_length, heads, head_dim]`.

    The scores and the softmax run in float32 whatever the compute dtype (the
    reference's softmax under mixed precision); keys at padding get the
    float32 lowest value, which is what transformers' additive mask adds.
    """
    # Take the dot product between "query" and "key" to get the raw attention scores.
    attn_weights = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))
    attn_weights = ops.cast(attn_weights, "float32") * module.scaling

    if padding_mask is not None:
        key_is_real = ops.cast(padding_mask, "bool")[:, None, None, :]
        attn_weights = ops.where(key_is_real, attn_weights, np.finfo("float32").min)

    with warnings.catch_warnings():
        # Keras warns on a softmax over one element; one key is a valid (one-token) sequence.
        warnings.filterwarnings("ignore", "You are using a softmax over axis")
        attn_weights = ops.softmax(attn_weights, axis=-1)
    attn_weights = module.dropout_layer(ops.cast(attn_weights, value.dtype), training=training)

    attn_output = ops.matmul(attn_weights, value)
    return ops.transpose(attn_output, (0, 2, 1, 3))


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertAttention(keras.layers.Layer):
    """transformers' `DistilBertSelfAttention` (q_lin, k_lin, v_lin, out_lin)."""

    def __init__(self, num_heads, hidden_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.dropout = float(dropout)
        if self.hidden_dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide hidden_dim={self.hidden_dim} evenly.")
        self.head_dim = self.hidden_dim // self.num_heads
        self.scaling = self.head_dim**-0.5

        def dense(name):
            return DistilBertDense(
                self.hidden_dim, kernel_initializer=weight_initializer(), dtype=self.dtype_policy, name=name
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

    def call(self, hidden_states, padding_mask=None, training=None):
        # hidden_states: [batch, length, hidden_dim]; padding_mask: [batch, length], 1 at real tokens.
        input_shape = ops.shape(hidden_states)[:-1]
        hidden_shape = (*input_shape, self.num_heads, self.head_dim)

        # get all proj: [batch, heads, length, head_dim]
        query_layer = ops.transpose(ops.reshape(self.query_dense(hidden_states), hidden_shape), (0, 2, 1, 3))
        key_layer = ops.transpose(ops.reshape(self.key_dense(hidden_states), hidden_shape), (0, 2, 1, 3))
        value_layer = ops.transpose(ops.reshape(self.value_dense(hidden_states), hidden_shape), (0, 2, 1, 3))

        attn_output = eager_attention_forward(self, query_layer, key_layer, value_layer, padding_mask, training)
        attn_output = ops.reshape(attn_output, (*input_shape, self.hidden_dim))
        return self.output_dense(attn_output)

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None):
        return hidden_states_shape

    def get_config(self):
        return super().get_config() | {
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "dropout": self.dropout,
        }
