import keras

from distilbert_hub.convert.hf_weights import WeightEntry, dense_entries, layer_norm_entries
from distilbert_hub.distilbert_masked_lm_preprocessor import DistilBertMaskedLMPreprocessor
from distilbert_hub.input_checks import check_class_labels, check_mask_positions, leading_shape
from distilbert_hub.layers.distilbert_masked_lm_head import DistilBertMaskedLMHead
from distilbert_hub.task import Task, check_backbone


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertMaskedLM(Task):
    """Masked language modelling, equal to `DistilBertForMaskedLM` at the
    masked positions.

    Inputs `token_ids`, `padding_mask` `[batch, length]` and `mask_positions`
    `[batch, num_positions]`; output logits `[batch, num_positions,
    vocabulary_size]`. The projection is tied to the token embedding.
    """

    hf_architecture = "DistilBertForMaskedLM"
    preprocessor_cls = DistilBertMaskedLMPreprocessor

    def __init__(self, backbone, preprocessor=None, **kwargs):
        check_backbone(backbone)

        # === Layers ===
        self.masked_lm_head = DistilBertMaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            hidden_dim=backbone.hidden_dim,
            activation=backbone.activation,
            embedding_layer=backbone.embeddings,
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )

        # === Functional Model ===
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(shape=(None,), dtype="int32", name="mask_positions"),
        }
        hidden_states = backbone({k: inputs[k] for k in ("token_ids", "padding_mask")})
        outputs = self.masked_lm_head(hidden_states, inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self._setup_task(backbone, preprocessor)

    def head_weight_entries(self):
        head = self.masked_lm_head
        return [
            *dense_entries("vocab_transform", head.transform_dense),
            *layer_norm_entries("vocab_layer_norm", head.layer_norm),
            WeightEntry("vocab_projector.bias", head.bias),
        ]

    def check_inputs(self, x):
        super().check_inputs(x)
        if isinstance(x, dict) and "mask_positions" in x:
            check_mask_positions(x, type(self).__name__)

    def check_labels(self, y, x):
        check_class_labels(
            y, self.backbone.vocabulary_size, type(self).__name__, shape=leading_shape(x, "mask_positions", 2)
        )

    def compile_defaults(self):
        """Cross-entropy on logits averaged over the masked positions with a weight
        (transformers averages over the labels that are not -100, never over
        padding slots); accuracy weighted by the mask weights."""
        return {
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight"),
            "weighted_metrics": [keras.metrics.SparseCategoricalAccuracy()],
        }
