from keras import ops

from distilbert_hub.layers.distilbert_attention import eager_attention_forward
from distilbert_hub.layers.distilbert_transformer_layer import apply_activation

# Which positions of the backbone's output a caller reads: every position (as
# the reference computes it, padding included), the real tokens only, or the
# first token only. A strategy may leave the positions not read as zeros.
READS = ("every_token", "real_tokens", "first_token")


class InferenceStrategy:
    """A way to compute the backbone's last hidden states for inference.

    `forward(backbone, token_ids, padding_mask)` returns `[batch, length,
    hidden_dim]` from the backbone's own variables, exact at the positions
    `reads` names (`READS`); the other positions may be zeros. `block` is the
    reference's transformer block at inference; a strategy changes how its
    steps run (`dense`, `attend`, `layer_norm`), not what they compute. This
    base runs each step as the reference does, in `keras.ops`.
    """

    def __init__(self, reads="every_token"):
        if reads not in READS:
            raise ValueError(f"reads must be one of {READS}; got {reads!r}.")
        self.reads = reads

    def applies(self):
        """Whether it runs on the current backend."""
        return True

    def forward(self, backbone, token_ids, padding_mask):
        hidden_states = backbone.embeddings(token_ids)
        first_token_only = self.reads == "first_token"
        for layer in backbone.transformer_layers[:-1] if first_token_only else backbone.transformer_layers:
            hidden_states = self.block(layer, hidden_states, hidden_states, padding_mask)
        if first_token_only:
            return self.first_token_block(backbone.transformer_layers[-1], hidden_states, padding_mask)
        return hidden_states

    def first_token_block(self, layer, hidden_states, padding):
        """`block` at the first token only, zeros at the other positions. That
        is exact: a block's output at position 0 takes from the others only
        their keys and values. It saves 5/6 of the block's multiply-adds."""
        first = self.block(layer, hidden_states[:, :1], hidden_states, padding)
        return ops.concatenate([first, ops.zeros_like(hidden_states[:, 1:])], axis=1)

    def block(self, layer, queries, hidden_states, padding):
        """`DistilBertTransformerLayer.call` at inference (dropout off) for the
        rows `queries` over the keys and values of `hidden_states`; `padding`
        is what `attend` needs to mask padded keys."""
        attention = layer.attention
        # Self-Attention
        query = self.dense(attention.query_dense, queries)
        key = self.dense(attention.key_dense, hidden_states)
        value = self.dense(attention.value_dense, hidden_states)
        context = self.attend(attention, query, key, value, padding)
        attention_output = self.dense(attention.output_dense, context)
        # ops.add, as in the layer: a bf16 Dense output (`unquantized_dtype`) adds into float32.
        attention_output = self.layer_norm(layer.attention_layer_norm, ops.add(attention_output, queries))

        # Feed Forward Network
        ffn_output = self.dense(layer.intermediate_dense, attention_output)
        ffn_output = apply_activation(ffn_output, layer.activation)
        ffn_output = self.dense(layer.output_dense, ffn_output)
        return self.layer_norm(layer.output_layer_norm, ops.add(ffn_output, attention_output))

    def dense(self, layer, x):
        return layer(x)

    def layer_norm(self, layer, x):
        return layer(x)

    def attend(self, attention, query, key, value, padding):
        """`[batch, query_length, hidden_dim]` contexts of `[batch, length,
        hidden_dim]` projections, as the reference computes them; `padding`
        is the `[batch, length]` padding mask."""
        batch = ops.shape(query)[0]

        def heads(x):  # [batch, length, hidden_dim] -> [batch, heads, length, head_dim]
            return ops.transpose(ops.reshape(x, (batch, -1, attention.num_heads, attention.head_dim)), (0, 2, 1, 3))

        context = eager_attention_forward(attention, heads(query), heads(key), heads(value), padding)
        return ops.reshape(context, (batch, ops.shape(query)[1], -1))

    def __repr__(self):
        return f"{type(self).__name__}(reads={self.reads!r})"
