import keras
from keras import ops

from distilbert_hub.layers.distilbert_attention import DistilBertAttention
from distilbert_hub.layers.distilbert_dense import DistilBertDense
from distilbert_hub.layers.first_token_read import tokens_for
from distilbert_hub.layers.initializers import weight_initializer
from distilbert_hub.layers.sublayer_call import call_sublayer

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
    """One post-LayerNorm block of `transformers`' `TransformerBlock`.

    `x = LN(x + attention(x))`, then `x = LN(x + dropout(lin2(act(lin1(x)))))`,
    both LayerNorms with eps 1e-12.
    """

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
            self.intermediate_dim,
            kernel_initializer=initializer,
            dtype=self.dtype_policy,
            name="intermediate",
        )
        self.output_dense = DistilBertDense(
            self.hidden_dim,
            kernel_initializer=initializer,
            dtype=self.dtype_policy,
            name="output",
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
        tokens = tokens_for(self, hidden_states, padding_mask, training)
        hidden_states = tokens.pack(hidden_states)
        attended = call_sublayer(
            self.attention, hidden_states, padding_mask=padding_mask, training=training, tokens=tokens
        )
        hidden_states = call_sublayer(self.attention_layer_norm, attended + tokens.queries(hidden_states))
        feed_forward = call_sublayer(self.intermediate_dense, hidden_states)
        feed_forward = apply_activation(feed_forward, self.activation)
        feed_forward = call_sublayer(self.output_dense, feed_forward)
        feed_forward = call_sublayer(self.output_dropout, feed_forward, training=training)
        return tokens.unpack_output(call_sublayer(self.output_layer_norm, feed_forward + hidden_states))

    def compute_output_shape(self, hidden_states_shape, padding_mask_shape=None):
        return hidden_states_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "attention_dropout": self.attention_dropout,
                "activation": self.activation,
            }
        )
        return config
