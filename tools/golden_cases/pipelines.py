"""Pipeline cases: what transformers' `pipeline(...)` returns on seeded tiny
checkpoints with label names and the real uncased vocabulary, on the fixture
texts (accents, CJK, punctuation, words split into several pieces).

Seeded weights give nearly uniform scores, so each case scales its head (the
classifier kernel, the MLM LayerNorm gain) until the scores it ranks are
apart; `check_separated` refuses a case whose ranked scores are closer than
`MIN_GAP`, so no backend's rounding can swap two candidates.

Each call's result is stored as its structure without the scores
(`harness.pipeline_results`, exact) and the scores in walk order (1e-5).
"""

import hashlib

import numpy as np

from harness.golden import REPO_ROOT, Golden, GoldenOutput
from harness.pipeline_results import SCORE_ATOL, SCORE_REASON, STRUCTURE_REASON, split_scores
from tools.golden_cases import register, seed_for
from tools.golden_cases.backbone import hf_config_dict
from tools.golden_cases.reference import deterministic_torch, seeded_state_dict

VOCABULARY = "harness/fixtures/bert_base_uncased_vocab.txt"
# Narrow (16) so that the real vocabulary's embedding stays 2 MB per golden.
CONFIG = dict(vocab_size=30522, dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=64)
NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
SENTIMENT_LABELS = ["negative", "neutral", "positive"]
# Ranked scores apart by this fraction of the largest: a backend's rounding
# (~1e-6 relative) cannot reorder them.
MIN_GAP = 1e-3

TEXTS = [
    "Angela Merkel met Emmanuel Macron in Zürich.",
    "Café crème brûlée à la française, naïve façade, São Paulo!",
    "東京は日本の首都です。 Tokyo is big.",
    "Unbelievably, the hyperparameters were miscalibrated (again)...",
    "It's 3:45pm -- we've shipped v0.1.0 & the tests pass: 100%.",
]
MASK_TEXTS = [
    "The capital of France is [MASK].",
    "Café [MASK] à la française, naïve façade!",
    "東京は日本の[MASK]です。",
    "The [MASK] sat on the [MASK] mat.",
]
PAIRS = [
    {"text": "Is it raining in Zürich?", "text_pair": "The weather in Zürich is sunny."},
    {"text": "東京は大きい。", "text_pair": "Tokyo is big, isn't it?"},
]

TASKS = {
    "text_classification": ("DistilBertForSequenceClassification", "text-classification"),
    "fill_mask": ("DistilBertForMaskedLM", "fill-mask"),
    "token_classification": ("DistilBertForTokenClassification", "token-classification"),
}


def vocabulary_config():
    return {
        "vocabulary": VOCABULARY,
        "vocabulary_sha256": hashlib.sha256((REPO_ROOT / VOCABULARY).read_bytes()).hexdigest(),
        "lowercase": True,
    }


def reference_tokenizer():
    from transformers import DistilBertTokenizer
    from transformers.models.bert.tokenization_bert import load_vocab

    return DistilBertTokenizer(vocab=load_vocab(str(REPO_ROOT / VOCABULARY)), do_lower_case=True)


def seeded_model(task, seed, head_scale, **config_overrides):
    """A transformers model of `task` with seeded weights, its head scaled by
    `head_scale` (the classifier kernel, or the MLM LayerNorm gain)."""
    import torch
    import transformers
    from transformers import DistilBertConfig

    class_name, _ = TASKS[task]
    config = DistilBertConfig(attn_implementation="eager", **CONFIG, **config_overrides)
    deterministic_torch()
    model = getattr(transformers, class_name)(config).eval()
    model.config.architectures = [class_name]  # as save_pretrained writes it
    seeded_state_dict(model, seed, keep=("vocab_projector.weight",))
    scaled = "vocab_layer_norm.weight" if task == "fill_mask" else "classifier.weight"
    with torch.no_grad():
        model.state_dict()[scaled].mul_(head_scale)
    # The MLM projection is the word embedding (tied): stored once.
    state = {
        name: t.detach().numpy().astype(np.float32)
        for name, t in sorted(model.state_dict().items())
        if name != "vocab_projector.weight"
    }
    return model, state


def reference_pipeline(task, model):
    from transformers import pipeline

    return pipeline(TASKS[task][1], model=model, tokenizer=reference_tokenizer(), device="cpu")


