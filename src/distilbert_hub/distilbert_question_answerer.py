import keras
import numpy as np

from distilbert_hub.distilbert_question_answerer_preprocessor import DistilBertQuestionAnswererPreprocessor
from distilbert_hub.input_checks import check_class_labels, concrete_values
from distilbert_hub.layers.initializers import weight_initializer
from distilbert_hub.task import Task, check_backbone


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertQuestionAnswerer(Task):
    """Extractive question answering, equal to
    `DistilBertForQuestionAnswering`: dropout -> Dense(2) on every token.
    Outputs `{"start_logits", "end_logits"}`, each `[batch, length]`.
    `answer(questions, contexts)` decodes the best spans back to text."""

    preprocessor_cls = DistilBertQuestionAnswererPreprocessor

    def __init__(self, backbone, preprocessor=None, dropout=0.1, **kwargs):
        check_backbone(backbone)

        # === Layers ===
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            2, kernel_initializer=weight_initializer(), dtype=backbone.dtype_policy, name="qa_logits"
        )

        # === Functional Model ===
        inputs = backbone.input
        logits = self.output_dense(self.output_dropout(backbone(inputs)))
        outputs = {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.dropout = dropout
        self._setup_task(backbone, preprocessor)

    def check_labels(self, y, x):
        if y is None:
            return
        if not isinstance(y, dict) or set(y) != {"start_logits", "end_logits"}:
            raise ValueError(
                "DistilBertQuestionAnswerer: labels are {'start_logits': starts, 'end_logits': ends} "
                f"(token positions); got {type(y).__name__}."
            )
        length = np.shape(x["token_ids"])[-1] if isinstance(x, dict) and "token_ids" in x else None
        for name in ("start_logits", "end_logits"):
            check_class_labels(y[name], length or np.iinfo(np.int32).max, f"DistilBertQuestionAnswerer '{name}'")
        starts, ends = concrete_values(y["start_logits"]), concrete_values(y["end_logits"])
        if starts is not None and ends is not None and (starts > ends).any():
            row = int(np.flatnonzero(starts > ends)[0])
            raise ValueError(
                f"DistilBertQuestionAnswerer: row {row} has start {int(starts[row])} after end {int(ends[row])}."
            )

    def compile_defaults(self):
        """The mean of the start and end cross-entropies, as transformers computes it."""
        return {
            "loss": {
                name: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
                for name in ("start_logits", "end_logits")
            },
            "loss_weights": {"start_logits": 0.5, "end_logits": 0.5},
        }

    def answer(self, questions, contexts, max_answer_length=15, batch_size=32):
        """The best answer text for each (question, context), from every window."""
        if self.preprocessor is None:
            raise ValueError("DistilBertQuestionAnswerer.answer needs a preprocessor.")
        windows = self.preprocessor.windows(questions, contexts)
        logits = self.predict(windows.model_inputs(), batch_size=batch_size, verbose=0)
        return self.preprocessor.decode_answers(
            logits["start_logits"], logits["end_logits"], windows, max_answer_length=max_answer_length
        )

    def get_config(self):
        return super().get_config() | {"dropout": self.dropout}
