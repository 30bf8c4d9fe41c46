"""The seeded weights behind every golden put each parameter at its natural
scale. The expectations are written here from the parameter names, apart from
`harness.seeded_weights`' own classification, so a name it misclassifies
(HF spells LayerNorm `embeddings.LayerNorm` and `*_layer_norm`) fails."""

import re

import numpy as np
import pytest

import distilbert_hub as hub
from distilbert_hub.convert.hf_weights import task_weight_map
from harness.seeded_weights import seeded_weights
from harness.testing import MODELS, TASK_NAMES

# (pattern on the HF name, mean, std as a function of the shape)
EXPECTED = [
    (r"(embeddings\.LayerNorm|sa_layer_norm|output_layer_norm|vocab_layer_norm)\.weight$", 1.0, lambda s: 0.1),
    (r"\.bias$", 0.0, lambda s: 0.1),
    (r"embeddings\.(word|position)_embeddings\.weight$", 0.0, lambda s: 0.02),
    (
        r"(q_lin|k_lin|v_lin|out_lin|lin1|lin2|vocab_transform|pre_classifier|classifier|qa_outputs)\.weight$",
        0.0,
        lambda s: 1.5 / np.sqrt(s[-1]),
    ),
]


# 64 classes: enough values in each classifier kernel for the std bound.
OVERRIDES = {"text_classifier": {"num_classes": 64}, "token_classifier": {"num_classes": 64}}


def off_distribution(value, mean, std):
    """Why `value` is not a sample of N(mean, std), or None. Bounds a sample
    drawn as intended stays well inside: the mean within 5 standard errors,
    the std within 50% (for 32+ values), every value within 6 std."""
    if abs(value.mean() - mean) > 5 * std / np.sqrt(value.size):
        return f"mean {value.mean():.4f}"
    if value.size >= 32 and not 0.5 * std < value.std() < 1.5 * std:
        return f"std {value.std():.4f}"
    if np.abs(value - mean).max() > 6 * std:
        return f"value {value.flat[np.abs(value - mean).argmax()]:.4f}"
    return None


@pytest.mark.parametrize("task", sorted(TASK_NAMES))
def test_every_seeded_parameter_has_its_intended_distribution(task):
    backbone = hub.DistilBertBackbone(
        vocabulary_size=400, num_layers=2, num_heads=4, hidden_dim=64, intermediate_dim=128, max_sequence_length=64
    )
    shapes = {e.hf_name: e.hf_shape for e in task_weight_map(MODELS[task](backbone, **OVERRIDES.get(task, {})))}
    wrong = []
    for name, value in sorted(seeded_weights(shapes, seed=0).items()):
        matches = [(mean, std(value.shape)) for pattern, mean, std in EXPECTED if re.search(pattern, name)]
        if len(matches) != 1:
            wrong.append(f"{name}: matches {len(matches)} expectations, not 1")
        elif problem := off_distribution(value, *matches[0]):
            wrong.append(f"{name} {value.shape}: {problem}, intended N({matches[0][0]}, {matches[0][1]:.4f})")
    assert not wrong, f"{task}: seeded weights off their intended distribution:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    "name",
    [
        "embeddings.LayerNorm.weight",
        "distilbert.embeddings.LayerNorm.weight",
        "transformer.layer.0.sa_layer_norm.weight",
        "vocab_layer_norm.weight",
    ],
)
def test_every_layer_norm_gain_is_near_one(name):
    gain = seeded_weights({name: (768,)}, seed=1)[name]
    assert abs(gain.mean() - 1.0) < 0.02 and 0.08 < gain.std() < 0.12, f"{name}: mean {gain.mean()}, std {gain.std()}"
