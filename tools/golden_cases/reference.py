"""Shared pieces for running the `transformers` reference deterministically."""

import numpy as np

from harness.seeded_weights import seeded_weights

FLOAT32_HIDDEN_ATOL = 1e-5
FLOAT32_REASON = (
    "float32 on CPU: the same math in another framework differs only by rounding (~1e-6 on values of order 1)"
)


def deterministic_torch():
    import torch

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def seeded_state_dict(model, seed, keep=(), small_norms=None):
    """Load `harness.seeded_weights` into `model`; return its full state dict as numpy."""
    import torch

    shapes = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    drawn = seeded_weights(shapes, seed, keep=keep, small_norms=small_norms)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in drawn.items()}, strict=False)
    return {name: t.detach().numpy().astype(np.float32) for name, t in sorted(model.state_dict().items())}


def padded_token_ids(rng, vocab_size, lengths, sequence_length, first_id=1):
    """Random ids in [first_id, vocab_size) for real tokens, 0 after them."""
    ids = np.zeros((len(lengths), sequence_length), dtype=np.int32)
    mask = np.zeros((len(lengths), sequence_length), dtype=np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(first_id, vocab_size, size=length)
        mask[row, :length] = 1
    return ids, mask
