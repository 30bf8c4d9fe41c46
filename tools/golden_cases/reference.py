"""Shared pieces for running the `transformers` reference deterministically."""

import numpy as np
import torch

FLOAT32_HIDDEN_ATOL = 1e-5
FLOAT32_REASON = (
    "float32 on CPU: the same math in another framework differs only by "
    "rounding (~1e-6 on values of order 1)"
)


def deterministic_torch():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)


def seeded_state_dict(model, seed, keep=()):
    """Weights for `model` from a numpy generator, in sorted name order.

    Scales are chosen so every part of the math is visible in the outputs:
    embeddings are small (so the LayerNorm epsilon matters), linear weights
    have std 1.5/sqrt(fan_in) (so attention is peaked, not uniform, and the
    activation sees values of order 1), LayerNorm scales and all biases are
    perturbed (so a swapped or dropped parameter cannot hide).
    Parameters named in `keep` keep the model's own values.
    """
    rng = np.random.default_rng(seed)
    state = {}
    for name, tensor in sorted(model.state_dict().items()):
        shape = tuple(tensor.shape)
        if any(name.endswith(k) for k in keep):
            state[name] = tensor.detach().numpy().astype(np.float32)
            continue
        normal = rng.standard_normal(shape)
        if "layer_norm" in name.lower() and name.endswith("weight"):
            value = 1.0 + 0.1 * normal
        elif name.endswith("bias"):
            value = 0.1 * normal
        elif "embeddings" in name:
            value = 0.02 * normal
        else:
            value = normal * 1.5 / np.sqrt(shape[-1])
        state[name] = value.astype(np.float32)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    return state


def padded_token_ids(rng, vocab_size, lengths, sequence_length, first_id=1):
    """Random ids in [first_id, vocab_size) for real tokens, 0 after them."""
    ids = np.zeros((len(lengths), sequence_length), dtype=np.int32)
    mask = np.zeros((len(lengths), sequence_length), dtype=np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(first_id, vocab_size, size=length)
        mask[row, :length] = 1
    return ids, mask
