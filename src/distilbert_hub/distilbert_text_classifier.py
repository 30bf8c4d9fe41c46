import keras
import numpy as np

from distilbert_hub.distilbert_text_classifier_preprocessor import DistilBertTextClassifierPreprocessor
from distilbert_hub.input_checks import check_class_labels, leading_shape
from distilbert_hub.layers.initializers import weight_initializer
from distilbert_hub.pipeline_outputs import check_fits, check_top_k, describe, sigmoid, softmax
from distilbert_hub.preprocessing import TEXT_TYPES
from distilbert_hub.task import Task, check_backbone, check_id2label, default_id2label

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
SCORE_FUNCTIONS = ("softmax", "sigmoid", "none")


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertTextClassifier(Task):
    """Sequence classification, equal to `DistilBertForSequenceClassification`:
    the first token's hidden state -> Dense + ReLU -> dropout -> Dense.

    Args:
        backbone: a `DistilBertBackbone`.
        num_classes: number of classes (1 gives a regression head, as HF's
            `num_labels=1`).
        preprocessor: a `DistilBertTextClassifierPreprocessor` or None.
        activation: activation of the logits (None: logits, as HF).
        hidden_dim: width of the pre-classifier (default: the backbone's).
        dropout: dropout before the classifier (HF `seq_classif_dropout`).
        id2label: class id (str) to label name, as an HF config's `id2label`;
            None gives transformers' `LABEL_i`.
        problem_type: HF's `problem_type` (`"regression"`,
            `"single_label_classification"`, `"multi_label_classification"`)
            or None; it picks `classify`'s default score function.
    """

    predicts_by_length = True
    reads = "first_token"
    preprocessor_cls = DistilBertTextClassifierPreprocessor

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        hidden_dim=None,
        dropout=0.2,
        id2label=None,
        problem_type=None,
        **kwargs,
    ):
        check_backbone(backbone)
        if problem_type is not None and problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES} or None; got {problem_type!r}.")
        if activation is not None and not isinstance(activation, str):
            raise TypeError(f"activation must be a name like 'softmax' or None; got {activation!r}.")
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}.")
        hidden_dim = hidden_dim or backbone.hidden_dim

        # === Layers ===
        self.pooled_dense = keras.layers.Dense(
            hidden_dim,
            activation="relu",
            kernel_initializer=weight_initializer(),
            dtype=backbone.dtype_policy,
            name="pooled_dense",
        )
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes,
            activation=activation,
            kernel_initializer=weight_initializer(),
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        x = backbone(inputs)[:, 0, :]
        x = self.pooled_dense(x)
        x = self.output_dropout(x)
        outputs = self.output_dense(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.activation = activation
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.id2label = check_id2label(id2label, num_classes, type(self).__name__)
        self.problem_type = problem_type
        self._setup_task(backbone, preprocessor)

    def check_labels(self, y, x):
        if self.num_classes > 1:
            check_class_labels(y, self.num_classes, type(self).__name__, shape=leading_shape(x, "token_ids", 1))

    def compile_defaults(self):
        """Cross-entropy on logits (MSE for one class, a regression head); accuracy."""
        if self.num_classes == 1:
            return {"loss": keras.losses.MeanSquaredError(), "metrics": []}
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=self.activation is None),
            "metrics": [keras.metrics.SparseCategoricalAccuracy()],
        }

    def get_config(self):
        return super().get_config() | {
            "num_classes": self.num_classes,
            "activation": self.activation,
            "hidden_dim": self.hidden_dim,
            "dropout": self.dropout,
            "id2label": self.id2label,
            "problem_type": self.problem_type,
        }

    # --- text classification as transformers' pipeline ---------------------------

    def classify(self, inputs, top_k=1, function_to_apply=None, batch_size=32):
        """Label names and scores for raw text, equal to transformers'
        `pipeline("text-classification")`.

        Args:
            inputs: a text, a pair as `{"text": a, "text_pair": b}` (or the
                tuple `(a, b)`), or a list of these.
            top_k: 1 gives what the pipeline gives without `top_k`: for each
                input its best `{"label", "score"}`: a one-element list for a
                single text, the dict itself for a single pair. An integer k or None (every label) gives, per
                input, that many labels by decreasing score (ties in label
                order, as the pipeline's stable sort), a list of lists for a
                list of inputs.
            function_to_apply: `"softmax"`, `"sigmoid"`, `"none"` or None:
                the pipeline's default, none for `problem_type="regression"`,
                sigmoid for multi-label or one label, else softmax.
        """
        method = f"{type(self).__name__}.classify"
        if self.preprocessor is None:
            raise ValueError(f"{method} needs a preprocessor (the model has none).")
        legacy = top_k == 1 and not isinstance(top_k, bool)
        top_k = check_top_k(top_k, allow_none=True)
        score = self._score_function(function_to_apply)
        single = isinstance(inputs, (dict, *TEXT_TYPES)) or (
            isinstance(inputs, tuple) and all(isinstance(part, TEXT_TYPES) for part in inputs)
        )
        examples = [inputs] if single else inputs
        if not isinstance(examples, (list, tuple)) or len(examples) == 0:
            raise TypeError(
                f"{method}: inputs must be a text, a text pair or a non-empty list of them; got {describe(inputs)}."
            )
        tokenizer = self.preprocessor.tokenizer
        rows = []
        for i, example in enumerate(examples):
            first, second = self._segments(example, "inputs" if single else f"inputs[{i}]", method)
            row = [tokenizer.cls_token_id, *tokenizer(first).tolist(), tokenizer.sep_token_id]
            if second is not None:
                row += [*tokenizer(second).tolist(), tokenizer.sep_token_id]
            rows.append(row)
        check_fits(rows, self.preprocessor.sequence_length, method)
        id2label = self.id2label or default_id2label(self.num_classes)
        results = []
        for logits in self._predict_rows(rows, batch_size):
            scores = score(np.asarray(logits, np.float32))
            ranked = [{"label": id2label[str(i)], "score": float(s)} for i, s in enumerate(scores)]
            if legacy:
                best = int(np.argmax(scores))
                results.append({"label": id2label[str(best)], "score": float(scores[best])})
                continue
            ranked.sort(key=lambda entry: entry["score"], reverse=True)
            results.append(ranked if top_k is None else ranked[:top_k])
        if single:  # the pipeline wraps a lone text's best label in a list, not a lone pair's
            return results if legacy and isinstance(inputs, TEXT_TYPES) else results[0]
        return results

    def _score_function(self, function_to_apply):
        if function_to_apply is None:
            if self.problem_type == "regression":
                return lambda logits: logits
            if self.problem_type == "multi_label_classification" or self.num_classes == 1:
                return sigmoid
            return softmax
        name = function_to_apply.lower() if isinstance(function_to_apply, str) else function_to_apply
        if name not in SCORE_FUNCTIONS:
            raise ValueError(f"function_to_apply must be one of {SCORE_FUNCTIONS} or None; got {function_to_apply!r}.")
        return {"softmax": softmax, "sigmoid": sigmoid, "none": lambda logits: logits}[name]

    @staticmethod
    def _segments(example, where, method):
        """(text, text pair or None) of one input, as the pipeline reads it."""
        if isinstance(example, TEXT_TYPES):
            return example, None
        if isinstance(example, dict):
            unknown = set(example) - {"text", "text_pair"}
            if "text" not in example or unknown:
                raise ValueError(
                    f"{method}: {where} is a dict, so it must be {{'text': ..., 'text_pair': ...}} (text_pair "
                    f"optional); got keys {sorted(example)}."
                )
            pair = example.get("text_pair")
            parts = (example["text"], pair)
        elif isinstance(example, tuple) and len(example) == 2:
            parts = example
        else:
            raise ValueError(
                f"{method}: {where} is {describe(example)}; a text pair is a dict "
                '{"text": "My text", "text_pair": "My pair"} (or a tuple of two texts), as transformers\' '
                "pipeline takes it."
            )
        for name, part in zip(("text", "text_pair"), parts):
            if part is not None and not isinstance(part, TEXT_TYPES):
                raise TypeError(f"{method}: {where} {name} must be a string; got {describe(part)}.")
        # transformers' tokenizer takes an empty text_pair as no pair at all.
        return parts[0], parts[1] or None