def check_separated(case_id, call, scores_lists):
    """Each ranked list of scores decreasing by at least MIN_GAP times its largest magnitude."""
    for scores in scores_lists:
        scores = np.asarray(scores, np.float64)
        gaps = -np.diff(scores)
        if len(gaps) and gaps.min() < MIN_GAP * np.abs(scores).max():
            raise ValueError(
                f"golden case '{case_id}', call {call}: ranked scores {scores} are closer than {MIN_GAP}; "
                "scale the head so that no backend's rounding can reorder them."
            )


def ranked_lists(result):
    """The lists of dicts with a 'score' that a pipeline ranks (fill-mask, top_k classification)."""
    if isinstance(result, list) and result and all(isinstance(item, dict) and "score" in item for item in result):
        return [[item["score"] for item in result]]
    if isinstance(result, list):
        return [scores for item in result for scores in ranked_lists(item)]
    return []


def build_pipeline_case(case, task, head_scale, calls, config_overrides, ranked=True):
    model, weights = seeded_model(task, seed_for(case.case_id), head_scale, **config_overrides)
    reference = reference_pipeline(task, model)
    outputs = {}
    for number, (inputs, kwargs) in enumerate(calls):
        result = reference(inputs, **kwargs)
        if ranked and (task == "fill_mask" or "top_k" in kwargs):  # without top_k: one best label per text
            check_separated(case.case_id, number, ranked_lists(result))
        structure, scores = split_scores(result)
        outputs[f"call_{number:02d}/structure"] = GoldenOutput(structure, 0.0, 0.0, STRUCTURE_REASON)
        outputs[f"call_{number:02d}/scores"] = GoldenOutput(scores, SCORE_ATOL, 0.0, SCORE_REASON)
    import json

    return Golden(
        case_id=case.case_id,
        kind=case.kind,
        provenance={"task": task, "hf_class": TASKS[task][0], "pipeline": TASKS[task][1]},
        config=hf_config_dict(model.config) | {"pipeline_vocabulary": vocabulary_config()},
        inputs={"calls": [json.dumps([{"inputs": i, "kwargs": k} for i, k in calls], ensure_ascii=False)]},
        outputs=outputs,
        weights=weights,
    )


TEXT_CLASSIFICATION_CALLS = [
    (TEXTS[0], {}),
    (TEXTS, {}),
    (TEXTS[1], {"top_k": None}),
    (TEXTS, {"top_k": 2}),
    (TEXTS[2], {"top_k": 3, "function_to_apply": "sigmoid"}),
    (TEXTS[3], {"top_k": None, "function_to_apply": "none"}),
    (PAIRS, {"top_k": None}),
    (PAIRS[0], {}),
]
FILL_MASK_CALLS = [
    (MASK_TEXTS[0], {}),
    (MASK_TEXTS, {"top_k": 3}),
    (MASK_TEXTS[1], {"top_k": 4, "targets": ["paris", "london", "berlin", "crème", "Tokyo"]}),
    (MASK_TEXTS[3], {"top_k": 2, "targets": "paris"}),
]
TOKEN_CLASSIFICATION_CALLS = [
    (TEXTS, {"aggregation_strategy": strategy}) for strategy in ("none", "simple", "first", "average", "max")
] + [
    (TEXTS[0], {"aggregation_strategy": "simple", "ignore_labels": []}),
    (TEXTS[3], {"aggregation_strategy": "first", "ignore_labels": ["O", "B-PER"]}),
]

register(
    "pipeline_text_classification",
    "pipeline",
    lambda case: build_pipeline_case(
        case,
        "text_classification",
        1.0,
        TEXT_CLASSIFICATION_CALLS,
        {"id2label": dict(enumerate(SENTIMENT_LABELS)), "problem_type": "single_label_classification"},
    ),
)
register(
    "pipeline_text_classification_multi_label",
    "pipeline",
    lambda case: build_pipeline_case(
        case,
        "text_classification",
        1.0,
        [(TEXTS, {"top_k": None}), (TEXTS[4], {})],
        {"id2label": {0: "toxic", 1: "spam", 2: "news", 3: "sports"}, "problem_type": "multi_label_classification"},
    ),
)
register(
    "pipeline_fill_mask",
    "pipeline",
    lambda case: build_pipeline_case(case, "fill_mask", 20.0, FILL_MASK_CALLS, {}),
)
register(
    "pipeline_token_classification",
    "pipeline",
    # Entities are not ranked; the argmax margins are checked by the scale: at
    # 400 the best label of each piece wins by far more than rounding.
    lambda case: build_pipeline_case(
        case,
        "token_classification",
        1.0,
        TOKEN_CLASSIFICATION_CALLS,
        {"id2label": dict(enumerate(NER_LABELS))},
        ranked=False,
    ),
)
