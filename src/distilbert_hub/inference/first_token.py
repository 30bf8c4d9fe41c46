from keras import ops

from distilbert_hub.inference.strategy import InferenceStrategy
from distilbert_hub.layers.distilbert_attention import eager_attention_forward


class FirstTokenOnly(InferenceStrategy):
    """Every layer but the last as the reference computes it; the last one at
    the first token only. That is exact: the last layer's output at position 0
    takes from the other positions only their keys and values. It saves 5/6
    of the last layer's multiply-adds. `keras.ops` with static shapes, so it
    compiles once per shape on jax and tensorflow like the reference."""

    reads = "first_token"

    def forward(self, backbone, token_ids, padding_mask):
        hidden_states = backbone.embeddings(token_ids)
        for layer in backbone.transformer_layers[:-1]:
            hidden_states = layer(hidden_states, padding_mask=padding_mask)
        first = self.block(backbone.transformer_layers[-1], hidden_states[:, :1], hidden_states, padding_mask)
        return ops.slice_update(ops.zeros_like(hidden_states), (0, 0, 0), first)

    def attend(self, attention, query, key, value, padding_mask):
        batch = ops.shape(query)[0]

        def heads(x):  # [batch, length, hidden_dim] -> [batch, heads, length, head_dim]
            return ops.transpose(ops.reshape(x, (batch, -1, attention.num_heads, attention.head_dim)), (0, 2, 1, 3))

        context = eager_attention_forward(attention, heads(query), heads(key), heads(value), padding_mask)
        return ops.reshape(context, (batch, ops.shape(query)[1], -1))
