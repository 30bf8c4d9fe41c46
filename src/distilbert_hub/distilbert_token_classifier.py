import keras

from distilbert_hub.distilbert_token_classifier_preprocessor import DistilBertTokenClassifierPreprocessor
from distilbert_hub.entity_decoding import EntityDecoder
from distilbert_hub.input_checks import check_class_labels, leading_shape
from distilbert_hub.layers.initializers import weight_initializer
from distilbert_hub.pipeline_outputs import as_text, describe, softmax, texts_argument
from distilbert_hub.task import Task, check_backbone, check_id2label, default_id2label

AGGREGATION_STRATEGIES = ("none", "simple", "first", "average", "max")


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertTokenClassifier(Task):
    """Per-token classification (NER, POS), equal to
    `DistilBertForTokenClassification`: dropout -> Dense on every token.
    Output logits `[batch, length, num_classes]`. `id2label` (class id as a
    string to label name, as an HF config's) names the classes for
    `entities`; None gives transformers' `LABEL_i`."""

    preprocessor_cls = DistilBertTokenClassifierPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None, dropout=0.1, id2label=None, **kwargs):
        check_backbone(backbone)
        if int(num_classes) != num_classes or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2 for token classification; got {num_classes!r}.")

        # === Layers ===
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes, kernel_initializer=weight_initializer(), dtype=backbone.dtype_policy, name="logits"
        )

        # === Functional Model ===
        inputs = backbone.input
        outputs = self.output_dense(self.output_dropout(backbone(inputs)))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout
        self.id2label = check_id2label(id2label, num_classes, type(self).__name__)
        self._setup_task(backbone, preprocessor)

    def check_labels(self, y, x):
        check_class_labels(y, self.num_classes, type(self).__name__, shape=leading_shape(x, "token_ids", 2))

    def compile_defaults(self):
        """Cross-entropy on logits averaged over the tokens with a sample weight
        (first word pieces only), as transformers averages over the labels that
        are not -100; accuracy weighted by the same weights."""
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
            "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy()],
        }

    def get_config(self):
        return super().get_config() | {
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "id2label": self.id2label,
        }

    # --- named entities as transformers' pipeline --------------------------------

    def entities(self, inputs, aggregation_strategy="none", ignore_labels=("O",), batch_size=32):
        """Entities of raw text, equal to transformers'
        `pipeline("token-classification")` (`"ner"`), offsets from the
        tokenizer.

        `aggregation_strategy="none"` gives one dict per word piece
        `{"entity", "score", "index", "word", "start", "end"}` (`index` counts
        `[CLS]` as 0); `"simple"` groups adjacent pieces of one entity
        (B-/I- tags) into `{"entity_group", "score", "word", "start",
        "end"}`; `"first"`, `"average"` and `"max"` first give each word the
        label of its first piece, of its averaged scores, or of its most
        confident piece. Entities labelled with one of `ignore_labels` (None:
        `["O"]`, as the pipeline) are left out. Texts longer than the
        preprocessor's `sequence_length` are cut, as the pipeline cuts at the
        tokenizer's `model_max_length`. A single text gives a list of
        entities, a list of texts one list per text.
        """
        method = f"{type(self).__name__}.entities"
        if self.preprocessor is None:
            raise ValueError(f"{method} needs a preprocessor (the model has none).")
        if isinstance(aggregation_strategy, str):
            aggregation_strategy = aggregation_strategy.lower()
        if aggregation_strategy not in AGGREGATION_STRATEGIES:
            raise ValueError(
                f"{method}: aggregation_strategy must be one of {AGGREGATION_STRATEGIES}; got {aggregation_strategy!r}."
            )
        if ignore_labels is None:
            ignore_labels = ["O"]
        if isinstance(ignore_labels, str) or not isinstance(ignore_labels, (list, tuple, set, frozenset)):
            raise TypeError(f"{method}: ignore_labels must be a list of label names; got {describe(ignore_labels)}.")
        ignore_labels = [as_text(label, "ignore_labels", method) for label in ignore_labels]
        texts, single = texts_argument(inputs, method)
        tokenizer = self.preprocessor.tokenizer
        encodings = tokenizer.encode_packed(texts)
        keep = self.preprocessor.sequence_length - 2
        rows, offsets, special = [], [], []
        for encoding in encodings:
            ids, spans, mask = encoding.ids[1:-1][:keep], encoding.offsets[1:-1][:keep], encoding.special_tokens_mask
            rows.append([tokenizer.cls_token_id, *ids, tokenizer.sep_token_id])
            offsets.append([(0, 0), *spans, (0, 0)])
            special.append([1, *mask[1:-1][:keep], 1])
        id2label = self.id2label or default_id2label(self.num_classes)
        decoder = EntityDecoder(tokenizer, id2label, aggregation_strategy)
        results = []
        for text, row, spans, mask, logits in zip(texts, rows, offsets, special, self._predict_rows(rows, batch_size)):
            entities = decoder(text, row, spans, mask, softmax(logits[: len(row)]))
            results.append(
                [
                    e
                    for e in entities
                    if e.get("entity") not in ignore_labels and e.get("entity_group") not in ignore_labels
                ]
            )
        return results[0] if single else results
