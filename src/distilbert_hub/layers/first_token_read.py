import contextlib
import contextvars

import keras
from keras import ops

_first_token_read = contextvars.ContextVar("first_token_read", default=None)


@contextlib.contextmanager
def first_token_read_only(backbone):
    """Within this block the caller reads only the first token of `backbone`'s
    output, so inference may skip the work whose result nobody reads (see
    `tokens_for`)."""
    reset = _first_token_read.set(_FirstTokenRead(backbone))
    try:
        yield
    finally:
        _first_token_read.reset(reset)


def tokens_for(layer, hidden_states, padding_mask, training):
    """The tokens a transformer layer of the backbone computes: every token,
    padded (`EVERY_TOKEN`, the reference's path, the only one outside a
    `first_token_read_only` block or in training), or less.

    Padded positions never reach a real token (their keys are masked in every
    attention), and the last layer's output at the first token takes from
    the other positions only their keys and values. So in such a block a
    layer may run its projections, LayerNorms and feed-forward on the real
    tokens alone (`RealTokens`, torch), and the last layer its query onwards
    on the first token alone (`FirstTokenOfPaddedBatch`, every backend). The
    values read stay the same.
    """
    read = _first_token_read.get()
    if read is None or training:
        return EVERY_TOKEN
    if layer is read.last_layer:
        return FirstTokenOfPaddedBatch(hidden_states)
    tokens = read.real_tokens(padding_mask) if keras.backend.backend() == "torch" else None
    return EVERY_TOKEN if tokens is None or tokens.count == tokens.batch * tokens.length else tokens


class _FirstTokenRead:
    def __init__(self, backbone):
        self.last_layer = backbone.transformer_layers[-1]
        # Every layer of one forward gets the same mask tensor: its tokens are found once.
        self.padding_mask, self.tokens = None, None

    def real_tokens(self, padding_mask):
        if padding_mask is None:
            return None
        if padding_mask is not self.padding_mask:
            self.padding_mask, self.tokens = padding_mask, RealTokens.of(padding_mask)
        return self.tokens


class PaddedTokens:
    """Every token of a padded batch: the layout a layer gets, and the one its
    attention works in. `pack` gives the rows a layer runs on, `queries` those
    whose outputs are read, and the `unpack*` methods return to the padded
    layout."""

    fused_attention = False

    def pack(self, padded):
        return padded

    unpack = queries = unpack_queries = pack_queries = unpack_output = pack


EVERY_TOKEN = PaddedTokens()


class FirstTokenOfPaddedBatch(PaddedTokens):
    """The last layer's work where only the first token is read: its query,
    attention output, LayerNorms and feed-forward at position 0 (5/6 of the
    layer's multiply-adds saved); the keys and values of every position.
    `keras.ops` only, with static shapes, for every backend. The outputs at
    the other positions are zeros."""

    def __init__(self, hidden_states):
        self.padded = hidden_states

    def queries(self, hidden_states):
        return hidden_states[:, :1]

    def unpack_output(self, outputs):
        return ops.slice_update(ops.zeros_like(self.padded), (0, 0, 0), outputs)


class RealTokens(PaddedTokens):
    """The real (unpadded) tokens of a padded batch, packed as the rows of a
    `[tokens, features]` matrix: a batch of mixed lengths drops its padding
    from every GEMM (on a corpus of 128 texts of 5-120 words, sorted by
    length: 2,817 real tokens for 3,296 padded ones at batch 8, 5,056 at
    batch 32).

    Torch only, and written in torch: torch runs eagerly, while jax and
    tensorflow compile once per shape and the number of real tokens changes
    from batch to batch; a `keras.ops` call costs about 30 us of dispatch on
    torch, a tenth of a batch of short texts' time here. A layer's outputs at
    the skipped positions are zeros.
    """

    fused_attention = True

    @classmethod
    def of(cls, padding_mask):
        """None where a row's first token is padding: the last layer reads that
        position's state, which only the padded batch computes."""
        is_real = padding_mask.bool()
        return cls(is_real) if bool(is_real[:, 0].all()) else None

    def __init__(self, is_real):
        self.padding_mask = is_real
        self.batch, self.length = is_real.shape
        self.rows = is_real.reshape(-1).nonzero().squeeze(1)
        self.count = len(self.rows)

    def pack(self, padded):
        """`[batch, length, features]` -> `[tokens, features]`."""
        return padded.reshape(self.batch * self.length, -1).index_select(0, self.rows)

    def unpack(self, packed):
        """`[tokens, features]` -> `[batch, length, features]`, zeros at padding."""
        padded = packed.new_zeros(self.batch * self.length, packed.shape[-1]).index_copy_(0, self.rows, packed)
        return padded.reshape(self.batch, self.length, -1)

    def queries(self, packed):
        return packed

    unpack_queries = unpack_output = unpack
    pack_queries = pack

    def attend(self, query, key, value, num_heads, scale):
        """Multi-head attention of `[batch, length, hidden]` projections over
        the real keys, in one kernel (torch's `scaled_dot_product_attention`):
        `[batch, length, hidden]`."""
        import torch

        def heads(x):
            return x.reshape(x.shape[0], x.shape[1], num_heads, -1).transpose(1, 2)

        mask = self.padding_mask[:, None, None, :]
        context = torch.nn.functional.scaled_dot_product_attention(
            heads(query), heads(key), heads(value), attn_mask=mask, scale=scale
        )
        return context.transpose(1, 2).reshape(query.shape[0], query.shape[1], -1)
