import keras

from distilbert_hub.convert.hf_weights import dense_entries
from distilbert_hub.distilbert_text_classifier_preprocessor import DistilBertTextClassifierPreprocessor
from distilbert_hub.input_checks import check_class_labels, leading_shape
from distilbert_hub.layers.initializers import weight_initializer
from distilbert_hub.task import Task, check_backbone, hf_labels_config, hf_num_labels


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
    """

    hf_architecture = "DistilBertForSequenceClassification"
    predicts_by_length = True
    reads_first_token_only = True
    preprocessor_cls = DistilBertTextClassifierPreprocessor

    def __init__(
        self, backbone, num_classes, preprocessor=None, activation=None, hidden_dim=None, dropout=0.2, **kwargs
    ):
        check_backbone(backbone)
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
        self._setup_task(backbone, preprocessor)

    def head_weight_entries(self):
        return dense_entries("pre_classifier", self.pooled_dense) + dense_entries("classifier", self.output_dense)

    @classmethod
    def head_kwargs_from_hf_config(cls, hf_config):
        kwargs = {"num_classes": hf_num_labels(hf_config)}
        if "seq_classif_dropout" in hf_config:
            kwargs["dropout"] = hf_config["seq_classif_dropout"]
        return {k: v for k, v in kwargs.items() if v is not None}

    def hf_config_updates(self):
        if self.activation is not None or self.hidden_dim != self.backbone.hidden_dim:
            raise ValueError(
                "DistilBertForSequenceClassification returns logits from a pre-classifier as wide as the "
                f"backbone; this classifier has activation={self.activation!r}, hidden_dim={self.hidden_dim}."
            )
        return (
            super().hf_config_updates()
            | hf_labels_config(self.num_classes)
            | {
                "seq_classif_dropout": self.dropout,
                "problem_type": "regression" if self.num_classes == 1 else "single_label_classification",
            }
        )

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
        }
