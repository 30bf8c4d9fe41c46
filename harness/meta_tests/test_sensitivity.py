"""The goldens see everything: perturbing any one parameter tensor by 1% of
its scale, or changing any constant or option, makes a comparison fail.

Each test lists what its goldens cannot see; the only parameters allowed to
be invisible are the attention key biases, which no input can reveal: they
add q . b_k to every score of a query's row, and softmax ignores a constant
shift of a row.
"""

import re

import keras
import numpy as np
import pytest

from distilbert_hub.convert.hf_weights import backbone_weight_map, task_weight_map
from harness.golden import load_case
from harness.runner import (
    backbone_from_golden,
    compare_outputs,
    model_inputs,
    run_backbone_case,
    run_head_case,
    run_preprocessor_case,
    run_tokenizer_case,
    task_from_golden,
)

MATHEMATICALLY_INVISIBLE = re.compile(r"attention\.k_lin\.bias$")
BACKBONE_CASES = [
    "backbone_gelu_padded",
    "backbone_relu_padded",
    "backbone_sinusoidal_padded",
    "backbone_single_head_padded",
]
HEAD_CASES = [
    "head_text_classifier",
    "head_masked_lm",
    "head_token_classifier",
    "head_question_answerer",
    "head_multiple_choice",
]


def fails(golden, outputs):
    return not all(c.passed for c in compare_outputs(golden, outputs))


def blind_parameters(golden, model, entries, run):
    """HF names of the tensors whose 1% perturbation the golden does not see."""
    rng = np.random.default_rng(0)
    blind = []
    for entry in entries:
        original = keras.ops.convert_to_numpy(entry.variable)
        scale = float(np.sqrt(np.mean(original.astype(np.float64) ** 2)))
        entry.variable.assign(original + 0.01 * scale * rng.standard_normal(original.shape).astype(original.dtype))
        if not fails(golden, run(golden, model)):
            blind.append(entry.hf_name)
        entry.variable.assign(original)
    return blind


@pytest.mark.parametrize("case_id", BACKBONE_CASES)
def test_every_backbone_parameter_is_seen(case_id):
    golden = load_case(case_id)
    backbone = backbone_from_golden(golden)
    assert not fails(golden, run_backbone_case(golden, backbone))
    blind = blind_parameters(golden, backbone, backbone_weight_map(backbone), run_backbone_case)
    unexplained = [name for name in blind if not MATHEMATICALLY_INVISIBLE.search(name)]
    assert not unexplained, f"{case_id} cannot see a 1% change of: {unexplained}"


@pytest.mark.parametrize("case_id", HEAD_CASES)
def test_every_head_golden_parameter_is_seen(case_id):
    golden = load_case(case_id)
    task = task_from_golden(golden)
    blind = blind_parameters(golden, task, task_weight_map(task), run_head_case)
    unexplained = [name for name in blind if not MATHEMATICALLY_INVISIBLE.search(name)]
    assert not unexplained, f"{case_id} cannot see a 1% change of: {unexplained}"


def layer_norms(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.LayerNormalization)]


# At natural scale an epsilon of 1e-5 moves outputs by ~5e-6, under the
# tolerance; these goldens draw some LayerNorms small so that the next ones
# see small inputs (tools/golden_cases/backbone.py, SMALL_NORM_CONFIGS).
# family -> (goldens, the LayerNorms (by path prefix) the family must see)
EPSILON_CASES = {
    "backbone": (["backbone_small_norms_a_padded", "backbone_small_norms_b_padded"], ""),
    "masked_lm head": (["head_masked_lm_small_norms"], "mlm_head/"),
}


@pytest.mark.parametrize("family", sorted(EPSILON_CASES))
def test_every_layer_norm_epsilon_is_seen(family):
    case_ids, prefix = EPSILON_CASES[family]
    blind_everywhere = None
    for case_id in case_ids:
        golden = load_case(case_id)
        model = backbone_from_golden(golden) if golden.kind == "backbone" else task_from_golden(golden)
        run = run_backbone_case if golden.kind == "backbone" else run_head_case
        norms = [norm for norm in layer_norms(model) if norm.path.startswith(prefix)]
        assert norms, f"{case_id}: no LayerNorm under {prefix!r}"
        blind = set()
        for norm in norms:
            norm.epsilon = 1e-5  # HF uses 1e-12 everywhere in DistilBERT
            if not fails(golden, run(golden, model)):
                blind.add(norm.path)
            norm.epsilon = 1e-12
        blind_everywhere = blind if blind_everywhere is None else blind_everywhere & blind
    assert not blind_everywhere, (
        f"no golden of {case_ids} sees LayerNorm epsilon 1e-5 instead of 1e-12 in: {sorted(blind_everywhere)}"
    )


