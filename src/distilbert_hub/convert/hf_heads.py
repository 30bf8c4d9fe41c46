"""What `transformers` knows about each task head, in one table (`HEADS`), read by the loaders, the
exporter, the converter CLI, the harness and the golden generator (tools/golden_cases). This module
imports only the standard library, so the golden generator, which runs without Keras, loads it on its own.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HfHead:
    # The `transformers` class this task equals.
    architecture: str
    # (HF name prefix, attribute path on the task, kind): kind "dense" gives `PREFIX.weight` (transposed)
    # and `PREFIX.bias`, "layer_norm" `PREFIX.weight` / `PREFIX.bias` from gamma / beta, "variable" PREFIX.
    weights: tuple = ()
    # The config.json field holding the head's dropout rate (None: no field of its own).
    dropout_key: str | None = None
    # num_labels / id2label / label2id describe the head's classes.
    labels: bool = False
    # config.json's problem_type (regression, single- or multi-label) is kept.
    problem_type: bool = False
    # Head weights tied to a backbone weight (HF names, with `distilbert.`): a checkpoint's copy must equal it.
    tied: dict = field(default_factory=dict)


HEADS = {
    "DistilBertTextClassifier": HfHead(
        "DistilBertForSequenceClassification",
        weights=(("pre_classifier", "pooled_dense", "dense"), ("classifier", "output_dense", "dense")),
        dropout_key="seq_classif_dropout",
        labels=True,
        problem_type=True,
    ),
    "DistilBertTokenClassifier": HfHead(
        "DistilBertForTokenClassification",
        weights=(("classifier", "output_dense", "dense"),),
        dropout_key="dropout",  # transformers' token classifier reuses the backbone's rate
        labels=True,
    ),
    "DistilBertQuestionAnswerer": HfHead(
        "DistilBertForQuestionAnswering", weights=(("qa_outputs", "output_dense", "dense"),), dropout_key="qa_dropout"
    ),
    "DistilBertMultipleChoice": HfHead(
        "DistilBertForMultipleChoice",
        weights=(("pre_classifier", "pooled_dense", "dense"), ("classifier", "output_dense", "dense")),
        dropout_key="seq_classif_dropout",
    ),
    "DistilBertMaskedLM": HfHead(
        "DistilBertForMaskedLM",
        weights=(
            ("vocab_transform", "masked_lm_head.transform_dense", "dense"),
            ("vocab_layer_norm", "masked_lm_head.layer_norm", "layer_norm"),
            ("vocab_projector.bias", "masked_lm_head.bias", "variable"),
        ),
        tied={"vocab_projector.weight": "distilbert.embeddings.word_embeddings.weight"},
    ),
    # Pooling has no weights: an embedder is a DistilBertModel.
    "DistilBertTextEmbedder": HfHead("DistilBertModel"),
}
BACKBONE_ARCHITECTURE = "DistilBertModel"
# Every weight prefix of a DistilBertFor* head (outside the `distilbert.` backbone).
HEAD_PREFIXES = tuple(
    sorted(
        {f"{name.split('.')[0]}." for head in HEADS.values() for name in (*(w[0] for w in head.weights), *head.tied)}
    )
)
# `transformers` class -> our task class's name, for the heads with weights.
TASK_NAMES = {head.architecture: name for name, head in HEADS.items() if head.weights}
TIED_WEIGHTS = {name: original for head in HEADS.values() for name, original in head.tied.items()}


def head_of(cls):
    """The table's entry for a task class (or a subclass of one), or None."""
    return next((HEADS[klass.__name__] for klass in cls.__mro__ if klass.__name__ in HEADS), None)


def architecture_of(cls):
    """The `transformers` class a backbone or task class equals."""
    head = head_of(cls)
    return head.architecture if head is not None else BACKBONE_ARCHITECTURE
