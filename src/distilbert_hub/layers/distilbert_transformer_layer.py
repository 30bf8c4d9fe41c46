import keras
from keras import ops

from distilbert_hub.layers.distilbert_attention import DistilBertAttention
from distilbert_hub.layers.distilbert_dense import DistilBertDense
from distilbert_hub.layers.initializers import weight_initializer

ACTIVATIONS = ("gelu", "relu")


def apply_activation(x, activation):
    if activation == "gelu":
        # transformers' "gelu" is the exact erf form; keras.ops.gelu defaults
        # to the tanh approximation.
        return ops.gelu(x, approximate=False)
    return ops.relu(x)


def check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r} is not supported; DistilBERT uses one of {ACTIVATIONS}.")
    return activation


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertTransformerLayer(keras.layers.Layer):
    """transformers' `TransformerBlock`: post-LayerNorm (eps 1e-12) self-attention
    then feed-forward. Sublayer names map to HF's: attention_layer_norm is
    sa_layer_norm, intermediate is ffn.lin1, output is ffn.lin2."""

    def __init__(
        self,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.0,
        attention_dropout=0.0,
        activation="gelu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.hidden_dim = int(hidden_dim)
        self.intermediate_dim = int(intermediate_dim)
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.activation = check_activation(activation)
        initializer = weight_initializer()

        self.attention = DistilBertAttention(
            num_heads=self.num_heads,
            hidden_dim=self.hidden_dim,
            dropout=self.attention_dropout,
            dtype=self.dtype_policy,
            name="attention",
        )
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-12, dtype=self.dtype_policy, name="attention_layer_norm"
        )
        self.intermediate_dense = DistilBertDense(
            self.intermediate_dim, kernel_initializer=initializer, dtype=self.dtype_policy, name="intermediate"
        )
        self.output_dense = DistilBertDense(
            self.hidden_dim, kernel_initializer=initializer, dtype=self.dtype_policy, name="output"
        )
        self.output_dropout = keras.layers.Dropout(self.dropout, dtype=self.dtype_policy, name="output_dropout")
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-12, dtype=self.dtype_policy, name="output_layer_norm"
        )

    def build(self, hidden_states_shape, padding_mask_shape=None):
        hidden_states_shape = tuple(hidden_states_shape)
        self.attention.build(hidden_states_shape)
        self.attention_layer_norm.build(hidden_states_shape)
        self.intermediate_dense.build(hidden_states_shape)
        self.output_dense.build(hidden_states_shape[:-1] + (self.intermediate_dim,))
        self.output_layer_norm.build(hidden_states_shape)
        self.built = True

    def call(self, hidden_states, padding_mask=None, training=None):
        # hidden_states: [batch, length, hidden_dim]; padding_mask: [batch, length], 1 at real tokens.
        # Self-Attention
        attention_output = self.attention(hidden_states, padding_mask=padding_mask, training=training)
        # ops.add: a Dense left in bf16 by a calibrated int8 (`unquantized_dtype`) adds into float32, where
        # tensorflow's `+` refuses mixed dtypes.
        attention_output = self.attention_layer_norm(ops.add(attention_output, hidden_states))

        # Feed Forward Network (transformers' FFN: lin1, activation, lin2, dropout)
        ffn_output = self.intermediate_dense(attention_output)
        ffn_output = apply_activation(ffn_output, self.activation)
        ffn_output = self.output_dense(ffn_output)
        ffn_output = self.output_dropout(ffn_output, training=training)
        ffn_output = self.output_layer_norm(ops.add(ffn_output, attention_output))

        return ffn_output

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None):
        return hidden_states_shape

    def get_config(self):
        return super().get_config() | {
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation": self.activation,
        }
