"""Pipeline cases: what transformers' `pipeline(...)` returns on seeded tiny
checkpoints with label names and the real uncased vocabulary, on the fixture
texts (accents, CJK, punctuation, words split into several pieces).

Seeded weights give nearly uniform scores, so each case scales its head (the
classifier kernel, the MLM LayerNorm gain) until the scores it ranks are
apart; `check_separated` refuses a case whose ranked scores are closer than
`MIN_GAP`, so no backend's rounding can swap two candidates.

Each call's result is stored as its structure without the scores
(`harness.pipeline_results`, exact) and the scores in walk order (1e-5).
Sentence embeddings are the `feature-extraction` pipeline's token states
pooled and normalized as sentence-transformers does (`pooled_embeddings`),
stored as `[texts, dim]` float32 (1e-5).
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
    "feature_extraction": ("DistilBertModel", "feature-extraction"),
    # transformers 4.x only (tox -e crosscheck-qa): transformers 5 has no such pipeline.
    "question_answering": ("DistilBertForQuestionAnswering", "question-answering"),
}
# The weight each task's head scale multiplies.
SCALED_WEIGHT = {"fill_mask": "vocab_layer_norm.weight", "question_answering": "qa_outputs.weight"}


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
    `head_scale` (the classifier kernel, the QA kernel, or the MLM LayerNorm gain)."""
    import torch
    import transformers
    from transformers import DistilBertConfig

    class_name, _ = TASKS[task]
    config = DistilBertConfig(attn_implementation="eager", **CONFIG, **config_overrides)
    deterministic_torch()
    model = getattr(transformers, class_name)(config).eval()
    model.config.architectures = [class_name]  # as save_pretrained writes it
    seeded_state_dict(model, seed, keep=("vocab_projector.weight",))
    if task != "feature_extraction":  # no head
        with torch.no_grad():
            model.state_dict()[SCALED_WEIGHT.get(task, "classifier.weight")].mul_(head_scale)
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


EMBEDDING_ATOL = 1e-5
EMBEDDING_REASON = "float32 token states (agreeing to ~1e-6) pooled and L2-normalized in float32 on CPU: rounding only"
FEATURE_EXTRACTION_CALLS = [
    (TEXTS, {"pooling": "mean", "normalize": True}),  # all-MiniLM-L6-v2's recipe
    (TEXTS, {"pooling": "mean", "normalize": False}),
    (TEXTS[:3], {"pooling": "cls", "normalize": True}),
    (TEXTS, {"pooling": "max", "normalize": False}),
    (TEXTS[2:3], {"pooling": "max", "normalize": True}),
]


def pooled_embeddings(token_states, pooling, normalize):
    """sentence-transformers' `Pooling` (`mean` over real tokens, `cls`,
    `max`) and `Normalize`, in torch float32 as there, on one text's
    `feature-extraction` output `[1, tokens, dim]` (a single text has no
    padding, so every token is real)."""
    import torch

    states = torch.tensor(token_states, dtype=torch.float32)
    mask = torch.ones(states.shape[:2], dtype=torch.float32).unsqueeze(-1).expand(states.size())
    if pooling == "cls":
        pooled = states[:, 0]
    elif pooling == "mean":
        pooled = torch.sum(states * mask, 1) / torch.clamp(mask.sum(1), min=1e-9)
    else:
        pooled = torch.max(torch.where(mask == 0, torch.tensor(-1e9), states), 1)[0]
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
    return pooled[0].numpy()


def build_feature_extraction_case(case):
    import json

    model, weights = seeded_model("feature_extraction", seed_for(case.case_id), None)
    reference = reference_pipeline("feature_extraction", model)
    outputs = {}
    for number, (texts, kwargs) in enumerate(FEATURE_EXTRACTION_CALLS):
        embeddings = [pooled_embeddings(reference(text), **kwargs) for text in texts]
        outputs[f"call_{number:02d}/embeddings"] = GoldenOutput(
            np.stack(embeddings).astype(np.float32), EMBEDDING_ATOL, 0.0, EMBEDDING_REASON
        )
    return Golden(
        case_id=case.case_id,
        kind=case.kind,
        provenance={"task": "feature_extraction", "hf_class": "DistilBertModel", "pipeline": "feature-extraction"},
        config=hf_config_dict(model.config) | {"pipeline_vocabulary": vocabulary_config()},
        inputs={
            "calls": [json.dumps([{"inputs": t, "kwargs": k} for t, k in FEATURE_EXTRACTION_CALLS], ensure_ascii=False)]
        },
        outputs=outputs,
        weights=weights,
    )


register("pipeline_feature_extraction", "pipeline", build_feature_extraction_case)
