"""Deterministic weights from a seed, shared by the golden generator and the tests.

Full-size goldens do not store their 66M+ weights: they store the seed and a
sha256 of the weight bytes, and both sides regenerate the weights here.

Scales are chosen so every part of the math shows in the outputs: embeddings
are small (so the LayerNorm epsilon matters), linear weights have std
1.5/sqrt(fan_in) (so attention is peaked, not uniform, and activations see
values of order 1), every LayerNorm gain is 1 + N(0, 0.1) and every bias
N(0, 0.1) (so a swapped or dropped parameter cannot hide).
"""

import hashlib
import re

import numpy as np

# HF spells LayerNorm two ways: `embeddings.LayerNorm` and `sa_layer_norm`,
# `output_layer_norm`, `vocab_layer_norm`.
LAYER_NORM = re.compile(r"layer_?norm", re.IGNORECASE)


def parameter_kind(name):
    """'layer_norm_gain', 'bias', 'embedding' or 'linear' for an HF weight name."""
    if name.endswith(".weight") and LAYER_NORM.search(name):
        return "layer_norm_gain"
    if name.endswith("bias"):
        return "bias"
    if "embeddings" in name:
        return "embedding"
    return "linear"


# Scale of the LayerNorms that `small_norms` names, and of every bias then.
SMALL_SCALE = 0.02


def intended_distribution(name, shape, small_norms=None):
    """(mean, std) that `seeded_weights` draws the weight `name` from."""
    kind = parameter_kind(name)
    scale = (
        SMALL_SCALE
        if small_norms
        and (kind == "bias" and not LAYER_NORM.search(name) or LAYER_NORM.search(name) and re.search(small_norms, name))
        else 1.0
    )
    if kind == "layer_norm_gain":
        return scale, 0.1 * scale
    if kind == "bias":
        return 0.0, 0.1 * scale
    if kind == "embedding":
        return 0.0, 0.02
    return 0.0, 1.5 / np.sqrt(shape[-1])


def seeded_weights(shapes, seed, keep=(), small_norms=None):
    """float32 arrays for `{hf_name: shape}`, drawn in sorted name order.
    Names ending with an entry of `keep` are not drawn (the caller keeps its own).

    `small_norms` (a regex) draws the LayerNorms it names, and every bias
    outside LayerNorms, 50x smaller: the LayerNorm after a small one then sees
    inputs of variance ~1e-3, where its epsilon shows (at natural scale an
    epsilon of 1e-5 instead of 1e-12 moves outputs by only ~5e-6)."""
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in sorted(shapes.items()):
        if any(name.endswith(k) for k in keep):
            continue
        shape = tuple(shape)
        mean, std = intended_distribution(name, shape, small_norms)
        weights[name] = (mean + std * rng.standard_normal(shape)).astype(np.float32)
    return weights


def weights_digest(weights):
    h = hashlib.sha256()
    for name, value in sorted(weights.items()):
        value = np.ascontiguousarray(value, dtype=np.float32)
        h.update(f"{name}|{value.shape}".encode())
        h.update(value.tobytes())
    return "sha256:" + h.hexdigest()
