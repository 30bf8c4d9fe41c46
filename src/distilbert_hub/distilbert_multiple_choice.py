import keras
import numpy as np

from distilbert_hub.distilbert_multiple_choice_preprocessor import DistilBertMultipleChoicePreprocessor
from distilbert_hub.input_checks import check_class_labels, leading_shape
from distilbert_hub.layers.choice_reshape import FlattenChoices, UnflattenChoices
from distilbert_hub.layers.initializers import weight_initializer
from distilbert_hub.task import Task, check_backbone


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertMultipleChoice(Task):
    """Multiple choice, equal to `DistilBertForMultipleChoice`: every choice's
    first token -> Dense + ReLU -> dropout -> Dense(1). Inputs
    `[batch, num_choices, length]`, logits `[batch, num_choices]`."""

    predicts_by_length = True
    reads = "first_token"
    preprocessor_cls = DistilBertMultipleChoicePreprocessor

    def __init__(self, backbone, preprocessor=None, dropout=0.2, **kwargs):
        check_backbone(backbone)

        # === Layers ===
        self.flatten_ids = FlattenChoices(dtype=backbone.dtype_policy, name="flatten_token_ids")
        self.flatten_mask = FlattenChoices(dtype=backbone.dtype_policy, name="flatten_padding_mask")
        self.pooled_dense = keras.layers.Dense(
            backbone.hidden_dim,
            activation="relu",
            kernel_initializer=weight_initializer(),
            dtype=backbone.dtype_policy,
            name="pooled_dense",
        )
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            1, kernel_initializer=weight_initializer(), dtype=backbone.dtype_policy, name="choice_score"
        )
        self.unflatten = UnflattenChoices(dtype=backbone.dtype_policy, name="logits")

        # === Functional Model ===
        inputs = {
            "token_ids": keras.Input(shape=(None, None), dtype="int32", name="token_ids"),
            "padding_mask": keras.Input(shape=(None, None), dtype="int32", name="padding_mask"),
        }
        flat = {
            "token_ids": self.flatten_ids(inputs["token_ids"]),
            "padding_mask": self.flatten_mask(inputs["padding_mask"]),
        }
        x = backbone(flat)[:, 0, :]
        scores = self.output_dense(self.output_dropout(self.pooled_dense(x)))
        outputs = self.unflatten(scores, inputs["token_ids"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.dropout = dropout
        self._setup_task(backbone, preprocessor)

    def check_labels(self, y, x):
        if isinstance(x, dict) and np.ndim(x["token_ids"]) == 3:
            check_class_labels(
                y, int(np.shape(x["token_ids"])[1]), type(self).__name__, shape=leading_shape(x, "token_ids", 1)
            )

    def compile_defaults(self):
        """Cross-entropy over the choices; accuracy."""
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            "metrics": [keras.metrics.SparseCategoricalAccuracy()],
        }

    def get_config(self):
        return super().get_config() | {"dropout": self.dropout}