def rebuilt(golden, **changes):
    from distilbert_hub import DistilBertBackbone
    from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config
    from distilbert_hub.convert.hf_weights import assign_hf_weights

    kwargs = backbone_kwargs_from_hf_config(golden.config) | changes
    backbone = DistilBertBackbone(**kwargs)
    assign_hf_weights(backbone_weight_map(backbone), golden.weights)
    return backbone


OPTION_CHANGES = {
    "activation relu for gelu": ("backbone_gelu_padded", lambda g: run_backbone_case(g, rebuilt(g, activation="relu"))),
    "activation gelu for relu": ("backbone_relu_padded", lambda g: run_backbone_case(g, rebuilt(g, activation="gelu"))),
    "2 heads for 4": ("backbone_gelu_padded", lambda g: run_backbone_case(g, rebuilt(g, num_heads=2))),
    "1 head for 6": ("backbone_deep_padded", lambda g: run_backbone_case(g, rebuilt(g, num_heads=1))),
    "dropout at inference": (
        "backbone_gelu_padded",
        lambda g: {
            f"hidden_states/{i:02d}": keras.ops.convert_to_numpy(s)
            for i, s in enumerate(rebuilt(g, dropout=0.1).hidden_states_model()(model_inputs(g), training=True))
        },
    ),
    "padding ignored": (
        "backbone_gelu_padded",
        lambda g: run_backbone_case(
            g.__class__(
                **{**g.__dict__, "inputs": {**g.inputs, "padding_mask": np.ones_like(g.inputs["padding_mask"])}}
            ),
            backbone_from_golden(g),
        ),
    ),
}


@pytest.mark.parametrize("change", sorted(OPTION_CHANGES))
def test_every_backbone_option_is_seen(change):
    case_id, run = OPTION_CHANGES[change]
    golden = load_case(case_id)
    outputs = run(golden)
    # Compare against the golden with its own (real) padding mask.
    assert fails(golden, outputs), f"{case_id} cannot see: {change}"


def test_the_sinusoidal_table_is_the_references():
    from distilbert_hub import DistilBertBackbone
    from distilbert_hub.convert.hf_config import backbone_kwargs_from_hf_config

    golden = load_case("backbone_sinusoidal_padded")
    ours = DistilBertBackbone(**backbone_kwargs_from_hf_config(golden.config))  # its own table, nothing loaded
    table = keras.ops.convert_to_numpy(ours.embeddings.position_embedding)
    np.testing.assert_allclose(table, golden.weights["embeddings.position_embeddings.weight"], atol=1e-6, rtol=0)
    assert not ours.embeddings.position_embedding.trainable


TOKENIZER_FLIPS = {
    "lowercase": lambda c: {"lowercase": not c["lowercase"]},
    "strip_accents": lambda c: {
        "strip_accents": not (c["lowercase"] if c["strip_accents"] is None else c["strip_accents"])
    },
    "tokenize_chinese_chars": lambda c: {"tokenize_chinese_chars": not c["tokenize_chinese_chars"]},
    "special_tokens_in_strings": lambda c: {"special_tokens_in_strings": not c["special_tokens_in_strings"]},
}


@pytest.mark.parametrize("option", sorted(TOKENIZER_FLIPS))
@pytest.mark.parametrize("case_id", ["tokenizer_uncased", "tokenizer_cased", "tokenizer_special_tokens_in_strings"])
def test_every_tokenizer_option_is_seen(case_id, option):
    golden = load_case(case_id)
    assert fails(golden, run_tokenizer_case(golden, TOKENIZER_FLIPS[option](golden.config))), (
        f"{case_id} cannot see {option} changed"
    )


# round_robin and longest_first differ only on odd budgets (which segment
# keeps the odd token), so they are told apart on the odd-budget golden.
PREPROCESSOR_CHANGES = [
    ("preprocessor_longest_first", {"truncate": "waterfall"}),
    ("preprocessor_longest_first_odd_budget", {"truncate": "round_robin"}),
    ("preprocessor_longest_first_even_budget", {"truncate": "waterfall"}),
    ("preprocessor_only_first", {"truncate": "longest_first"}),
    ("preprocessor_only_second", {"truncate": "longest_first"}),
    ("preprocessor_single", {"sequence_length": 9}),
    ("preprocessor_qa_windows", {"stride": 5}),
    ("preprocessor_qa_windows", {"stride": 7}),
    ("preprocessor_word_labels", {"label_all_word_pieces": True}),
]


@pytest.mark.parametrize("case_id, change", PREPROCESSOR_CHANGES)
def test_every_preprocessor_option_is_seen(case_id, change):
    golden = load_case(case_id)
    try:
        outputs = run_preprocessor_case(golden, change)
    except ValueError:
        return  # the changed option cannot even run on these inputs: visible
    assert fails(golden, outputs), f"{case_id} cannot see {change}"
