# Which positions of the backbone's output a caller reads: every position (as
# the reference computes it, padding included), the real tokens only, or the
# first token only. A strategy may leave the positions not read as zeros.
READS = ("every_token", "real_tokens", "first_token")


class InferenceStrategy:
    """A way to compute the backbone's last hidden states for inference.

    `forward(backbone, token_ids, padding_mask)` returns `[batch, length,
    hidden_dim]` from the backbone's own variables, exact at the positions
    `reads` names (`READS`); the other positions are zeros.
    """

    reads = "every_token"

    def applies(self):
        """Whether it runs on the current backend."""
        return True

    def forward(self, backbone, token_ids, padding_mask):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(reads={self.reads!r})"
