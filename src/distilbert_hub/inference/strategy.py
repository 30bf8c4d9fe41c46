class InferenceStrategy:
    """A way to compute the backbone's last hidden states for inference.

    `forward(backbone, token_ids, padding_mask)` returns `[batch, length,
    hidden_dim]` from the backbone's own variables. With `first_token_only`
    only position 0 is computed (the heads that read `[:, 0]`); the other
    positions are zeros.
    """

    first_token_only = False

    def applies(self):
        """Whether it runs on the current backend."""
        return True

    def forward(self, backbone, token_ids, padding_mask):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(first_token_only={self.first_token_only})"
