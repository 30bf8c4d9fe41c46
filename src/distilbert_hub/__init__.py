"""DistilBERT for Keras 3, numerically equal to Hugging Face `transformers`."""

from distilbert_hub.distilbert_backbone import DistilBertBackbone

__all__ = ["DistilBertBackbone"]
__version__ = "0.1.0"
