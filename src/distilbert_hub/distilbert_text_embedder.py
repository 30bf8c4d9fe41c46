import keras

from distilbert_hub.distilbert_text_classifier_preprocessor import DistilBertTextClassifierPreprocessor
from distilbert_hub.layers.token_pooling import TokenPooling
from distilbert_hub.task import Task, check_backbone


@keras.saving.register_keras_serializable(package="distilbert_hub")
class DistilBertTextEmbedder(Task):
    """Sentence embeddings: the backbone's token states pooled into one
    vector per text, equal to sentence-transformers' `Pooling` (+
    `Normalize`) over `DistilBertModel` and to the `feature-extraction`
    pipeline's states pooled the same way. Output `[batch, hidden_dim]`.

    Args:
        backbone: a `DistilBertBackbone`.
        preprocessor: a `DistilBertTextClassifierPreprocessor` or None.
        pooling: `"mean"` over real tokens, `"cls"` (the first token) or
            `"max"` over real tokens.
        normalize: divide each embedding by its L2 norm.
    """

    preprocessor_cls = DistilBertTextClassifierPreprocessor
    predicts_by_length = True
    reads = "real_tokens"  # the pooling reads the real tokens only

    def __init__(self, backbone, preprocessor=None, pooling="mean", normalize=True, **kwargs):
        check_backbone(backbone)

        # === Layers ===
        self.pooler = TokenPooling(pooling, normalize, dtype=backbone.dtype_policy, name="pooler")

        # === Functional Model ===
        inputs = backbone.input
        outputs = self.pooler(backbone(inputs), inputs["padding_mask"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.pooling = pooling
        self.normalize = bool(normalize)
        self._setup_task(backbone, preprocessor)

    @classmethod
    def from_preset(cls, preset, load_weights=True, pooling=None, normalize=None, **kwargs):
        """An embedder over the backbone of any DistilBERT preset or
        checkpoint (its head, if any, is not used). `pooling` and `normalize`
        left at None take what an embedder preset saved, else mean pooling,
        normalized."""
        options = {k: v for k, v in {"pooling": pooling, "normalize": normalize}.items() if v is not None}
        return super().from_preset(preset, load_weights=load_weights, **options, **kwargs)

    def check_labels(self, y, x):
        if y is not None:
            raise ValueError("DistilBertTextEmbedder is not trained here: it takes text only, no labels.")

    def compile_defaults(self):
        """No default loss: embeddings are trained with a contrastive objective of your choosing."""
        return {"loss": None, "metrics": None}

    def get_config(self):
        return super().get_config() | {"pooling": self.pooling, "normalize": self.normalize}
