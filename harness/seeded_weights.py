"""Deterministic weights from a seed, shared by the golden generator and the tests.

Full-size goldens do not store their 66M+ weights: they store the seed and a
sha256 of the weight bytes, and both sides regenerate the weights here.

Scales are chosen so every part of the math shows in the outputs: embeddings
are small (so the LayerNorm epsilon matters), linear weights have std
1.5/sqrt(fan_in) (so attention is peaked, not uniform, and activations see
values of order 1), LayerNorm scales and all biases are perturbed (so a
swapped or dropped parameter cannot hide).
"""

import hashlib

import numpy as np


def seeded_weights(shapes, seed, keep=()):
    """float32 arrays for `{hf_name: shape}`, drawn in sorted name order.
    Names ending with an entry of `keep` are not drawn (the caller keeps its own)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in sorted(shapes.items()):
        if any(name.endswith(k) for k in keep):
            continue
        shape = tuple(shape)
        normal = rng.standard_normal(shape)
        if "layer_norm" in name.lower() and name.endswith("weight"):
            value = 1.0 + 0.1 * normal
        elif name.endswith("bias"):
            value = 0.1 * normal
        elif "embeddings" in name:
            value = 0.02 * normal
        else:
            value = normal * 1.5 / np.sqrt(shape[-1])
        weights[name] = value.astype(np.float32)
    return weights


def weights_digest(weights):
    h = hashlib.sha256()
    for name, value in sorted(weights.items()):
        value = np.ascontiguousarray(value, dtype=np.float32)
        h.update(f"{name}|{value.shape}".encode())
        h.update(value.tobytes())
    return "sha256:" + h.hexdigest()
