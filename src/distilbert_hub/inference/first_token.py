from distilbert_hub.inference.strategy import InferenceStrategy


class FirstTokenOnly(InferenceStrategy):
    """For heads that read the first token alone: every block as the
    reference computes it, the last one at the first token only
    (`first_token_block`). `keras.ops` with static shapes, so it compiles
    once per shape on jax and tensorflow like the reference."""

    def __init__(self):
        super().__init__("first_token")
