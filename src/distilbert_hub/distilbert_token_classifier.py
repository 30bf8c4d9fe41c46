import keras

from distilbert_hub.convert.hf_weights import dense_entries
from distilbert_hub.distilbert_token_classifier_preprocessor import DistilBertTokenClassifierPreprocessor
from distilbert_hub.input_checks import check_class_labels, leading_shape
from distilbert_hub.layers.initializers import weight_initializer
from distilbert_hub.task import Task, check_backbone, hf_labels_config, hf_num_labels


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertTokenClassifier(Task):
    """Per-token classification (NER, POS), equal to
    `DistilBertForTokenClassification`: dropout -> Dense on every token.
    Output logits `[batch, length, num_classes]`."""

    hf_architecture = "DistilBertForTokenClassification"
    preprocessor_cls = DistilBertTokenClassifierPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None, dropout=0.1, **kwargs):
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
        self._setup_task(backbone, preprocessor)

    def head_weight_entries(self):
        return dense_entries("classifier", self.output_dense)

    @classmethod
    def head_kwargs_from_hf_config(cls, hf_config):
        kwargs = {"num_classes": hf_num_labels(hf_config), "dropout": hf_config.get("dropout")}
        return {k: v for k, v in kwargs.items() if v is not None}

    def hf_config_updates(self):
        return super().hf_config_updates() | hf_labels_config(self.num_classes)

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
        return super().get_config() | {"num_classes": self.num_classes, "dropout": self.dropout}
