from distilbert_hub.layers.distilbert_transformer_layer import apply_activation

# Which positions of the backbone's output a caller reads: every position (as
# the reference computes it, padding included), the real tokens only, or the
# first token only. A strategy may leave the positions not read as zeros.
READS = ("every_token", "real_tokens", "first_token")


class InferenceStrategy:
    """A way to compute the backbone's last hidden states for inference.

    `forward(backbone, token_ids, padding_mask)` returns `[batch, length,
    hidden_dim]` from the backbone's own variables, exact at the positions
    `reads` names (`READS`); the other positions are zeros. `block` is the
    reference's transformer block at inference; a strategy changes how its
    steps run (`dense`, `attend`, `layer_norm`), not what they compute.
    """

    reads = "every_token"

    def applies(self):
        """Whether it runs on the current backend."""
        return True

    def forward(self, backbone, token_ids, padding_mask):
        raise NotImplementedError

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
        attention_output = self.layer_norm(layer.attention_layer_norm, attention_output + queries)

        # Feed Forward Network
        ffn_output = self.dense(layer.intermediate_dense, attention_output)
        ffn_output = apply_activation(ffn_output, layer.activation)
        ffn_output = self.dense(layer.output_dense, ffn_output)
        return self.layer_norm(layer.output_layer_norm, ffn_output + attention_output)

    def dense(self, layer, x):
        return layer(x)

    def layer_norm(self, layer, x):
        return layer(x)

    def attend(self, attention, query, key, value, padding):
        """`[batch, query_length, hidden_dim]` contexts of `[batch, length, hidden_dim]` projections."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(reads={self.reads!r})"
